"""The dead-man's switch: heartbeat pings to a push monitor, and the Alertmanager Watchdog."""

from __future__ import annotations

import signal
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import pytest

from sysops_agent.channels.heartbeat import ping_url
from tests.integration.conftest import alertmanager, alertmanager_bin  # noqa: F401 - fixtures
from tests.support.agentproc import AgentProcess, agent_config, minimal_procfs
from tests.support.servers import Server, get_json, poll

HC = "https://hc-ping.com/5f2c1e0a-0000-4000-8000-000000000001"
KUMA = "https://kuma.example/api/push/Tok3n?status=up&msg=OK&ping="
CRONITOR = "https://cronitor.link/p/KEY/nightly"


@pytest.mark.parametrize(
    ("url", "style", "problem", "expected"),
    [
        (HC, "healthchecks", None, HC),
        (HC, "healthchecks", "webhook failing", HC + "/fail"),
        (HC + "/", "healthchecks", "x", HC + "/fail"),
        (KUMA, "uptime-kuma", None, "https://kuma.example/api/push/Tok3n?ping=&status=up&msg=OK"),
        (
            KUMA,
            "uptime-kuma",
            "slack disabled",
            "https://kuma.example/api/push/Tok3n?ping=&status=down&msg=slack+disabled",
        ),
        (CRONITOR, "cronitor", None, CRONITOR + "?state=complete"),
        (CRONITOR, "cronitor", "q full", CRONITOR + "?state=fail&message=q+full"),
        ("http://mon/x", "plain", "anything", "http://mon/x"),
    ],
)
def test_ping_url_conventions(url: str, style: str, problem: Optional[str], expected: str) -> None:
    assert ping_url(url, style, problem) == expected


class Monitor:
    """A push monitor on loopback: records every ping's method, path and body; 503 on /hook."""

    def __init__(self) -> None:
        self.pings: List[Dict[str, Any]] = []
        monitor = self

        class Handler(BaseHTTPRequestHandler):
            def _record(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode() if length else ""
                status = 503 if self.path.startswith("/hook") else 200
                if status == 200:
                    monitor.pings.append(
                        {"method": self.command, "path": self.path, "body": body, "t": time.time()}
                    )
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"OK")

            do_GET = _record
            do_POST = _record

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def wait(self, what: str, fn: Any, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while not fn():
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: pings so far {self.pings}")
            time.sleep(0.05)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def monitor() -> Iterator[Monitor]:
    m = Monitor()
    yield m
    m.close()


def test_killed_agent_heartbeat_stops_and_degraded_health_pings_fail(
    tmp_path: Path, monitor: Monitor
) -> None:
    proc = minimal_procfs(tmp_path, used_percent=10.0)
    cfg = agent_config(
        tmp_path,
        proc,
        f"""
[alerting.heartbeat]
url = "{monitor.url}/ping/abc"
interval_secs = 1
method = "POST"

[alerting.webhook]
enabled = true
url = "{monitor.url}/hook"
""",
    )
    cfg.chmod(0o600)
    agent = AgentProcess(["run", "--config", str(cfg)])
    try:
        monitor.wait("two healthy pings", lambda: len(monitor.pings) >= 2)
        assert {p["path"] for p in monitor.pings} == {"/ping/abc"}
        assert monitor.pings[0]["body"] == "ok"
        # the webhook answers 503: once an alert fails, the heartbeat says so
        from tests.support.agentproc import write_meminfo

        write_meminfo(proc, 95.0)
        monitor.wait("a /fail ping", lambda: monitor.pings[-1]["path"] == "/ping/abc/fail")
        assert "webhook failing since" in monitor.pings[-1]["body"]
        assert not any(f"{monitor.url}/ping/abc" in line for line in agent.stderr)  # masked
        agent.signal(signal.SIGKILL)
        agent.proc.wait(10)
        killed = time.time()
        time.sleep(3.0)  # three intervals
        assert all(p["t"] <= killed + 0.1 for p in monitor.pings), "pinged after the kill"
    finally:
        agent.stop()


@pytest.mark.integration
def test_killed_agent_watchdog_ends_in_alertmanager(
    tmp_path: Path,
    alertmanager: Server,  # noqa: F811 - the fixture
) -> None:
    proc = minimal_procfs(tmp_path, used_percent=10.0)
    cfg = agent_config(
        tmp_path,
        proc,
        f"""
[alerting.alertmanager]
enabled = true
url = "{alertmanager.url}"
resend_interval_secs = 10
""",
    )
    agent = AgentProcess(["run", "--config", str(cfg)])

    def watchdog() -> List[Dict[str, Any]]:
        data = get_json(alertmanager.url + "/api/v2/alerts")
        return [a for a in data if a["labels"].get("alertname") == "SysopsAgentWatchdog"]

    try:
        (wd,) = poll("the Watchdog alert", lambda: watchdog() or None)
        assert wd["labels"] == {
            "alertname": "SysopsAgentWatchdog",
            "instance": "test-host",
            "severity": "none",
        }
        assert wd["status"]["state"] == "active"
        agent.signal(signal.SIGKILL)
        agent.proc.wait(10)
    finally:
        agent.stop()
    # nobody refreshes it: its endsAt (at most 4 x 10 s ahead) lapses and it leaves the list
    poll("the Watchdog to end", lambda: not watchdog() or None, timeout=60)


def test_graceful_stop_sends_one_stopping_notice(tmp_path: Path) -> None:
    proc = minimal_procfs(tmp_path, used_percent=10.0)
    cfg = agent_config(tmp_path, proc, "notify_on_stop = true\n")
    agent = AgentProcess(["run", "--config", str(cfg)])
    try:
        agent.wait_stderr("collectors: ")
    finally:
        assert agent.stop() == 0
    notices = [line for line in agent.stdout if "stopping (pid" in line]
    assert len(notices) == 1 and "sysops-agent on test-host stopping" in notices[0]
