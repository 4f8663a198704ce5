"""The syslog channel against real receivers: a UDP socket and unix datagram sockets."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import re
import socket
import time
from pathlib import Path
from typing import Iterator, Optional

import pytest

from sysops_agent.channels.base import ChannelError
from sysops_agent.channels.registry import build_channel
from sysops_agent.channels.syslog import SyslogChannel, SyslogChannelConfig, format_line, priority
from sysops_agent.clock import VirtualClock
from sysops_agent.config import load_config
from sysops_agent.model import Alert, AlertState, Severity, make_labels
from sysops_agent.redact import Redactor

T0 = 1_700_000_000.0  # 2023-11-14T22:13:20Z


def alert(
    severity: Severity = Severity.CRITICAL,
    state: AlertState = AlertState.FIRING,
    host: str = "web-01",
    message: str = "CPU at 97.3%",
) -> Alert:
    return Alert(
        timestamp=T0,
        hostname=host,
        severity=severity,
        metric="cpu_usage_percent",
        value=97.3,
        threshold=95.0,
        message=message,
        analyzer="threshold",
        labels=make_labels({"core": "3"}),
        state=state,
        id="a1",
    )


def bsd_stamp(ts: float) -> str:
    t = time.localtime(ts)
    month = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"][
        t.tm_mon - 1
    ]
    return f"{month} {t.tm_mday:2d} {t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"


@pytest.fixture
def udp() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(2)
    yield sock
    sock.close()


@pytest.fixture
def unix_path(tmp_path: Path) -> Path:
    return tmp_path / "log.sock"


def unix_receiver(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(2)
    return sock


def make(address: str, timeout: float = 2.0, **over: object) -> SyslogChannel:
    cfg = SyslogChannelConfig(enabled=True, address=address)
    cfg = dataclasses.replace(cfg, **over)  # type: ignore[arg-type]
    return SyslogChannel(cfg, clock=VirtualClock(T0), timeout=timeout)


async def test_udp_rfc3164_line(udp: socket.socket) -> None:
    port = udp.getsockname()[1]
    ch = make(f"127.0.0.1:{port}", facility="local3")
    assert ch.supports_batch is False
    await ch.send([alert()])
    await ch.aclose()
    line = udp.recv(65536).decode()
    pid = r"\d+"
    assert re.fullmatch(
        rf"<154>{re.escape(bsd_stamp(T0))} web-01 sysops-agent\[{pid}\]: "
        r"CRITICAL cpu_usage_percent\{core=3\} 97\.3% \(critical level 95%\) host=web-01: "
        r"CPU at 97\.3% \(analyzer=threshold id=a1\)",
        line,
    ), line


async def test_unix_socket_rfc3164_leaves_the_host_to_the_daemon(unix_path: Path) -> None:
    rx = unix_receiver(unix_path)
    try:
        ch = make(str(unix_path))
        await ch.send([alert(Severity.WARN)])
        await ch.aclose()
        line = rx.recv(65536).decode()
    finally:
        rx.close()
    # daemon(3) * 8 + warning(4)
    assert line.startswith(f"<28>{bsd_stamp(T0)} sysops-agent[")
    assert " web-01 sysops-agent" not in line


async def test_unix_socket_rfc5424(unix_path: Path) -> None:
    rx = unix_receiver(unix_path)
    try:
        ch = make(str(unix_path), format="rfc5424", facility="user")
        await ch.send([alert(Severity.EMERGENCY)])
        await ch.aclose()
        line = rx.recv(65536).decode()
    finally:
        rx.close()
    assert re.match(r"<8>1 2023-11-14T22:13:20\.000Z web-01 sysops-agent \d+ - - EMERGENCY ", line)


@pytest.mark.parametrize(
    ("facility", "severity", "state", "pri"),
    [
        ("kern", Severity.INFO, AlertState.FIRING, 0 * 8 + 6),
        ("user", Severity.WARN, AlertState.FIRING, 1 * 8 + 4),
        ("daemon", Severity.CRITICAL, AlertState.FIRING, 3 * 8 + 2),
        ("daemon", Severity.EMERGENCY, AlertState.FIRING, 3 * 8 + 0),
        ("authpriv", Severity.WARN, AlertState.FIRING, 10 * 8 + 4),
        ("local0", Severity.CRITICAL, AlertState.RESOLVED, 16 * 8 + 5),
        ("local7", Severity.EMERGENCY, AlertState.FIRING, 23 * 8 + 0),
        ("local7", Severity.INFO, AlertState.RESOLVED, 23 * 8 + 5),
    ],
)
async def test_priority_is_facility_times_8_plus_severity(
    udp: socket.socket, facility: str, severity: Severity, state: AlertState, pri: int
) -> None:
    a = alert(severity, state)
    assert priority(facility, a) == pri
    ch = make(f"127.0.0.1:{udp.getsockname()[1]}", facility=facility)
    await ch.send([a])
    await ch.aclose()
    data = udp.recv(65536)
    assert int(re.match(rb"<(\d+)>", data).group(1)) == pri  # type: ignore[union-attr]
    assert (b" RESOLVED " in data) == (state is AlertState.RESOLVED)


@pytest.mark.parametrize("fmt", ["rfc3164", "rfc5424"])
async def test_hostile_text_stays_on_one_line(udp: socket.socket, fmt: str) -> None:
    hostile = "evil host\r\n<0>Jan  1 00:00:00 fake sshd[1]: forged\x00\x1b[31m\u2028end"
    ch = make(f"127.0.0.1:{udp.getsockname()[1]}", format=fmt)
    await ch.send([alert(host=hostile, message=hostile)])
    await ch.aclose()
    data = udp.recv(65536)
    assert not any(b < 0x20 or b == 0x7F for b in data), data
    text = data.decode()
    assert "\u2028" not in text and text.startswith("<26>")
    host_field = text.split(" ")[3] if fmt == "rfc3164" else text.split(" ")[2]
    # header host: printable ASCII without spaces (the Alert escaped the controls: model.clean_text)
    assert host_field.startswith("evilhost\\r\\n<0>Jan")


async def test_long_text_is_cut_on_a_character_boundary(udp: socket.socket) -> None:
    ch = make(f"127.0.0.1:{udp.getsockname()[1]}", max_length=600)
    await ch.send([alert(message="디스크 가득 참 🔥 " * 500)])
    await ch.aclose()
    data = udp.recv(65536)
    assert len(data) <= 600
    assert data.decode("utf-8").endswith("…")  # valid UTF-8: no half character


def test_format_line_bounds_default_length() -> None:
    line = format_line(
        alert(message="x" * 10_000),
        facility="daemon",
        fmt="rfc3164",
        now=T0,
        hostname=None,
        pid=1,
        max_length=2048,
    )
    assert len(line) == 2048


async def test_missing_socket_is_a_retryable_error(unix_path: Path) -> None:
    ch = make(str(unix_path))
    with pytest.raises(ChannelError) as info:
        await ch.send([alert()])
    assert info.value.retryable and str(unix_path) in str(info.value)


async def test_restarted_daemon_is_reached_again(unix_path: Path) -> None:
    ch = make(str(unix_path))
    rx = unix_receiver(unix_path)
    await ch.send([alert(message="first")])
    assert b"first" in rx.recv(65536)
    rx.close()  # the daemon goes away: its socket file stays behind
    with pytest.raises(ChannelError) as info:
        await ch.send([alert(message="lost")])
    assert info.value.retryable
    unix_path.unlink()
    rx = unix_receiver(unix_path)  # ... and comes back with a new socket
    try:
        await ch.send([alert(message="second")])
        assert b"second" in rx.recv(65536)
    finally:
        rx.close()
        await ch.aclose()


def _fill(rx_path: Path) -> int:
    """Send datagrams until the receiver's queue is full; return how many went in."""
    tx = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    tx.setblocking(False)
    n = 0
    try:
        while n < 10_000:
            tx.sendto(b"filler", str(rx_path))
            n += 1
    except BlockingIOError:
        return n
    finally:
        tx.close()
    raise AssertionError("queue never filled")


async def test_full_queue_waits_without_blocking_the_loop(unix_path: Path) -> None:
    rx = unix_receiver(unix_path)
    rx.setblocking(False)
    try:
        queued = _fill(unix_path)
        ch = make(str(unix_path))
        send = asyncio.ensure_future(ch.send([alert(message="after the jam")]))
        for _ in range(5):
            await asyncio.sleep(0)
        assert not send.done()  # waiting for room, but the loop keeps running
        received = []
        while True:  # the daemon catches up
            await asyncio.sleep(0.01)
            try:
                while True:
                    received.append(rx.recv(65536))
            except BlockingIOError:
                pass
            if send.done():
                break
        await send
        await asyncio.sleep(0.01)
        with contextlib.suppress(BlockingIOError):
            received.append(rx.recv(65536))
        await ch.aclose()
    finally:
        rx.close()
    assert len(received) == queued + 1 and b"after the jam" in received[-1]


async def test_full_queue_gives_up_after_the_timeout(unix_path: Path) -> None:
    rx = unix_receiver(unix_path)
    try:
        _fill(unix_path)
        ch = make(str(unix_path), timeout=0.2)
        with pytest.raises(ChannelError) as info:
            await ch.send([alert()])
        assert info.value.retryable and "queue full" in str(info.value)
        await ch.aclose()
    finally:
        rx.close()


def test_config_validation() -> None:
    res = load_config(
        text="""
[alerting.syslog]
enabled = true
facility = "local9"
address = "logs.example.com:99999"
max_length = 100
"""
    )
    text = "\n".join(str(p) for p in res.problems)
    assert "alerting.syslog.facility: 'local9' is not one of 'kern'" in text
    assert "alerting.syslog.address: 'logs.example.com:99999' is neither" in text
    assert "alerting.syslog.max_length: 100 is below the minimum 480" in text
    cfg = res.config.alerting.syslog
    assert (cfg.facility, cfg.address, cfg.max_length) == ("daemon", "", 2048)


@pytest.mark.parametrize(
    ("address", "dest"),
    [
        ("", "/dev/log"),
        ("/run/systemd/journal/syslog", "/run/systemd/journal/syslog"),
        ("logs.example.com", "logs.example.com:514 (UDP)"),
        ("10.0.0.5:1514", "10.0.0.5:1514 (UDP)"),
        ("[::1]:5514", "::1:5514 (UDP)"),
    ],
)
def test_addresses(address: str, dest: str) -> None:
    res = load_config(text=f'[alerting.syslog]\naddress = "{address}"\n')
    assert res.problems == []
    ch = build_channel("syslog", res.config.alerting, Redactor(), VirtualClock(T0))
    assert ch.destination == dest


async def test_ipv6_udp() -> None:
    rx: Optional[socket.socket] = None
    try:
        rx = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        rx.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback here")
    rx.settimeout(2)
    try:
        ch = make(f"[::1]:{rx.getsockname()[1]}")
        await ch.send([alert()])
        await ch.aclose()
        assert b"sysops-agent[" in rx.recv(65536)
    finally:
        rx.close()
