"""All series in memory: one :class:`RingBuffer` per (metric, labels)."""

from __future__ import annotations

import math
from typing import Dict, Iterator, List, Optional, Tuple

from sysops_agent.model import Labels, Sample, SeriesKey
from sysops_agent.storage.ringbuffer import BLOCK, Point, RingBuffer
from sysops_agent.units import sample_problem, unit_of

DAY = 86400.0
#: consecutive series' first blocks differ by this many samples (prime to BLOCK):
#: series created together seal their open hours at evenly spread moments
_SPREAD = 149


class Store:
    """The in-memory time-series store.

    A series holds 24 h at its own interval: ``capacity = 86400 / interval``,
    capped by ``max_samples`` (8,640 = 24 h at 10 s by default). Collectors
    declare their interval with :meth:`note_interval`; series of unknown
    interval get ``max_samples``.

    Samples are stored rounded to their unit's resolution
    (:attr:`~sysops_agent.units.Unit.resolution`: 0.05 for a percentage, 1 for
    bytes and byte rates, 0.001 for seconds and event rates): the digits
    below it are noise that would cost memory without telling anything.
    Metrics of unknown unit (replayed CSV files) are stored as they are.
    """

    def __init__(self, max_samples: int = 8640, retention_secs: float = DAY) -> None:
        self.max_samples = max_samples
        self.retention_secs = retention_secs
        self._series: Dict[SeriesKey, RingBuffer] = {}
        self._intervals: Dict[str, float] = {}
        #: changes whenever a series is added or dropped: a reader may keep its own
        #: list of (key, buffer) pairs for as long as this stays the same
        self.layout = 0
        #: samples refused because their value or timestamp cannot be true or stored
        self.rejected = 0
        #: why the last one was refused (for the rate-limited warning)
        self.last_rejected = ""

    def note_interval(self, metric: str, interval: float) -> None:
        self._intervals[metric] = interval

    def capacity_for(self, metric: str) -> int:
        interval = self._intervals.get(metric)
        if not interval:
            return self.max_samples
        return max(2, min(self.max_samples, math.ceil(self.retention_secs / interval)))

    def append(self, sample: Sample) -> bool:
        """Store one sample; returns False (and counts it) for a value or time it cannot hold.

        NaN, infinity, values beyond float32, timestamps outside 1970-2106 and
        values impossible for the metric's unit (a negative count, a percentage
        above 100: :func:`~sysops_agent.units.sample_problem`) are refused.
        The value is stored rounded to the unit's resolution.
        """
        value = sample.value
        problem = sample_problem(sample.metric, sample.ts, value)
        if problem is not None:
            self.rejected += 1
            self.last_rejected = f"{sample.metric}: {problem}"
            return False
        resolution = unit_of(sample.metric).resolution
        if resolution is not None:
            value = round(value / resolution) * resolution
        key = SeriesKey(sample.metric, sample.labels)
        buf = self._series.get(key)
        if buf is None:
            buf = RingBuffer(
                self.capacity_for(sample.metric),
                resolution=resolution,
                first_block=BLOCK - (len(self._series) * _SPREAD) % BLOCK,
            )
            self._series[key] = buf
            self.layout += 1
        buf.append(sample.ts, value)
        return True

    def add(self, ts: float, metric: str, value: float, labels: Labels = ()) -> bool:
        return self.append(Sample(ts, metric, value, labels))

    def get(self, metric: str, labels: Labels = ()) -> Optional[RingBuffer]:
        return self._series.get(SeriesKey(metric, labels))

    def latest(self, metric: str, labels: Labels = ()) -> Optional[Point]:
        buf = self._series.get(SeriesKey(metric, labels))
        return buf.latest() if buf else None

    def last_n(self, metric: str, n: int, labels: Labels = ()) -> List[Point]:
        buf = self._series.get(SeriesKey(metric, labels))
        return buf.last_n(n) if buf else []

    def since(self, metric: str, t: float, labels: Labels = ()) -> List[Point]:
        buf = self._series.get(SeriesKey(metric, labels))
        return buf.since(t) if buf else []

    def series(self) -> Iterator[Tuple[SeriesKey, RingBuffer]]:
        """Every series; safe against series being added while iterating."""
        return iter(list(self._series.items()))

    def series_of(self, metric: str) -> List[Tuple[SeriesKey, RingBuffer]]:
        return [(k, b) for k, b in self._series.items() if k.metric == metric]

    def drop_stale(self, now: float, max_age: float, intervals: Optional[float] = None) -> int:
        """Forget series with no sample for ``max_age`` seconds (vanished processes, disks).

        With ``intervals``, a series whose metric has a known collection interval
        (:meth:`note_interval`) is forgotten after that many intervals instead:
        the analyzers then resolve its alerts ("pid 4121 (postgres) exited").
        """
        known = self._intervals

        def limit(metric: str) -> float:
            interval = known.get(metric)
            if intervals is None or not interval:
                return max_age
            return intervals * interval

        stale = [k for k, b in self._series.items() if now - b.last_ts > limit(k.metric)]
        for k in stale:
            del self._series[k]
        if stale:
            self.layout += 1
        return len(stale)

    def __len__(self) -> int:
        return len(self._series)

    def memory_bytes(self) -> int:
        return sum(b.memory_bytes() for b in self._series.values())


class Cursors:
    """One reader's position in every series of a :class:`Store` (an analyzer's feed, the SQLite flush).

    A position is the buffer it was taken on and that buffer's ``total``
    (appends ever made) at the time, so the samples appended since are
    ``total - position``: O(1) per series per read. A buffer re-created in
    the store (a series dropped and back) counts as a new series.
    """

    __slots__ = ("_at",)

    def __init__(self) -> None:
        self._at: Dict[SeriesKey, Tuple[RingBuffer, int]] = {}

    def take(self, key: SeriesKey, buf: RingBuffer) -> Optional[int]:
        """Samples of ``buf`` appended since the last take, and mark them read; None when
        ``key`` is new to this reader (or its buffer was re-created since).

        One dict lookup: the analyzers' feeds and the SQLite flush call it for every
        series on every pass.
        """
        at = self._at
        prev = at.get(key)
        total = buf.total
        if prev is not None and prev[0] is buf and prev[1] <= total:
            if prev[1] == total:
                return 0
            at[key] = (buf, total)
            return total - prev[1]
        at[key] = (buf, total)
        return None

    def position(self, key: SeriesKey) -> Optional[int]:
        entry = self._at.get(key)
        return None if entry is None else entry[1]

    def forget_missing(self, store: Store, taken: Optional[int] = None) -> List[SeriesKey]:
        """Drop (and return) the series whose buffer is no longer the store's.

        ``taken``: how many series a pass over the store has just taken; when that
        is every cursor, none can be missing and the store is not scanned.
        """
        if taken is not None and taken == len(self._at):
            return []
        gone = [k for k, (buf, _) in self._at.items() if store.get(k.metric, k.labels) is not buf]
        for k in gone:
            del self._at[k]
        return gone

    def __len__(self) -> int:
        return len(self._at)

    def __iter__(self) -> Iterator[SeriesKey]:
        return iter(self._at)
