"""A fixed-capacity ring buffer of (timestamp, value) pairs, compressed by the hour.

Python floats in a list cost 8 bytes of pointer plus a 24-byte object each; a
day of 10-second samples for 300 series would take ~80 MB that way. Here:

- The newest samples (the *active block*, up to :data:`BLOCK` of them) sit in
  two arrays that grow as samples arrive and start afresh after each seal
  (on average half full: preallocating a whole block would cost a series
  1.4 KiB more): timestamps as whole seconds in ``array('I')`` (unsigned
  32-bit: enough until 2106) and values as ``array('f')`` (float32, 7
  significant digits — plenty for percentages, rates and byte counts at
  analysis precision). Appending is an array append.
- A full active block is *sealed* into one ``bytes``: a small header (first
  and last timestamp, count, codec) and a ``zlib`` stream (level 1) of the
  timestamp deltas (a regular series turns into a run of identical numbers)
  and the values. The values go in as the 32-bit patterns of the floats,
  transformed by whichever of five codecs gives the smallest block: as they
  are, byte-shuffled (all first bytes, then all second bytes, ... — the
  sign/exponent bytes of a gauge barely change and compress to nothing), or
  their first, second or third differences (FLAC's fixed predictors: a trend,
  a curve, a smooth wave), zigzagged and shuffled. A buffer that knows its
  unit's *resolution* (the store gives it; the store rounds every sample to
  it) stores each value as a whole number of resolution steps instead
  (37.42 % is 3,742), divided by their greatest common divisor, as it is or
  as its 1st, 2nd or 3rd differences, zigzagged and byte-shuffled as 64-bit
  words, or as the digits of one number (noise); these apply only when every
  value of the block is exactly ``float32(steps * resolution)``, and the
  float32 codecs are then not tried (they would see the same values plus
  noise bits).
  All codecs are exact: a value reads back bit for bit as the float32 it was
  stored as. Idle NICs' error rates and constant totals cost almost nothing; a
  smooth gauge under a byte a sample; white noise ~3.7 bytes unrounded, near
  the entropy of its steps once rounded (uniform 0-100 % at 0.01: log2(10,001)
  bits, 1.66 bytes; stored in 1.85).
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

Size: the codecs (five float codecs, the step codecs, constant blocks) and the
ring that picks among them per block are one format; splitting them would
split the block header's definition from its readers.
"""

from __future__ import annotations

import bisect
import math
import struct
import zlib
from array import array
from itertools import accumulate
from typing import Iterator, List, Optional, Sequence, Tuple

Point = Tuple[float, float]

#: samples per compressed block: one hour at the default 10 s interval
BLOCK = 360
#: zlib level 1: nearly all of the gain of level 6 at a fraction of the cost
_LEVEL = 1
_MASK = 0xFFFFFFFF


#: a sealed block's header: first timestamp, last timestamp, sample count, value codec
_HEADER = struct.Struct("<IIHB")
#: value codecs: the float32 bit patterns as they are, byte-shuffled, or their
#: 1st, 2nd or 3rd differences (zigzagged, then byte-shuffled); then the
#: values as whole resolution steps (64-bit), as they are or their 1st, 2nd or
#: 3rd differences (zigzagged, byte-shuffled), or as one number in base
#: (largest - smallest + 1) (white noise: no byte-wise coder gets that close to
#: its entropy in a block this short)
_RAW, _SHUFFLED, _DELTA1, _DELTA2, _DELTA3, _STEPS0, _STEPS1, _STEPS2, _STEPS3, _PACKED = range(10)
#: one value at a regular interval (an idle device's rates, a total that did not
#: move: most series of a big host): the value's float32 word and the interval,
#: no zlib stream (whose own framing would cost more than the data)
_CONSTANT = 10
_CONSTANT_BODY = struct.Struct("<II")
#: a packed block's body starts with the smallest step count and the base
_PACKED_HEAD = struct.Struct("<qQ")
#: the body of every step codec starts with the steps' greatest common divisor: a
#: byte count above 2**24 is a multiple of 2**k steps once float32 rounded it
_SCALE = struct.Struct("<Q")
#: the largest step count the integer codecs take: their 3rd differences stay within 64 bits
_MAX_STEPS = 2**59


def _diff(words: array[int]) -> array[int]:
    """Differences from the previous word, modulo 2**32 (the first word stays)."""
    out = array("I", words)
    for i in range(len(out) - 1, 0, -1):
        out[i] = (words[i] - words[i - 1]) & _MASK
    return out


def _undiff(words: array[int]) -> array[int]:
    return array("I", [w & _MASK for w in accumulate(words)])


def _zigzag(words: array[int]) -> array[int]:
    """Signed 32-bit values to unsigned, small magnitudes to small numbers (-1 -> 1, 1 -> 2)."""
    return array("I", [((w << 1) ^ (0xFFFFFFFF if w & 0x80000000 else 0)) & _MASK for w in words])


def _unzigzag(words: array[int]) -> array[int]:
    return array("I", [((w >> 1) ^ -(w & 1)) & _MASK for w in words])


def _shuffle(raw: bytes) -> bytes:
    """Byte planes of 32-bit words: every word's byte 0, then every byte 1, ..."""
    return raw[0::4] + raw[1::4] + raw[2::4] + raw[3::4]


def _unshuffle(planes: bytes) -> bytes:
    n = len(planes) // 4
    out = bytearray(len(planes))
    for k in range(4):
        out[k::4] = planes[k * n : (k + 1) * n]
    return bytes(out)


def _steps(vals: array[float], resolution: float) -> Optional[List[int]]:
    """``vals`` as whole numbers of ``resolution``, or None unless every one reads back bit for bit."""
    steps = [round(v / resolution) for v in vals]
    if any(abs(q) >= _MAX_STEPS for q in steps):
        return None
    if array("f", [q * resolution for q in steps]).tobytes() != vals.tobytes():
        return None
    return steps


def _int_diff(values: List[int]) -> List[int]:
    return values[:1] + [b - a for a, b in zip(values, values[1:])]


def _shuffle64(values: List[int]) -> bytes:
    """Signed integers zigzagged (-1 -> 1, 1 -> 2) into 64-bit words, then their 8 byte planes."""
    raw = array("Q", [(v << 1) if v >= 0 else ((-v << 1) - 1) for v in values]).tobytes()
    return b"".join(raw[k::8] for k in range(8))


def _unshuffle64(planes: bytes) -> List[int]:
    n = len(planes) // 8
    raw = bytearray(len(planes))
    for k in range(8):
        raw[k::8] = planes[k * n : (k + 1) * n]
    return [(w >> 1) if not w & 1 else -((w + 1) >> 1) for w in array("Q", bytes(raw))]


def _pack_digits(steps: List[int]) -> bytes:
    """The step counts as the digits of one number in base (largest - smallest + 1), newest first.

    ``ceil(n * log2(base) / 8)`` bytes: the entropy of uniform noise over the range.
    """
    lo = min(steps)
    base = max(steps) - lo + 1
    number = 0
    for q in reversed(steps):
        number = number * base + (q - lo)
    size = (number.bit_length() + 7) // 8
    return _PACKED_HEAD.pack(lo, base) + number.to_bytes(size, "little")


def _unpack_digits(body: bytes, n: int) -> List[int]:
    lo, base = _PACKED_HEAD.unpack_from(body)
    number = int.from_bytes(body[_PACKED_HEAD.size :], "little")
    out: List[int] = []
    for _ in range(n):
        number, digit = divmod(number, base)
        out.append(lo + digit)
    return out


def _pack(ts: array[int], vals: array[float], resolution: Optional[float] = None) -> bytes:
    """One sealed block, its values in whichever codec compresses them best.

    Differences of order k are the fixed polynomial predictors of FLAC: order
    1 wins on a trend, 2 on a curve, 3 on a smooth wave; plain or shuffled
    words win on noise, which differencing only amplifies. Whole resolution
    steps beat float32 bit patterns whenever the values were rounded to the
    resolution (their low mantissa bits are then no longer noise but a
    pattern only the step count removes).
    """
    n = len(ts)
    if n > 1:
        step = ts[1] - ts[0]
        if step >= 0 and ts[-1] - ts[0] == step * (n - 1):
            words = array("I", vals.tobytes())  # bit patterns: -0.0 is not 0.0
            if words.count(words[0]) == n and all(b - a == step for a, b in zip(ts, ts[1:])):
                body = _CONSTANT_BODY.pack(words[0], step)
                return _HEADER.pack(ts[0], ts[-1], n, _CONSTANT) + body
    deltas = _shuffle(_diff(ts).tobytes())
    steps = _steps(vals, resolution) if resolution else None
    candidates: List[Tuple[int, bytes]] = []
    packed_digits: List[Tuple[int, bytes]] = []
    if steps is not None:
        # whole steps: the float32 codecs would only see the same values plus noise bits
        scale = math.gcd(*steps) or 1
        if scale > 1:
            steps = [q // scale for q in steps]
        head = _SCALE.pack(scale)
        if max(steps) - min(steps) < 2**63:
            # the digits are incompressible: after the timestamps' zlib stream, as they are
            digits = head + _pack_digits(steps)
            packed_digits.append((_PACKED, zlib.compress(deltas, _LEVEL) + digits))
        for codec in (_STEPS0, _STEPS1, _STEPS2, _STEPS3):
            candidates.append((codec, head + _shuffle64(steps)))
            steps = _int_diff(steps)
    else:
        words = array("I", vals.tobytes())
        d1 = _diff(words)
        d2 = _diff(d1)
        candidates += [
            (_RAW, words.tobytes()),
            (_SHUFFLED, _shuffle(words.tobytes())),
            (_DELTA1, _shuffle(_zigzag(d1).tobytes())),
            (_DELTA2, _shuffle(_zigzag(d2).tobytes())),
            (_DELTA3, _shuffle(_zigzag(_diff(d2)).tobytes())),
        ]
    compressed = [(c, zlib.compress(deltas + body, _LEVEL)) for c, body in candidates]
    codec, packed = min(compressed + packed_digits, key=lambda cp: len(cp[1]))
    return _HEADER.pack(ts[0], ts[-1], n, codec) + packed


def _merged(prev: bytes, new: bytes, hidden: int) -> Optional[bytes]:
    """``prev`` extended by ``new`` when both are the same constant at the same interval,
    continuing each other (an idle series then holds one block, not one an hour);
    ``hidden`` samples at the front of ``prev`` are dropped on the way."""
    first, last, count, codec = _header(prev)
    new_first, new_last, new_count, new_codec = _header(new)
    if codec != _CONSTANT or new_codec != _CONSTANT or prev[_HEADER.size :] != new[_HEADER.size :]:
        return None
    step = _CONSTANT_BODY.unpack_from(new, _HEADER.size)[1]
    total = count - hidden + new_count
    if new_first - last != step or total > 0xFFFF:
        return None
    return _HEADER.pack(first + hidden * step, new_last, total, _CONSTANT) + new[_HEADER.size :]


def _header(block: bytes) -> Tuple[int, int, int, int]:
    first, last, n, codec = _HEADER.unpack_from(block)
    return first, last, n, codec


def _count(block: bytes) -> int:
    return _header(block)[2]


def _unpack(block: bytes, resolution: Optional[float] = None) -> Tuple[List[int], array[float]]:
    first, _, n, codec = _header(block)
    if codec == _CONSTANT:
        word, step = _CONSTANT_BODY.unpack_from(block, _HEADER.size)
        value = array("f", array("I", [word]).tobytes())
        return [first + i * step for i in range(n)], value * n
    stream = zlib.decompressobj()
    raw = stream.decompress(block[_HEADER.size :])
    if codec == _PACKED:  # the digits follow the zlib stream
        raw += stream.unused_data
    split = 4 * n
    deltas = array("I", _unshuffle(raw[:split]))
    timestamps = [t & _MASK for t in accumulate(deltas)]
    body = raw[split:]
    if codec >= _STEPS0:
        if not resolution:
            raise ValueError("a block of resolution steps needs the resolution")
        scale = _SCALE.unpack_from(body)[0]
        body = body[_SCALE.size :]
        if codec == _PACKED:
            steps = _unpack_digits(body, n)
        else:
            steps = _unshuffle64(body)
            for _ in range(codec - _STEPS0):
                steps = list(accumulate(steps))
        return timestamps, array("f", [(q * scale) * resolution for q in steps])
    if codec != _RAW:
        body = _unshuffle(body)
    words = array("I", body)
    if codec >= _DELTA1:
        words = _unzigzag(words)
        for _ in range(codec - _SHUFFLED):  # 1, 2 or 3 times
            words = _undiff(words)
    return timestamps, array("f", words.tobytes())


class RingBuffer:
    __slots__ = (
        "_blocks",
        "_blocks_n",
        "_n",
        "_run",
        "_run_first",
        "_run_step",
        "_run_value",
        "_seal_at",
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
        #: while the active block is one value at a regular interval (an idle
        #: device's rate), it is kept as (first timestamp, interval, value) and
        #: the arrays stay empty: most series of a big host cost no open hour
        self._run = False
        self._run_first = 0
        self._run_step = -1  # -1: one sample so far, no interval yet
        self._run_value = 0.0
        #: the active block is sealed at this many samples: ``first_block`` (when
        #: given) the first time, then ``block``. The store gives its series
        #: different first blocks so that they do not all hold a full open hour at
        #: the same moment (series started together would seal together: the
        #: RSS would be set by that peak, 8 bytes x a whole block per series)
        self._seal_at = max(1, min(first_block, self.block)) if first_block else self.block
        self._blocks: List[bytes] = []  # sealed blocks, oldest first (about 24)
        self._blocks_n = 0  # samples in sealed blocks, hidden ones included
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
            self._run = True
            self._run_first, self._run_step, self._run_value = t, -1, value
        elif not (self._run and self._continues_run(t, value, n)):
            if self._run:
                self._materialize(n)
            self._ts.append(t)
            self._vals.append(value)
        n += 1
        if n == self._seal_at:
            self._seal_at = self.block
            block = (
                self._run_block(n) if self._run else _pack(self._ts, self._vals, self.resolution)
            )
            blocks = self._blocks
            hidden = self._skip if len(blocks) == 1 else 0
            merged = _merged(blocks[-1], block, hidden) if blocks else None
            if merged is None:
                blocks.append(block)
            else:
                blocks[-1] = merged
                self._skip -= hidden
                self._blocks_n -= hidden
            self._blocks_n += n
            if not self._run:
                self._ts = array("I")
                self._vals = array("f")
            self._run = False
            n = 0
        self._n = n
        self.total += 1
        self.last_ts = ts
        self.last_value = value
        excess = len(self) - self.capacity
        if excess > 0:
            self._skip += excess
            while self._blocks and self._skip >= _count(self._blocks[0]):
                gone = _count(self._blocks.pop(0))
                self._skip -= gone
                self._blocks_n -= gone

    def _continues_run(self, t: int, value: float, n: int) -> bool:
        """Whether sample ``n`` (``t``, ``value``) continues the active block's run."""
        run_value = self._run_value
        if value != run_value or (
            value == 0.0 and math.copysign(1.0, value) != math.copysign(1.0, run_value)
        ):
            return False  # (-0.0 is not 0.0: blocks keep bit patterns)
        step = self._run_step
        if step < 0:  # the second sample sets the interval
            step = t - self._run_first
            if step < 0:
                return False
            self._run_step = step
            return True
        return t - self._run_first == n * step

    def _run_ts(self) -> Sequence[int]:
        """The timestamps of the active block's run (a range: nothing allocated per sample)."""
        first, step, n = self._run_first, self._run_step, self._n
        if step > 0:
            return range(first, first + n * step, step)
        return [first] * n

    def _materialize(self, n: int) -> None:
        """The run's ``n`` samples into the arrays: the block stopped being one value."""
        self._ts = array("I", self._run_ts()[:n])
        self._vals = array("f", [self._run_value]) * n
        self._run = False

    def _run_block(self, n: int) -> bytes:
        """The active run sealed: a constant block, as :func:`_pack` would make it."""
        first, step = self._run_first, max(self._run_step, 0)
        word = array("I", array("f", [self._run_value]).tobytes())[0]
        body = _CONSTANT_BODY.pack(word, step)
        return _HEADER.pack(first, first + (n - 1) * step, n, _CONSTANT) + body

    def _active(self, take: int) -> List[Point]:
        """The newest ``take`` samples of the active block."""
        active = self._n
        if self._run:
            value = array("f", [self._run_value])[0]
            return [(float(t), value) for t in self._run_ts()[active - take : active]]
        lo = active - take
        return list(zip(map(float, self._ts[lo:active]), self._vals[lo:active]))

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
        take = min(n, self._n)
        parts = [self._active(take)]
        left = n - take
        for i in range(len(self._blocks) - 1, -1, -1):
            if left <= 0:
                break
            block = self._blocks[i]
            bn = _count(block)
            k = min(left, bn - (self._skip if i == 0 else 0))
            bts, bvals = _unpack(block, self.resolution)
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
        ts: Sequence[int] = self._run_ts() if self._run else self._ts
        count = active - bisect.bisect_left(ts, t, 0, active)
        if count < active:
            return count
        for i in range(len(self._blocks) - 1, -1, -1):
            block = self._blocks[i]
            first_ts, last_ts, bn, _ = _header(block)
            hidden = self._skip if i == 0 else 0
            if first_ts >= t:
                count += bn - hidden
                continue
            if last_ts >= t:
                bts, _ = _unpack(block, self.resolution)
                count += min(bn - bisect.bisect_left(bts, t), bn - hidden)
            break
        return count

    def new_since(self, seen_total: int) -> List[Point]:
        """Samples appended after the cursor ``seen_total`` (at most the whole buffer)."""
        return self.last_n(self.total - seen_total)

    def memory_bytes(self) -> int:
        """Bytes held by the samples: the active arrays plus the compressed blocks."""
        return 8 * len(self._ts) + sum(len(b) for b in self._blocks)
