"""A fixed-capacity ring buffer of (timestamp, value) pairs, compressed by the hour.

Python floats in a list cost 8 bytes of pointer plus a 24-byte object each; a
day of 10-second samples for 300 series would take ~80 MB that way. Here:

- The newest samples (the *active block*, up to :data:`BLOCK` of them) sit in
  two arrays allocated once at full block size and reused (no reallocation
  churn to fragment the heap): timestamps as whole seconds in ``array('I')`` (unsigned 32-bit:
  enough until 2106) and values as ``array('f')`` (float32, 7 significant
  digits — plenty for percentages, rates and byte counts at analysis
  precision). Appending is an array append.
- A full active block is *sealed*: its timestamps become deltas (a regular
  series turns into a run of identical numbers) and the deltas and values are
  ``zlib``-compressed together into one ``bytes``. Idle NICs' error rates,
  constant totals and slowly moving gauges compress to almost nothing; noisy
  gauges still gain from the timestamps.
- The buffer keeps exactly the newest ``capacity`` samples: the oldest block
  is dropped once every sample in it is older than that, and until then its
  first ``_skip`` samples are hidden.

What the agent reads is recent — analyzers read what arrived since their last
look, SQLite the last minute, the exporter the latest value — so almost every
read touches only the active block; older blocks are decompressed on demand.
The exact latest value is kept as a Python float beside the arrays for
exporters and alerts.
"""

from __future__ import annotations

import bisect
import zlib
from array import array
from collections import deque
from itertools import accumulate
from typing import Deque, Iterator, List, NamedTuple, Optional, Tuple

Point = Tuple[float, float]

#: samples per compressed block: one hour at the default 10 s interval
BLOCK = 360
#: zlib level 1: nearly all of the gain of level 6 at a fraction of the cost
_LEVEL = 1
_MASK = 0xFFFFFFFF


class _Block(NamedTuple):
    first_ts: int
    last_ts: int
    n: int
    packed: bytes


def _pack(ts: array[int], vals: array[float]) -> _Block:
    deltas = array("I", ts)
    for i in range(len(deltas) - 1, 0, -1):
        deltas[i] = (ts[i] - ts[i - 1]) & _MASK  # modular: a clock step back still decodes
    packed = zlib.compress(deltas.tobytes() + vals.tobytes(), _LEVEL)
    return _Block(ts[0], ts[-1], len(ts), packed)


def _unpack(block: _Block) -> Tuple[List[int], array[float]]:
    raw = zlib.decompress(block.packed)
    split = 4 * block.n
    deltas = array("I")
    deltas.frombytes(raw[:split])
    vals = array("f")
    vals.frombytes(raw[split:])
    return [t & _MASK for t in accumulate(deltas)], vals


class RingBuffer:
    __slots__ = (
        "_blocks",
        "_blocks_n",
        "_n",
        "_skip",
        "_ts",
        "_vals",
        "block",
        "capacity",
        "last_ts",
        "last_value",
        "total",
    )

    def __init__(self, capacity: int, block: int = BLOCK) -> None:
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        self.capacity = capacity
        self.block = max(1, min(block, capacity))
        self._ts = array("I", bytes(4 * self.block))
        self._vals = array("f", bytes(4 * self.block))
        self._n = 0  # samples in the active block
        self._blocks: Deque[_Block] = deque()
        self._blocks_n = 0  # samples in sealed blocks, hidden ones included
        self._skip = 0  # hidden (expired) samples at the front of the oldest block
        #: number of samples ever appended (analyzers use it as a cursor)
        self.total = 0
        self.last_ts: float = 0.0
        self.last_value: float = float("nan")

    def __len__(self) -> int:
        return self._blocks_n - self._skip + self._n

    def append(self, ts: float, value: float) -> None:
        n = self._n
        self._ts[n] = int(ts) if ts > 0 else 0
        self._vals[n] = value
        n += 1
        if n == self.block:
            block = _pack(self._ts, self._vals)
            self._blocks.append(block)
            self._blocks_n += block.n
            n = 0
        self._n = n
        self.total += 1
        self.last_ts = ts
        self.last_value = value
        excess = len(self) - self.capacity
        if excess > 0:
            self._skip += excess
            while self._blocks and self._skip >= self._blocks[0].n:
                gone = self._blocks.popleft()
                self._skip -= gone.n
                self._blocks_n -= gone.n

    def __iter__(self) -> Iterator[Point]:
        return iter(self.last_n(len(self)))

    def latest(self) -> Optional[Point]:
        if not len(self):
            return None
        return self.last_ts, self.last_value

    def last_n(self, n: int) -> List[Point]:
        """The newest ``n`` samples, oldest first."""
        n = min(max(n, 0), len(self))
        if n == 0:
            return []
        ts, vals, active = self._ts, self._vals, self._n
        take = min(n, active)
        parts = [list(zip(map(float, ts[active - take : active]), vals[active - take : active]))]
        left = n - take
        oldest = self._blocks[0] if self._blocks else None
        for block in reversed(self._blocks):
            if left <= 0:
                break
            usable = block.n - (self._skip if block is oldest else 0)
            k = min(left, usable)
            bts, bvals = _unpack(block)
            parts.append(list(zip(map(float, bts[block.n - k :]), bvals[block.n - k :])))
            left -= k
        if len(parts) == 1:
            return parts[0]
        out: List[Point] = []
        for part in reversed(parts):
            out.extend(part)
        return out

    def since(self, t: float) -> List[Point]:
        """Samples with timestamp >= ``t``, oldest first (timestamps are in order)."""
        return self.last_n(self._count_since(t))

    def _count_since(self, t: float) -> int:
        active = self._n
        count = active - bisect.bisect_left(self._ts, t, 0, active)
        if count < active:
            return count
        oldest = self._blocks[0] if self._blocks else None
        for block in reversed(self._blocks):
            hidden = self._skip if block is oldest else 0
            if block.first_ts >= t:
                count += block.n - hidden
                continue
            if block.last_ts >= t:
                bts, _ = _unpack(block)
                count += min(block.n - bisect.bisect_left(bts, t), block.n - hidden)
            break
        return count

    def new_since(self, seen_total: int) -> List[Point]:
        """Samples appended after the cursor ``seen_total`` (at most the whole buffer)."""
        return self.last_n(self.total - seen_total)

    def memory_bytes(self) -> int:
        """Bytes held by the samples: the active arrays plus the compressed blocks."""
        return 8 * self.block + sum(len(b.packed) for b in self._blocks)
