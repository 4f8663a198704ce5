"""Top consumers named in CPU/memory/FD alerts, from the per-process series in the store."""

from __future__ import annotations

from typing import Optional

import pytest

from sysops_agent.analyzers.culprit import name_culprits, source_of
from sysops_agent.model import Alert, AlertState, Severity, make_labels
from sysops_agent.storage.store import Store

T = 1_700_000_000.0


def alert(metric: str, state: AlertState = AlertState.FIRING, **labels: str) -> Alert:
    return Alert(
        timestamp=T,
        hostname="h",
        severity=Severity.WARN,
        metric=metric,
        value=90.0,
        threshold=80.0,
        message="high",
        analyzer="threshold",
        labels=make_labels(labels),
        state=state,
    )


def store() -> Store:
    s = Store()
    for pid, name, cpu, rss, fds, ts in (
        (4121, "postgres", 61.0, 2e9, 900, T),
        (88, "java", 22.0, 3e9, 40, T - 5),
        (7, "sshd", 3.0, 5e6, 12, T),
        (9, "idle", 0.0, 1e6, 3, T),
        (5, "gone", 99.0, 9e9, 9999, T - 3600),  # too old: not "at the moment"
        (6, "cron", 1.0, 1e6, 5, T),
    ):
        labels = make_labels(pid=pid, name=name)
        s.add(ts, "process_cpu_percent", cpu, labels)
        s.add(ts, "process_rss_bytes", rss, labels)
        s.add(ts, "process_fd_count", fds, labels)
    return s


@pytest.mark.parametrize(
    ("metric", "expected"),
    [
        (
            "cpu_usage_percent",
            "high; top: postgres (pid 4121) 61.0% of a core, java (pid 88) 22.0% of a core, "
            "sshd (pid 7) 3.0% of a core",
        ),
        (
            "load_avg_1m",
            "high; top: postgres (pid 4121) 61.0% of a core, java (pid 88) 22.0% of a core, sshd (pid 7) 3.0% of a core",
        ),
        (
            "memory_usage_percent",
            "high; top: java (pid 88) 2.8 GB RSS, postgres (pid 4121) 1.9 GB RSS, sshd (pid 7) 4.8 MB RSS",
        ),
        (
            "fd_usage_percent",
            "high; top: postgres (pid 4121) 900, java (pid 88) 40, sshd (pid 7) 12",
        ),
        ("disk_usage_percent", "high"),  # no per-process data
    ],
)
def test_name_culprits(metric: str, expected: str) -> None:
    assert name_culprits(alert(metric), store()).message == expected


@pytest.mark.parametrize(
    ("a", "changed"),
    [
        (alert("cpu_usage_percent", AlertState.RESOLVED), False),
        (alert("process_cpu_percent", pid="4121"), False),
        (alert("cpu_usage_percent"), True),
    ],
)
def test_only_host_wide_firing_alerts(a: Alert, changed: bool) -> None:
    assert (name_culprits(a, store()).message != a.message) is changed


def test_an_empty_store_changes_nothing() -> None:
    a = alert("cpu_usage_percent")
    assert name_culprits(a, Store()) == a


@pytest.mark.parametrize(
    ("metric", "source"),
    [("swap_usage_percent", "process_rss_bytes"), ("network_rx_bytes", None)],
)
def test_source_of(metric: str, source: Optional[str]) -> None:
    found = source_of(metric)
    assert (found[0] if found else None) == source
