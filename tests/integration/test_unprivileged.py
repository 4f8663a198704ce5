"""No root: the agent as ``nobody``, without capabilities, against the LIVE /proc.

It must collect what it can (scraped from its own Prometheus endpoint), say
once per kind what it cannot read (other users' /proc/<pid>/fd without
CAP_DAC_READ_SEARCH, their /proc/<pid>/io without CAP_SYS_PTRACE, /dev/kmsg
without CAP_SYSLOG), keep running, and exit 0
on SIGTERM.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Dict, Iterator, List

import pytest

from tests.support.agentproc import AgentProcess
from tests.support.distbuild import built_pyz, system_python

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="switching to another user (setpriv) needs root"
)

#: collection cycles to watch (every collector runs each second in this test)
CYCLES = 4


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The .pyz and a data dir where ``nobody`` can reach them (pytest's tmp is 0700)."""
    root = Path(tempfile.mkdtemp(prefix="sysops-nobody-", dir="/tmp"))
    try:
        root.chmod(0o755)
        shutil.copy2(built_pyz(tmp_path_factory), root / "sysops-agent.pyz")
        (root / "sysops-agent.pyz").chmod(0o755)
        nobody = pwd.getpwnam("nobody")
        data = root / "data"
        data.mkdir(mode=0o700)
        os.chown(data, nobody.pw_uid, nobody.pw_gid)
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def config_text(data: Path, port: int) -> str:
    collectors = ("cpu", "memory", "disk_io", "disk_usage", "network", "process", "fd", "load")
    sections = "".join(f"[collector.{c}]\ninterval_secs = 1\n" for c in collectors)
    return f"""
[agent]
hostname = "nobody-host"
data_dir = "{data}"
{sections}
[collector.log]
enabled = true
kmsg = true

[analyzer]
interval_secs = 1

[storage]
sqlite = true

[prometheus]
enabled = true
listen_address = "127.0.0.1"
port = {port}
"""


def scrape(port: int) -> Dict[str, float]:
    """Metric name -> first value; empty while the endpoint is not up yet."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            body = resp.read().decode()
    except OSError:  # URLError is an OSError: connection refused until it listens
        return {}
    out: Dict[str, float] = {}
    for line in body.splitlines():
        if line and not line.startswith("#"):
            name = line.split("{", 1)[0].split(" ", 1)[0]
            out.setdefault(name, float(line.rsplit(" ", 1)[1]))
    return out


def lines_with(lines: List[str], *needles: str) -> List[str]:
    return [ln for ln in lines if all(n.lower() in ln.lower() for n in needles)]


def test_runs_as_nobody_against_live_proc(workdir: Path) -> None:
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("setpriv (util-linux) is not installed")
    python = system_python()
    if python is None:
        pytest.skip("no system /usr/bin/python3 >= 3.9 that nobody can run")
    port = free_port()
    config = workdir / "agent.toml"
    config.write_text(config_text(workdir / "data", port))
    config.chmod(0o644)
    command = [
        setpriv,
        "--reuid=nobody",
        "--regid=nogroup",
        "--clear-groups",
        "--inh-caps=-all",
        "--bounding-set=-all",
        "--no-new-privs",
        python,
        "-I",
        str(workdir / "sysops-agent.pyz"),
        "run",
        "--config",
        str(config),
    ]
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
    agent = AgentProcess(command=command, env=env, cwd=workdir)
    try:
        agent.wait_stderr("collectors: ")
        pid = agent.proc.pid
        status = Path(f"/proc/{pid}/status").read_text()
        assert f"Uid:\t{pwd.getpwnam('nobody').pw_uid}\t" in status
        assert "CapEff:\t0000000000000000" in status

        # collects what it can: wait for the second reading of every rate collector
        deadline = time.monotonic() + 30
        metrics: Dict[str, float] = {}
        # (the exporter's names: sysops_ prefix, percentages as 0-1 ratios)
        names = "cpu_usage_ratio memory_usage_ratio load_avg_1m processes process_rss_bytes"
        wanted = [
            f"sysops_{m}" for m in (*names.split(), "net_rx_bytes_per_second", "fd_usage_ratio")
        ]
        while time.monotonic() < deadline:
            metrics = scrape(port)
            if all(m in metrics for m in wanted):
                break
            time.sleep(0.5)
        for m in wanted:
            assert m in metrics, f"{m} not collected as nobody; got {sorted(metrics)}"
        assert metrics["sysops_processes"] > 1
        # several more cycles: the skips must still be reported only once
        time.sleep(CYCLES)
        assert agent.proc.poll() is None, "".join(agent.stderr)
    finally:
        code = agent.stop(timeout=25)
    stderr = agent.stderr
    assert code == 0, "".join(stderr)
    assert not lines_with(stderr, "Traceback"), "".join(stderr)

    kmsg = lines_with(stderr, "/dev/kmsg")
    assert len(kmsg) == 1, f"expected one line about /dev/kmsg:\n{''.join(stderr)}"
    assert "CAP_SYSLOG" in kmsg[0]
    denied = lines_with(stderr, "process", "CAP_DAC_READ_SEARCH")
    # Linux 6.2+ gives every process's descriptor count as the size of /proc/<pid>/fd:
    # nothing of theirs is unreadable then (procfs.count_fds)
    expected = 0 if os.stat(f"/proc/{os.getpid()}/fd").st_size > 0 else 1
    assert len(denied) == expected, (
        f"unreadable processes said {len(denied)} times:\n{''.join(stderr)}"
    )
    io = lines_with(stderr, "/io", "CAP_SYS_PTRACE")
    assert len(io) == 1, f"expected one line about other users' /proc/<pid>/io:\n{''.join(stderr)}"
