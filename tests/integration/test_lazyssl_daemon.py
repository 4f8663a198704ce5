"""The real agent as a subprocess: OpenSSL is mapped only when a channel needs it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from sysops_agent import lazyssl

#: on a Python outside the matrix the deferral is off by design
deferring = pytest.mark.skipif(
    not lazyssl.deferral_proven(sys.version_info),
    reason="ssl deferral is off on a Python version the matrix does not test",
)


@deferring
async def test_the_daemon_sends_mail_over_starttls_after_deferring_ssl(tmp_path: Path) -> None:
    """End to end: the real agent (CLI, ssl deferred) e-mails a critical alert over STARTTLS."""
    import asyncio

    from tests.support.agentproc import AgentProcess, agent_config, minimal_procfs, write_meminfo
    from tests.support.smtpserver import SMTPTestServer, make_tls

    tls = make_tls(tmp_path)
    srv = await SMTPTestServer(tls=tls, security="starttls").start()
    procfs = minimal_procfs(tmp_path)
    config = agent_config(
        tmp_path,
        procfs,
        f"""
[alerting.email]
enabled = true
smtp_host = "127.0.0.1"
smtp_port = {srv.port}
security = "starttls"
from_addr = "agent@example.com"
to_addrs = ["ops@example.com"]
ca_file = "{tls.ca_file}"
""",
    )
    agent = AgentProcess(["run", "--config", str(config)])
    try:
        await asyncio.to_thread(agent.wait_stderr, "collectors: ")
        with open(f"/proc/{agent.proc.pid}/maps") as f:
            assert "libssl" in f.read()  # the e-mail channel imported ssl at start-up
        write_meminfo(procfs, 93.0)
        for _ in range(200):
            if srv.messages:
                break
            await asyncio.sleep(0.1)
        assert srv.messages, "".join(agent.stderr)
        got = srv.messages[0]
        assert got.tls
        assert "memory_usage_percent" in got.message["Subject"]
    finally:
        code = await asyncio.to_thread(agent.stop)
        await srv.stop()
    assert code == 0, "".join(agent.stderr)


@deferring
def test_a_console_only_daemon_maps_no_openssl(tmp_path: Path) -> None:
    from tests.support.agentproc import AgentProcess, agent_config, minimal_procfs, write_meminfo

    procfs = minimal_procfs(tmp_path)
    agent = AgentProcess(["run", "--config", str(agent_config(tmp_path, procfs))])
    try:
        agent.wait_stderr("collectors: ")
        write_meminfo(procfs, 93.0)
        agent.wait_line("memory_usage_percent", "[CRITICAL]")
        with open(f"/proc/{agent.proc.pid}/maps") as f:
            maps = f.read()
        assert "libssl" not in maps and "libcrypto" not in maps
    finally:
        code = agent.stop()
    assert code == 0, "".join(agent.stderr)
