"""Ring buffers and the in-memory store: wrap-around, queries, cursors, NaN, capacity."""

from __future__ import annotations

import math
from typing import List, Tuple

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sysops_agent.model import Sample, make_labels
from sysops_agent.storage.ringbuffer import RingBuffer
from sysops_agent.storage.store import Store
from tests.support.properties import PROPERTY

T0 = 1_700_000_000


def filled(capacity: int, n: int) -> RingBuffer:
    """Samples ts = 1..n, value = 10 * ts."""
    b = RingBuffer(capacity)
    for ts in range(1, n + 1):
        b.append(float(ts), 10.0 * ts)
    return b


def test_capacity_must_be_positive() -> None:
    with pytest.raises(ValueError, match="capacity"):
        RingBuffer(0)


def test_empty_buffer() -> None:
    b = RingBuffer(3)
    assert len(b) == 0
    assert b.latest() is None
    assert b.last_n(5) == []
    assert b.since(0) == []
    assert b.new_since(0) == []
    assert list(b) == []
    assert math.isnan(b.last_value)


def test_before_wrap_keeps_everything_in_order() -> None:
    b = filled(5, 3)
    assert list(b) == [(1.0, 10.0), (2.0, 20.0), (3.0, 30.0)]
    assert b.latest() == (3.0, 30.0)


@pytest.mark.parametrize("n", [5, 6, 7, 12, 13])
def test_wrap_around_keeps_the_newest_capacity_samples(n: int) -> None:
    b = filled(5, n)
    want = [(float(ts), 10.0 * ts) for ts in range(n - 4, n + 1)]
    assert len(b) == 5
    assert b.total == n
    assert list(b) == want
    assert b.last_n(5) == want
    assert b.last_n(2) == want[-2:]
    assert b.latest() == want[-1]


def test_last_n_bounds() -> None:
    b = filled(4, 6)
    assert b.last_n(0) == []
    assert b.last_n(-3) == []
    assert b.last_n(100) == [(3.0, 30.0), (4.0, 40.0), (5.0, 50.0), (6.0, 60.0)]


@pytest.mark.parametrize(
    ("t", "want_ts"),
    [(0, [4, 5, 6, 7, 8]), (6, [6, 7, 8]), (6.5, [7, 8]), (8, [8]), (9, []), (4, [4, 5, 6, 7, 8])],
)
def test_since_after_wrap(t: float, want_ts: list[int]) -> None:
    b = filled(5, 8)  # holds 4..8, physically rotated
    assert [ts for ts, _ in b.since(t)] == [float(x) for x in want_ts]


def test_new_since_cursor() -> None:
    b = filled(5, 3)
    cursor = b.total
    assert b.new_since(cursor) == []
    b.append(4.0, 40.0)
    b.append(5.0, 50.0)
    assert b.new_since(cursor) == [(4.0, 40.0), (5.0, 50.0)]
    cursor = b.total
    for ts in range(6, 20):  # the reader fell more than a whole buffer behind
        b.append(float(ts), 10.0 * ts)
    assert b.new_since(cursor) == b.last_n(5)
    assert [ts for ts, _ in b.new_since(cursor)] == [15.0, 16.0, 17.0, 18.0, 19.0]


def test_compact_representation() -> None:
    b = RingBuffer(1000)
    b.append(1700000000.9, 0.1)
    ts, value = next(iter(b))
    assert ts == 1700000000.0  # whole seconds in the array
    assert value == pytest.approx(0.1, rel=1e-7)  # float32
    assert value != 0.1
    assert b.latest() == (1700000000.9, 0.1)  # the exact latest is kept beside the arrays
    for i in range(999):
        b.append(1700000001.0 + i, float(i))
    assert b.memory_bytes() <= 1000 * 8 + 64  # ~8 bytes per sample


def test_store_rejects_nan_and_inf() -> None:
    s = Store()
    assert s.add(1.0, "m", float("nan")) is False
    assert s.add(1.0, "m", float("inf")) is False
    assert s.add(1.0, "m", float("-inf")) is False
    assert s.rejected == 3
    assert s.get("m") is None
    assert s.add(1.0, "m", 2.5) is True
    assert s.latest("m") == (1.0, 2.5)


def test_store_capacity_per_interval() -> None:
    s = Store(max_samples=8640)
    s.note_interval("cpu_usage_percent", 10)
    s.note_interval("disk_usage_percent", 60)
    s.note_interval("fast", 1)
    assert s.capacity_for("cpu_usage_percent") == 8640  # 24 h at 10 s
    assert s.capacity_for("disk_usage_percent") == 1440  # 24 h at 60 s
    assert s.capacity_for("fast") == 8640  # capped by max_samples
    assert s.capacity_for("unknown") == 8640
    s.add(1.0, "disk_usage_percent", 50.0, make_labels(mountpoint="/"))
    buf = s.get("disk_usage_percent", make_labels(mountpoint="/"))
    assert buf is not None
    assert buf.capacity == 1440


def test_store_series_queries() -> None:
    s = Store(max_samples=3)
    a, b = make_labels(device="sda"), make_labels(device="sdb")
    for ts in range(1, 6):
        s.append(Sample(float(ts), "disk_io_util_percent", float(ts), a))
    s.append(Sample(5.0, "disk_io_util_percent", 7.0, b))
    s.append(Sample(5.0, "load_avg_1m", 0.5))
    assert len(s) == 3
    assert s.last_n("disk_io_util_percent", 10, a) == [(3.0, 3.0), (4.0, 4.0), (5.0, 5.0)]
    assert s.since("disk_io_util_percent", 4.0, a) == [(4.0, 4.0), (5.0, 5.0)]
    assert s.last_n("nope", 3) == []
    assert s.since("nope", 0) == []
    assert s.latest("nope") is None
    keys = sorted(str(k) for k, _ in s.series_of("disk_io_util_percent"))
    assert keys == ['disk_io_util_percent{device="sda"}', 'disk_io_util_percent{device="sdb"}']
    # series() is a snapshot: adding while iterating is safe
    for _key, _buf in s.series():
        s.add(6.0, "new_metric", 1.0)
    assert s.get("new_metric") is not None


def test_store_drops_stale_series() -> None:
    s = Store()
    s.add(100.0, "process_rss_bytes", 1.0, make_labels(pid=1, name="a"))
    s.add(500.0, "process_rss_bytes", 1.0, make_labels(pid=2, name="b"))
    assert s.drop_stale(now=600.0, max_age=300.0) == 1
    assert [k.label("pid") for k, _ in s.series()] == ["2"]


@pytest.mark.parametrize(("capacity", "block"), [(1, 1), (5, 2), (7, 3), (100, 10), (8640, 360)])
def test_compressed_blocks_behave_like_a_plain_ring(capacity: int, block: int) -> None:
    """Against a plain list: every query, at every step, with irregular gaps and repeats."""
    import random

    rng = random.Random(capacity * 31 + block)
    b = RingBuffer(capacity, block=block)
    ref: list[tuple[float, float]] = []
    ts = 1_700_000_000
    for step in range(capacity * 3 + 17):
        ts += rng.choice([0, 1, 10, 10, 10, 60, 3600])
        value = rng.choice([0.0, 0.0, 1.5, float(step), rng.uniform(-1e6, 1e6)])
        b.append(float(ts), value)
        ref.append((float(ts), float(array_f(value))))
        ref = ref[-capacity:]
        assert b.last_n(1) == ref[-1:]  # the analyzers' common read, at every step
        if step % max(7, capacity // 10) == 0 or step > capacity * 3 + 10:
            assert len(b) == len(ref)
            assert list(b) == ref
            n = rng.randint(0, capacity + 2)
            assert b.last_n(n) == (ref[-n:] if n else [])
            t = rng.choice(ref)[0] + rng.choice([-1, 0, 1])
            assert b.since(t) == [p for p in ref if p[0] >= t]
    assert b.total == capacity * 3 + 17


def array_f(value: float) -> float:
    """``value`` as float32, the way the buffer stores it."""
    from array import array

    return array("f", [value])[0]


def test_sealed_blocks_compress_regular_series() -> None:
    b = RingBuffer(8640)
    for i in range(8640):
        b.append(1_700_000_000.0 + 10 * i, 0.0)  # an idle NIC's error rate
    active = 8 * b._n  # the open hour's arrays
    assert b.memory_bytes() - active < 8640 * 0.2
    noisy = RingBuffer(8640)
    for i in range(8640):
        noisy.append(1_700_000_000.0 + 10 * i, 50.0 + math.sin(i) * 10)
    assert noisy.memory_bytes() < 8640 * 5  # under 5 bytes/sample even for a noisy gauge


def _series(kind: str, n: int = 360) -> list[float]:
    import random

    rng = random.Random(7)
    if kind == "curve":  # a gauge along a parabola: second differences are tiny
        return [50.0 + 1e-4 * (i - 180) ** 2 for i in range(n)]
    if kind == "smooth":  # a smooth wave: third differences are tinier still
        return [50.0 + 10.0 * math.sin(i / 60.0) for i in range(n)]
    if kind == "trend":  # bytes growing by whole pages: first differences repeat
        return [8e9 + 4096.0 * 10 * i for i in range(n)]
    if kind == "noise":
        return [rng.uniform(-1e6, 1e6) for _ in range(n)]
    # awkward float32 patterns: signs flipping, zeros of both signs, subnormal, huge
    pool = [0.0, -0.0, 1e-45, -1e-45, 3.4e38, -3.4e38, 1.0, -1.0, 123.456]
    return [rng.choice(pool) for _ in range(n)]


@pytest.mark.parametrize(
    ("kind", "codec"),
    [
        ("smooth", "_DELTA3"),
        ("curve", "_DELTA2"),
        ("trend", "_DELTA1"),
        ("noise", None),
        ("edge", None),
    ],
)
def test_every_codec_reads_back_bit_for_bit(kind: str, codec: str | None) -> None:
    from array import array

    from sysops_agent.storage import codec as rb

    values = _series(kind)
    b = RingBuffer(720, block=360)
    for i, v in enumerate(values):
        b.append(1_700_000_000.0 + 10 * i, v)
    assert len(b._blocks) == 1  # one sealed block, nothing in the active arrays
    _, _, n, chosen = rb.header(b._blocks[0])
    assert n == 360
    if codec is not None:
        assert chosen == getattr(rb, codec)
    got = [v for _, v in b]
    assert array("f", got).tobytes() == array("f", values).tobytes()  # -0.0 stays -0.0
    assert [ts for ts, _ in b] == [1_700_000_000.0 + 10 * i for i in range(360)]


def test_smooth_gauges_cost_under_a_byte_a_sample() -> None:
    b = RingBuffer(8640)
    for i in range(8640):
        b.append(1_700_000_000.0 + 10 * i, 50.0 + 10.0 * math.sin(i / 60.0))
    active = 8 * b._n
    assert (b.memory_bytes() - active) / (8640 - b._n) < 1.0


def test_codec_transforms_invert_exactly_on_any_32_bit_words() -> None:
    import random
    from array import array

    from sysops_agent.storage import codec as rb

    rng = random.Random(3)
    words = array("I", [0, 1, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 2, 0xFFFFFFFE])
    words.extend(rng.getrandbits(32) for _ in range(500))
    assert rb._unzigzag(rb._zigzag(words)) == words
    assert list(rb._zigzag(array("I", [0, 0xFFFFFFFF, 1, 0xFFFFFFFE, 2]))) == [0, 1, 2, 3, 4]
    for order in (1, 2, 3):
        d = words
        for _ in range(order):
            d = rb._diff(d)
        back = rb._unzigzag(rb._zigzag(d))
        for _ in range(order):
            back = rb._undiff(back)
        assert back == words
    assert rb._unshuffle(rb._shuffle(words.tobytes())) == words.tobytes()


def test_a_constant_block_at_a_regular_interval_costs_its_header_and_8_bytes() -> None:
    from sysops_agent.storage import codec as rb

    b = RingBuffer(1000, block=360)
    for i in range(720):
        b.append(1_700_000_000.0 + 10 * i, 0.0 if i < 360 else -0.0)
    assert [rb.header(blk)[3] for blk in b._blocks] == [rb._CONSTANT] * 2
    assert all(len(blk) == rb._HEADER.size + 8 for blk in b._blocks)
    got = [v for _, v in b]
    assert [math.copysign(1, v) for v in got] == [1.0] * 360 + [-1.0] * 360  # -0.0 kept
    assert [t for t, _ in b] == [1_700_000_000.0 + 10 * i for i in range(720)]
    assert b.since(1_700_000_000.0 + 10 * 700) == [
        (1_700_000_000.0 + 10 * i, -0.0) for i in range(700, 720)
    ]
    # a gap in the timestamps, or 0.0 beside -0.0: not constant
    gap = RingBuffer(1000, block=4)
    for t, v in (
        (0, 1.0),
        (10, 1.0),
        (25, 1.0),
        (35, 1.0),
        (40, 0.0),
        (50, -0.0),
        (60, 0.0),
        (70, 0.0),
    ):
        gap.append(1_700_000_000.0 + t, v)
    assert [rb.header(blk)[3] for blk in gap._blocks] != [rb._CONSTANT] * 2
    assert [math.copysign(1, v) for _, v in gap][4:] == [1.0, -1.0, 1.0, 1.0]
    assert [t - 1_700_000_000.0 for t, _ in gap][:4] == [0, 10, 25, 35]


def test_series_created_together_seal_their_first_blocks_at_spread_moments() -> None:
    s = Store()
    for i in range(360):
        for n in range(40):
            s.add(1_700_000_000.0 + 10 * i, "disk_read_ops_per_second", 0.0, make_labels(d=str(n)))
    open_blocks = sorted(buf._n for _, buf in s.series())
    assert len(set(open_blocks)) == 40  # every series at a different fill
    for _, buf in s.series():  # nothing lost at the early seal
        assert len(buf) == 360 and buf.total == 360


@pytest.mark.parametrize(("capacity", "block"), [(8640, 360), (50, 7), (10, 10), (5, 2)])
def test_an_idle_series_holds_one_block_and_still_behaves_like_a_plain_ring(
    capacity: int, block: int
) -> None:
    b = RingBuffer(capacity, block=block)
    ref: list[tuple[float, float]] = []
    ts = 1_700_000_000.0
    for i in range(capacity * 3 + 5):
        ts += 10
        value = 0.0 if i < capacity * 2 else 7.5  # idle, then another constant
        b.append(ts, value)
        ref = [*ref, (ts, value)][-capacity:]
        if i % max(1, capacity // 7) == 0 or i > capacity * 3:
            assert list(b) == ref
            assert b.since(ref[len(ref) // 2][0]) == ref[len(ref) // 2 :]
            assert b.last_n(3) == ref[-3:]
    assert len(b._blocks) <= 2  # the old constant and the new one
    assert len(b) == capacity and b.total == capacity * 3 + 5


@pytest.mark.parametrize("seed", range(6))
def test_runs_of_one_value_behave_like_a_plain_ring(seed: int) -> None:
    """The open block kept as (first, interval, value) while it is one: starts, breaks, seals."""
    import random

    rng = random.Random(seed)
    capacity, block = rng.choice([(30, 7), (12, 12), (9, 1), (40, 5)])
    b = RingBuffer(capacity, block=block, first_block=rng.randint(0, block))
    ref: list[tuple[float, float]] = []
    ts = 1_700_000_000
    value = 0.0
    for _ in range(300):
        ts += rng.choice([10, 10, 10, 10, 0, 20])
        if rng.random() < 0.1:
            value = rng.choice([0.0, -0.0, 1.0, 2.5])
        b.append(float(ts), value)
        ref = [*ref, (float(ts), value)][-capacity:]
        newest = b.last_n(1)
        assert newest == ref[-1:]
        assert math.copysign(1, newest[0][1]) == math.copysign(1, value)
        got = list(b)
        assert got == ref
        assert [math.copysign(1, v) for _, v in got] == [math.copysign(1, v) for _, v in ref]
        t = rng.choice(ref)[0] + rng.choice([-1, 0, 1])
        assert b.since(t) == [p for p in ref if p[0] >= t]
        k = rng.randint(0, capacity)
        assert b.last_n(k) == (ref[-k:] if k else [])


def test_the_open_hour_keeps_no_timestamps_while_they_are_regular() -> None:
    """4 bytes a sample (the float32 value) until a sample comes off the interval, then 8."""
    t0 = 1_700_000_000
    b = RingBuffer(1000, block=360)
    ref: list[tuple[float, float]] = []
    for i in range(100):
        b.append(float(t0 + 10 * i), float(i))
        ref.append((float(t0 + 10 * i), float(i)))
    assert b.memory_bytes() == 4 * 100
    assert b.since(t0 + 985.0) == ref[-1:] and b.last_n(3) == ref[-3:]
    for i in range(100, 400):  # one late sample: the rest of this hour keeps its timestamps
        t = t0 + 10 * i + 3
        b.append(float(t), float(i))
        ref.append((float(t), float(i)))
        if i == 100:
            assert b.memory_bytes() == 8 * 101
    assert list(b) == ref
    assert b.memory_bytes() == b.sealed_bytes() + 4 * 40  # the next hour is regular again
    assert b.since(t0 + 3993.0) == ref[-1:]


@PROPERTY
@given(
    capacity=st.integers(min_value=1, max_value=400),
    block=st.integers(min_value=1, max_value=60),
    first_block=st.integers(min_value=0, max_value=60),
    steps=st.lists(
        st.tuples(st.integers(0, 30), st.sampled_from([0.0, 1.0, 2.5, 1e6])), max_size=900
    ),
)
def test_the_kept_count_of_sealed_bytes_is_the_blocks_length(
    capacity: int, block: int, first_block: int, steps: List[Tuple[int, float]]
) -> None:
    """``sealed_bytes`` is kept as blocks are sealed, merged and dropped, not summed per call."""
    b = RingBuffer(capacity, block=block, first_block=first_block)
    t = T0
    for gap, value in steps:
        t += gap
        b.append(float(t), value)
        assert b.sealed_bytes() == sum(len(x) for x in b._blocks)
