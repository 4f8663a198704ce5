"""What fires now: the first stage notes every alert so that ``status`` can list them.

It lets everything through. Per alert :func:`~sysops_agent.alerting.matchers.identity`
it keeps the latest firing alert and when that identity started firing; a
resolved alert removes it. Events (log lines, test alerts: ``EVENT_ANALYZERS``)
never resolve, so they are not kept: a log storm would otherwise fill the table
(and ``alerts.state``) with one entry per burst up to :data:`MAX_FIRING`.
:func:`firing_update` is the pure decision.

The table is saved with the firing-alert state (``alerts.state``, see
:mod:`sysops_agent.alertstate`): after a restart an alert that still fires is
not notified again, so it would never reach this stage; :meth:`FiringStage.restore`
puts it back, with its original ``since`` and ``id``, for ``status``.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from sysops_agent.alerting.config import PipelineConfig
from sysops_agent.alerting.matchers import Identity, identity
from sysops_agent.alerting.outbox import alert_from_obj, alert_to_obj
from sysops_agent.model import EVENT_ANALYZERS, Alert, AlertState

#: identities followed at most (a bound against a runaway label)
MAX_FIRING = 4096

#: per identity: (since, the latest alert)
Firing = Dict[Identity, Tuple[float, Alert]]


def firing_update(firing: Mapping[Identity, Tuple[float, Alert]], alert: Alert) -> Firing:
    """The firing table after ``alert`` (pure): ``since`` is the alert time of the first firing."""
    if alert.analyzer in EVENT_ANALYZERS:
        return dict(firing)  # an event never resolves: it is not something that fires now
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

    def snapshot(self) -> List[Dict[str, Any]]:
        """The table as JSON objects (``since`` is wall time already)."""
        return [{"since": since, "alert": alert_to_obj(a)} for since, a in self.firing.values()]

    def restore(self, items: List[Dict[str, Any]], keep: Callable[[Identity], bool]) -> int:
        """Put saved entries back (those ``keep`` accepts, not overriding newer ones)."""
        n = 0
        for item in items:
            alert = alert_from_obj(item["alert"])
            ident = identity(alert)
            if keep(ident) and ident not in self.firing and len(self.firing) < MAX_FIRING:
                self.firing[ident] = (float(item["since"]), alert)
                n += 1
        return n


def create(cfg: PipelineConfig) -> FiringStage:
    return FiringStage()
