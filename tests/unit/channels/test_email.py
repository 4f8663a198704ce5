"""The e-mail channel against a real SMTP server (aiosmtpd) on 127.0.0.1.

STARTTLS and implicit TLS use a certificate from a throw-away CA made by the
test (trustme); the channel verifies it through ``ca_file``. AUTH LOGIN and
PLAIN go through an authenticator that knows one user.
"""

from __future__ import annotations

import asyncio
import dataclasses
import socket
from pathlib import Path
from typing import AsyncIterator, Dict, List, Optional

import pytest

from sysops_agent.channels.base import ChannelError
from sysops_agent.channels.email import (
    DETAIL_MAX,
    SUBJECT_MAX,
    EmailChannel,
    EmailChannelConfig,
    build_message,
    header_text,
    subject_for,
)
from sysops_agent.channels.registry import build_channel
from sysops_agent.clock import VirtualClock
from sysops_agent.config import load_config
from sysops_agent.model import Alert, AlertState, Severity, make_labels
from sysops_agent.redact import Redactor
from tests.support.smtpserver import SMTPTestServer, TLSFiles, make_tls

PASSWORD = "pw-Zq8!correct-horse"
USER = "alerts@example.com"
T0 = 1_700_000_000.0

HOSTILE = "evil\r\nBcc: victim@example.com\r\n\r\n<script>alert(1)</script>\nX-Injected: yes\x00\u2028\x85"


def alert(
    *,
    host: str = "web-01",
    metric: str = "cpu_usage_percent",
    message: str = "CPU at 97.3%",
    severity: Severity = Severity.CRITICAL,
    state: AlertState = AlertState.FIRING,
    labels: Optional[Dict[str, str]] = None,
) -> Alert:
    return Alert(
        timestamp=T0,
        hostname=host,
        severity=severity,
        metric=metric,
        value=97.3,
        threshold=95.0,
        message=message,
        analyzer="threshold",
        labels=make_labels(labels or {}),
        duration=125.0,
        state=state,
    )


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    return make_tls(tmp_path_factory.mktemp("tls"))


@pytest.fixture
async def server(tls: TLSFiles) -> AsyncIterator[SMTPTestServer]:
    srv = await SMTPTestServer(tls=tls, security="starttls", users={USER: PASSWORD}).start()
    yield srv
    await srv.stop()


def cfg_for(srv: SMTPTestServer, tls: TLSFiles, **over: object) -> EmailChannelConfig:
    cfg = EmailChannelConfig(
        enabled=True,
        smtp_host="127.0.0.1",
        smtp_port=srv.port,
        security=srv.security,
        username=USER if srv.users else "",
        password=PASSWORD if srv.users else "",
        from_addr="agent@example.com",
        to_addrs=["ops@example.com", "oncall@example.org"],
        ca_file=str(tls.ca_file),
    )
    cfg = dataclasses.replace(cfg, **over)  # type: ignore[arg-type]
    return cfg


def channel(cfg: EmailChannelConfig, timeout: float = 5.0) -> EmailChannel:
    return EmailChannel(
        cfg, redactor=Redactor([cfg.password]), clock=VirtualClock(T0), timeout=timeout
    )


# --- delivery ----------------------------------------------------------------------------


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
async def test_starttls_auth_delivers_text_and_html_to_every_recipient(
    tls: TLSFiles, mechanism: str
) -> None:
    other = "LOGIN" if mechanism == "PLAIN" else "PLAIN"
    srv = SMTPTestServer(tls=tls, security="starttls", users={USER: PASSWORD})
    srv.exclude_mechanisms = [other]
    await srv.start()
    try:
        await channel(cfg_for(srv, tls)).send([alert()])
    finally:
        await srv.stop()
    assert srv.auth_attempts == [f"{mechanism} {USER}"]
    [got] = srv.messages
    assert got.tls and got.login == USER
    assert got.mail_from == "agent@example.com"
    assert got.rcpt_tos == ["ops@example.com", "oncall@example.org"]
    msg = got.message
    assert msg.get_content_type() == "multipart/alternative"
    parts = {p.get_content_type(): p.get_content() for p in msg.iter_parts()}
    assert set(parts) == {"text/plain", "text/html"}
    assert "cpu_usage_percent" in parts["text/plain"]
    assert "97.3% (critical level 95%)" in parts["text/plain"]
    assert "<table" in parts["text/html"]
    assert msg["Subject"] == "[sysops] CRITICAL web-01: cpu_usage_percent 97.3% - CPU at 97.3%"
    assert msg["From"].addresses[0].display_name == "SysOps Agent (web-01)"
    assert [a.addr_spec for a in msg["To"].addresses] == ["ops@example.com", "oncall@example.org"]
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg["Message-ID"].endswith("@example.com>")
    assert msg["Date"].datetime.timestamp() == T0


async def test_implicit_tls(tls: TLSFiles) -> None:
    srv = await SMTPTestServer(tls=tls, security="tls", users={USER: PASSWORD}).start()
    try:
        await channel(cfg_for(srv, tls)).send([alert()])
    finally:
        await srv.stop()
    [got] = srv.messages
    assert got.tls and got.login == USER


async def test_plain_local_relay_without_auth(tls: TLSFiles) -> None:
    srv = await SMTPTestServer(tls=tls, security="none").start()
    try:
        await channel(cfg_for(srv, tls)).send([alert()])
    finally:
        await srv.stop()
    [got] = srv.messages
    assert not got.tls and got.login is None


async def test_group_is_one_message_with_summary_subject(
    server: SMTPTestServer, tls: TLSFiles
) -> None:
    alerts = [
        alert(severity=Severity.WARN, metric="memory_usage_percent"),
        alert(severity=Severity.CRITICAL, metric="cpu_usage_percent"),
        alert(severity=Severity.WARN, metric="disk_usage_percent", labels={"mountpoint": "/"}),
    ]
    ch = channel(cfg_for(server, tls))
    assert ch.supports_batch
    await ch.send(alerts)
    [got] = server.messages
    msg = got.message
    assert msg["Subject"] == "[sysops] CRITICAL web-01: 3 alerts"
    assert msg["X-SysOps-Severity"] == "critical"
    text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    for a in alerts:
        assert a.metric in text
    assert "mountpoint=/" in text


def test_subject_of_resolved_and_mixed_hosts() -> None:
    assert subject_for([alert(state=AlertState.RESOLVED)]).startswith(
        "[sysops] RESOLVED web-01: cpu_usage_percent"
    )
    assert subject_for([alert(host="a"), alert(host="b")]) == "[sysops] CRITICAL 2 hosts: 2 alerts"


def test_many_alerts_are_counted_not_all_written_out() -> None:
    cfg = EmailChannelConfig(from_addr="a@example.com", to_addrs=["b@example.com"])
    msg = build_message([alert(metric=f"m{i}") for i in range(DETAIL_MAX + 7)], cfg, T0)
    text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "…and 7 more alerts." in text
    assert f"m{DETAIL_MAX - 1}" in text and f"m{DETAIL_MAX}\n" not in text


def test_value_is_shown_in_its_unit() -> None:
    """An RSS of 1.5e9 bytes reads "1.4 GB", as in the message, not "1.5e+09"; the
    threshold says what it is (a level of the threshold analyzer), in the same unit."""
    cfg = EmailChannelConfig(from_addr="a@example.com", to_addrs=["b@example.com"])
    rss = alert(metric="process_rss_bytes", message="java RSS 1.4 GB").evolve(
        value=1.5e9, threshold=1e9, duration=3725.0
    )
    msg = build_message([rss], cfg, T0)
    text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "Value:    1.4 GB (critical level 954 MB)\n" in text
    assert "Duration: 1h02m\n" in text
    assert msg["Subject"] == "[sysops] CRITICAL web-01: process_rss_bytes 1.4 GB - java RSS 1.4 GB"


# --- hostile and unusual text ----------------------------------------------------------


def _header_block(raw: bytes) -> List[bytes]:
    head = raw.split(b"\r\n\r\n", 1)[0]
    return head.split(b"\r\n")


async def test_hostile_text_never_reaches_a_header(server: SMTPTestServer, tls: TLSFiles) -> None:
    cfg = cfg_for(server, tls, from_name="Agent\r\nBcc: x@example.com")
    hostile = alert(host=HOSTILE, metric="m\r\nX-Metric: 1", message=HOSTILE, labels={"p": HOSTILE})
    await channel(cfg).send([hostile])
    [got] = server.messages
    names = set()
    for line in _header_block(got.data):
        if line[:1] in (b" ", b"\t"):  # folded continuation of the previous header
            continue
        names.add(line.split(b":", 1)[0].decode().lower())
    assert names == {
        "subject",
        "from",
        "to",
        "date",
        "message-id",
        "auto-submitted",
        "x-sysops-severity",
        "content-type",
        "mime-version",
    }
    msg = got.message
    for header in ("Subject", "From"):
        value = str(msg[header])
        assert not any(c in value for c in "\r\n\x00\u2028\x85"), (header, value)
    assert "Bcc: victim@example.com" in msg["Subject"]  # kept as harmless text
    assert got.rcpt_tos == ["ops@example.com", "oncall@example.org"]
    html = msg.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "\x00" not in text and "\r\n\r\n<script>" not in text


def test_header_text_removes_every_control_character() -> None:
    assert header_text("a\r\nb\tc\x00d\x1be\u2028f\u2029g\x85h\x7f") == "a b c d e f g h"
    assert len(header_text("x" * 1000)) == SUBJECT_MAX
    with pytest.raises(ValueError):  # the policy itself refuses raw line breaks
        build_message([alert()], EmailChannelConfig(from_addr="a\nb@example.com"), T0)


async def test_unicode_emoji_and_cjk_survive(server: SMTPTestServer, tls: TLSFiles) -> None:
    text = "디스크 가득 참 🔥 ディスク満杯 磁盘已满 — ünïcödé"
    await channel(cfg_for(server, tls)).send([alert(host="서버-01", message=text)])
    [got] = server.messages
    assert got.data.isascii()  # encoded for any 7-bit relay
    msg = got.message
    assert text in msg["Subject"] and "서버-01" in msg["Subject"]
    assert msg["From"].addresses[0].display_name == "SysOps Agent (서버-01)"
    for part in msg.iter_parts():
        assert text in part.get_content()


async def test_long_text_is_bounded(server: SMTPTestServer, tls: TLSFiles) -> None:
    await channel(cfg_for(server, tls)).send([alert(message="log line " * 20_000)])
    [got] = server.messages
    assert len(got.message["Subject"]) <= SUBJECT_MAX
    assert len(got.data) < 30_000


# --- failures ----------------------------------------------------------------------------


async def _fail(ch: EmailChannel) -> ChannelError:
    with pytest.raises(ChannelError) as info:
        await ch.send([alert()])
    assert PASSWORD not in str(info.value)
    return info.value


async def test_wrong_password_is_final_535(server: SMTPTestServer, tls: TLSFiles) -> None:
    cfg = cfg_for(server, tls, password="pw-wrong-but-also-secret")
    err = await _fail(channel(cfg))
    assert (err.status, err.retryable) == (535, False)
    assert "authentication" in str(err) and "pw-wrong-but-also-secret" not in str(err)
    assert server.messages == []


@pytest.mark.parametrize(
    ("where", "reply", "status", "retryable"),
    [
        ("rcpt", "451 4.3.0 mailbox busy, try later", 451, True),
        ("rcpt", "550 5.1.1 no such user", 550, False),
        ("data", "421 4.3.2 service shutting down", 421, True),
        ("data", "452 4.3.1 insufficient storage", 452, True),
        ("data", "554 5.7.1 rejected as spam", 554, False),
    ],
)
async def test_smtp_reply_classes_decide_retry(
    server: SMTPTestServer, tls: TLSFiles, where: str, reply: str, status: int, retryable: bool
) -> None:
    if where == "rcpt":
        server.rcpt_replies = {"ops@example.com": reply, "oncall@example.org": reply}
    else:
        server.data_reply = reply
    err = await _fail(channel(cfg_for(server, tls)))
    assert (err.status, err.retryable) == (status, retryable)
    assert reply.split(" ", 1)[1] in str(err)


async def test_one_refused_recipient_does_not_stop_the_others(
    server: SMTPTestServer, tls: TLSFiles
) -> None:
    server.rcpt_replies = {"oncall@example.org": "550 5.1.1 no such user"}
    err = await _fail(channel(cfg_for(server, tls)))
    # delivered to the other one; a retry would send it twice
    assert err.retryable is False and "oncall@example.org" in str(err)
    [got] = server.messages
    assert got.rcpt_tos == ["ops@example.com"]


async def test_untrusted_certificate_is_final(server: SMTPTestServer, tls: TLSFiles) -> None:
    err = await _fail(channel(cfg_for(server, tls, ca_file="")))  # system store: no test CA
    assert err.retryable is False and "certificate" in str(err)
    assert server.messages == []


async def test_starttls_required_but_not_offered_is_final(tls: TLSFiles) -> None:
    srv = await SMTPTestServer(tls=tls, security="none").start()
    try:
        err = await _fail(channel(cfg_for(srv, tls, security="starttls")))
    finally:
        await srv.stop()
    assert err.retryable is False and "STARTTLS" in str(err)
    assert srv.messages == []


async def test_connection_refused_is_retryable(tls: TLSFiles) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nobody listens there
    cfg = EmailChannelConfig(
        smtp_host="127.0.0.1", smtp_port=port, from_addr="a@example.com", to_addrs=["b@example.com"]
    )
    err = await _fail(channel(cfg))
    assert err.retryable is True and f"127.0.0.1:{port}" in str(err)


async def test_silent_server_times_out_retryable(tls: TLSFiles) -> None:
    writers: List[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)  # accepts the connection but never greets

    srv = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    cfg = EmailChannelConfig(
        smtp_host="127.0.0.1", smtp_port=port, from_addr="a@example.com", to_addrs=["b@example.com"]
    )
    try:
        err = await _fail(channel(cfg, timeout=0.3))
    finally:
        for w in writers:
            w.close()
            await w.wait_closed()
        srv.close()
        await srv.wait_closed()
    assert err.retryable is True and "Timed out" in str(err)
    assert len(writers) == 1


async def test_missing_ca_file_is_final(tmp_path: Path) -> None:
    cfg = EmailChannelConfig(ca_file=str(tmp_path / "nope.pem"), from_addr="a@example.com")
    err = await _fail(channel(cfg))
    assert err.retryable is False and "nope.pem" in str(err)


# --- config ------------------------------------------------------------------------------


def test_config_rejects_bad_addresses_and_clear_text_password() -> None:
    res = load_config(
        text="""
[alerting.email]
enabled = true
smtp_host = "mail.example.com"
security = "none"
username = "u"
password = "pw-12345"
from_addr = "Agent <a@example.com>"
to_addrs = ["ok@example.com", "bad\\r\\nBcc: x@example.com", "no-at-sign"]
"""
    )
    text = "\n".join(str(p) for p in res.problems)
    assert "alerting.email.from_addr: 'Agent <a@example.com>' is not an e-mail address" in text
    assert "alerting.email.to_addrs[1]" in text and "alerting.email.to_addrs[2]" in text
    assert "alerting.email.security: 'none' would send the password in clear text" in text
    assert res.config.alerting.email.to_addrs == ["ok@example.com"]


def test_factory_builds_from_config() -> None:
    res = load_config(
        text="""
[alerting.email]
enabled = true
smtp_host = "127.0.0.1"
from_addr = "a@example.com"
to_addrs = ["b@example.com"]
"""
    )
    assert res.problems == []
    ch = build_channel("email", res.config.alerting, Redactor(), VirtualClock(T0))
    assert ch.name == "email" and ch.supports_batch


# --- the shared retry policy with SMTP faults ----------------------------------------------


@pytest.mark.parametrize(
    ("rcpt_reply", "data_reply", "attempts", "delays"),
    [
        ("451 4.3.0 try later", "", 4, (1.0, 2.0, 4.0)),  # transient: retried with backoff
        ("", "421 4.3.2 closing", 4, (1.0, 2.0, 4.0)),
        ("550 5.1.1 no such user", "", 1, ()),  # permanent: no retry
        ("", "554 5.7.1 rejected", 1, ()),
    ],
)
async def test_retry_policy_with_smtp_replies(
    server: SMTPTestServer,
    tls: TLSFiles,
    rcpt_reply: str,
    data_reply: str,
    attempts: int,
    delays: tuple[float, ...],
) -> None:
    from sysops_agent.alerting.retry import send_with_retry
    from tests.support.httpserver import RecordingClock

    if rcpt_reply:
        server.rcpt_replies = {"ops@example.com": rcpt_reply, "oncall@example.org": rcpt_reply}
    server.data_reply = data_reply
    clock = RecordingClock()
    result = await send_with_retry(channel(cfg_for(server, tls)), [alert()], clock, retries=3)
    assert (result.ok, result.attempts, result.delays) == (False, attempts, delays)
    assert clock.sleeps == list(delays)
    assert result.status == int((rcpt_reply or data_reply)[:3])


async def test_retry_policy_wrong_password_is_not_retried(
    server: SMTPTestServer, tls: TLSFiles
) -> None:
    from sysops_agent.alerting.retry import send_with_retry
    from tests.support.httpserver import RecordingClock

    cfg = cfg_for(server, tls, password="pw-not-it-at-all")
    result = await send_with_retry(channel(cfg), [alert()], RecordingClock(), retries=3)
    assert (result.ok, result.attempts, result.status) == (False, 1, 535)
    # one connection, never retried; aiosmtplib tries each offered mechanism (PLAIN, LOGIN) once
    assert server.connection_count == 1
    assert server.auth_attempts == [f"PLAIN {USER}", f"LOGIN {USER}"]
