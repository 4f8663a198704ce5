"""The real agent (a subprocess) against a real webhook receiver on loopback: outages, SIGTERM, SIGKILL.

The receiver is :class:`Receiver`, a threaded ``http.server`` that records
every request with the status it answered. During an "outage" it answers 503
(or never answers); every webhook body carries the alert ``id``, which stays
the same across retries and restarts, so "delivered once" is checked by id.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import pytest

from sysops_agent.daemon import SHUTDOWN_BUDGET_SECS
from tests.support.agentproc import AgentProcess, agent_config, minimal_procfs, write_meminfo


class Receiver:
    """A webhook receiver: ``mode`` is "up" (200), "down" (503) or "hang" (no answer)."""

    def __init__(self) -> None:
        self.mode = "up"
        self.requests: List[Tuple[int, Dict[str, Any]]] = []
        self.release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                mode = receiver.mode
                if mode == "hang":
                    receiver.requests.append((0, body))
                    receiver.release.wait(30)
                    return
                status = 200 if mode == "up" else 503
                receiver.requests.append((status, body))
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def wait(self, n: int, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.requests) < n:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.requests)} requests, expected {n}")
            time.sleep(0.05)

    def delivered(self) -> List[str]:
        """Ids the receiver accepted (200), in order, duplicates kept."""
        return [body["id"] for status, body in self.requests if status == 200]

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def config(tmp_path: Path, proc: Path, url: str) -> Path:
    extra = f"""
[alerting.console]
enabled = true
min_severity = "warn"

[alerting.webhook]
enabled = true
url = "{url}"
"""
    path = agent_config(tmp_path, proc, extra)
    path.chmod(0o600)  # the webhook URL is a secret
    return path


def start(cfg: Path) -> AgentProcess:
    return AgentProcess(["run", "--config", str(cfg)])


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_notifications_of_an_outage_survive_the_agent_stopping(
    tmp_path: Path, receiver: Receiver, sig: signal.Signals
) -> None:
    proc = minimal_procfs(tmp_path, used_percent=95.0)
    cfg = config(tmp_path, proc, receiver.url)
    receiver.mode = "down"
    agent = start(cfg)
    try:
        agent.wait_line("memory_usage_percent", "[CRITICAL]")
        receiver.wait(2)  # tried, refused, tried again: it is in the outbox
        agent.signal(sig)
        agent.proc.wait(15)
    finally:
        agent.stop()
    during = {body["id"] for _, body in receiver.requests}
    assert len(during) == 1 and receiver.delivered() == []

    write_meminfo(proc, 10.0)  # the condition is over while the agent is down
    receiver.mode = "up"
    agent = start(cfg)
    try:
        deadline = time.monotonic() + 20
        while not during <= set(receiver.delivered()) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.5)  # a second delivery would come now
    finally:
        assert agent.stop() == 0
    ids = receiver.delivered()
    assert during <= set(ids), (during, ids)
    assert len(ids) == len(set(ids)), f"delivered twice: {ids}"
    first = next(body for status, body in receiver.requests if status == 200)
    assert "delayed notification, raised" in first["message"]


def test_sigterm_exits_within_the_budget_with_a_hanging_receiver(
    tmp_path: Path, receiver: Receiver
) -> None:
    """The in-flight request never answers: SIGTERM still ends the agent within 10 s."""
    proc = minimal_procfs(tmp_path, used_percent=95.0)
    cfg = config(tmp_path, proc, receiver.url)
    receiver.mode = "hang"
    agent = start(cfg)
    try:
        agent.wait_line("memory_usage_percent", "[CRITICAL]")
        receiver.wait(1)
        sent = time.monotonic()
        agent.signal(signal.SIGTERM)
        code = agent.proc.wait(30)
        took = time.monotonic() - sent
    finally:
        agent.stop()
    assert code == 0
    assert took <= SHUTDOWN_BUDGET_SECS, f"exit took {took:.2f} s after SIGTERM"
    assert any("kept in the outbox for the next start" in line for line in agent.stderr)
