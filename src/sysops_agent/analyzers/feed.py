"""What every analyzer reads from the store: the new samples of each series.

The store keeps each series in a :class:`RingBuffer` whose ``total`` counts
every append ever made. A :class:`Feed` remembers, per series, the buffer and
the ``total`` it has seen (the cursor), so each ``analyze`` call only touches
the samples appended since the previous one: O(1) work per new sample.

Values that cannot be true never get this far: ``Store.append`` refuses them
(:func:`sysops_agent.units.sample_problem`: NaN, infinity, a negative count, a
percentage above 100 …), so the feed hands analyzers what the store holds.
"""

from __future__ import annotations

import math
from typing import Callable, Dict, Iterator, List, NamedTuple, Optional, Tuple

from sysops_agent.model import SeriesKey
from sysops_agent.storage.ringbuffer import Point, RingBuffer
from sysops_agent.storage.store import Cursors, Store


class Batch(NamedTuple):
    """New points of one series since the previous pull."""

    key: SeriesKey
    points: List[Point]
    #: True when the series is new to this feed or was re-created in the store
    fresh: bool
    #: True for points that were stored well before the analyzer's first look
    #: (an analyzer created on a full store after a reload): analyzers learn
    #: from them but do not alert on the past
    history: bool


class Feed:
    """Per-series cursors over a :class:`Store` for one analyzer.

    ``select(key)`` decides once per series whether the analyzer looks at it
    (the answer is cached: glob rules are not re-matched per sample).
    ``backlog`` bounds how far back a newly seen series is read, so an
    analyzer created on a full store (start-up after SIGHUP) reads what it
    needs to warm up, not 24 h of history; what was stored more than
    ``recent_secs`` before the first pull is marked ``history`` (learn from
    it, do not alert on the past).
    """

    def __init__(
        self, select: Callable[[SeriesKey], bool], backlog: int, recent_secs: float = 60.0
    ) -> None:
        self._select = select
        self._recent = recent_secs
        self._backlog = max(1, backlog)
        self._cursors = Cursors()
        #: per series: does the analyzer look at it (decided once)
        self._selected: Dict[SeriesKey, bool] = {}
        self._primed = False
        #: the selected series of ``_view_of`` when its layout was ``_view_layout``:
        #: a pass walks these, not every series of the store
        self._view: List[Tuple[SeriesKey, RingBuffer]] = []
        self._view_of: Optional[Store] = None
        self._view_layout = -1

    def pull(self, store: Store, now: float) -> Tuple[List[Batch], List[SeriesKey]]:
        """New points per selected series, and the selected series that left the store.

        On the first pull, points older than ``now - recent_secs`` come first in a
        batch of their own marked ``history``.
        """
        batches: List[Batch] = []
        history_before = -math.inf if self._primed else now - self._recent
        self._primed = True
        cursors = self._cursors
        take = cursors.take
        view = self._view
        if self._view_of is not store or self._view_layout != store.layout:
            view = self._selected_series(store)
        for key, buf in view:
            unread = take(key, buf)
            if unread is None:  # new to this feed, or re-created in the store
                fresh, count = True, min(buf.total, self._backlog)
            elif unread == 0:  # nothing new: the common case between samples
                continue
            else:
                fresh, count = False, unread
            points = buf.last_n(count)
            if points and points[0][0] < history_before:
                split = 0
                while split < len(points) and points[split][0] < history_before:
                    split += 1
                batches.append(Batch(key, points[:split], fresh, True))
                points, fresh = points[split:], False
                if not points:
                    continue
            batches.append(Batch(key, points, fresh, False))
        # every selected series of the store has a cursor now: a scan only when some left
        gone = cursors.forget_missing(store, len(view))
        return batches, gone

    def _selected_series(self, store: Store) -> List[Tuple[SeriesKey, RingBuffer]]:
        """The store's series this analyzer looks at, kept until a series is added or dropped.

        Most analyzers look at a few of the series (the threshold rules' metrics,
        the processes' RSS), so a pass walks those instead of the whole store.
        """
        selected = self._selected
        if len(selected) > 2 * len(store) + 64:  # forget decisions about vanished series
            live = {k for k, _ in store.series()}
            for k in [k for k in selected if k not in live]:
                del selected[k]
        view: List[Tuple[SeriesKey, RingBuffer]] = []
        for key, buf in store.series():
            want = selected.get(key)
            if want is None:
                want = selected[key] = self._select(key)
            if want:
                view.append((key, buf))
        self._view, self._view_of, self._view_layout = view, store, store.layout
        return view

    def cursor(self, key: SeriesKey) -> Optional[int]:
        return self._cursors.position(key)

    def __iter__(self) -> Iterator[SeriesKey]:
        return iter(self._cursors)
