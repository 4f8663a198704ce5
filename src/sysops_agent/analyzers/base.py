"""The :class:`Analyzer` protocol.

Analyzers pull from the :class:`~sysops_agent.storage.store.Store`: each call
of ``analyze`` looks at the samples appended since its previous call (every
ring buffer counts its appends in ``RingBuffer.total``, which analyzers keep
as a per-series cursor) and returns the alert notifications to deliver —
``firing`` when a problem starts or worsens, ``resolved`` when it ends.
"""

from __future__ import annotations

from typing import Callable, List, Protocol

from sysops_agent.config import Config
from sysops_agent.model import Alert
from sysops_agent.storage.store import Store


class Analyzer(Protocol):
    name: str

    def analyze(self, store: Store, now: float) -> List[Alert]: ...


#: Builds an analyzer from the configuration and the hostname used in alerts.
AnalyzerFactory = Callable[[Config, str], Analyzer]
