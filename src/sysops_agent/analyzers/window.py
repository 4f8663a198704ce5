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
    """Least-squares line through the samples of the last ``window_secs``, O(1) amortised.

    Keeps the points in two ``array('d')`` (evicted from the front, compacted
    when half the storage is dead) and the running sums of t, v, t², t·v and v²
    relative to an origin near the data (so the sums stay small and the
    subtraction of large nearly-equal numbers does not eat the precision).
    The sums are recomputed exactly, with a fresh origin, once per window's
    worth of evictions.
    """

    __slots__ = (
        "_start",
        "_ts",
        "_vs",
        "evicted",
        "n",
        "st",
        "stt",
        "stv",
        "sv",
        "svv",
        "t0",
        "v0",
        "window_secs",
    )

    def __init__(self, window_secs: float) -> None:
        self.window_secs = window_secs
        self._ts = array("d")
        self._vs = array("d")
        self._start = 0
        self.evicted = 0
        self.t0 = 0.0
        self.v0 = 0.0
        self.n = 0
        self.st = self.sv = self.stt = self.stv = self.svv = 0.0

    def add(self, t: float, v: float) -> None:
        if self.n == 0:
            self.t0, self.v0 = t, v
        cutoff = t - self.window_secs
        ts, vs = self._ts, self._vs
        while self.n and ts[self._start] < cutoff:
            self._remove(ts[self._start] - self.t0, vs[self._start] - self.v0)
            self._start += 1
            self.evicted += 1
        ts.append(t)
        vs.append(v)
        x, y = t - self.t0, v - self.v0
        self.n += 1
        self.st += x
        self.sv += y
        self.stt += x * x
        self.stv += x * y
        self.svv += y * y
        if self._start > 64 and self._start * 2 > len(ts):
            del ts[: self._start]
            del vs[: self._start]
            self._start = 0
        if self.evicted >= max(self.n, 64):
            self._recompute()

    def _remove(self, x: float, y: float) -> None:
        self.n -= 1
        self.st -= x
        self.sv -= y
        self.stt -= x * x
        self.stv -= x * y
        self.svv -= y * y

    def _recompute(self) -> None:
        self.evicted = 0
        ts, vs, s = self._ts, self._vs, self._start
        self.n = len(ts) - s
        if not self.n:
            self.st = self.sv = self.stt = self.stv = self.svv = 0.0
            return
        self.t0, self.v0 = ts[s], vs[s]
        xs = [t - self.t0 for t in ts[s:]]
        ys = [v - self.v0 for v in vs[s:]]
        self.st = math.fsum(xs)
        self.sv = math.fsum(ys)
        self.stt = math.fsum(x * x for x in xs)
        self.stv = math.fsum(x * y for x, y in zip(xs, ys))
        self.svv = math.fsum(y * y for y in ys)

    @property
    def first_ts(self) -> float:
        return self._ts[self._start] if self.n else 0.0

    @property
    def last_ts(self) -> float:
        return self._ts[-1] if self.n else 0.0

    def span(self) -> float:
        """Seconds between the oldest and newest point in the window."""
        return self._ts[-1] - self._ts[self._start] if self.n else 0.0

    def fit(self) -> tuple[float, float, float]:
        """(slope per second, value of the line at the newest point, R²); R² is 0 when undefined."""
        n = self.n
        if n < 3:
            return 0.0, self._vs[-1] if n else 0.0, 0.0
        sxx = n * self.stt - self.st * self.st
        syy = n * self.svv - self.sv * self.sv
        sxy = n * self.stv - self.st * self.sv
        if sxx <= 0.0:
            return 0.0, self._vs[-1], 0.0
        slope = sxy / sxx
        intercept = (self.sv - slope * self.st) / n
        fitted = intercept + slope * (self._ts[-1] - self.t0) + self.v0
        # zero or rounding-level variance of the values: a flat line explains nothing
        if syy <= 1e-12 * max(1.0, self.svv * n):
            return slope, fitted, 0.0
        r2 = (sxy * sxy) / (sxx * syy)
        return slope, fitted, min(1.0, max(0.0, r2))
