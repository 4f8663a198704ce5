"""The daemon as a real subprocess against a fixture procfs that the test rewrites."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.agentproc import AgentProcess, agent_config, minimal_procfs, write_meminfo


@pytest.fixture
def procfs(tmp_path: Path) -> Path:
    return minimal_procfs(tmp_path)


def test_threshold_alert_fires_and_resolves_then_sigterm(tmp_path: Path, procfs: Path) -> None:
    config = agent_config(tmp_path, procfs)
    agent = AgentProcess(["run", "--config", str(config)])
    try:
        agent.wait_stderr("collectors: ")
        pid_file = tmp_path / "agent.pid"
        assert pid_file.read_text().strip() == str(agent.proc.pid)

        write_meminfo(procfs, 93.0)  # above the critical level 90
        line = agent.wait_line("memory_usage_percent", "[CRITICAL]")
        assert "test-host" in line and "93" in line

        write_meminfo(procfs, 40.0)
        agent.wait_line("memory_usage_percent", "[RESOLVED]")
    finally:
        started = time.monotonic()
        code = agent.stop()
    assert code == 0, "".join(agent.stderr)
    assert time.monotonic() - started < 12
    assert not (tmp_path / "agent.pid").exists()
    assert any("sysops-agent stopped" in line for line in agent.stderr)


def test_sighup_with_broken_config_keeps_the_old_one(tmp_path: Path, procfs: Path) -> None:
    config = agent_config(tmp_path, procfs)
    agent = AgentProcess(["run", "--config", str(config)])
    try:
        agent.wait_stderr("collectors: ")
        good = config.read_text()
        config.write_text(good + "\n[agent\n")  # unparseable
        agent.signal(signal.SIGHUP)
        agent.wait_stderr("config reload failed, keeping the old configuration")
        assert agent.proc.poll() is None
        # The old configuration is still in force: memory is collected and alerted on.
        write_meminfo(procfs, 95.0)
        agent.wait_line("memory_usage_percent", "[CRITICAL]")

        # A valid reload is applied: raising the critical level resolves down to warn.
        config.write_text(good + "\n[thresholds.memory_usage_percent]\ncritical = 97.0\n")
        agent.signal(signal.SIGHUP)
        agent.wait_stderr("configuration reloaded")
        assert agent.proc.poll() is None
    finally:
        code = agent.stop()
    assert code == 0


def test_second_agent_refuses_a_live_pid_file(tmp_path: Path, procfs: Path) -> None:
    config = agent_config(tmp_path, procfs)
    first = AgentProcess(["run", "--config", str(config)])
    try:
        first.wait_stderr("collectors: ")
        second = subprocess.run(
            [sys.executable, "-m", "sysops_agent", "run", "--config", str(config)],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert second.returncode == 1
        assert f"another sysops-agent is running (pid {first.proc.pid}" in second.stderr
        assert first.proc.poll() is None
    finally:
        assert first.stop() == 0


def test_stale_pid_file_is_taken_over(tmp_path: Path, procfs: Path) -> None:
    config = agent_config(tmp_path, procfs)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / "agent.pid").write_text(f"{dead.pid}\n")
    agent = AgentProcess(["run", "--config", str(config)])
    try:
        agent.wait_stderr(
            f"took over stale PID file {tmp_path / 'agent.pid'} (pid {dead.pid} is gone)"
        )
    finally:
        assert agent.stop() == 0


def test_unparseable_config_exits_2_with_line_and_column(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[agent]\nhostname = \n")
    result = subprocess.run(
        [sys.executable, "-m", "sysops_agent", "run", "--config", str(bad)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "line 2" in result.stderr and "column" in result.stderr


def test_literal_secret_in_readable_file_refuses_to_start(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(
        '[alerting.discord]\nenabled = true\nwebhook_url = "https://discord.example/api/webhooks/1/TOKENXYZ"\n'
    )
    os.chmod(path, 0o644)
    result = subprocess.run(
        [sys.executable, "-m", "sysops_agent", "run", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "chmod 600" in result.stderr and "TOKENXYZ" not in result.stderr


def test_sighup_keeps_the_procfs_given_on_the_command_line(tmp_path: Path, procfs: Path) -> None:
    """``run --procfs DIR``: a reload re-applies the override instead of falling back to /proc.

    The file names a procfs without meminfo; only the ``--procfs`` tree has one.
    A reload that lost the override would read the file's tree (no memory
    samples at all) and the alert after the reload would never come.
    """
    empty = tmp_path / "file-proc"
    empty.mkdir()
    config = agent_config(tmp_path, empty)
    agent = AgentProcess(["run", "--config", str(config), "--procfs", str(procfs)])
    try:
        agent.wait_stderr("collectors: ")
        write_meminfo(procfs, 93.0)
        agent.wait_line("memory_usage_percent", "[CRITICAL]")
        # a change that rebuilds the collectors, so the reload really re-reads proc_root
        text = config.read_text().replace(
            "[collector.uptime]\ninterval_secs = 1", "[collector.uptime]\ninterval_secs = 2"
        )
        config.write_text(text)
        agent.signal(signal.SIGHUP)
        agent.wait_stderr("configuration reloaded")
        write_meminfo(procfs, 99.5)  # above the emergency level 99
        line = agent.wait_line("memory_usage_percent", "[EMERGENCY]")
        assert "99.5" in line
        assert not any("/file-proc" in line and "meminfo" in line for line in agent.stderr)
    finally:
        code = agent.stop()
    assert code == 0, "".join(agent.stderr)
