"""The pipeline's own keys of ``[alerting]`` (SPEC §6): windows, rate limits, retries.

The channels' sections (``[alerting.<channel>]``) belong to the channel
modules; :data:`sysops_agent.channels.registry.AlertingConfig` is the whole
``[alerting]`` table, derived from the channel registry plus the fields of
:class:`PipelineConfig`. The alert manager takes only a :class:`PipelineConfig`
(``plugins.project(alerting, PipelineConfig)``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Sequence

from sysops_agent.schema import Problem, opt

#: what ``[alerting.heartbeat] style`` accepts (see :mod:`sysops_agent.channels.heartbeat`)
HEARTBEAT_STYLES = ("healthchecks", "uptime-kuma", "cronitor", "plain")


@dataclass(frozen=True)
class HeartbeatConfig:
    """``[alerting.heartbeat]``: a dead-man's switch pinged while the agent runs."""

    url: str = opt(
        "", secret=True, help="push-monitor URL pinged every interval_secs; empty = no heartbeat"
    )
    interval_secs: float = opt(60.0, min=1, max=3600)
    method: str = opt("GET", choices=("GET", "POST"))
    style: str = opt(
        "healthchecks",
        choices=HEARTBEAT_STYLES,
        help="how degraded health is said: /fail (healthchecks.io), status=down (Uptime Kuma),"
        " state=fail (Cronitor), or only a POST body (plain)",
    )


@dataclass(frozen=True)
class PipelineConfig:
    dedup_window_secs: float = opt(600.0, min=0)
    group_window_secs: float = opt(5.0, min=0, max=300)
    rate_limit_per_minute: float = opt(10.0, min=0.1)
    rate_limit_burst: int = opt(5, min=1)
    retries: int = opt(
        3, min=0, max=10, help="test-alert only: the daemon retries until outbox_max_age_secs"
    )
    retry_base_delay_secs: float = opt(
        1.0, min=0, max=60, help="first retry waits this long, then 2x, 4x (unless Retry-After)"
    )
    retry_max_delay_secs: float = opt(60.0, min=0, max=600, help="cap of one backoff wait")
    send_timeout_secs: float = opt(10.0, min=1, max=120)
    outbox_max_age_secs: float = opt(
        86_400.0,
        min=60,
        help="a notification not delivered within this long is given up (logged)",
    )
    outbox_max_notifications: int = opt(
        10_000, min=10, help="outbox bound: the oldest of the lowest severity is dropped first"
    )
    outbox_max_bytes: int = opt(16 * 1024 * 1024, min=65_536, help="outbox bound in bytes")
    warn_channels: List[str] = opt(
        factory=list, help="channels that get warn alerts; empty = every enabled channel"
    )
    notify_on_stop: bool = opt(
        False, help="a graceful stop sends one info notice 'sysops-agent stopping'"
    )
    heartbeat: HeartbeatConfig = opt(factory=HeartbeatConfig)


def warn_channel_problems(warn_channels: Sequence[str], known: Sequence[str]) -> List[Problem]:
    """Names in ``warn_channels`` that are not channels of this build."""
    return [
        Problem(
            "alerting.warn_channels",
            f"unknown channel {name!r} (expected one of: {', '.join(known)})",
        )
        for name in warn_channels
        if name not in known
    ]
