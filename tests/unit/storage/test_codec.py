"""The sealed-block codecs (``storage/codec.py``): exact, and as small as the data allows.

Every block reads back bit for bit (timestamps and float32 values) whatever
the codec chosen; regular timestamps cost nothing; rounded white noise costs
within a few bytes a block of its entropy; differences of whole steps packed
as digits beat deflate on smooth gauges.
"""

from __future__ import annotations

import math
import random
from array import array
from itertools import accumulate
from typing import List, Optional

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sysops_agent.storage import codec
from tests.support.properties import PROPERTY

T0 = 1_700_000_000


def _f32(values: List[float]) -> array[float]:
    return array("f", values)


def _on_steps(raw: List[float], resolution: float) -> array[float]:
    return _f32([round(v / resolution) * resolution for v in raw])


def _round_trip(ts: List[int], vals: array[float], resolution: Optional[float]) -> bytes:
    block = codec.pack(array("I", ts), vals, resolution)
    got_ts, got_vals = codec.unpack(block, resolution)
    assert list(got_ts) == ts
    assert got_vals.tobytes() == vals.tobytes()
    first, last, n, _ = codec.header(block)
    assert (first, last, n) == (ts[0], ts[-1], len(ts))
    return block


#: timestamps: regular, regular with one gap, repeated, or any non-decreasing seconds
TIMESTAMPS = st.integers(min_value=1, max_value=400).flatmap(
    lambda n: st.one_of(
        st.integers(min_value=0, max_value=3600).map(
            lambda step: [T0 + step * i for i in range(n)]
        ),
        st.integers(min_value=0, max_value=n - 1).map(
            lambda gap: [T0 + 10 * i + (5 if i >= gap else 0) for i in range(n)]
        ),
        st.lists(st.integers(min_value=0, max_value=10**6), min_size=n, max_size=n).map(
            lambda deltas: [T0 + d for d in accumulate(deltas)]
        ),
    )
)
RESOLUTIONS = st.sampled_from([None, 0.001, 0.01, 0.05, 0.1, 1.0])


@PROPERTY
@given(
    ts=TIMESTAMPS,
    resolution=RESOLUTIONS,
    spread=st.sampled_from([0.0, 0.5, 100.0, 1e6, 3e9]),
    shape=st.sampled_from(["noise", "walk", "wave", "constant", "signs"]),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_every_block_reads_back_bit_for_bit(
    ts: List[int], resolution: Optional[float], spread: float, shape: str, seed: int
) -> None:
    rng = random.Random(seed)
    n = len(ts)
    if shape == "noise":
        raw = [rng.uniform(0, spread) for _ in range(n)]
    elif shape == "walk":
        raw = [spread / 2]
        for _ in range(n - 1):
            raw.append(raw[-1] + rng.gauss(0, spread / 100 + 0.01))
    elif shape == "wave":
        raw = [spread * (1 + math.sin(i / 60)) for i in range(n)]
    elif shape == "constant":
        raw = [spread] * n
    else:
        raw = [rng.choice([0.0, -0.0, -spread, spread, 1.0]) for _ in range(n)]
    values = _on_steps(raw, resolution) if resolution else _f32(raw)
    _round_trip(ts, values, resolution)
    if resolution:  # a buffer given a resolution still stores values off the steps exactly
        _round_trip(ts, _f32([v + resolution / 3 for v in raw]), resolution)


@pytest.mark.parametrize("order", [0, 1, 2, 3])
@pytest.mark.parametrize("regular", [True, False])
def test_each_digit_codec_reads_back(order: int, regular: bool) -> None:
    """A series built so that its ``order``-th differences are small noise picks that codec."""
    rng = random.Random(order)
    steps = [rng.randrange(0, 7) for _ in range(360)]
    for _ in range(order):
        steps = [int(v) for v in accumulate(steps)]
    vals = _f32([s * 0.01 for s in steps])
    ts = [T0 + 10 * i + (3 if not regular and i > 100 else 0) for i in range(360)]
    block = _round_trip(ts, vals, 0.01)
    assert codec.header(block)[3] == codec._DIGITS0 + order
    assert bool(block[codec._HEADER.size - 1] & codec.REGULAR) is regular


def test_regular_timestamps_cost_nothing() -> None:
    """Same values, regular vs one irregular timestamp: only the irregular block stores them."""
    vals = _on_steps([50 + 10 * math.sin(i / 60) for i in range(360)], 0.01)
    regular = _round_trip([T0 + 10 * i for i in range(360)], vals, 0.01)
    jitter = _round_trip([T0 + 10 * i + (i == 200) for i in range(360)], vals, 0.01)
    assert len(jitter) > len(regular) + 10


@pytest.mark.parametrize(("resolution", "levels"), [(0.01, 10_001), (0.05, 2_001), (0.1, 1_001)])
def test_rounded_white_noise_costs_its_entropy_plus_a_few_bytes(
    resolution: float, levels: int
) -> None:
    """Uniform 0-100 on ``levels`` steps: n·log2(levels) bits, plus 11 bytes of header, the gcd,
    smallest value and base as varints (≤ 6) and the last partial byte: ≤ 18 bytes a block."""
    rng = random.Random(levels)
    vals = _on_steps([rng.uniform(0, 100) for _ in range(360)], resolution)
    block = _round_trip([T0 + 10 * i for i in range(360)], vals, resolution)
    entropy = 360 * math.log2(levels) / 8
    assert entropy - 8 < len(block) <= entropy + 18


def test_smooth_gauges_pack_their_differences_as_digits() -> None:
    """A percentage wave at 0.01: its 2nd/3rd differences as digits, under 0.4 bytes a sample."""
    vals = _on_steps([50 + 10 * math.sin(i / 60 + 3) for i in range(360)], 0.01)
    block = _round_trip([T0 + 10 * i for i in range(360)], vals, 0.01)
    assert codec.header(block)[3] in (codec._DIGITS2, codec._DIGITS3)
    assert len(block) / 360 < 0.4


@PROPERTY
@given(st.integers(min_value=-(2**70), max_value=2**70))
def test_varints_round_trip(value: int) -> None:
    raw = codec._varint(value) + b"\x01"
    assert codec._read_varint(raw, 0) == (value, len(raw) - 1)
    assert len(codec._varint(value)) == 1 or abs(value) >= 64


@PROPERTY
@given(st.lists(st.integers(min_value=-(10**6), max_value=10**6), min_size=4, max_size=400))
def test_the_digit_size_known_beforehand_is_never_less_than_the_real_one(values: List[int]) -> None:
    """Only the smallest digit codec is built; its size is estimated first (an upper bound)."""
    for head in range(4):
        assert codec._digits_size(values, head) >= len(codec._pack_digits(values, head))
