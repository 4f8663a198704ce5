"""What silences, maintenance windows and inhibition share: hold a muted alert, send it later.

A firing alert that is muted is not sent; the stage keeps the latest one per
alert :func:`~sysops_agent.alerting.matchers.identity`. When the mute ends
(the silence expires or is expired, the window closes, the inhibiting alert
resolves) and the alert is still held — it has not resolved meanwhile — it is
sent then, once. A resolved alert whose firing was held and never sent is
dropped with it: the channels never heard of that problem.

:func:`mute_decision` is the pure decision: given the arriving alerts, the
held/notified state and a predicate "is this alert muted now", it says what
goes on and what the new state is. :class:`MuteStage` keeps that state and
turns the stage's monotonic ``now`` into wall time (silences and windows are
wall-clock times) with the clock the daemon attaches.

The held alerts and the notified identities are saved with the firing-alert
state (``alerts.state``; :meth:`MuteStage.snapshot` / :meth:`MuteStage.restore`):
an alert held by a silence when the agent restarts is still held after it, and
sent when the silence ends if it still fires — its analyzer restores it as
firing, so nothing else would ever send it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Callable, Dict, FrozenSet, List, Optional, Tuple

from sysops_agent.alerting.matchers import Identity, identity
from sysops_agent.alerting.outbox import alert_from_obj, alert_to_obj
from sysops_agent.clock import Clock
from sysops_agent.model import EVENT_ANALYZERS, Alert, AlertState

#: alerts whose firing was sent, remembered for at most this many identities
MAX_NOTIFIED = 4096


@dataclass(frozen=True)
class MuteState:
    #: muted firing alerts not sent yet, the latest per identity
    held: Tuple[Tuple[Identity, Alert], ...] = ()
    #: identities whose firing went on (their resolution must go on too)
    notified: FrozenSet[Identity] = frozenset()


@dataclass(frozen=True)
class MuteOutcome:
    passed: List[Alert]
    state: MuteState
    #: firing alerts muted by this call
    muted: int
    #: held alerts let out because their mute ended
    released: int


def mute_decision(
    alerts: List[Alert], state: MuteState, is_muted: Callable[[Alert], bool], note: str
) -> MuteOutcome:
    """The alerts that go on, given those arriving, the held ones and what is muted now.

    ``note`` is appended to the message of an alert sent late (``"the silence ended"``).
    """
    held: Dict[Identity, Alert] = dict(state.held)
    notified = set(state.notified)
    passed: List[Alert] = []
    muted = 0

    def sent(ident: Identity, alert: Alert) -> None:
        passed.append(alert)
        if alert.analyzer not in EVENT_ANALYZERS:  # an event's resolution never comes
            notified.add(ident)

    for alert in alerts:
        ident = identity(alert)
        if alert.state is AlertState.RESOLVED:
            was_held = held.pop(ident, None) is not None
            if was_held and ident not in notified:
                continue  # nobody heard of the firing: the resolution is news to no one
            notified.discard(ident)
            passed.append(alert)
        elif is_muted(alert):
            held[ident] = alert
            muted += 1
        else:
            held.pop(ident, None)
            sent(ident, alert)
    released = 0
    for ident, alert in list(held.items()):
        if not is_muted(alert):
            del held[ident]
            sent(ident, alert.evolve(message=f"{alert.message} (still firing; {note})"))
            released += 1
    if len(notified) > MAX_NOTIFIED:  # a bound, not a policy: forget arbitrary old ones
        notified = set(list(notified)[-MAX_NOTIFIED:])
    return MuteOutcome(passed, MuteState(tuple(held.items()), frozenset(notified)), muted, released)


class MuteStage(ABC):
    """A stage that holds muted alerts; subclasses say what is muted and when that may change."""

    #: the words appended to an alert sent when its mute ended
    note = "the mute ended"

    def __init__(self) -> None:
        self.state = MuteState()
        self.clock: Optional[Clock] = None
        #: firing alerts muted so far
        self.muted_total = 0
        self._last_wall = 0.0

    # -- what subclasses define --------------------------------------------------

    @abstractmethod
    def is_muted(self, alert: Alert, wall: float) -> bool:
        """Whether ``alert`` is muted at ``wall`` (silence, maintenance window, inhibition)."""

    def observe(self, alert: Alert, wall: float) -> None:  # noqa: B027 - optional hook
        """Note an arriving alert before the decision (inhibition tracks its sources).

        Optional: only inhibition needs it; the default notes nothing.
        """

    def changes_at(self, wall: float) -> Optional[float]:
        """The next wall time at which a held alert may stop being muted; None if unknown."""
        return None

    # -- the stage ---------------------------------------------------------------

    def attach(self, clock: Clock) -> None:
        """Give the stage the daemon's clock (wall time for silences and windows)."""
        self.clock = clock

    def wall(self, now: float) -> float:
        clock = self.clock
        return now if clock is None else now + (clock.time() - clock.monotonic())

    def __call__(self, alerts: List[Alert], now: float) -> List[Alert]:
        wall = self._last_wall = self.wall(now)
        for alert in alerts:
            self.observe(alert, wall)
        out = mute_decision(alerts, self.state, lambda a: self.is_muted(a, wall), self.note)
        self.state = out.state
        self.muted_total += out.muted
        return out.passed

    def next_due(self) -> Optional[float]:
        if not self.state.held:
            return None
        clock = self.clock
        offset = 0.0 if clock is None else clock.time() - clock.monotonic()
        at = self.changes_at(self._last_wall)
        return None if at is None else at - offset

    def flush(self, now: float) -> List[Alert]:
        return []  # muted alerts stay muted at shutdown

    @property
    def held(self) -> List[Alert]:
        return [a for _, a in self.state.held]

    # -- saved with the firing-alert state ------------------------------------------

    def snapshot(self) -> Dict[str, Any]:
        """The held alerts and the notified identities as JSON objects."""
        return {
            "held": [alert_to_obj(a) for _, a in self.state.held],
            "notified": [
                [a, m, [list(kv) for kv in labels]] for a, m, labels in self.state.notified
            ],
        }

    def restore(self, saved: Dict[str, Any], wall: float, keep: Callable[[Identity], bool]) -> int:
        """Put back the saved entries ``keep`` accepts (not overriding newer ones); how
        many held alerts. ``wall`` is the time now (when the stage is next due)."""
        held = dict(self.state.held)
        for obj in saved.get("held") or []:
            alert = alert_from_obj(obj)
            ident = identity(alert)
            if keep(ident) and ident not in held:
                held[ident] = alert
        notified = set(self.state.notified)
        for analyzer, metric, labels in saved.get("notified") or []:
            ident = (str(analyzer), str(metric), tuple((str(k), str(v)) for k, v in labels))
            if keep(ident):
                notified.add(ident)
        restored = len(held) - len(self.state.held)
        self.state = MuteState(tuple(held.items()), frozenset(notified))
        self._last_wall = wall
        return restored
