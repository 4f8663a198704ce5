"""Alert state across reloads and restarts: analyzers handed over, invalid reloads refused, state file."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import List

from sysops_agent import alertstate
from sysops_agent.analyzers.registry import build_analyzers, rebuild_analyzers
from sysops_agent.config import load_config
from sysops_agent.model import Alert, make_labels
from sysops_agent.storage.store import Store
from tests.integration.test_alert_durability import Receiver, config, receiver  # noqa: F401 - fixture
from tests.support.agentproc import AgentProcess, agent_config, minimal_procfs, write_meminfo

T0 = 1_700_000_000.0
ROOT = make_labels(mountpoint="/", device="/dev/sda1", fstype="ext4")


def states(alerts: List[Alert]) -> List[tuple]:  # type: ignore[type-arg]
    return [(a.analyzer, a.metric, a.severity.label, a.state.value) for a in alerts]


def tick(analyzers: list, store: Store, t: float, mem: float, disk: float) -> List[Alert]:  # type: ignore[type-arg]
    store.add(t, "memory_usage_percent", mem)
    store.add(t, "disk_usage_percent", disk, ROOT)
    return [a for an in analyzers for a in an.analyze(store, t)]


def test_reload_with_a_changed_threshold_resolves_what_the_new_rule_does_not_fire() -> None:
    old_cfg = load_config(text="").config
    new_cfg = load_config(text="[thresholds.memory_usage_percent]\nwarn = 90.0\n").config
    analyzers = build_analyzers(old_cfg, "web1")
    store = Store()
    fired = tick(analyzers, store, T0, 85.0, 85.0)
    assert ("threshold", "memory_usage_percent", "warn", "firing") in states(fired)
    assert ("threshold", "disk_usage_percent", "warn", "firing") in states(fired)
    anomaly_before = next(a for a in analyzers if a.name == "anomaly")

    analyzers, at_reload = rebuild_analyzers(old_cfg, new_cfg, "web1", analyzers, T0 + 5)
    assert at_reload == []  # both series still have a rule: their next sample decides
    assert next(a for a in analyzers if a.name == "anomaly") is anomaly_before  # unchanged: kept

    after = tick(analyzers, store, T0 + 10, 85.0, 85.0)
    # memory: 85 % is below the new warn level -> resolved, saying why;
    # disk: its rule did not change -> still firing, nothing sent again
    assert states(after) == [("threshold", "memory_usage_percent", "warn", "resolved")]
    assert "rule changed by reload" in after[0].message
    assert tick(analyzers, store, T0 + 20, 85.0, 85.0) == []


def test_reload_that_removes_a_rule_resolves_its_alerts_at_once() -> None:
    old_cfg = load_config(text="[thresholds.load_1m]\nwarn = 4.0\n").config
    new_cfg = load_config(text="").config
    analyzers = build_analyzers(old_cfg, "web1")
    store = Store()
    store.add(T0, "load_1m", 9.0)
    assert states([a for an in analyzers for a in an.analyze(store, T0)]) == [
        ("threshold", "load_1m", "warn", "firing")
    ]
    analyzers, at_reload = rebuild_analyzers(old_cfg, new_cfg, "web1", analyzers, T0 + 5)
    assert states(at_reload) == [("threshold", "load_1m", "warn", "resolved")]
    assert "rule changed by reload" in at_reload[0].message


def test_state_file_round_trip(tmp_path: Path) -> None:
    cfg = load_config(text="").config
    analyzers = build_analyzers(cfg, "web1")
    store = Store()
    tick(analyzers, store, T0, 95.0, 50.0)
    path = str(tmp_path / "alerts.state")
    alertstate.save(path, analyzers)
    fresh = build_analyzers(cfg, "web1")
    assert alertstate.restore(path, fresh) == 1
    store2 = Store()
    assert tick(fresh, store2, T0 + 100, 95.0, 50.0) == []  # still firing: no second notice
    resolved = tick(fresh, store2, T0 + 110, 10.0, 50.0)
    assert states(resolved) == [("threshold", "memory_usage_percent", "critical", "resolved")]


def test_restored_alert_without_a_sample_is_resolved_after_the_grace(tmp_path: Path) -> None:
    cfg = load_config(text="").config
    analyzers = build_analyzers(cfg, "web1")
    tick(analyzers, Store(), T0, 95.0, 50.0)
    path = str(tmp_path / "alerts.state")
    alertstate.save(path, analyzers)
    fresh = build_analyzers(cfg, "web1")
    alertstate.restore(path, fresh)
    out = alertstate.resolve_unconfirmed(fresh, Store(), "web1", T0 + 300)
    assert states(out) == [("threshold", "memory_usage_percent", "critical", "resolved")]
    assert "not reported since the agent restarted" in out[0].message


def test_restored_alert_of_a_reported_series_is_left_to_its_analyzer(tmp_path: Path) -> None:
    cfg = load_config(text="").config
    analyzers = build_analyzers(cfg, "web1")
    tick(analyzers, Store(), T0, 95.0, 50.0)
    path = str(tmp_path / "alerts.state")
    alertstate.save(path, analyzers)
    fresh = build_analyzers(cfg, "web1")
    alertstate.restore(path, fresh)
    store = Store()
    store.add(T0 + 290, "memory_usage_percent", 95.0)  # reported, not yet analysed
    assert alertstate.resolve_unconfirmed(fresh, store, "web1", T0 + 300) == []
    assert states(tick(fresh, store, T0 + 310, 20.0, 50.0)) == [
        ("threshold", "memory_usage_percent", "critical", "resolved")
    ]


def test_invalid_reload_changes_nothing(tmp_path: Path) -> None:
    proc = minimal_procfs(tmp_path, used_percent=85.0)
    cfg = agent_config(tmp_path, proc)
    good = cfg.read_text()
    agent = AgentProcess(["run", "--config", str(cfg)])
    try:
        agent.wait_line("memory_usage_percent", "[WARN]")
        # a valid change (critical at 84 would escalate) next to an invalid value
        cfg.write_text(
            good + "\n[thresholds.memory_usage_percent]\nwarn = 80.0\ncritical = 84.0\n"
            '\n[analyzer.trend]\nmin_span_secs = "sixty"\nmin_r2 = 7\n'
        )
        agent.signal(signal.SIGHUP)
        line = agent.wait_stderr("config reload failed, keeping the old configuration")
        assert "min_span_secs" in line and "min_r2" in line  # one warning, every problem
        time.sleep(2.5)  # several analysis cycles at 1 s
        assert not any("[CRITICAL]" in out for out in agent.stdout)
        assert not any("configuration reloaded" in err for err in agent.stderr)
    finally:
        assert agent.stop() == 0


def test_restart_does_not_renotify_and_sends_resolved_for_what_cleared(
    tmp_path: Path,
    receiver: Receiver,  # noqa: F811 - the fixture
) -> None:
    proc = minimal_procfs(tmp_path, used_percent=95.0)
    cfg = config(tmp_path, proc, receiver.url)

    def run(until: str, settle: float) -> None:
        agent = AgentProcess(["run", "--config", str(cfg)])
        try:
            agent.wait_stderr(until)
            time.sleep(settle)
        finally:
            assert agent.stop() == 0

    run("analyzers:", 3.0)  # fires, delivered
    receiver.wait(1)
    assert [(b["state"], b["severity"]) for _, b in receiver.requests] == [("firing", "critical")]

    run("firing alert(s) restored", 3.0)  # memory still high: nothing new
    assert len(receiver.requests) == 1

    write_meminfo(proc, 10.0)
    run("firing alert(s) restored", 3.0)
    receiver.wait(2)
    got = [(b["state"], b["severity"]) for _, b in receiver.requests]
    assert got == [("firing", "critical"), ("resolved", "critical")]
