"""The daemon raises the alerts of issue 16's collectors from a fixture tree it reads live."""

from __future__ import annotations

import os
from pathlib import Path

from tests.support.agentproc import AgentProcess, agent_config, minimal_procfs


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


def test_oom_kill_in_a_cgroup_raises_a_critical_alert_naming_the_unit(tmp_path: Path) -> None:
    proc = minimal_procfs(tmp_path)
    cgroot = tmp_path / "sys" / "fs" / "cgroup"
    _write(cgroot / "cgroup.controllers", "cpuset cpu io memory pids\n")
    nginx = cgroot / "system.slice" / "nginx.service"
    _write(nginx / "memory.current", "314572800\n")
    _write(nginx / "memory.max", "536870912\n")
    events = "low 0\nhigh 0\nmax {n}\noom {n}\noom_kill {n}\noom_group_kill 0\n"
    _write(nginx / "memory.events", events.format(n=0))
    # a warn level the service is already above: its alert shows the collector has read it once
    extra = "[collector.cgroup]\ninterval_secs = 1\n[thresholds.cgroup_memory_usage_percent]\nwarn = 50.0\n"
    config = agent_config(tmp_path, proc, extra)
    agent = AgentProcess(["run", "--config", str(config)])
    try:
        agent.wait_line("cgroup_memory_usage_percent", "[WARN]")
        _write(nginx / "memory.events", events.format(n=1))
        line = agent.wait_line("OOM kill in nginx.service")
        assert "[CRITICAL]" in line and "1 process killed" in line
    finally:
        code = agent.stop()
    assert code == 0, "".join(agent.stderr)


def test_md_array_losing_a_disk_raises_a_critical_alert(tmp_path: Path) -> None:
    proc = minimal_procfs(tmp_path)
    healthy = (
        "Personalities : [raid1]\n"
        "md1 : active raid1 sdb2[1] sda2[0]\n"
        "      976630464 blocks super 1.2 [2/2] [UU]\n\n"
        "unused devices: <none>\n"
    )
    _write(proc / "mdstat", healthy)
    config = agent_config(tmp_path, proc, "[collector.hardware]\ninterval_secs = 1\n")
    agent = AgentProcess(["run", "--config", str(config)])
    try:
        agent.wait_stderr("collectors: ")
        degraded = healthy.replace("sdb2[1]", "sdb2[1](F)").replace("[2/2] [UU]", "[2/1] [U_]")
        _write(proc / "mdstat", degraded)
        line = agent.wait_line("RAID array md1 is degraded")
        assert "[CRITICAL]" in line
    finally:
        code = agent.stop()
    assert code == 0, "".join(agent.stderr)


def test_gpu_at_its_temperature_limit_raises_a_critical_alert(tmp_path: Path) -> None:
    from tests.unit.collectors.test_gpu import fake_nvidia_smi

    proc = minimal_procfs(tmp_path)
    fake_nvidia_smi(tmp_path / "bin", "h100_hot")  # found on PATH, as on a real host
    env = dict(os.environ, PATH=f"{tmp_path / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}")
    config = agent_config(tmp_path, proc, "[collector.gpu]\ninterval_secs = 1\n")
    agent = AgentProcess(["run", "--config", str(config)], env=env)
    try:
        line = agent.wait_line("GPU 0 (NVIDIA H100 80GB HBM3) reached its temperature limit")
        assert "[CRITICAL]" in line
    finally:
        code = agent.stop()
    assert code == 0, "".join(agent.stderr)
