"""All series in memory: one :class:`RingBuffer` per (metric, labels)."""

from __future__ import annotations

import math
from typing import Dict, Iterator, List, Optional, Tuple

from sysops_agent.model import Labels, Sample, SeriesKey
from sysops_agent.storage.ringbuffer import Point, RingBuffer

DAY = 86400.0


class Store:
    """The in-memory time-series store.

    A series holds 24 h at its own interval: ``capacity = 86400 / interval``,
    capped by ``max_samples`` (8,640 = 24 h at 10 s by default). Collectors
    declare their interval with :meth:`note_interval`; series of unknown
    interval get ``max_samples``.
    """

    def __init__(self, max_samples: int = 8640, retention_secs: float = DAY) -> None:
        self.max_samples = max_samples
        self.retention_secs = retention_secs
        self._series: Dict[SeriesKey, RingBuffer] = {}
        self._intervals: Dict[str, float] = {}
        #: samples rejected because their value was NaN or infinite
        self.rejected = 0

    def note_interval(self, metric: str, interval: float) -> None:
        self._intervals[metric] = interval

    def capacity_for(self, metric: str) -> int:
        interval = self._intervals.get(metric)
        if not interval:
            return self.max_samples
        return max(2, min(self.max_samples, math.ceil(self.retention_secs / interval)))

    def append(self, sample: Sample) -> bool:
        """Store one sample; returns False (and counts it) for NaN/inf values."""
        value = sample.value
        if not math.isfinite(value):
            self.rejected += 1
            return False
        key = SeriesKey(sample.metric, sample.labels)
        buf = self._series.get(key)
        if buf is None:
            buf = self._series[key] = RingBuffer(self.capacity_for(sample.metric))
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
        return len(stale)

    def __len__(self) -> int:
        return len(self._series)

    def memory_bytes(self) -> int:
        return sum(b.memory_bytes() for b in self._series.values())
