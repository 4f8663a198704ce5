"""Stage 2 of the alert pipeline: decide which channels get an alert.

SPEC §6: info → log only; warn → the configured channels; critical → all
channels plus the configured mention; emergency → all channels and bypasses
rate limiting. Every channel also filters by its own ``min_severity``.

"Log only" for info means: the alert manager logs it, and it reaches only
channels that opted in with ``min_severity = "info"`` (by default only the
console, which *is* the log). "Configured channels" for warn is
``[alerting] warn_channels`` — empty means every enabled channel.

:func:`route` is a pure function; the manager applies its decision.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Collection, Mapping, Tuple

from sysops_agent.alerting.config import AlertingConfig
from sysops_agent.model import Alert, AlertState, Severity

#: used for a channel that has no ``[alerting.<name>]`` section of its own
DEFAULT_MIN_SEVERITY = Severity.WARN


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
    firing = alert.state is AlertState.FIRING
    return RouteDecision(
        tuple(eligible),
        mention=firing,
        bypass_rate_limit=sev is Severity.EMERGENCY,
        log=False,
    )


def channel_min_severity(name: str, alerting: AlertingConfig) -> Severity:
    """The ``min_severity`` of channel ``name`` (``DEFAULT_MIN_SEVERITY`` without a section)."""
    section = getattr(alerting, name, None)
    text = getattr(section, "min_severity", None)
    if not isinstance(text, str):
        return DEFAULT_MIN_SEVERITY
    try:
        return Severity.parse(text)
    except ValueError:
        return DEFAULT_MIN_SEVERITY


def wants_mention(alerts: Collection[Alert]) -> bool:
    """True if a message with ``alerts`` should carry the channel's mention."""
    return any(a.severity >= Severity.CRITICAL and a.state is AlertState.FIRING for a in alerts)
