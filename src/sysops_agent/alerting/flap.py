"""Flap damping: an alert that keeps changing state is announced once, then left alone.

Every alert that reaches this stage is a state change of its
:func:`~sysops_agent.alerting.matchers.identity` (the analyzers emit
transitions; dedup ran before). More than ``flap_changes`` changes within
``flap_window_secs`` (Nagios's idea, simpler: a count over a sliding window)
sends one "flapping" notice; after that nothing of that alert goes out until
it has made no change for ``flap_window_secs``, then one notice with its
current state. ``flap_changes = 0`` turns damping off.

:func:`flap_step` and :func:`flap_settle` are the pure decision.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

from sysops_agent.alerting.config import PipelineConfig
from sysops_agent.alerting.matchers import Identity, identity
from sysops_agent.model import Alert, AlertState


@dataclass(frozen=True)
class FlapState:
    #: monotonic times of the changes within the window
    changes: Tuple[float, ...] = ()
    flapping: bool = False
    #: the latest alert while flapping (its state is announced when it settles)
    latest: Optional[Alert] = None


def _minutes(secs: float) -> str:
    return f"{secs / 60:g} min" if secs >= 60 else f"{secs:g} s"


def flap_step(
    state: FlapState, alert: Alert, now: float, max_changes: int, window: float
) -> Tuple[Optional[Alert], FlapState]:
    """What goes out for ``alert`` (None: nothing) and the new state (pure)."""
    changes = (*(t for t in state.changes if now - t < window), now)
    if state.flapping:
        return None, FlapState(changes, True, alert)
    if len(changes) > max_changes:
        notice = alert.evolve(
            message=f"flapping: {len(changes)} state changes in {_minutes(window)}; "
            f"no more notices until it is stable for {_minutes(window)} (now: {alert.message})"
        )
        return notice, FlapState(changes, True, alert)
    return alert, FlapState(changes, False, None)


def flap_settle(state: FlapState, now: float, window: float) -> Tuple[Optional[Alert], FlapState]:
    """The "stable again" notice once a flapping alert made no change for ``window`` (pure)."""
    if not state.flapping or not state.changes or now - state.changes[-1] < window:
        return None, state
    latest = state.latest
    notice = None
    if latest is not None:
        what = "resolved" if latest.state is AlertState.RESOLVED else latest.severity.label
        notice = latest.evolve(
            message=f"stable again for {_minutes(window)}, now {what}: {latest.message}"
        )
    return notice, FlapState()


class FlapStage:
    def __init__(self, max_changes: int, window_secs: float) -> None:
        self.max_changes = max_changes
        self.window = float(window_secs)
        self.states: Dict[Identity, FlapState] = {}
        #: alerts held back while flapping
        self.damped = 0

    def __call__(self, alerts: List[Alert], now: float) -> List[Alert]:
        out: List[Alert] = []
        for alert in alerts:
            ident = identity(alert)
            sent, self.states[ident] = flap_step(
                self.states.get(ident, FlapState()), alert, now, self.max_changes, self.window
            )
            if sent is None:
                self.damped += 1
            else:
                out.append(sent)
        for ident, state in list(self.states.items()):
            notice, new = flap_settle(state, now, self.window)
            if notice is not None:
                out.append(notice)
            if not new.flapping and (not new.changes or now - new.changes[-1] >= self.window):
                del self.states[ident]  # quiet for a window: forget it
            else:
                self.states[ident] = new
        return out

    def next_due(self) -> Optional[float]:
        due = [s.changes[-1] + self.window for s in self.states.values() if s.flapping]
        return min(due) if due else None

    def flush(self, now: float) -> List[Alert]:
        return []

    def flapping(self) -> List[Alert]:
        return [s.latest for s in self.states.values() if s.flapping and s.latest is not None]


def create(cfg: PipelineConfig) -> Optional[FlapStage]:
    return FlapStage(cfg.flap_changes, cfg.flap_window_secs) if cfg.flap_changes > 0 else None
