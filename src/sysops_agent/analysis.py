"""One analysis tick: every analyzer looks at the store at ``now`` (the daemon and ``replay``).

The daemon runs a tick every ``analyzer.interval_secs`` of the real clock;
``replay`` runs the same tick on the samples' own time. Both get exactly the
same analyzers from the registry and the same isolation: an analyzer that
raises is reported through ``on_error`` and skipped, the others carry on.
"""

from __future__ import annotations

import logging
from typing import Callable, List, Sequence

from sysops_agent.analyzers.base import Analyzer
from sysops_agent.analyzers.culprit import name_culprits
from sysops_agent.model import Alert
from sysops_agent.storage.store import Store

log = logging.getLogger("sysops_agent.analysis")

#: (analyzer name, the exception, the tick's time)
ErrorHandler = Callable[[str, BaseException, float], None]


def log_error(name: str, error: BaseException, now: float) -> None:
    log.error("analyzer %s failed", name, exc_info=error)


class AnalysisTick:
    """The analyzers of one configuration, run together over a store."""

    def __init__(self, analyzers: Sequence[Analyzer], on_error: ErrorHandler = log_error) -> None:
        self.analyzers = list(analyzers)
        self._on_error = on_error

    @property
    def names(self) -> List[str]:
        return [a.name for a in self.analyzers]

    def __call__(self, store: Store, now: float) -> List[Alert]:
        out: List[Alert] = []
        for analyzer in self.analyzers:
            try:
                out.extend(name_culprits(a, store) for a in analyzer.analyze(store, now))
            except Exception as e:  # one analyzer's bug must not stop the others
                self._on_error(analyzer.name, e, now)
        return out
