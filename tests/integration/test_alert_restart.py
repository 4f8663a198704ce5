"""Alert state across a restart, through the real daemon (issue 12 item 3, issue 13 item 5):
acks and the ``status`` firing table survive, and a SIGKILL inside a group window or with
an alert still on its way to the manager loses nothing."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Any, Dict

import pytest

from tests.integration.test_alert_durability import Receiver, config, receiver  # noqa: F401
from tests.support.agentproc import AgentProcess, agent_config, minimal_procfs, write_meminfo
from tests.support.control import alerts_now, cli, lines, wait_for

pytestmark = pytest.mark.slow


def channel(cfg: Path, name: str) -> Dict[str, Any]:
    r = cli("status", "--json", "--config", str(cfg))
    assert r.returncode in (0, 1), r.stderr
    [found] = [c for c in json.loads(r.stdout)["channels"] if c["name"] == name]
    return dict(found)


def test_an_ack_survives_a_sigkill_and_ends_when_the_alert_resolves(tmp_path: Path) -> None:
    proc = minimal_procfs(tmp_path, used_percent=95.0)
    cfg = agent_config(tmp_path, proc, extra="repeat_interval_secs = 2\n")
    agent = AgentProcess(["run", "--config", str(cfg)])
    try:
        agent.wait_line("[CRITICAL]", "memory_usage_percent", "still firing for")
        [before] = alerts_now(cfg)
        r = cli("ack", before["id"][:8], "--comment", "on it", "--config", str(cfg))
        assert r.returncode == 0, r.stderr
        agent.wait_line("acknowledged by", "memory_usage_percent")
        wait_for("the console's outbox empty", lambda: channel(cfg, "console")["queued"] == 0)
        agent.signal(signal.SIGKILL)  # no shutdown save: the ack was saved when it was made
        agent.proc.wait(10)
    finally:
        agent.stop()

    agent = AgentProcess(["run", "--config", str(cfg)])
    try:
        agent.wait_stderr("firing alert(s) restored")
        wait_for("the restored alert in status", lambda: len(alerts_now(cfg)) == 1)
        [after] = alerts_now(cfg)
        assert (after["id"], after["since"]) == (before["id"], before["since"])
        assert after["acked_by"] is not None
        time.sleep(5)  # two repeat intervals: an acked alert is not repeated
        assert lines(agent, "memory_usage_percent") == []

        write_meminfo(proc, 10.0)  # resolves: the ack is forgotten with it
        agent.wait_line("[RESOLVED]", "memory_usage_percent")
        wait_for("nothing firing", lambda: alerts_now(cfg) == [])
        write_meminfo(proc, 95.0)  # a new problem: repeated again, not acked
        agent.wait_line("[CRITICAL]", "memory_usage_percent", "still firing for")
        [again] = alerts_now(cfg)
        assert again["acked_by"] is None and again["id"] != before["id"]
    finally:
        assert agent.stop() == 0


def test_status_lists_an_alert_restored_after_a_restart_with_its_since(tmp_path: Path) -> None:
    proc = minimal_procfs(tmp_path, used_percent=85.0)
    cfg = agent_config(tmp_path, proc)
    agent = AgentProcess(["run", "--config", str(cfg)])
    try:
        agent.wait_line("[WARN]", "memory_usage_percent")
        wait_for("the alert in status", lambda: len(alerts_now(cfg)) == 1)
        [before] = alerts_now(cfg)
    finally:
        assert agent.stop() == 0

    agent = AgentProcess(["run", "--config", str(cfg)])
    try:
        agent.wait_stderr("firing alert(s) restored")
        wait_for("the restored alert in status", lambda: len(alerts_now(cfg)) == 1)
        [after] = alerts_now(cfg)
        assert after["metric"] == "memory_usage_percent" and after["severity"] == "warn"
        assert (after["id"], after["since"]) == (before["id"], before["since"])
        text = cli("status", "--config", str(cfg)).stdout
        assert "FIRING ALERTS (1)" in text and before["id"][:8] in text
        assert lines(agent, "memory_usage_percent") == []  # not notified again
    finally:
        assert agent.stop() == 0


def test_sigkill_inside_the_group_window_loses_nothing(
    tmp_path: Path,
    receiver: Receiver,  # noqa: F811 - the fixture
) -> None:
    """The console groups for 30 s, the webhook sends at once. Killed inside the window:
    after the restart the console gets the held alert (delayed, with its time), the webhook
    gets no id twice; the condition still holds, so the alert is delivered after the
    restart whether or not its state was saved before the kill."""
    proc = minimal_procfs(tmp_path, used_percent=95.0)
    cfg = config(tmp_path, proc, receiver.url)
    cfg.write_text(cfg.read_text().replace("group_window_secs = 0", "group_window_secs = 30"))
    agent = AgentProcess(["run", "--config", str(cfg)])
    try:
        receiver.wait(1)
        # killed after the webhook's delivery was acknowledged (killed between the send
        # and the acknowledgement, a second delivery of the same id is by design)
        wait_for("the webhook delivery acknowledged", lambda: channel(cfg, "webhook")["sent"] == 1)
        assert lines(agent, "memory_usage_percent") == []  # the console's group is open
        agent.signal(signal.SIGKILL)
        agent.proc.wait(10)
    finally:
        agent.stop()
    [first] = receiver.delivered()

    agent = AgentProcess(["run", "--config", str(cfg)])
    try:
        line = agent.wait_line("[CRITICAL]", "memory_usage_percent", "delayed notification")
        assert "raised" in line
        time.sleep(2.0)  # a second webhook delivery would come now
    finally:
        assert agent.stop() == 0
    ids = receiver.delivered()
    assert ids.count(first) == 1 and len(ids) == len(set(ids)), ids


def test_an_alert_held_by_a_silence_is_still_held_after_a_restart_and_sent_when_it_ends(
    tmp_path: Path,
) -> None:
    """Silenced before it ever went out: after a restart its analyzer restores it as
    firing (no new alert), so only the silence stage's saved state can still send it."""
    proc = minimal_procfs(tmp_path, used_percent=10.0)
    cfg = agent_config(tmp_path, proc)
    agent = AgentProcess(["run", "--config", str(cfg)])
    try:
        wait_for("socket", lambda: (tmp_path / "data" / "control.sock").exists())
        r = cli(
            "silence", "add", "metric=memory_usage_percent", "--for", "25s", "--config", str(cfg)
        )
        assert r.returncode == 0, r.stderr
        write_meminfo(proc, 85.0)
        wait_for("the warn held", lambda: [a["muted"] for a in alerts_now(cfg)] == ["silenced"])
    finally:
        assert agent.stop() == 0
    assert lines(agent, "memory_usage_percent") == []

    agent = AgentProcess(["run", "--config", str(cfg)])
    try:
        agent.wait_stderr("firing alert(s) restored")
        wait_for("still held", lambda: [a["muted"] for a in alerts_now(cfg)] == ["silenced"])
        line = agent.wait_line("[WARN]", "memory_usage_percent", timeout=40)
        assert "its silence ended" in line
        time.sleep(2.0)
        assert len(lines(agent, "memory_usage_percent")) == 1  # once
    finally:
        assert agent.stop() == 0
