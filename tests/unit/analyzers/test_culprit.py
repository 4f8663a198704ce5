"""Top consumers named in CPU/memory/FD/disk-I/O alerts, from the per-process series in the store."""

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
    # disk I/O: postgres writes most, java reads most, sshd does both a little;
    # "gone" is too old, cron does none (no I/O series at all: an unreadable io)
    for pid, name, read, write, ts in (
        (4121, "postgres", 1.0e6, 12.3e6, T),
        (88, "java", 20.0e6, 0.0, T - 5),
        (7, "sshd", 3.0e3, 5.0e3, T),
        (9, "idle", 0.0, 0.0, T),
        (5, "gone", 9e9, 9e9, T - 3600),
    ):
        labels = make_labels(pid=pid, name=name)
        s.add(ts, "process_io_read_bytes_per_second", read, labels)
        s.add(ts, "process_io_write_bytes_per_second", write, labels)
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
        (
            "disk_write_bytes_per_second",
            "high; top: postgres (pid 4121) 11.7 MB/s written, sshd (pid 7) 4.9 KB/s written",
        ),
        (
            "disk_write_ops_per_second",
            "high; top: postgres (pid 4121) 11.7 MB/s written, sshd (pid 7) 4.9 KB/s written",
        ),
        (
            "disk_read_bytes_per_second",
            "high; top: java (pid 88) 19.1 MB/s read, postgres (pid 4121) 977 KB/s read, "
            "sshd (pid 7) 2.9 KB/s read",
        ),
        (
            "disk_read_await_seconds",
            "high; top: java (pid 88) 19.1 MB/s read, postgres (pid 4121) 977 KB/s read, "
            "sshd (pid 7) 2.9 KB/s read",
        ),
        (
            "disk_io_util_percent",  # no direction: read + written
            "high; top: java (pid 88) 19.1 MB/s read+written, "
            "postgres (pid 4121) 12.7 MB/s read+written, sshd (pid 7) 7.8 KB/s read+written",
        ),
        (
            "disk_queue_depth",
            "high; top: java (pid 88) 19.1 MB/s read+written, "
            "postgres (pid 4121) 12.7 MB/s read+written, sshd (pid 7) 7.8 KB/s read+written",
        ),
        (
            "pressure_io_some_percent",
            "high; top: java (pid 88) 19.1 MB/s read+written, "
            "postgres (pid 4121) 12.7 MB/s read+written, sshd (pid 7) 7.8 KB/s read+written",
        ),
        ("disk_usage_percent", "high"),  # space is not a process's rate
        ("disk_free_bytes", "high"),
        ("disk_inode_usage_percent", "high"),
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
    [
        ("swap_usage_percent", "process_rss_bytes"),
        ("network_rx_bytes", None),
        ("disk_write_bytes_per_second", "process_io_write_bytes_per_second"),
        ("disk_usage_percent", None),
    ],
)
def test_source_of(metric: str, source: Optional[str]) -> None:
    found = source_of(metric)
    assert (found[0] if found else None) == source


def test_disk_io_names_nobody_without_per_process_io() -> None:
    """An agent that may not read other users' ``/proc/<pid>/io`` has no I/O series: the
    alert goes out unchanged rather than naming CPU or memory users as I/O culprits."""
    s = Store()
    s.add(T, "process_cpu_percent", 90.0, make_labels(pid=1, name="busy"))
    a = alert("disk_write_bytes_per_second", device="sda")
    assert name_culprits(a, s) == a
