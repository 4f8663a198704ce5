"""What fires now: the first stage notes every alert so that ``status`` can list them.

It lets everything through. Per alert :func:`~sysops_agent.alerting.matchers.identity`
it keeps the latest firing alert and when that identity started firing; a
resolved alert removes it. :func:`firing_update` is the pure decision.
"""

from __future__ import annotations

from typing import Dict, List, Mapping, Optional, Tuple

from sysops_agent.alerting.config import PipelineConfig
from sysops_agent.alerting.matchers import Identity, identity
from sysops_agent.model import Alert, AlertState

#: identities followed at most (a bound against a runaway label)
MAX_FIRING = 4096

#: per identity: (since, the latest alert)
Firing = Dict[Identity, Tuple[float, Alert]]


def firing_update(firing: Mapping[Identity, Tuple[float, Alert]], alert: Alert) -> Firing:
    """The firing table after ``alert`` (pure): ``since`` is the alert time of the first firing."""
    out = dict(firing)
    ident = identity(alert)
    if alert.state is AlertState.RESOLVED:
        out.pop(ident, None)
    elif ident in out:
        out[ident] = (out[ident][0], alert)
    elif len(out) < MAX_FIRING:
        out[ident] = (alert.timestamp, alert)
    return out


class FiringStage:
    def __init__(self) -> None:
        self.firing: Firing = {}

    def __call__(self, alerts: List[Alert], now: float) -> List[Alert]:
        for alert in alerts:
            self.firing = firing_update(self.firing, alert)
        return alerts

    def next_due(self) -> Optional[float]:
        return None

    def flush(self, now: float) -> List[Alert]:
        return []


def create(cfg: PipelineConfig) -> FiringStage:
    return FiringStage()
