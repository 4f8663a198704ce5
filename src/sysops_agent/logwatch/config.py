"""``[collector.log]``: the log watcher's sources and patterns (SPEC §7)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Dict, List, Optional

from sysops_agent.schema import Problem, opt

SEVERITIES = ("info", "warn", "critical", "emergency")
#: what ``custom_patterns[].sources`` may name besides a followed file's path
SOURCE_NAMES = ("kmsg", "journal", "files")

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")


def check_regex(value: object) -> Optional[str]:
    """Validation hook for ``custom_patterns[].pattern``: the error text, or None when valid."""
    if not isinstance(value, str) or not value:
        return "the pattern is empty"
    try:
        rx = re.compile(value)
    except re.error as e:
        return f"invalid regular expression {value!r}: {e}"
    if rx.search("") is not None:
        return f"the pattern {value!r} matches an empty line, so it would match every line"
    return None


def check_name(value: object) -> Optional[str]:
    if not isinstance(value, str) or not _NAME.match(value):
        return (
            f"{value!r} is not a valid pattern name "
            "(letters, digits, '_', '.', '-'; starting with a letter or '_')"
        )
    return None


@dataclass(frozen=True)
class CustomPattern:
    name: str = opt("", validate=check_name, help="alert name, e.g. nginx_upstream_down")
    pattern: str = opt(
        "",
        validate=check_regex,
        help="Python regular expression matched against each line; named groups become labels",
    )
    severity: str = opt("warn", choices=SEVERITIES)
    labels: Dict[str, str] = opt(factory=dict, help="extra fixed labels for this pattern's alerts")
    sources: List[str] = opt(
        factory=list,
        help="only lines from these sources: kmsg, journal, files or a followed path; "
        "empty = every source",
    )
    idents: List[str] = opt(
        factory=list,
        help="only lines written by these syslog identifiers (tag / SYSLOG_IDENTIFIER; "
        "kernel for the kernel's records); empty = any writer",
    )


@dataclass(frozen=True)
class LogConfig:
    enabled: bool = opt(True)
    kmsg: bool = opt(True, help="read /dev/kmsg (needs CAP_SYSLOG)")
    journal: bool = opt(True, help="follow journalctl -f -o json when journalctl exists")
    files: List[str] = opt(
        factory=list, help="syslog files to follow; empty = the distro's default"
    )
    custom_patterns: List[CustomPattern] = opt(factory=list)
    burst_window_secs: float = opt(
        30,
        min=1,
        max=3600,
        help="repeats of one event (same pattern and key, e.g. device) within this window "
        "become one follow-up alert with a count; a storm (more than 3 new keys of one "
        "pattern within 10 s) is summarised once per window",
    )
    dedup_window_secs: float = opt(
        10,
        min=0,
        max=300,
        help="the same line seen by two sources (kmsg and journal and a file) within this "
        "window is one event",
    )
    poll_interval_secs: float = opt(1.0, min=0.1, max=60, help="how often files are checked")
    max_line_length: int = opt(
        512, min=80, max=8192, help="characters of the raw line kept in an alert"
    )
    counters_interval_secs: float = opt(
        60, min=1, max=3600, help="how often the kernel_*_total counters are re-emitted"
    )
    state_save_interval_secs: float = opt(
        10,
        min=1,
        max=3600,
        help="how often read positions (kmsg seq, journal cursor, file offsets) are saved",
    )

    def check(self) -> List[Problem]:
        """Problems per-field validation cannot see: a custom pattern missing a required key."""
        problems = []
        for i, cp in enumerate(self.custom_patterns):
            where = f"collector.log.custom_patterns[{i}]"
            if not cp.name:
                problems.append(Problem(f"{where}.name", "required"))
            if not cp.pattern:
                problems.append(Problem(f"{where}.pattern", f"required (pattern {cp.name!r})"))
            for j, src in enumerate(cp.sources):
                if src not in SOURCE_NAMES and not src.startswith("/"):
                    problems.append(
                        Problem(
                            f"{where}.sources[{j}]",
                            f"{src!r} is not a source: kmsg, journal, files or an absolute path",
                        )
                    )
        return problems
