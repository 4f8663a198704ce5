"""The sealed blocks of a ring buffer: one hour of (timestamp, value) pairs in one ``bytes``.

A block is a header (first and last timestamp, sample count, codec) and a
body. Timestamps at a regular interval (nearly every series: a collector's
interval) are not stored at all: the header's first, last and count give
them, and the codec byte says so (:data:`REGULAR`). Others are the deltas,
byte-shuffled, in a raw ``deflate`` stream (level 1: nearly all of the gain
of level 6 at a fraction of the cost; raw: no zlib header or checksum, 6
bytes a block).

The values go in by whichever codec gives the smallest block:

- **float32 codecs** (a series of unknown resolution): the 32-bit patterns
  as they are, byte-shuffled (all first bytes, then all second bytes, ...:
  the sign/exponent bytes of a gauge barely change and compress to nothing),
  or their first, second or third differences (FLAC's fixed predictors: a
  trend, a curve, a smooth wave), zigzagged and shuffled; deflated.
- **step codecs** (the buffer knows its unit's resolution, and every value of
  the block is exactly ``float32(steps * resolution)``: the store rounded
  them): the whole numbers of steps (37.42 % is 3,742 at 0.01), divided by
  their greatest common divisor, as they are or as their 1st, 2nd or 3rd
  differences, either zigzagged into byte-shuffled 64-bit words and deflated
  (wins where deflate finds repeats), or as the *digits of one number* in
  base (largest − smallest + 1) of that sequence (frame-of-reference packing
  with a fractional bit width: ``ceil(n · log2(base) / 8)`` bytes, the
  entropy of uniform noise over the range; no byte-wise coder gets that close
  in a block this short). The float32 codecs are then not tried: they would
  see the same values plus noise bits.
- **constant**: one value at a regular interval (an idle device's rates, a
  total that did not move: most series of a big host) is the header, the
  value's float32 word and the interval; no stream at all.

All codecs are exact: a value reads back bit for bit as the float32 it was
stored as. Costs per sample: constants almost nothing; a smooth gauge well
under a byte; white noise ~3.7 bytes unrounded, and within a few percent of
the entropy of its steps once rounded (see the README's Storage section).
"""

from __future__ import annotations

import math
import struct
import zlib
from array import array
from itertools import accumulate
from typing import List, Optional, Tuple

#: deflate level 1: nearly all of the gain of level 6 at a fraction of the cost
_LEVEL = 1
#: raw deflate (no zlib header, no Adler-32): the block's own header frames it
_WBITS = -15
_MASK = 0xFFFFFFFF

#: a sealed block's header: first timestamp, last timestamp, sample count, codec byte
_HEADER = struct.Struct("<IIHB")
#: value codecs, the low 7 bits of the codec byte. Float32 bit patterns as they
#: are, byte-shuffled, or their 1st, 2nd or 3rd differences (zigzagged, then
#: byte-shuffled); whole resolution steps (or their 1st, 2nd, 3rd differences)
#: as zigzagged, byte-shuffled 64-bit words; the same as the digits of one number
(_RAW, _SHUFFLED, _DELTA1, _DELTA2, _DELTA3) = range(5)
(_STEPS0, _STEPS1, _STEPS2, _STEPS3) = range(5, 9)
(_DIGITS0, _DIGITS1, _DIGITS2, _DIGITS3) = range(9, 13)
#: one value at a regular interval: the value's float32 word and the interval
_CONSTANT = 13
#: the codec byte's flag: the timestamps are first + i * (last - first) / (count - 1)
REGULAR = 0x80
_CONSTANT_BODY = struct.Struct("<II")
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


def _deflate(data: bytes) -> bytes:
    z = zlib.compressobj(_LEVEL, zlib.DEFLATED, _WBITS)
    return z.compress(data) + z.flush()


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


def _varint(value: int) -> bytes:
    """A signed integer zigzagged, then 7 bits a byte (LEB128): 0-63 in one byte."""
    v = (value << 1) if value >= 0 else ((-value << 1) - 1)
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def _read_varint(buf: bytes, pos: int) -> Tuple[int, int]:
    """The signed integer at ``buf[pos:]`` and the position after it."""
    v = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        v |= (b & 0x7F) << shift
        if b < 0x80:
            break
        shift += 7
    return ((v >> 1) if not v & 1 else -((v + 1) >> 1)), pos


def _digits_size(values: List[int], head: int) -> int:
    """The length of :func:`_pack_digits` ``(values, head)``, without building the number."""
    rest = values[head:]
    lo = min(rest)
    base = max(rest) - lo + 1
    bits = math.ceil(len(rest) * math.log2(base)) if base > 1 else 0
    heads = sum(len(_varint(v)) for v in values[:head])
    return heads + len(_varint(lo)) + len(_varint(base)) + (bits + 7) // 8


def _pack_digits(values: List[int], head: int) -> bytes:
    """``values[head:]`` as the digits of one number in base (largest - smallest + 1).

    The first ``head`` values (the warm-up of a k-th difference: the first
    value, the first 1st difference, ...) go before it as varints, then the
    smallest value and the base; the number is the rest of the block:
    ``ceil(n * log2(base) / 8)`` bytes, the entropy of uniform noise over the range.
    """
    rest = values[head:]
    lo = min(rest)
    base = max(rest) - lo + 1
    number = 0
    for q in reversed(rest):
        number = number * base + (q - lo)
    out = b"".join(_varint(v) for v in values[:head])
    size = (number.bit_length() + 7) // 8
    return out + _varint(lo) + _varint(base) + number.to_bytes(size, "little")


def _unpack_digits(body: bytes, pos: int, n: int, head: int) -> List[int]:
    out: List[int] = []
    for _ in range(head):
        v, pos = _read_varint(body, pos)
        out.append(v)
    lo, pos = _read_varint(body, pos)
    base, pos = _read_varint(body, pos)
    number = int.from_bytes(body[pos:], "little")
    for _ in range(n - head):
        number, digit = divmod(number, base)
        out.append(lo + digit)
    return out


def _regular_step(ts: array[int]) -> Optional[int]:
    """The interval of timestamps at a regular, non-negative interval (0 for one sample), else None."""
    n = len(ts)
    if n == 1:
        return 0
    step = ts[1] - ts[0]
    if step < 0 or ts[-1] - ts[0] != step * (n - 1):
        return None
    if any(b - a != step for a, b in zip(ts, ts[1:])):
        return None
    return step


def _step_candidates(steps: List[int], ts_part: bytes, regular: bool) -> List[Tuple[int, bytes]]:
    """Every step codec's body for ``steps`` (gcd-divided), the timestamps' part included."""
    scale = math.gcd(*steps) or 1
    if scale > 1:
        steps = [q // scale for q in steps]
    head = _varint(scale)
    # the digits are incompressible: after the timestamps' stream (if any), as they are
    ts_stream = b"" if regular else _deflate(ts_part)
    out: List[Tuple[int, bytes]] = []
    digits: List[Tuple[int, int, List[int]]] = []  # (size, order, sequence)
    for order in range(4):
        out.append((_STEPS0 + order, _deflate(ts_part + head + _shuffle64(steps))))
        if len(steps) > order:
            digits.append((_digits_size(steps, order), order, steps))
        steps = _int_diff(steps)
    if digits:  # only the smallest is built: its size is known beforehand
        _, order, sequence = min(digits, key=lambda d: d[0])
        out.append((_DIGITS0 + order, ts_stream + head + _pack_digits(sequence, order)))
    return out


def pack(ts: array[int], vals: array[float], resolution: Optional[float] = None) -> bytes:
    """One sealed block, its values in whichever codec makes it smallest.

    Differences of order k are the fixed polynomial predictors of FLAC: order
    1 wins on a trend, 2 on a curve, 3 on a smooth wave; plain or shuffled
    words win on noise, which differencing only amplifies. Whole resolution
    steps beat float32 bit patterns whenever the values were rounded to the
    resolution (their low mantissa bits are then no longer noise but a
    pattern only the step count removes).
    """
    n = len(ts)
    interval = _regular_step(ts)
    if n > 1 and interval is not None:
        words = array("I", vals.tobytes())  # bit patterns: -0.0 is not 0.0
        if words.count(words[0]) == n:
            body = _CONSTANT_BODY.pack(words[0], interval)
            return _HEADER.pack(ts[0], ts[-1], n, _CONSTANT) + body
    regular = interval is not None
    ts_part = b"" if regular else _shuffle(_diff(ts).tobytes())
    steps = _steps(vals, resolution) if resolution else None
    if steps is not None:
        candidates = _step_candidates(steps, ts_part, regular)
    else:
        words = array("I", vals.tobytes())
        d1 = _diff(words)
        d2 = _diff(d1)
        bodies = [
            (_RAW, words.tobytes()),
            (_SHUFFLED, _shuffle(words.tobytes())),
            (_DELTA1, _shuffle(_zigzag(d1).tobytes())),
            (_DELTA2, _shuffle(_zigzag(d2).tobytes())),
            (_DELTA3, _shuffle(_zigzag(_diff(d2)).tobytes())),
        ]
        candidates = [(c, _deflate(ts_part + body)) for c, body in bodies]
    codec, body = min(candidates, key=lambda cb: len(cb[1]))
    flag = REGULAR if regular else 0
    return _HEADER.pack(ts[0], ts[-1], n, codec | flag) + body


def merged(prev: bytes, new: bytes, hidden: int) -> Optional[bytes]:
    """``prev`` extended by ``new`` when both are the same constant at the same interval,
    continuing each other (an idle series then holds one block, not one an hour);
    ``hidden`` samples at the front of ``prev`` are dropped on the way."""
    first, last, count, codec = header(prev)
    new_first, new_last, new_count, new_codec = header(new)
    if codec != _CONSTANT or new_codec != _CONSTANT or prev[_HEADER.size :] != new[_HEADER.size :]:
        return None
    step = _CONSTANT_BODY.unpack_from(new, _HEADER.size)[1]
    total = count - hidden + new_count
    if new_first - last != step or total > 0xFFFF:
        return None
    return _HEADER.pack(first + hidden * step, new_last, total, _CONSTANT) + new[_HEADER.size :]


def constant_block(first: int, step: int, n: int, value: float) -> bytes:
    """A run of ``n`` samples of ``value`` from ``first`` every ``step`` s, sealed as :func:`pack` would."""
    word = array("I", array("f", [value]).tobytes())[0]
    body = _CONSTANT_BODY.pack(word, step)
    return _HEADER.pack(first, first + (n - 1) * step, n, _CONSTANT) + body


def header(block: bytes) -> Tuple[int, int, int, int]:
    """(first timestamp, last timestamp, count, codec) of a block (the codec without its flag)."""
    first, last, n, codec = _HEADER.unpack_from(block)
    return first, last, n, codec & ~REGULAR


def count(block: bytes) -> int:
    return int(_HEADER.unpack_from(block)[2])


def unpack(block: bytes, resolution: Optional[float] = None) -> Tuple[List[int], array[float]]:
    """The block's timestamps and values (float32, bit for bit as they were packed)."""
    first, last, n, byte = _HEADER.unpack_from(block)
    codec = byte & ~REGULAR
    if codec == _CONSTANT:
        word, step = _CONSTANT_BODY.unpack_from(block, _HEADER.size)
        value = array("f", array("I", [word]).tobytes())
        return [first + i * step for i in range(n)], value * n
    body = block[_HEADER.size :]
    if codec >= _DIGITS0 and not byte & REGULAR:  # the digits follow the timestamps' stream
        stream = zlib.decompressobj(_WBITS)
        timestamps = _timestamps(stream.decompress(body), n)
        body = stream.unused_data
    elif codec < _DIGITS0:
        body = zlib.decompress(body, _WBITS)
    if byte & REGULAR:
        step = (last - first) // (n - 1) if n > 1 else 0
        timestamps = list(range(first, first + n * step, step)) if step else [first] * n
    elif codec < _DIGITS0:
        timestamps = _timestamps(body, n)
        body = body[4 * n :]
    if codec >= _STEPS0:
        return timestamps, _step_values(codec, body, n, resolution)
    if codec != _RAW:
        body = _unshuffle(body)
    words = array("I", body)
    if codec >= _DELTA1:
        words = _unzigzag(words)
        for _ in range(codec - _SHUFFLED):  # 1, 2 or 3 times
            words = _undiff(words)
    return timestamps, array("f", words.tobytes())


def _timestamps(raw: bytes, n: int) -> List[int]:
    deltas = array("I", _unshuffle(raw[: 4 * n]))
    return [t & _MASK for t in accumulate(deltas)]


def _step_values(codec: int, body: bytes, n: int, resolution: Optional[float]) -> array[float]:
    if not resolution:
        raise ValueError("a block of resolution steps needs the resolution")
    scale, pos = _read_varint(body, 0)
    if codec >= _DIGITS0:
        order = codec - _DIGITS0
        steps = _unpack_digits(body, pos, n, order)
    else:
        order = codec - _STEPS0
        steps = _unshuffle64(body[pos:])
    for _ in range(order):
        steps = list(accumulate(steps))
    return array("f", [(q * scale) * resolution for q in steps])
