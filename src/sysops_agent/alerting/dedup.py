"""Stage 1 of the alert pipeline: drop repeats of the same state of an alert.

An alert's identity is :attr:`Alert.identity` — (analyzer or rule, metric,
labels) — so the disk trend's "full in ~4 min" and the disk threshold's
"90 % used" on one mount are two alerts. The stage remembers the last state it
let through for each identity (its severity, or resolved) and suppresses only
a *repeat* of that state within ``window_secs``: every transition — a first
firing, an escalation, a de-escalation, a resolved notice — always passes.
A resolved notice forgets the identity, so a later re-fire is sent at once.

The decision is a pure function (:func:`dedup_decision`) of the alert, the
last-admitted table and ``now``; :class:`DedupStage` only keeps that table.
It is a :class:`~sysops_agent.alerting.stage.Stage` that runs before routing.
"""

from __future__ import annotations

from typing import Dict, List, Mapping, Optional, Tuple

from sysops_agent.alerting.config import PipelineConfig
from sysops_agent.model import Alert, AlertIdentity, AlertState, Severity

#: the identity table is pruned of expired entries once it holds this many
PRUNE_AT = 4096

#: identity -> (severity last admitted as firing, when)
LastAdmitted = Mapping[AlertIdentity, Tuple[Severity, float]]


def dedup_decision(alert: Alert, last: LastAdmitted, now: float, window_secs: float) -> bool:
    """True if ``alert`` should go out, given the state last admitted for each identity."""
    if alert.state is AlertState.RESOLVED:
        return True
    seen: Optional[Tuple[Severity, float]] = last.get(alert.identity)
    if seen is None or seen[0] != alert.severity:
        return True  # first firing, escalation or de-escalation
    # A clock that went backwards (now < last) is treated as "within the window".
    return now - seen[1] >= window_secs


class DedupStage:
    """Remembers the state last admitted for each alert identity."""

    def __init__(self, window_secs: float) -> None:
        self.window_secs = float(window_secs)
        self._last: Dict[AlertIdentity, Tuple[Severity, float]] = {}
        #: alerts dropped as repeats
        self.dropped = 0

    def __call__(self, alerts: List[Alert], now: float) -> List[Alert]:
        out = [a for a in alerts if self.admit(a, now)]
        self.dropped += len(alerts) - len(out)
        return out

    def next_due(self) -> Optional[float]:
        return None

    def flush(self, now: float) -> List[Alert]:
        return []

    def admit(self, alert: Alert, now: float) -> bool:
        """Decide for ``alert`` at ``now`` and record the outcome."""
        ok = dedup_decision(alert, self._last, now, self.window_secs)
        if alert.state is AlertState.RESOLVED:
            self._last.pop(alert.identity, None)  # the condition is over
        elif ok:
            self._last[alert.identity] = (alert.severity, now)
        self._prune(now)
        return ok

    def _prune(self, now: float) -> None:
        if len(self._last) < PRUNE_AT:
            return
        expired = [k for k, (_, t) in self._last.items() if now - t >= self.window_secs]
        for key in expired:
            del self._last[key]

    def __len__(self) -> int:
        return len(self._last)


def create(cfg: PipelineConfig) -> DedupStage:
    return DedupStage(cfg.dedup_window_secs)
