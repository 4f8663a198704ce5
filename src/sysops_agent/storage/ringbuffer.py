"""A fixed-capacity ring buffer of (timestamp, value) pairs in 8 bytes per sample.

Python floats in a list cost 8 bytes of pointer plus a 24-byte object each.
Here timestamps are whole seconds in an ``array('I')`` (unsigned 32-bit:
enough until 2106) and values are ``array('f')`` (float32, 7 significant
digits — plenty for percentages, rates and byte counts at analysis
precision). The exact latest value is kept as a Python float beside the
arrays for exporters and alerts. The arrays grow until they reach the
capacity, then wrap around, overwriting the oldest sample.
"""

from __future__ import annotations

from array import array
from typing import Iterator, List, Optional, Tuple

Point = Tuple[float, float]


class RingBuffer:
    __slots__ = ("_head", "_ts", "_vals", "capacity", "last_ts", "last_value", "total")

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        self.capacity = capacity
        self._ts = array("I")
        self._vals = array("f")
        self._head = 0  # index of the oldest sample once full
        #: number of samples ever appended (analyzers use it as a cursor)
        self.total = 0
        self.last_ts: float = 0.0
        self.last_value: float = float("nan")

    def __len__(self) -> int:
        return len(self._ts)

    def append(self, ts: float, value: float) -> None:
        t = int(ts) if ts > 0 else 0
        if len(self._ts) < self.capacity:
            self._ts.append(t)
            self._vals.append(value)
        else:
            self._ts[self._head] = t
            self._vals[self._head] = value
            self._head = (self._head + 1) % self.capacity
        self.total += 1
        self.last_ts = ts
        self.last_value = value

    def _index(self, i: int) -> int:
        """Physical index of the i-th oldest sample."""
        return (self._head + i) % len(self._ts) if self._head else i

    def __iter__(self) -> Iterator[Point]:
        n = len(self._ts)
        h = self._head
        ts, vals = self._ts, self._vals
        for i in range(h, n):
            yield float(ts[i]), vals[i]
        for i in range(h):
            yield float(ts[i]), vals[i]

    def latest(self) -> Optional[Point]:
        if not self._ts:
            return None
        return self.last_ts, self.last_value

    def last_n(self, n: int) -> List[Point]:
        """The newest ``n`` samples, oldest first."""
        size = len(self._ts)
        n = min(max(n, 0), size)
        return [
            (float(self._ts[j]), self._vals[j])
            for j in (self._index(i) for i in range(size - n, size))
        ]

    def since(self, t: float) -> List[Point]:
        """Samples with timestamp >= ``t``, oldest first (binary search: timestamps are ordered)."""
        size = len(self._ts)
        lo, hi = 0, size
        while lo < hi:
            mid = (lo + hi) // 2
            if self._ts[self._index(mid)] < t:
                lo = mid + 1
            else:
                hi = mid
        return self.last_n(size - lo)

    def new_since(self, seen_total: int) -> List[Point]:
        """Samples appended after the cursor ``seen_total`` (at most the whole buffer)."""
        return self.last_n(self.total - seen_total)

    def memory_bytes(self) -> int:
        return self._ts.buffer_info()[1] * self._ts.itemsize + self._vals.buffer_info()[1] * 4


__all__ = ["Point", "RingBuffer"]
