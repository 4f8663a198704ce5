"""Stage 1 of the alert pipeline: drop repeats of the same alert within the dedup window.

The key is :attr:`Alert.key` — (metric, severity, labels). A firing alert whose
key was admitted less than ``window_secs`` ago is suppressed. A resolved alert
always passes and forgets the firing keys of its series, so a later re-fire is
sent again at once.

The decision is a pure function (:func:`dedup_decision`) of the alert, the
last-sent table and ``now``; :class:`DedupStage` only keeps that table. It is
a :class:`~sysops_agent.alerting.stage.Stage` that runs before routing.
"""

from __future__ import annotations

from typing import Dict, List, Mapping, Optional, Tuple

from sysops_agent.alerting.config import PipelineConfig
from sysops_agent.model import Alert, AlertState, Labels, Severity

DedupKey = Tuple[str, Severity, Labels]


def dedup_decision(
    alert: Alert, last_sent: Mapping[DedupKey, float], now: float, window_secs: float
) -> bool:
    """True if ``alert`` should go out, given when each key was last admitted."""
    if alert.state is AlertState.RESOLVED:
        return True
    last: Optional[float] = last_sent.get(alert.key)
    if last is None:
        return True
    # A clock that went backwards (now < last) is treated as "within the window".
    return now - last >= window_secs


class DedupStage:
    """Remembers when each alert key was last admitted."""

    def __init__(self, window_secs: float) -> None:
        self.window_secs = float(window_secs)
        self._last: Dict[DedupKey, float] = {}
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
            # Clear every severity of this series: the condition is over.
            for key in [k for k in self._last if k[0] == alert.metric and k[2] == alert.labels]:
                del self._last[key]
        elif ok:
            self._last[alert.key] = now
        self._prune(now)
        return ok

    def _prune(self, now: float) -> None:
        if len(self._last) < 4096:
            return
        expired = [k for k, t in self._last.items() if now - t >= self.window_secs]
        for key in expired:
            del self._last[key]

    def __len__(self) -> int:
        return len(self._last)


def create(cfg: PipelineConfig) -> DedupStage:
    return DedupStage(cfg.dedup_window_secs)
