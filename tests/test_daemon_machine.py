"""The daemon raises the alerts of issue 16's collectors from a fixture tree it reads live."""

from __future__ import annotations

import os
from pathlib import Path

from tests.agentproc import AgentProcess, agent_config, minimal_procfs


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name("." + path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def test_conntrack_full_and_link_down_alerts(tmp_path: Path) -> None:
    proc = minimal_procfs(tmp_path)
    netfilter = proc / "sys" / "net" / "netfilter"
    _write(netfilter / "nf_conntrack_count", "1000\n")
    _write(netfilter / "nf_conntrack_max", "100000\n")
    links = tmp_path / "sys" / "class" / "net"
    _write(links / "eth0" / "operstate", "up\n")
    _write(links / "ifb0" / "operstate", "down\n")  # never up: must stay quiet
    config = agent_config(tmp_path, proc, "[collector.netstack]\ninterval_secs = 1\n")
    agent = AgentProcess(["run", "--config", str(config)])
    try:
        agent.wait_stderr("collectors: ")
        _write(netfilter / "nf_conntrack_count", "96000\n")
        line = agent.wait_line("conntrack_usage_percent", "[EMERGENCY]")
        assert "96" in line
        # by now eth0 has been seen up: going down is news
        _write(links / "eth0" / "operstate", "down\n")
        line = agent.wait_line("link eth0 is down (it was up)")
        assert "[CRITICAL]" in line
        _write(links / "eth0" / "operstate", "up\n")
        agent.wait_line("link eth0 is up again", "[RESOLVED]")
    finally:
        code = agent.stop()
    assert code == 0, "".join(agent.stderr)
    assert not [line for line in agent.stdout if "ifb0" in line]
