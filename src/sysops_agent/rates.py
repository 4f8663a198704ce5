"""Counter -> rate conversion with reset handling, in one place (STYLE.md point 5).

Kernel counters only go up, except when they do not: a reboot, a device
removed and re-added, a 32-bit counter wrapping. In all those cases the honest
answer for that step is "no sample" — never a negative rate and never the
astronomically large one that unsigned wrap arithmetic would produce.
"""

from __future__ import annotations

from typing import Dict, Generic, Hashable, List, Optional, Sequence, Tuple, TypeVar

K = TypeVar("K", bound=Hashable)


def counter_rate(
    prev: float, cur: float, dt: float, max_rate: Optional[float] = None
) -> Optional[float]:
    """Per-second rate between two readings, or ``None`` when no honest rate exists.

    ``None`` when time did not advance, when the counter went backwards, or when
    the rate exceeds ``max_rate`` (a physically impossible value, e.g. after a
    device was swapped for another under the same name).
    """
    if dt <= 0 or cur < prev:
        return None
    rate = (cur - prev) / dt
    if max_rate is not None and rate > max_rate:
        return None
    return rate


class RateTracker(Generic[K]):
    """Remembers the last reading of many counters and turns new readings into rates.

    Keys that were not seen in the latest round are forgotten by :meth:`prune`,
    so a disk or NIC that disappears does not leave state behind.
    """

    def __init__(self, max_rate: Optional[float] = None) -> None:
        self._last: Dict[K, Tuple[float, float]] = {}
        self._seen: set[K] = set()
        self.max_rate = max_rate

    def update(self, key: K, value: float, now: float) -> Optional[float]:
        self._seen.add(key)
        prev = self._last.get(key)
        self._last[key] = (now, value)
        if prev is None:
            return None
        return counter_rate(prev[1], value, now - prev[0], self.max_rate)

    def prune(self) -> None:
        """Forget keys not updated since the previous prune."""
        for key in list(self._last):
            if key not in self._seen:
                del self._last[key]
        self._seen = set()

    def __len__(self) -> int:
        return len(self._last)


class GroupRateTracker(Generic[K]):
    """Like :class:`RateTracker` for a group of counters read together (one NIC's 8, one disk's 5).

    One dict entry and one timestamp per group instead of one per counter: a
    host with 500 interfaces updates 500 entries a cycle, not 4,000. Each
    counter still gets its own answer (a counter that went backwards gives
    ``None`` for itself only), with its own physical bound (``max_rates``).
    """

    def __init__(self, max_rates: Sequence[Optional[float]]) -> None:
        self._last: Dict[K, Tuple[float, Sequence[float]]] = {}
        self._seen: set[K] = set()
        self.max_rates = tuple(max_rates)

    def update(
        self, key: K, values: Sequence[float], now: float
    ) -> Optional[List[Optional[float]]]:
        """The rate of each counter since the last reading; ``None`` for a group new to us."""
        self._seen.add(key)
        prev = self._last.get(key)
        self._last[key] = (now, values)
        if prev is None or len(prev[1]) != len(values):
            return None
        dt = now - prev[0]
        return [counter_rate(p, v, dt, m) for p, v, m in zip(prev[1], values, self.max_rates)]

    def prune(self) -> None:
        """Forget groups not updated since the previous prune."""
        if len(self._seen) != len(self._last):
            for key in [k for k in self._last if k not in self._seen]:
                del self._last[key]
        self._seen = set()

    def __len__(self) -> int:
        return len(self._last)


def counter_deltas(prev: Sequence[int], cur: Sequence[int]) -> Optional[List[int]]:
    """Field-wise increase of a group of counters read together (e.g. one CPU's times).

    ``None`` when any field went backwards or the number of fields changed: the
    group was reset (reboot, CPU offlined and back) and no honest delta exists.
    """
    if len(prev) != len(cur):
        return None
    out = [c - p for p, c in zip(prev, cur)]
    for d in out:
        if d < 0:
            return None
    return out
