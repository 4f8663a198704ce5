"""The :class:`Analyzer` protocol.

Analyzers pull from the :class:`~sysops_agent.storage.store.Store`: each call
of ``analyze`` looks at the samples appended since its previous call (every
ring buffer counts its appends in ``RingBuffer.total``, which analyzers keep
as a per-series cursor) and returns the alert notifications to deliver —
``firing`` when a problem starts or worsens, ``resolved`` when it ends.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Protocol, Sequence, runtime_checkable

from sysops_agent.analyzers.lifecycle import Lifecycle
from sysops_agent.model import Alert
from sysops_agent.storage.store import Store


class Analyzer(Protocol):
    name: str

    def analyze(self, store: Store, now: float) -> List[Alert]: ...


@runtime_checkable
class Stateful(Protocol):
    """An analyzer whose firing alerts live in a :class:`Lifecycle` (every built-in one).

    A reload hands the lifecycle over (or resolves its alerts) and the daemon
    saves it in the data directory, so a restart neither re-notifies a firing
    alert nor forgets one that cleared meanwhile.
    """

    name: str

    @property
    def lifecycle(self) -> Lifecycle: ...


@dataclass(frozen=True)
class AnalyzerContext:
    """What every analyzer is given besides its own ``[analyzer.<name>]`` section."""

    #: the host name put into alerts
    hostname: str
    #: ``[[analyzer.rules]]``, in file order (per-series switches and overrides)
    rules: Sequence[Any] = ()
    #: ``[thresholds]``: metric or glob -> levels (the threshold analyzer's table)
    thresholds: Dict[str, Any] = field(default_factory=dict)
    #: samples older than this at an analyzer's first look are history, not news
    recent_secs: float = 60.0


#: Builds an analyzer from its own section and the shared context.
AnalyzerFactory = Callable[[Any, AnalyzerContext], Analyzer]
