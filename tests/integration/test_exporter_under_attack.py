"""Issue 18 item 1: 2,000 slow connections to /metrics must not blind the running agent.

Before: one thread per connection, no read timeout, no cap — 1,006 threads for
1,000 idle connections, RSS 39 -> 66 MB, and under the usual 1,024 file limit
every collector failed with ``[Errno 24] Too many open files``, so memory at
98 % was never detected. The agent below runs with that 1,024 limit.
"""

from __future__ import annotations

import contextlib
import resource
import socket
import time
import urllib.request
from pathlib import Path
from typing import List

import pytest

from tests.support.agentproc import AgentProcess, agent_config, minimal_procfs, write_meminfo

ATTACKERS = 2000
INTERVAL = 3.0  # the memory collector's interval: the alert must come within two of them


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def scrape(port: int) -> bytes:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        return bytes(resp.read())


def test_memory_alert_fires_while_2000_slow_connections_are_held(tmp_path: Path) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < ATTACKERS + 200:
        pytest.skip(f"the test needs {ATTACKERS + 200} file descriptors (hard limit {hard})")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, ATTACKERS + 200), hard))
    proc = minimal_procfs(tmp_path, used_percent=10.0)
    port = free_port()
    config = agent_config(
        tmp_path,
        proc,
        extra=f"[prometheus]\nenabled = true\nport = {port}\n",
    )
    text = config.read_text().replace(
        "[collector.memory]\ninterval_secs = 1", f"[collector.memory]\ninterval_secs = {INTERVAL:g}"
    )
    config.write_text(text)
    agent = AgentProcess(["run", "--config", str(config)])
    attackers: List[socket.socket] = []
    try:
        # the usual default soft limit, as under systemd without LimitNOFILE
        resource.prlimit(agent.proc.pid, resource.RLIMIT_NOFILE, (1024, 1024))
        agent.wait_stderr(f"127.0.0.1:{port}/metrics")
        time.sleep(1.0)
        scrape(port)
        baseline = rss_kib(agent.proc.pid)

        for _ in range(ATTACKERS):
            s = socket.socket()
            s.setblocking(False)
            try:
                s.connect_ex(("127.0.0.1", port))
            finally:
                attackers.append(s)
        time.sleep(0.5)
        for s in attackers:  # a slowloris: a request head that never ends
            with contextlib.suppress(OSError):
                s.send(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")

        write_meminfo(proc, 98.0)
        agent.wait_line("memory_usage_percent", "[CRITICAL]", timeout=2 * INTERVAL + 1.0)
        grown = rss_kib(agent.proc.pid) - baseline
        assert grown <= 5 * 1024, f"RSS grew by {grown} KiB under attack"
        assert not any("Too many open files" in line for line in agent.stderr), agent.stderr
        # the endpoint still answers once the attack ends
        for s in attackers:
            s.close()
        attackers.clear()
        time.sleep(0.3)
        assert b"sysops_memory_usage_ratio" in scrape(port)
    finally:
        for s in attackers:
            s.close()
        code = agent.stop()
    assert code == 0, "".join(agent.stderr)
