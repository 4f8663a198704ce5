"""The alert lifecycle shared by every analyzer.

An analyzer decides, for each new sample of a series, which severity the
series is at (``None`` = healthy). :class:`Lifecycle` turns that stream of
decisions into notifications:

* **firing** when a problem starts — after the optional ``for`` duration, i.e.
  only once the condition has held for ``for_secs`` (a shorter blip never
  notifies anyone);
* a new **firing** at the new severity on escalation (warn → critical) and
  on de-escalation (critical → warn), so receivers always know the current
  state;
* **resolved** when the series is healthy again, or when it disappeared while
  firing (a killed process, an unmounted disk).

It holds state only for series that are unhealthy, so a healthy host costs no
memory here. ``started`` is when the condition began (the start of the ``for``
wait, equal to the first firing when there is none); ``duration`` of every
notification is measured from it.

Hysteresis is decided where the levels are known: :func:`level_severity`
lowers the level a value must fall below to leave a severity, so a value
oscillating around a level does not flap.
"""

from __future__ import annotations

from typing import Callable, Dict, Iterator, List, NamedTuple, Optional, Sequence, Tuple

from sysops_agent.model import SeriesKey, Severity

#: (level, severity) pairs, ascending by level
Levels = Sequence[Tuple[float, Severity]]


class Transition(NamedTuple):
    """A notification to send: ``firing`` (``resolved`` is False) or ``resolved``."""

    resolved: bool
    #: severity of the notification (for resolved: the severity that was firing)
    severity: Severity
    #: severity firing before this transition (None for a first firing)
    previous: Optional[Severity]
    #: when the condition began
    started: float
    #: time of the sample that caused the transition
    at: float
    #: the value that caused it (for a dropped series: the last value seen)
    value: float

    @property
    def duration(self) -> float:
        return max(0.0, self.at - self.started)


class Firing(NamedTuple):
    """A firing series as it is handed over on a reload and saved across restarts."""

    key: SeriesKey
    severity: Severity
    started: float
    value: float


class _State:
    __slots__ = ("firing", "last_value", "restored", "started")

    def __init__(self, started: float, value: float) -> None:
        self.started = started
        self.firing: Optional[Severity] = None
        self.last_value = value
        #: restored from the state file and not seen since
        self.restored = False


class Lifecycle:
    """Firing/resolved state of every unhealthy series of one analyzer."""

    def __init__(self) -> None:
        self._states: Dict[SeriesKey, _State] = {}

    def step(
        self,
        key: SeriesKey,
        severity: Optional[Severity],
        at: float,
        value: float,
        for_secs: float = 0.0,
    ) -> Optional[Transition]:
        """Feed one decision about the sample ``value`` at ``at``; returns the notification."""
        state = self._states.get(key)
        if severity is None:
            if state is None:
                return None
            del self._states[key]
            if state.firing is None:  # recovered during the ``for`` wait: nobody was told
                return None
            return Transition(True, state.firing, state.firing, state.started, at, value)
        if state is None:
            state = self._states[key] = _State(at, value)
        state.last_value = value
        state.restored = False
        if state.firing is None:
            if at - state.started < for_secs:
                return None
            state.firing = severity
            return Transition(False, severity, None, state.started, at, value)
        if severity != state.firing:
            previous = state.firing
            state.firing = severity
            return Transition(False, severity, previous, state.started, at, value)
        return None

    def active(self, key: SeriesKey) -> Optional[Severity]:
        """The severity currently firing for ``key`` (None when healthy or still pending)."""
        state = self._states.get(key)
        return None if state is None else state.firing

    def started(self, key: SeriesKey) -> Optional[float]:
        state = self._states.get(key)
        return None if state is None else state.started

    def drop(self, key: SeriesKey, at: float) -> Optional[Transition]:
        """Forget ``key`` (its series left the store); resolved if it was firing."""
        state = self._states.pop(key, None)
        if state is None or state.firing is None:
            return None
        return Transition(True, state.firing, state.firing, state.started, at, state.last_value)

    def firing(self) -> Iterator[Tuple[SeriesKey, Severity]]:
        for key, state in self._states.items():
            if state.firing is not None:
                yield key, state.firing

    def snapshot(self) -> List[Firing]:
        """Every firing series (what a reload hands over and a restart restores)."""
        return [
            Firing(key, state.firing, state.started, state.last_value)
            for key, state in self._states.items()
            if state.firing is not None
        ]

    def restore(self, firing: Firing, *, restored: bool = False) -> None:
        """Take over ``firing`` (``restored``: from the state file, not seen since)."""
        state = _State(firing.started, firing.value)
        state.firing = firing.severity
        state.restored = restored
        self._states[firing.key] = state

    def drop_restored(
        self, at: float, reported: Callable[[SeriesKey], bool]
    ) -> List[Tuple[SeriesKey, Transition]]:
        """Resolve the restored series that are not ``reported`` since the restart.

        A restored series that is reported but that the analyzer has not judged
        yet (a statistical analyzer still warming up) stays, for it to decide.
        """
        keys = [k for k, s in self._states.items() if s.restored]
        out: List[Tuple[SeriesKey, Transition]] = []
        for key in keys:
            if reported(key):
                self._states[key].restored = False
                continue
            t = self.drop(key, at)
            if t is not None:
                out.append((key, t))
        return out

    def __len__(self) -> int:
        return len(self._states)


def level_severity(
    value: float, levels: Levels, current: Optional[Severity], hysteresis: float
) -> Optional[Severity]:
    """The severity ``value`` is at, given ascending ``levels`` and the current severity.

    Entering a severity needs ``value >= level``; staying in (or dropping to) a
    severity at or below the current one only needs
    ``value >= level * (1 - hysteresis)``. So with warn 80 and 3 % hysteresis,
    an alert fires at 80 and resolves only below 77.6.
    """
    result: Optional[Severity] = None
    for level, severity in levels:
        if value >= level or (
            current is not None
            and severity <= current
            and value >= resolve_level(level, hysteresis)
        ):
            result = severity
        else:
            break
    return result


def resolve_level(level: float, hysteresis: float) -> float:
    """The value an alert at ``level`` must fall below before it leaves that level."""
    return level - abs(level) * hysteresis


def make_levels(pairs: List[Tuple[Optional[float], Severity]]) -> List[Tuple[float, Severity]]:
    """Drop unset levels and sort ascending (a rule may set only ``critical``)."""
    return sorted(((lv, sev) for lv, sev in pairs if lv is not None), key=lambda p: (p[0], p[1]))
