"""Rolling-window statistics in fixed memory, O(1) (amortised) per sample."""

from __future__ import annotations

import math
from array import array


class RollingExtremes:
    """Approximate minimum and maximum over the last ``window_secs``, in fixed memory.

    Time is cut into :data:`BLOCKS` blocks of ``window_secs / BLOCKS``; each
    closed block keeps its max, min and end time (one ``array('d')`` of
    ``3 * BLOCKS``: slot ``i`` at ``3i``, ``3i+1``, ``3i+2``). A sample
    updates the open block (O(1)); closing a block recomputes the extremes of
    the closed blocks still inside the window (O(BLOCKS), once per block:
    amortised O(1)). The window is thus exact to within one block — plenty
    for "the highest value in the last N days". Time-based, so it means the
    same at a 10 s and at a 5 min sampling interval.
    """

    BLOCKS = 16

    __slots__ = (
        "_blocks",
        "_slot",
        "block_secs",
        "cur_hi",
        "cur_lo",
        "cur_start",
        "hi",
        "lo",
        "window_secs",
    )

    def __init__(self, window_secs: float) -> None:
        self.window_secs = window_secs
        self.block_secs = window_secs / self.BLOCKS
        self._blocks = array("d", (-math.inf, math.inf, -math.inf) * self.BLOCKS)
        self._slot = 0
        self.cur_start = -math.inf
        self.cur_hi = -math.inf
        self.cur_lo = math.inf
        self.hi = -math.inf  # over the closed blocks inside the window
        self.lo = math.inf

    def push(self, ts: float, x: float) -> None:
        if ts - self.cur_start >= self.block_secs:
            self._close(ts)
        if x > self.cur_hi:
            self.cur_hi = x
        if x < self.cur_lo:
            self.cur_lo = x

    def _close(self, ts: float) -> None:
        blocks = self._blocks
        if self.cur_hi >= self.cur_lo:  # the open block saw samples
            i = 3 * self._slot
            blocks[i] = self.cur_hi
            blocks[i + 1] = self.cur_lo
            blocks[i + 2] = ts
            self._slot = (self._slot + 1) % self.BLOCKS
        self.cur_start = ts
        self.cur_hi, self.cur_lo = -math.inf, math.inf
        oldest = ts - self.window_secs
        hi, lo = -math.inf, math.inf
        for i in range(0, 3 * self.BLOCKS, 3):
            if blocks[i + 2] > oldest:
                hi = max(hi, blocks[i])
                lo = min(lo, blocks[i + 1])
        self.hi, self.lo = hi, lo

    def outside(self, x: float) -> bool:
        """True when ``x`` is above every value of the window or below every one."""
        return (x > self.hi and x > self.cur_hi) or (x < self.lo and x < self.cur_lo)


class RollingStats:
    """Mean and variance of the last ``size`` values, O(1) per update.

    The window is kept as float32, the precision the ring buffers store
    samples at (so nothing is lost for them: half the memory of doubles). A
    value is rounded to float32 before it enters the sums, so what leaves the
    window later is exactly what came in.
    """

    __slots__ = ("_buf", "_pos", "m2", "mean", "n", "replaced", "size")

    def __init__(self, size: int) -> None:
        self.size = size
        self._buf = array("f")
        self._pos = 0
        self.n = 0
        self.mean = 0.0
        self.m2 = 0.0
        self.replaced = 0

    def push(self, x: float) -> None:
        if self.n < self.size:
            self._buf.append(x)
            x = self._buf[-1]
            self.n += 1
            d = x - self.mean
            self.mean += d / self.n
            self.m2 += d * (x - self.mean)
            return
        old = self._buf[self._pos]
        self._buf[self._pos] = x
        x = self._buf[self._pos]
        self._pos = (self._pos + 1) % self.size
        old_mean = self.mean
        self.mean = old_mean + (x - old) / self.n
        self.m2 += (x - old) * (x - self.mean + old - old_mean)
        self.replaced += 1
        if self.replaced >= self.size:
            self._recompute()

    def _recompute(self) -> None:
        self.replaced = 0
        n = len(self._buf)
        mean = math.fsum(self._buf) / n
        self.mean = mean
        self.m2 = math.fsum((v - mean) * (v - mean) for v in self._buf)

    def std(self) -> float:
        if self.n < 2 or self.m2 <= 0.0:
            return 0.0
        return math.sqrt(self.m2 / (self.n - 1))


class RollingRegression:
    """Least-squares line through the samples of the last ``window_secs``, in fixed memory.

    Time is cut into :data:`BUCKETS` buckets of ``window_secs / BUCKETS``;
    each closed bucket keeps only its count and the sums of t, v, t², t·v and
    v² relative to its own first point (so the sums stay small and no
    subtraction of large nearly-equal numbers eats the precision), in one
    ``array('d')`` of ``8 * BUCKETS``. A sample updates the open bucket
    (O(1)); closing a bucket evicts the buckets whose newest point left the
    window and re-adds the others around a fresh origin (O(BUCKETS), once per
    bucket: amortised O(1)). The window thus holds between ``window_secs``
    and ``window_secs`` plus one bucket of samples — for a 6 h trend, 11
    minutes more — and its memory no longer grows with the sampling rate:
    the point arrays it replaced held 6 h of raw samples per series (173 KiB
    at a 2 s interval, growing for six hours after every start).
    """

    BUCKETS = 32
    #: slots per bucket: n, first t, last t, first v, st, sv, stt, stv, svv -> see _close
    _W = 9

    __slots__ = (
        "_buckets",
        "_slot",
        "bucket_secs",
        "c_first",
        "cn",
        "cst",
        "cstt",
        "cstv",
        "csv",
        "csvv",
        "ct0",
        "cv0",
        "last_t",
        "last_v",
        "n",
        "o_n",
        "o_st",
        "o_stt",
        "o_stv",
        "o_sv",
        "o_svv",
        "o_t0",
        "o_v0",
        "window_secs",
    )

    def __init__(self, window_secs: float) -> None:
        self.window_secs = window_secs
        self.bucket_secs = window_secs / self.BUCKETS
        self._buckets = array("d", bytes(8 * self._W * self.BUCKETS))
        self._slot = 0
        self.n = 0
        self.last_t = self.last_v = 0.0
        # the closed buckets inside the window, summed around (ct0, cv0)
        self.cn = 0
        self.ct0 = self.cv0 = 0.0
        self.cst = self.csv = self.cstt = self.cstv = self.csvv = 0.0
        self.c_first = 0.0
        # the open bucket, around its first point (o_t0, o_v0)
        self.o_n = 0
        self.o_t0 = self.o_v0 = 0.0
        self.o_st = self.o_sv = self.o_stt = self.o_stv = self.o_svv = 0.0

    def add(self, t: float, v: float) -> None:
        if self.o_n and t - self.o_t0 >= self.bucket_secs:
            self._close(t)
        if not self.o_n:
            self.o_t0, self.o_v0 = t, v
        x, y = t - self.o_t0, v - self.o_v0
        self.o_n += 1
        self.o_st += x
        self.o_sv += y
        self.o_stt += x * x
        self.o_stv += x * y
        self.o_svv += y * y
        self.n = self.cn + self.o_n
        self.last_t, self.last_v = t, v

    def _close(self, t: float) -> None:
        """File the open bucket, evict what left the window, re-sum the rest (O(BUCKETS))."""
        b, w = self._buckets, self._W
        i = w * self._slot
        b[i : i + w] = array(
            "d",
            (
                float(self.o_n),
                self.o_t0,
                self.last_t,
                self.o_v0,
                self.o_st,
                self.o_sv,
                self.o_stt,
                self.o_stv,
                self.o_svv,
            ),
        )
        self._slot = (self._slot + 1) % self.BUCKETS
        self.o_n = 0
        self.o_st = self.o_sv = self.o_stt = self.o_stv = self.o_svv = 0.0
        cutoff = t - self.window_secs
        kept: list[int] = []
        for j in range(0, w * self.BUCKETS, w):
            if b[j] and b[j + 2] < cutoff:
                b[j] = 0.0  # its newest point left the window
            elif b[j]:
                kept.append(j)
        self.cn = 0
        self.cst = self.csv = self.cstt = self.cstv = self.csvv = 0.0
        if not kept:
            return
        first = min(kept, key=lambda j: b[j + 1])
        t0, v0 = b[first + 1], b[first + 3]
        self.ct0, self.cv0, self.c_first = t0, v0, t0
        for j in kept:
            n = b[j]
            a, c = b[j + 1] - t0, b[j + 3] - v0  # this bucket's origin around the new one
            st, sv = b[j + 4], b[j + 5]
            self.cn += int(n)
            self.cst += st + n * a
            self.csv += sv + n * c
            self.cstt += b[j + 6] + 2.0 * a * st + n * a * a
            self.cstv += b[j + 7] + c * st + a * sv + n * a * c
            self.csvv += b[j + 8] + 2.0 * c * sv + n * c * c

    def _sums(self) -> tuple[float, float, float, float, float, float, float]:
        """(n, Σx, Σy, Σx², Σxy, Σy², x of the newest point) over the window, around one origin."""
        if not self.cn:
            return (
                float(self.o_n),
                self.o_st,
                self.o_sv,
                self.o_stt,
                self.o_stv,
                self.o_svv,
                self.last_t - self.o_t0,
            )
        n = float(self.o_n)
        a, c = self.o_t0 - self.ct0, self.o_v0 - self.cv0
        st, sv = self.o_st, self.o_sv
        return (
            self.cn + n,
            self.cst + st + n * a,
            self.csv + sv + n * c,
            self.cstt + self.o_stt + 2.0 * a * st + n * a * a,
            self.cstv + self.o_stv + c * st + a * sv + n * a * c,
            self.csvv + self.o_svv + 2.0 * c * sv + n * c * c,
            self.last_t - self.ct0,
        )

    @property
    def first_ts(self) -> float:
        if not self.n:
            return 0.0
        return self.c_first if self.cn else self.o_t0

    @property
    def last_ts(self) -> float:
        return self.last_t if self.n else 0.0

    def span(self) -> float:
        """Seconds between the oldest and newest point in the window."""
        return self.last_t - self.first_ts if self.n else 0.0

    def fit(self) -> tuple[float, float, float]:
        """(slope per second, value of the line at the newest point, R²); R² is 0 when undefined."""
        if self.n < 3:
            return 0.0, self.last_v if self.n else 0.0, 0.0
        n, st, sv, stt, stv, svv, x_last = self._sums()
        sxx = n * stt - st * st
        syy = n * svv - sv * sv
        sxy = n * stv - st * sv
        if sxx <= 1e-12 * max(1.0, stt * n):
            return 0.0, self.last_v, 0.0
        slope = sxy / sxx
        intercept = (sv - slope * st) / n
        origin_v = self.cv0 if self.cn else self.o_v0
        fitted = intercept + slope * x_last + origin_v
        # zero or rounding-level variance of the values: a flat line explains nothing
        if syy <= 1e-12 * max(1.0, svv * n):
            return slope, fitted, 0.0
        r2 = (sxy * sxy) / (sxx * syy)
        return slope, fitted, min(1.0, max(0.0, r2))
