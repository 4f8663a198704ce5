"""Stage 2 of the alert pipeline: decide which channels get an alert.

SPEC §6: info → log only; warn → the configured channels; critical → all
channels plus the configured mention; emergency → all channels and bypasses
rate limiting. Every channel also filters by its own ``min_severity``.

"Log only" for info means: the alert manager logs it, and it reaches only
channels that opted in with ``min_severity = "info"`` (by default only the
console, which *is* the log). "Configured channels" for warn is
``[alerting] warn_channels`` — empty means every enabled channel.

:func:`route` is a pure function; the manager applies its decision. The two
per-alert rules it uses are the only place they are written down:
:func:`wants_mention` (the manager passes it to the channel as ``mention``;
channels never decide it) and :func:`bypasses_rate_limit` (the rate limiter
asks it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Collection, Mapping, Tuple

from sysops_agent.model import Alert, AlertState, Severity


@dataclass(frozen=True)
class RouteDecision:
    #: channel names, in the order they were given
    channels: Tuple[str, ...]
    #: render the channel's configured mention (critical/emergency while firing)
    mention: bool
    #: skip the rate limiter (emergency)
    bypass_rate_limit: bool
    #: also write the alert to the agent's log (info)
    log: bool


def route(
    alert: Alert,
    channel_min: Mapping[str, Severity],
    warn_channels: Collection[str] = (),
) -> RouteDecision:
    """Which channels get ``alert``, given each channel's minimum severity."""
    sev = alert.severity
    eligible = [name for name, minimum in channel_min.items() if sev >= minimum]
    if sev is Severity.INFO:
        # log only, plus channels that explicitly asked for info
        return RouteDecision(tuple(eligible), mention=False, bypass_rate_limit=False, log=True)
    if sev is Severity.WARN:
        if warn_channels:
            eligible = [name for name in eligible if name in warn_channels]
        return RouteDecision(tuple(eligible), mention=False, bypass_rate_limit=False, log=False)
    return RouteDecision(
        tuple(eligible),
        mention=wants_mention([alert]),
        bypass_rate_limit=bypasses_rate_limit(alert),
        log=False,
    )


def wants_mention(alerts: Collection[Alert]) -> bool:
    """True if a message with ``alerts`` should carry the channel's mention."""
    return any(a.severity >= Severity.CRITICAL and a.state is AlertState.FIRING for a in alerts)


def bypasses_rate_limit(alert: Alert) -> bool:
    """Emergency alerts skip the rate limiter (they take no token)."""
    return alert.severity is Severity.EMERGENCY
