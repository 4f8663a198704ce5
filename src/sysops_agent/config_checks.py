"""Checks of a loaded configuration that need the host or the registries (``check-config``).

Split from :mod:`sysops_agent.config`, which parses and validates values;
these look further: whether the files the agent will create can be created
where they are named (``pid_file``, ``log_file``, ``data_dir``: a NUL byte, a
directory, a missing or unwritable parent, a file that is not ours), and
whether thresholds and analyzer rules name metrics a collector emits. Only
``check-config`` and ``run``'s start-up import this module (it imports
:mod:`difflib` and :mod:`glob` lazily, never on the daemon's path).
"""

from __future__ import annotations

import errno
import os
import stat
from typing import List, Optional

from sysops_agent.collectors.registry import COLLECTORS
from sysops_agent.config import AgentConfig, Config
from sysops_agent.schema import Problem

#: agent keys naming a file the agent creates, and the key naming its data directory
_FILE_KEYS = ("pid_file", "log_file")


def _nearest_existing(path: str) -> str:
    """``path`` or its closest ancestor that exists."""
    path = os.path.abspath(path)
    while not os.path.lexists(path):
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return path


def _can_create_in(key: str, path: str, access: bool) -> List[Problem]:
    """Problems with creating ``path`` (its parent directories included)."""
    from sysops_agent.fsutil import path_fix

    parent = os.path.dirname(os.path.abspath(path))
    existing = _nearest_existing(parent)
    if not os.path.isdir(existing):
        return [Problem(f"agent.{key}", f"{existing} is not a directory, so {path} cannot exist")]
    if access and not os.access(existing, os.W_OK | os.X_OK):
        return [
            Problem(
                f"agent.{key}",
                f"{existing} is not writable by uid {os.geteuid()}, so {path} cannot be "
                f"created (PermissionError). {path_fix(parent)}",
                permission=True,
            )
        ]
    return []


def path_problems(agent: AgentConfig, *, access: bool = True) -> List[Problem]:
    """What stops the agent from creating ``pid_file``, ``log_file`` and ``data_dir``.

    NUL bytes, a directory where a file belongs (or the reverse), a symlink (the
    agent never follows one for a file it writes), a file that is not a PID file
    at ``pid_file``; with ``access``, also missing permissions for the current
    user — those problems have ``permission=True``, as ``check-config`` may run as
    another user than the agent. Each problem names the key and a fix.

    Long on purpose: one check per way a path can be unusable, in the order a person would
    check them.
    """
    from sysops_agent.fsutil import path_fix

    problems: List[Problem] = []
    for key in (*_FILE_KEYS, "data_dir"):
        value: str = getattr(agent, key)
        if not value:
            continue
        if "\x00" in value:
            problems.append(Problem(f"agent.{key}", "contains a NUL byte; remove it", fatal=True))
            continue
        try:
            st: Optional[os.stat_result] = os.lstat(value)
        except FileNotFoundError:
            st = None
        except OSError as e:  # ENOTDIR, EACCES, ENAMETOOLONG
            if e.errno in (errno.EACCES, errno.EPERM, errno.ENOTDIR):
                problems.extend(_can_create_in(key, value, access))
            else:
                problems.append(Problem(f"agent.{key}", f"{value}: {e.strerror or e}"))
            continue
        if st is None:
            problems.extend(_can_create_in(key, value, access))
            continue
        if key == "data_dir":
            if not stat.S_ISDIR(st.st_mode):
                problems.append(Problem(f"agent.{key}", f"{value} exists and is not a directory"))
            elif access and not os.access(value, os.W_OK | os.X_OK):
                problems.append(
                    Problem(
                        f"agent.{key}",
                        f"{value} is not writable by uid {os.geteuid()}. {path_fix(value)}",
                        permission=True,
                    )
                )
            continue
        example = os.path.join(value, "sysops-agent.pid" if key == "pid_file" else "agent.log")
        if stat.S_ISDIR(st.st_mode):
            msg = f"{value} is a directory; name a file in it, e.g. {example}"
        elif stat.S_ISLNK(st.st_mode):
            msg = f"{value} is a symlink; the agent never follows one for a file it writes"
        elif not stat.S_ISREG(st.st_mode):
            msg = f"{value} is not a regular file"
        elif key == "pid_file" and not _holds_pid(value):
            msg = (
                f"{value} exists and does not hold a PID; the agent will not replace it. "
                "Use a path of its own, e.g. /run/sysops-agent/sysops-agent.pid"
            )
        elif access and not os.access(value, os.W_OK):
            problems.append(
                Problem(
                    f"agent.{key}",
                    f"{value} is not writable by uid {os.geteuid()}. Make it owned by the "
                    "user the agent runs as",
                    permission=True,
                )
            )
            continue
        else:
            continue
        problems.append(Problem(f"agent.{key}", msg))
    return problems


def _holds_pid(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            data = f.read(65).strip()
    except OSError:
        return True  # unreadable: the access check reports it
    return not data or data.isdigit()


#: metric families that are not collectors' (the log watcher's counters and alerts, the agent's own)
OTHER_METRIC_FAMILIES = ("agent_*", "kernel_*_total", "log_*")


def known_metrics() -> List[str]:
    """Every metric a registered collector says it emits (their config classes' ``METRICS``)."""
    names: List[str] = []
    for plugin in COLLECTORS:
        names.extend(getattr(plugin.config_cls, "METRICS", ()))
    return names


def metric_name_problems(config: Config) -> List[Problem]:
    """Warnings for thresholds and analyzer rules that name no metric the agent has.

    A typo (``memory_usage_pct``) or the exported Prometheus name
    (``sysops_memory_usage_ratio``) would silently do nothing. Used by
    ``check-config`` (it imports :mod:`difflib`, which the daemon does not need).
    """
    import difflib
    import fnmatch

    known = known_metrics()

    def exists(pattern: str) -> bool:
        if any(fnmatch.fnmatchcase(pattern, family) for family in OTHER_METRIC_FAMILIES):
            return True
        return any(fnmatch.fnmatchcase(name, pattern) for name in known)

    def hint(name: str) -> str:
        if name.startswith("sysops_"):
            ours = name[len("sysops_") :]
            if ours.endswith("_ratio"):
                ours = ours[: -len("_ratio")] + "_percent"
            if ours in known:
                return f"; {name} is the exported Prometheus name: here use {ours!r}" + (
                    " (in percent, not a 0-1 ratio)" if ours.endswith("_percent") else ""
                )
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
        return f"; did you mean {', '.join(close)}?" if close else ""

    out: List[Problem] = []
    for name in config.thresholds:
        if not exists(name):
            out.append(
                Problem(
                    f"thresholds.{name}",
                    f"no collector emits a metric named {name!r}, so this rule never fires"
                    + hint(name),
                    warning=True,
                )
            )
    for i, rule in enumerate(config.analyzer.rules):
        if not exists(rule.metric):
            out.append(
                Problem(
                    f"analyzer.rules[{i}].metric",
                    f"{rule.metric!r} matches no metric the collectors emit" + hint(rule.metric),
                    warning=True,
                )
            )
    return out
