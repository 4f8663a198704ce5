"""Things that vanish resolve promptly: gone for 3 of their collection intervals."""

from __future__ import annotations

from sysops_agent.analyzers.registry import build_analyzers
from sysops_agent.config import load_config
from sysops_agent.daemon import GONE_INTERVALS, STALE_SERIES_SECS
from sysops_agent.model import make_labels
from sysops_agent.storage.store import Store

T0 = 1_700_000_000.0
POSTGRES = make_labels(pid="4121", name="postgres")
SRV = make_labels(mountpoint="/srv", device="/dev/sdb1", fstype="ext4")


def test_exited_process_and_unmounted_disk_resolve_after_three_intervals() -> None:
    cfg = load_config(text="[thresholds.process_fd_count]\nwarn = 100.0\n").config
    analyzers = build_analyzers(cfg, "web1")
    store = Store()
    store.note_interval("process_fd_count", 10.0)
    store.note_interval("disk_usage_percent", 30.0)

    def step(t: float) -> list:  # type: ignore[type-arg]
        store.drop_stale(t, STALE_SERIES_SECS, GONE_INTERVALS)
        return [a for an in analyzers for a in an.analyze(store, t)]

    store.add(T0, "process_fd_count", 500.0, POSTGRES)
    store.add(T0, "disk_usage_percent", 95.0, SRV)
    fired = step(T0)
    assert {(a.metric, a.state.value) for a in fired} == {
        ("process_fd_count", "firing"),
        ("disk_usage_percent", "firing"),
    }
    assert step(T0 + 30) == []  # exactly 3 intervals of the process: not yet
    gone = step(T0 + 31)
    assert [(a.metric, a.state.value, a.message) for a in gone] == [
        (
            "process_fd_count",
            "resolved",
            "pid 4121 (postgres) exited: alert closed (no longer reported)",
        )
    ]
    assert step(T0 + 90) == []
    gone = step(T0 + 91)
    assert [(a.metric, a.message) for a in gone] == [
        ("disk_usage_percent", "mount /srv gone: alert closed (no longer reported)")
    ]
