"""``[collector.log]``: the log analyzer's sources and patterns (SPEC §7)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import List

from sysops_agent.schema import opt

SEVERITIES = ("info", "warn", "critical", "emergency")


@dataclass
class CustomPattern:
    name: str = opt("", help="alert name, e.g. nginx_upstream_down")
    pattern: str = opt("", help="Python regular expression; named groups become labels")
    severity: str = opt("warn", choices=SEVERITIES)


@dataclass
class LogConfig:
    enabled: bool = opt(True)
    kmsg: bool = opt(True, help="read /dev/kmsg (needs CAP_SYSLOG)")
    journal: bool = opt(True, help="follow journalctl -f -o json when journalctl exists")
    files: List[str] = opt(
        factory=list, help="syslog files to follow; empty = the distro's default"
    )
    custom_patterns: List[CustomPattern] = opt(factory=list)
