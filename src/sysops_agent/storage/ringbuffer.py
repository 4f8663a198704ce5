"""A fixed-capacity ring buffer of (timestamp, value) pairs, compressed by the hour.

Python floats in a list cost 8 bytes of pointer plus a 24-byte object each; a
day of 10-second samples for 300 series would take ~80 MB that way. Here:

- The newest samples (the *active block*, up to :data:`BLOCK` of them) sit in
  arrays that grow as samples arrive and start afresh after each seal (on
  average half full: preallocating a whole block would cost a series 1.4 KiB
  more): values as ``array('f')`` (float32, 7 significant digits — plenty
  for percentages, rates and byte counts at analysis precision) and, only
  once they stop being at a regular interval, timestamps as whole seconds in
  ``array('I')`` (unsigned 32-bit: enough until 2106); until then they are
  (first timestamp, interval). Appending is an array append.
- A full active block is *sealed* into one ``bytes`` (:mod:`.codec`): a
  small header, the timestamps only when they are not at a regular interval,
  and the values in whichever exact codec makes the block smallest (float32
  words transformed and deflated; for a buffer that knows its unit's
  *resolution* — the store gives it and rounds every sample to it — whole
  numbers of steps, deflated or packed as the digits of one number). A
  value reads back bit for bit as the float32 it was stored as.
- A block of one value at a regular interval is its header and 8 bytes, and
  extends the previous block when that is the same constant: an idle
  device's series holds one small block, not 24. While the open block is
  such a run, it is kept as (first timestamp, interval, value), no arrays.
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
import math
from array import array
from typing import Iterator, List, Optional, Sequence, Tuple

from sysops_agent.storage.codec import constant_block, count, header, merged, pack, unpack

Point = Tuple[float, float]

#: samples per compressed block: one hour at the default 10 s interval
BLOCK = 360


class RingBuffer:
    __slots__ = (
        "_blocks",
        "_blocks_n",
        "_n",
        "_regular",
        "_run",
        "_run_first",
        "_run_step",
        "_run_value",
        "_seal_at",
        "_sealed_bytes",
        "_skip",
        "_ts",
        "_vals",
        "block",
        "capacity",
        "last_ts",
        "last_value",
        "resolution",
        "total",
    )

    def __init__(
        self,
        capacity: int,
        block: int = BLOCK,
        resolution: Optional[float] = None,
        first_block: int = 0,
    ) -> None:
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        self.capacity = capacity
        #: the unit's resolution (None: unknown): lets sealed blocks hold whole steps of it
        self.resolution = resolution
        self.block = max(1, min(block, capacity))
        self._ts = array("I")
        self._vals = array("f")
        self._n = 0  # samples in the active block
        #: while the active block's timestamps are at a regular interval (a
        #: collector's always are), they are (first timestamp, interval): ``_ts``
        #: stays empty, the open hour costs 4 bytes a sample, not 8
        self._regular = False
        self._run_first = 0
        self._run_step = -1  # -1: one sample so far, no interval yet
        #: while the active block is one value (an idle device's rate), it is
        #: ``_run_value`` and ``_vals`` stays empty: with regular timestamps, most
        #: series of a big host cost no open hour at all
        self._run = False
        self._run_value = 0.0
        #: the active block is sealed at this many samples: ``first_block`` (when
        #: given) the first time, then ``block``. The store gives its series
        #: different first blocks so that they do not all hold a full open hour at
        #: the same moment (series started together would seal together: the
        #: RSS would be set by that peak, 4-8 bytes x a whole block per series)
        self._seal_at = max(1, min(first_block, self.block)) if first_block else self.block
        self._blocks: List[bytes] = []  # sealed blocks, oldest first (about 24)
        self._blocks_n = 0  # samples in sealed blocks, hidden ones included
        self._sealed_bytes = 0  # their bytes (the self-metrics read it every 10 s)
        self._skip = 0  # hidden (expired) samples at the front of the oldest block
        #: number of samples ever appended (analyzers use it as a cursor)
        self.total = 0
        self.last_ts: float = 0.0
        self.last_value: float = float("nan")

    def __len__(self) -> int:
        return self._blocks_n - self._skip + self._n

    def append(self, ts: float, value: float) -> None:
        t = int(ts) if ts > 0 else 0
        n = self._n
        if n == 0:
            self._run = self._regular = True
            self._run_first, self._run_step, self._run_value = t, -1, value
        else:
            # (the common cases inline: this is the hot path)
            if (
                self._regular
                and (self._run_step < 0 or t - self._run_first != n * self._run_step)
                and not self._continues_interval(t, n)
            ):
                self._ts = array("I", self._run_ts(n))
                self._regular = False
            if not self._regular:
                self._ts.append(t)
            if self._run and (
                value != self._run_value or (value == 0.0 and not self._same_value(value))
            ):
                self._vals = array("f", [self._run_value]) * n
                self._run = False
            if not self._run:
                self._vals.append(value)
        n += 1
        if n == self._seal_at:
            self._seal_at = self.block
            block = self._sealed(n)
            blocks = self._blocks
            hidden = self._skip if len(blocks) == 1 else 0
            extended = merged(blocks[-1], block, hidden) if blocks else None
            if extended is None:
                blocks.append(block)
                self._sealed_bytes += len(block)
            else:
                self._sealed_bytes += len(extended) - len(blocks[-1])
                blocks[-1] = extended
                self._skip -= hidden
                self._blocks_n -= hidden
            self._blocks_n += n
            if not self._regular:
                self._ts = array("I")
            if not self._run:
                self._vals = array("f")
            self._run = self._regular = False
            n = 0
        self._n = n
        self.total += 1
        self.last_ts = ts
        self.last_value = value
        excess = len(self) - self.capacity
        if excess > 0:
            self._skip += excess
            while self._blocks and self._skip >= count(self._blocks[0]):
                oldest = self._blocks.pop(0)
                self._sealed_bytes -= len(oldest)
                gone = count(oldest)
                self._skip -= gone
                self._blocks_n -= gone

    def _continues_interval(self, t: int, n: int) -> bool:
        """Whether ``t``, the time of sample ``n``, continues the active block's interval."""
        step = self._run_step
        if step < 0:  # the second sample sets the interval
            step = t - self._run_first
            if step < 0:
                return False
            self._run_step = step
            return True
        return t - self._run_first == n * step

    def _same_value(self, value: float) -> bool:
        """Whether ``value`` continues the active block's run of one value."""
        run_value = self._run_value
        if value != run_value:
            return False
        # -0.0 is not 0.0: blocks keep bit patterns
        return value != 0.0 or math.copysign(1.0, value) == math.copysign(1.0, run_value)

    def _run_ts(self, n: int) -> Sequence[int]:
        """The first ``n`` timestamps of the active block while regular (a range, not a list)."""
        first, step = self._run_first, self._run_step
        if step > 0:
            return range(first, first + n * step, step)
        return [first] * n

    def _sealed(self, n: int) -> bytes:
        """The active block's ``n`` samples as a sealed block."""
        if self._run and self._regular:  # a constant block, as pack() would make it
            return constant_block(self._run_first, max(self._run_step, 0), n, self._run_value)
        ts = array("I", self._run_ts(n)) if self._regular else self._ts
        vals = array("f", [self._run_value]) * n if self._run else self._vals
        return pack(ts, vals, self.resolution)

    def _active(self, take: int) -> List[Point]:
        """The newest ``take`` samples of the active block."""
        active = self._n
        if take == 1:  # the newest sample alone (one new point per series per pass)
            last = active - 1
            if not self._regular:
                t = self._ts[last]
            elif self._run_step > 0:
                t = self._run_first + last * self._run_step
            else:
                t = self._run_first
            value = array("f", [self._run_value])[0] if self._run else self._vals[last]
            return [(float(t), value)]
        lo = active - take
        ts: Sequence[int] = self._run_ts(active)[lo:] if self._regular else self._ts[lo:active]
        if self._run:
            value = array("f", [self._run_value])[0]
            return [(float(t), value) for t in ts]
        return list(zip(map(float, ts), self._vals[lo:active]))

    def __iter__(self) -> Iterator[Point]:
        return iter(self.last_n(len(self)))

    def latest(self) -> Optional[Point]:
        if not len(self):
            return None
        return self.last_ts, self.last_value

    def last_n(self, n: int) -> List[Point]:
        """The newest ``n`` samples, oldest first."""
        if 0 < n <= self._n:  # the common case (an analyzer's new samples): the open block
            return self._active(n)
        n = min(max(n, 0), len(self))
        if n == 0:
            return []
        take = min(n, self._n)
        parts = [self._active(take)]
        left = n - take
        for i in range(len(self._blocks) - 1, -1, -1):
            if left <= 0:
                break
            block = self._blocks[i]
            bn = count(block)
            k = min(left, bn - (self._skip if i == 0 else 0))
            bts, bvals = unpack(block, self.resolution)
            parts.append(list(zip(map(float, bts[bn - k :]), bvals[bn - k :])))
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
        ts: Sequence[int] = self._run_ts(active) if self._regular else self._ts
        count = active - bisect.bisect_left(ts, t, 0, active)
        if count < active:
            return count
        for i in range(len(self._blocks) - 1, -1, -1):
            block = self._blocks[i]
            first_ts, last_ts, bn, _ = header(block)
            hidden = self._skip if i == 0 else 0
            if first_ts >= t:
                count += bn - hidden
                continue
            if last_ts >= t:
                bts, _ = unpack(block, self.resolution)
                count += min(bn - bisect.bisect_left(bts, t), bn - hidden)
            break
        return count

    def new_since(self, seen_total: int) -> List[Point]:
        """Samples appended after the cursor ``seen_total`` (at most the whole buffer)."""
        return self.last_n(self.total - seen_total)

    def memory_bytes(self) -> int:
        """Bytes held by the samples: the active arrays plus the compressed blocks."""
        return 4 * (len(self._ts) + len(self._vals)) + self.sealed_bytes()

    def sealed_bytes(self) -> int:
        """Bytes held by the sealed blocks (their ``_blocks_n`` samples, hidden ones included)."""
        return self._sealed_bytes
