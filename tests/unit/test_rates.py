"""The one counter -> rate helper: resets, wraps, time not advancing, impossible rates."""

from __future__ import annotations

from typing import List, Optional, Tuple

import pytest

from sysops_agent.rates import RateTracker, counter_deltas, counter_rate

U32 = 2**32
U64 = 2**64


@pytest.mark.parametrize(
    ("prev", "cur", "dt", "max_rate", "want"),
    [
        (10, 30, 2.0, None, 10.0),
        (5, 5, 10.0, None, 0.0),  # idle counter: a real zero
        (1000, 10, 10.0, None, None),  # reset (reboot, device re-added)
        (U32 - 100, 50, 10.0, None, None),  # 32-bit wrap: never (2**32 - 50) / dt
        (U64 - 1, 3, 10.0, None, None),  # 64-bit wrap
        (10, 20, 0.0, None, None),  # time did not advance
        (10, 20, -5.0, None, None),  # clock stepped back
        (0, 1000, 1.0, 1000.0, 1000.0),  # exactly at the limit is allowed
        (0, 1001, 1.0, 1000.0, None),  # above it is not physical
        (0, 3, 4.0, None, 0.75),
    ],
)
def test_counter_rate(
    prev: int, cur: int, dt: float, max_rate: Optional[float], want: Optional[float]
) -> None:
    assert counter_rate(prev, cur, dt, max_rate) == want


def test_tracker_first_reading_primes_then_rates() -> None:
    t = RateTracker[str]()
    assert t.update("eth0", 100, 1000.0) is None
    assert t.update("eth0", 600, 1010.0) == 50.0
    assert t.update("eth0", 600, 1020.0) == 0.0


def test_tracker_reset_gives_no_sample_then_continues_from_new_base() -> None:
    t = RateTracker[str]()
    readings: List[Tuple[float, float]] = [(0, 1000), (10, 2000), (20, 30), (30, 130), (40, 230)]
    rates = [t.update("sda", v, ts) for ts, v in readings]
    assert rates == [None, 100.0, None, 10.0, 10.0]


def test_tracker_max_rate_drops_the_step_only() -> None:
    t = RateTracker[str](max_rate=1e6)
    assert t.update("x", 0, 0.0) is None
    assert t.update("x", 10**9, 1.0) is None  # 1e9/s: impossible -> no sample
    assert t.update("x", 10**9 + 500, 2.0) == 500.0  # the next step is measured from there


def test_tracker_same_timestamp_twice() -> None:
    t = RateTracker[str]()
    t.update("x", 1, 5.0)
    assert t.update("x", 2, 5.0) is None


def test_prune_forgets_keys_not_seen_since_last_prune() -> None:
    t = RateTracker[str]()
    t.update("a", 1, 0.0)
    t.update("b", 1, 0.0)
    t.prune()
    assert len(t) == 2
    t.update("a", 2, 10.0)
    t.prune()  # b was not updated in this round
    assert len(t) == 1
    # b comes back with a much higher counter: no rate across the gap
    assert t.update("b", 10**6, 20.0) is None
    assert t.update("a", 12, 20.0) == 1.0


@pytest.mark.parametrize(
    ("prev", "cur", "want"),
    [
        ((1, 2, 3), (2, 2, 5), [1, 0, 2]),
        ((1, 2, 3), (2, 1, 5), None),  # one field went backwards: the group is void
        ((1, 2, 3), (1, 2), None),  # field count changed
        ((), (), []),
    ],
)
def test_counter_deltas(
    prev: Tuple[int, ...], cur: Tuple[int, ...], want: Optional[List[int]]
) -> None:
    assert counter_deltas(prev, cur) == want


def test_group_rate_tracker_answers_per_counter_and_forgets_vanished_groups() -> None:
    from sysops_agent.rates import GroupRateTracker

    t = GroupRateTracker[str]((None, 100.0, None))
    assert t.update("eth0", (0, 0, 10), 0.0) is None  # first reading: no rate
    assert t.update("eth0", (50, 5000, 5), 10.0) == [5.0, None, None]  # too fast; backwards
    assert t.update("eth0", (50, 5100, 6), 20.0) == [0.0, 10.0, 0.1]
    assert t.update("eth0", (60, 700), 30.0) is None  # the group changed shape: start again
    t.prune()
    t.update("eth1", (1, 1, 1), 40.0)
    t.prune()
    assert len(t) == 1
    assert t.update("eth0", (70, 800), 50.0) is None  # forgotten: a new group
