"""The pipeline's own keys of ``[alerting]`` (SPEC §6): windows, rate limits, retries.

The channels' sections (``[alerting.<channel>]``) belong to the channel
modules; :data:`sysops_agent.channels.registry.AlertingConfig` is the whole
``[alerting]`` table, derived from the channel registry plus the fields of
:class:`PipelineConfig`. The alert manager takes only a :class:`PipelineConfig`
(``plugins.project(alerting, PipelineConfig)``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import tzinfo
from typing import List, Optional, Sequence

from sysops_agent.alerting.matchers import matchers_problem
from sysops_agent.schema import Problem, opt

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
HHMM = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)")


def _day_problem(day: str) -> Optional[str]:
    if len(day) >= 3 and day.lower()[:3] in DAYS:
        return None
    return f"unknown day {day!r} (expected one of: {', '.join(DAYS)})"


def _start_problem(start: str) -> Optional[str]:
    return None if HHMM.fullmatch(start) else f"expected a time HH:MM, got {start!r}"


def _timezone_problem(name: str) -> Optional[str]:
    if not name:
        return None
    try:
        zone(name)
    except Exception:  # zoneinfo raises ZoneInfoNotFoundError, ValueError, ...
        return f"unknown time zone {name!r} (expected an IANA name such as Europe/Berlin)"
    return None


@dataclass(frozen=True)
class MaintenanceWindow:
    """One ``[[alerting.maintenance]]`` entry."""

    name: str = opt("", help="shown in status and in the log")
    matchers: List[str] = opt(
        factory=list,
        help='alerts it mutes, e.g. ["mountpoint=~/srv.*"]; empty = every alert but emergencies',
        validate=matchers_problem,
    )
    days: List[str] = opt(
        factory=lambda: list(DAYS), help="days it opens: mon..sun", validate=_day_problem
    )
    start: str = opt("02:00", help="local start time, HH:MM", validate=_start_problem)
    duration_mins: float = opt(60.0, min=1, max=7 * 24 * 60)
    timezone: str = opt(
        "", help="IANA time zone (Europe/Berlin); empty = the host's", validate=_timezone_problem
    )


def zone(name: str) -> Optional[tzinfo]:
    """The tzinfo for ``name``; None (the host's local time) for ``""``."""
    if not name:
        return None
    import zoneinfo  # only a config with a named zone pays for it

    return zoneinfo.ZoneInfo(name)


@dataclass(frozen=True)
class InhibitRule:
    """One ``[[alerting.inhibit]]`` entry (Alertmanager's inhibit_rules)."""

    source_matchers: List[str] = opt(
        factory=list, help="a firing alert matching these...", validate=matchers_problem
    )
    target_matchers: List[str] = opt(
        factory=list, help="...mutes alerts matching these", validate=matchers_problem
    )
    equal: List[str] = opt(
        factory=list, help="names (labels, metric, analyzer) whose values both must share"
    )


#: labels that, with the metric, name a series (the default rule's ``equal``)
SERIES_LABELS = ("core", "device", "fstype", "interface", "mountpoint", "name", "pid")


def default_inhibit_rules() -> List[InhibitRule]:
    """A series' warn is muted while its critical or emergency fires; a process's
    alerts while the log watcher reports it OOM-killed."""
    return [
        InhibitRule(
            source_matchers=['severity=~"critical|emergency"'],
            target_matchers=["severity=warn"],
            equal=["metric", *SERIES_LABELS],
        ),
        InhibitRule(
            source_matchers=["pattern=oom_kill"],
            target_matchers=['pid=~".+"', "pattern!=oom_kill"],
            equal=["pid"],
        ),
    ]


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
    repeat_interval_secs: float = opt(
        14400.0,
        min=0,
        help="a firing critical/emergency alert is sent again this often until acked; 0 = never",
    )
    flap_changes: int = opt(
        6, min=0, help="more state changes than this within flap_window_secs = flapping; 0 = off"
    )
    flap_window_secs: float = opt(1800.0, min=1, max=86400)
    maintenance: List[MaintenanceWindow] = opt(
        factory=list, help="[[alerting.maintenance]]: weekly windows that mute matching alerts"
    )
    inhibit: List[InhibitRule] = opt(
        factory=default_inhibit_rules,
        help="[[alerting.inhibit]]: a firing source alert mutes target alerts",
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
