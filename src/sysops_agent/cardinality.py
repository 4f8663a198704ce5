"""A cap on the series one collector may feed the store (issue 17: bounded cardinality).

A host with 500 interfaces, a container host churning ``veth*`` pairs or a
storage box with hundreds of LUNs would otherwise grow the store (24 h of
samples a series) and every analyzer's state without bound. Each collector's
samples go through its :class:`SeriesCap` before they are stored:

- under the cap (the normal case) the samples pass untouched, at the cost of
  one ``len()``;
- above it, the series admitted in the previous cycle keep their place, new
  series are admitted while there is room, and the samples of the others are
  dropped and counted (``agent_series_dropped_total{collector}``); the first
  time, one warning says so. Series that stop reporting leave the admitted
  set at once, so vanished processes or interfaces free their room.

A collector emits one sample per series per cycle, so the cap counts samples
of distinct ``(metric, labels)``.
"""

from __future__ import annotations

import logging
from typing import List, Optional, Set, Tuple

from sysops_agent.model import Labels, Sample

log = logging.getLogger("sysops_agent.cardinality")

_Key = Tuple[str, Labels]


class SeriesCap:
    """At most ``limit`` series from one collector (0: no cap)."""

    __slots__ = ("_admitted", "collector", "dropped", "limit", "warned")

    def __init__(self, collector: str, limit: int) -> None:
        self.collector = collector
        self.limit = limit
        #: samples dropped because their series was beyond the cap, since start
        self.dropped = 0
        self.warned = False
        #: the series admitted in the last capped cycle (None: the last cycle was under the cap)
        self._admitted: Optional[Set[_Key]] = None

    def __call__(self, samples: List[Sample]) -> List[Sample]:
        """The samples of the admitted series (``samples`` itself when under the cap)."""
        if not self.limit or len(samples) <= self.limit:
            self._admitted = None
            return samples
        previous = self._admitted or set()
        current: Set[_Key] = {(s.metric, s.labels) for s in samples}
        admitted = previous & current
        for s in samples:  # the collector's order: the first new series get the room left
            if len(admitted) >= self.limit:
                break
            admitted.add((s.metric, s.labels))
        self._admitted = admitted
        kept = [s for s in samples if (s.metric, s.labels) in admitted]
        over = len(samples) - len(kept)
        self.dropped += over
        if over and not self.warned:
            self.warned = True
            log.warning(
                "collector %s reports %d series, above its cap of %d: the %d others are not "
                "stored (counted in agent_series_dropped_total; raise "
                "storage.max_series_per_collector or exclude devices in its section)",
                self.collector,
                len(current),
                self.limit,
                len(current) - len(admitted),
                extra={"collector": self.collector},
            )
        return kept
