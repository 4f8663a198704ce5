"""Small helpers shared by the analyzers: turning a lifecycle transition into an Alert."""

from __future__ import annotations

from typing import Any, Iterable, List, MutableMapping

from sysops_agent.analyzers.describe import gone_phrase
from sysops_agent.analyzers.lifecycle import Lifecycle, Transition
from sysops_agent.model import Alert, AlertState, SeriesKey
from sysops_agent.units import round_stored


def transition_alert(
    analyzer: str,
    hostname: str,
    key: SeriesKey,
    t: Transition,
    message: str,
    threshold: float,
) -> Alert:
    """The notification for ``t`` (firing or resolved) on series ``key``."""
    return Alert(
        timestamp=t.at,
        hostname=hostname,
        severity=t.severity,
        metric=key.metric,
        value=round_stored(t.value),
        threshold=round_stored(threshold),
        message=message,
        analyzer=analyzer,
        labels=key.labels,
        duration=t.duration,
        state=AlertState.RESOLVED if t.resolved else AlertState.FIRING,
    )


def gone_alert(analyzer: str, hostname: str, key: SeriesKey, t: Transition) -> Alert:
    """Resolved notification for a firing series that is no longer reported."""
    return transition_alert(
        analyzer,
        hostname,
        key,
        t,
        f"{gone_phrase(key)}: alert closed (no longer reported)",
        0.0,
    )


def forget_gone(
    gone: Iterable[SeriesKey],
    state: Iterable[MutableMapping[SeriesKey, Any]],
    lifecycle: Lifecycle,
    now: float,
    analyzer: str,
    hostname: str,
) -> List[Alert]:
    """Drop the per-series state of series that left the store; resolve their alerts."""
    maps = list(state)
    alerts: List[Alert] = []
    for key in gone:
        for m in maps:
            m.pop(key, None)
        t = lifecycle.drop(key, now)
        if t is not None:
            alerts.append(gone_alert(analyzer, hostname, key, t))
    return alerts
