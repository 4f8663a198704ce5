"""systemd's Type=notify protocol (issue 15 item 6): READY=1 after the first collection,
WATCHDOG=1 pings from the event loop, STATUS= with the firing alerts, over a real
datagram socket given as NOTIFY_SOCKET."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from pathlib import Path
from typing import Iterator, List, Optional, Tuple

import pytest

from sysops_agent.clock import SystemClock
from sysops_agent.model import Alert, AlertState, Severity, make_labels
from sysops_agent.sdnotify import Notifier, SystemdService, socket_address, watchdog_interval
from tests.support.agentproc import AgentProcess, agent_config, minimal_procfs, write_meminfo


class NotifySocket:
    """The systemd end: a bound AF_UNIX datagram socket; ``datagrams`` in arrival order."""

    def __init__(self, address: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(socket_address(address))
        self.sock.settimeout(0.2)
        self.address = address
        self.datagrams: List[Tuple[float, str]] = []

    def receive(self, timeout: float) -> Optional[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            text = data.decode()
            self.datagrams.append((time.monotonic(), text))
            return text
        return None

    def wait_for(self, needle: str, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.receive(deadline - time.monotonic())
            if text is not None and needle in text.split("\n"):
                return text
        raise AssertionError(f"no {needle!r} within {timeout}s; got {self.datagrams!r}")

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[NotifySocket]:
    s = NotifySocket(str(tmp_path / "notify"))
    yield s
    s.close()


def test_socket_address_and_watchdog_interval() -> None:
    assert socket_address("/run/systemd/notify") == "/run/systemd/notify"
    assert socket_address("@abstract/name") == "\0abstract/name"
    assert watchdog_interval({}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "30000000"}) == 15.0
    assert watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}, pid=2) is None
    assert watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "2"}, pid=2) == 15.0
    assert watchdog_interval({"WATCHDOG_USEC": "junk"}) is None


def test_without_notify_socket_nothing_is_sent() -> None:
    n = Notifier.from_environ({})
    assert not n.enabled
    assert n.notify("READY=1") is False


def test_abstract_namespace_socket() -> None:
    name = f"@sysops-agent-test-{os.getpid()}-{threading.get_ident()}"
    server = NotifySocket(name)
    try:
        n = Notifier.from_environ({"NOTIFY_SOCKET": name})
        assert n.notify("READY=1", "STATUS=up")
        assert server.receive(5) == "READY=1\nSTATUS=up"
        n.close()
    finally:
        server.close()


def test_a_vanished_socket_is_reported_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    n = Notifier(str(tmp_path / "gone"))
    assert n.notify("WATCHDOG=1") is False
    assert n.notify("WATCHDOG=1") is False
    n.close()
    assert len([r for r in caplog.records if "notification" in r.getMessage()]) == 1


def alert(metric: str, severity: Severity, state: AlertState = AlertState.FIRING) -> Alert:
    return Alert(
        timestamp=0.0,
        hostname="h",
        severity=severity,
        metric=metric,
        value=1.0,
        threshold=1.0,
        message="m",
        analyzer="threshold",
        labels=make_labels(device="sda"),
        state=state,
    )


def test_status_counts_firing_alerts(notify_socket: NotifySocket) -> None:
    service = SystemdService(Notifier(notify_socket.address), None, SystemClock())

    async def main() -> None:
        first_cycle = asyncio.Event()
        task = asyncio.ensure_future(service.run(first_cycle))
        await asyncio.sleep(0.05)
        assert notify_socket.receive(2) == "STATUS=starting: first collection"
        first_cycle.set()
        await task  # no watchdog: returns after READY=1
        assert notify_socket.receive(2) == "READY=1\nSTATUS=0 alerts firing"
        service.observe(alert("disk_usage_percent", Severity.WARN))
        assert notify_socket.receive(2) == "STATUS=1 alert firing (1 warn)"
        service.observe(alert("disk_usage_percent", Severity.CRITICAL))  # escalation: same one
        service.observe(alert("memory_usage_percent", Severity.WARN))
        service.observe(alert("disk_usage_percent", Severity.CRITICAL, AlertState.RESOLVED))
        assert notify_socket.receive(2) == "STATUS=1 alert firing (1 critical)"
        assert notify_socket.receive(2) == "STATUS=2 alerts firing (1 critical, 1 warn)"
        assert notify_socket.receive(2) == "STATUS=1 alert firing (1 warn)"
        service.stopping()
        assert notify_socket.receive(2) == "STOPPING=1\nSTATUS=stopping"
        service.observe(alert("load_1m", Severity.WARN))  # nothing after STOPPING=1
        assert notify_socket.receive(0.2) is None

    asyncio.run(main())


def test_watchdog_pings_come_from_the_event_loop(notify_socket: NotifySocket) -> None:
    """A stuck event loop sends no ping: systemd's watchdog then restarts the service."""
    service = SystemdService(Notifier(notify_socket.address), 0.05, SystemClock())
    sent: List[float] = []
    send = service.notifier.notify

    def recording(*assignments: str) -> bool:
        if assignments == ("WATCHDOG=1",):
            sent.append(time.monotonic())
        return send(*assignments)

    service.notifier.notify = recording  # type: ignore[method-assign]
    stuck: List[float] = []

    async def main() -> None:
        done = asyncio.Event()
        done.set()
        task = asyncio.ensure_future(service.run(done))
        await asyncio.sleep(0.3)
        stuck.append(time.monotonic())
        time.sleep(0.6)  # the loop is stuck: no task runs, no ping goes out
        stuck.append(time.monotonic())
        await asyncio.sleep(0.3)
        task.cancel()
        service.stopping()

    asyncio.run(main())
    before = [t for t in sent if t < stuck[0]]
    during = [t for t in sent if stuck[0] <= t < stuck[1]]
    after = [t for t in sent if t >= stuck[1]]
    assert len(before) >= 3 and len(after) >= 3, sent
    assert during == []
    received = []
    while True:
        text = notify_socket.receive(0.2)
        if text is None:
            break
        received.append(text)
    # (the socket queues only net.unix.max_dgram_qlen datagrams: systemd reads them at once)
    assert received.count("WATCHDOG=1") >= 3


def test_daemon_ready_after_the_first_collection_then_watchdog_and_status(
    tmp_path: Path, notify_socket: NotifySocket
) -> None:
    """The real daemon: READY=1 only once every collector has run once (the load
    collector's file is a FIFO that blocks its read until the test writes it)."""
    procfs = minimal_procfs(tmp_path)
    config = agent_config(tmp_path, procfs)
    # 10 s interval: the run times out only after 8 s, long after the checks below
    config.write_text(
        config.read_text().replace(
            "[collector.load]\ninterval_secs = 1", "[collector.load]\ninterval_secs = 10"
        )
    )
    fifo = procfs / "loadavg"
    fifo.unlink()
    os.mkfifo(fifo)
    env = dict(os.environ, NOTIFY_SOCKET=notify_socket.address, WATCHDOG_USEC="200000")
    agent = AgentProcess(["run", "--config", str(config)], env=env)
    try:
        agent.wait_stderr("collectors: ")
        assert notify_socket.receive(10) == "STATUS=starting: first collection"
        assert notify_socket.receive(1.0) is None  # the load collector is still reading
        with open(fifo, "w") as f:  # let it finish its first run
            f.write("0.10 0.20 0.30 1/100 4242\n")
        ready = notify_socket.wait_for("READY=1", timeout=10)
        assert ready == "READY=1\nSTATUS=0 alerts firing"
        ready_at = notify_socket.datagrams[-1][0]
        for _ in range(3):
            notify_socket.wait_for("WATCHDOG=1", timeout=5)
        assert notify_socket.datagrams[-1][0] - ready_at < 3
        write_meminfo(procfs, 93.0)  # critical
        notify_socket.wait_for("STATUS=1 alert firing (1 critical)", timeout=20)
    finally:
        code = agent.stop()
    assert code == 0, "".join(agent.stderr)
    notify_socket.wait_for("STOPPING=1", timeout=5)
