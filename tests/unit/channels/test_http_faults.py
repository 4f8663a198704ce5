"""ONE table of retry and failure cases, run against every HTTP channel.

Each channel (a row of :data:`CHANNELS`) is pointed at a real HTTP server on
127.0.0.1 and sent one alert through :func:`send_with_retry` while the
server answers as a fault case (a row of :data:`FAULTS`) scripts it. Backoff
and Retry-After waits go through a :class:`RecordingClock`, so the waits are
checked exactly without sleeping. To cover another HTTP channel, add a
:class:`ChannelRow`; to add a fault, add a :class:`Fault`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import AsyncIterator, Callable, List, Optional, Tuple

import pytest

from sysops_agent.alerting.retry import send_with_retry
from sysops_agent.channels.alertmanager import AlertmanagerChannel, AlertmanagerChannelConfig
from sysops_agent.channels.base import Channel
from sysops_agent.channels.discord import DiscordChannel, DiscordChannelConfig
from sysops_agent.channels.slack import SlackChannel, SlackChannelConfig
from sysops_agent.channels.telegram import TelegramChannel, TelegramChannelConfig
from sysops_agent.channels.webhook import WebhookChannel, WebhookChannelConfig
from sysops_agent.clock import VirtualClock
from sysops_agent.model import Alert, Severity, make_labels
from sysops_agent.redact import Redactor
from tests.support.httpserver import HttpTestServer, RecordingClock, Reply

#: a channel's per-request timeout in these tests (the "hang" case waits it out)
TIMEOUT = 0.3
SECRET = "s3cr3tT0kenABCDEFxyz"
BOT_TOKEN = f"123456:{SECRET}"


@dataclass
class ChannelRow:
    name: str
    #: (server, redactor) -> channel aimed at the server
    make: Callable[[HttpTestServer, Redactor], Channel]
    ok: Reply
    #: the platform's error for a bad request, and what of it must reach the user
    bad_request: Reply
    bad_request_text: str
    #: answer 404 disables the channel (no more requests)
    disables_on_404: bool
    #: the path the channel must use (the secret lives in it)
    path: str
    method: str = "POST"


def _discord(server: HttpTestServer, redactor: Redactor) -> Channel:
    cfg = DiscordChannelConfig(enabled=True, webhook_url=server.url(f"/api/webhooks/42/{SECRET}"))
    return DiscordChannel(cfg, redactor=redactor, timeout=TIMEOUT)


def _slack(server: HttpTestServer, redactor: Redactor) -> Channel:
    cfg = SlackChannelConfig(enabled=True, webhook_url=server.url(f"/services/T0/B0/{SECRET}"))
    return SlackChannel(cfg, redactor=redactor, timeout=TIMEOUT)


def _telegram(server: HttpTestServer, redactor: Redactor) -> Channel:
    cfg = TelegramChannelConfig(
        enabled=True, bot_token=BOT_TOKEN, chat_id="-1001", api_base_url=server.url("")
    )
    return TelegramChannel(cfg, redactor=redactor, timeout=TIMEOUT)


def _webhook(server: HttpTestServer, redactor: Redactor) -> Channel:
    cfg = WebhookChannelConfig(
        enabled=True,
        url=server.url(f"/hook/{SECRET}"),
        method="PUT",
        headers={"Authorization": "Bearer hdr-" + SECRET},
    )
    return WebhookChannel(cfg, redactor=redactor, timeout=TIMEOUT)


def _alertmanager(server: HttpTestServer, redactor: Redactor) -> Channel:
    # credentials in the URL are the secret here; its periodic re-send runs on a
    # clock of its own that the test never advances
    url = server.url("").replace("127.0.0.1", f"am:{SECRET}@127.0.0.1")
    cfg = AlertmanagerChannelConfig(enabled=True, url=url)
    return AlertmanagerChannel(cfg, clock=VirtualClock(), redactor=redactor, timeout=TIMEOUT)


CHANNELS: List[ChannelRow] = [
    ChannelRow(
        "discord",
        _discord,
        ok=Reply(204),
        bad_request=Reply(400, {"message": "Invalid Form Body", "code": 50035}),
        bad_request_text="Invalid Form Body (code 50035)",
        disables_on_404=True,
        path=f"/api/webhooks/42/{SECRET}",
    ),
    ChannelRow(
        "slack",
        _slack,
        ok=Reply(200, "ok"),
        bad_request=Reply(400, "invalid_payload"),
        bad_request_text="invalid_payload",
        disables_on_404=True,
        path=f"/services/T0/B0/{SECRET}",
    ),
    ChannelRow(
        "telegram",
        _telegram,
        ok=Reply(200, {"ok": True, "result": {"message_id": 1}}),
        bad_request=Reply(
            400, {"ok": False, "error_code": 400, "description": "Bad Request: chat not found"}
        ),
        bad_request_text="Bad Request: chat not found",
        disables_on_404=True,
        path=f"/bot{BOT_TOKEN}/sendMessage",
    ),
    ChannelRow(
        "webhook",
        _webhook,
        ok=Reply(200, ""),
        bad_request=Reply(400, "missing field"),
        bad_request_text="missing field",
        disables_on_404=False,
        path=f"/hook/{SECRET}",
        method="PUT",
    ),
    ChannelRow(
        "alertmanager",
        _alertmanager,
        ok=Reply(200, ""),
        bad_request=Reply(400, {"code": 400, "message": "start time must be before end time"}),
        bad_request_text="start time must be before end time",
        disables_on_404=False,
        path="/api/v2/alerts",
    ),
]

OK = Reply(-1)  # placeholder: the channel's own success answer
BAD = Reply(-2)  # placeholder: the channel's own bad-request answer


@dataclass
class Fault:
    id: str
    replies: List[Reply]
    ok: bool
    attempts: int
    delays: Tuple[float, ...] = ()
    status: Optional[int] = None
    error_contains: List[str] = field(default_factory=list)
    retries: int = 3


FAULTS: List[Fault] = [
    Fault("2xx first try", [OK], ok=True, attempts=1),
    Fault("500 then ok", [Reply(500, "oops"), OK], ok=True, attempts=2, delays=(1.0,)),
    Fault(
        "500 every time: 3 retries, exponential backoff",
        [Reply(500, "oops")] * 4,
        ok=False,
        attempts=4,
        delays=(1.0, 2.0, 4.0),
        status=500,
        error_contains=["HTTP 500", "oops"],
    ),
    Fault(
        "503 then 502 then ok",
        [Reply(503), Reply(502), OK],
        ok=True,
        attempts=3,
        delays=(1.0, 2.0),
    ),
    Fault(
        "429 Retry-After header",
        [Reply(429, "slow down", {"Retry-After": "7"}), OK],
        ok=True,
        attempts=2,
        delays=(7.0,),
    ),
    Fault(
        "429 JSON retry_after (Discord style)",
        [Reply(429, {"message": "You are being rate limited.", "retry_after": 2.5}), OK],
        ok=True,
        attempts=2,
        delays=(2.5,),
    ),
    Fault(
        "429 parameters.retry_after (Telegram style)",
        [
            Reply(
                429,
                {
                    "ok": False,
                    "error_code": 429,
                    "description": "Too Many Requests: retry after 3",
                    "parameters": {"retry_after": 3},
                },
            ),
            OK,
        ],
        ok=True,
        attempts=2,
        delays=(3.0,),
    ),
    Fault(
        "429 header wins over body",
        [Reply(429, {"retry_after": 9.0}, {"Retry-After": "5"}), OK],
        ok=True,
        attempts=2,
        delays=(5.0,),
    ),
    Fault(
        "429 without a hint: backoff",
        [Reply(429, "slow down"), Reply(429, "slow down"), OK],
        ok=True,
        attempts=3,
        delays=(1.0, 2.0),
    ),
    Fault(
        "429 asking for an hour: give up, do not hammer",
        [Reply(429, "later", {"Retry-After": "3600"})],
        ok=False,
        attempts=1,
        status=429,
        error_contains=["HTTP 429", "giving up"],
    ),
    Fault(
        "400 is final and shows the platform's message",
        [BAD],
        ok=False,
        attempts=1,
        status=400,
        error_contains=["HTTP 400"],
    ),
    Fault(
        "403 is final",
        [Reply(403, "forbidden")],
        ok=False,
        attempts=1,
        status=403,
        error_contains=["HTTP 403"],
    ),
    Fault(
        "redirect is not followed",
        [Reply(301, "", {"Location": "http://127.0.0.1:1/elsewhere"})],
        ok=False,
        attempts=1,
        status=301,
        error_contains=["HTTP 301"],
    ),
    Fault(
        "server hangs: per-request timeout, retried",
        [Reply(hang=True), Reply(hang=True)],
        ok=False,
        attempts=2,
        delays=(1.0,),
        error_contains=["no answer within 0.3 s"],
        retries=1,
    ),
    Fault(
        "connection closed without an answer, then ok",
        [Reply(drop=True), OK],
        ok=True,
        attempts=2,
        delays=(1.0,),
    ),
]


@pytest.fixture
async def server() -> AsyncIterator[HttpTestServer]:
    async with HttpTestServer() as s:
        yield s


def _alert() -> Alert:
    return Alert(
        timestamp=1_700_000_000.0,
        hostname="web1",
        severity=Severity.CRITICAL,
        metric="cpu_usage_percent",
        value=97.0,
        threshold=90.0,
        message="CPU at 97%",
        analyzer="threshold",
        labels=make_labels(cpu="total"),
        duration=300.0,
    )


def _resolve(row: ChannelRow, reply: Reply) -> Reply:
    if reply is OK:
        return row.ok
    if reply is BAD:
        return row.bad_request
    return reply


@pytest.mark.parametrize(
    "fault",
    [
        # a hang waits out the per-request timeout (0.3 s) once per attempt
        pytest.param(f, id=f.id, marks=pytest.mark.slow if any(r.hang for r in f.replies) else ())
        for f in FAULTS
    ],
)
@pytest.mark.parametrize("row", CHANNELS, ids=[r.name for r in CHANNELS])
async def test_fault_table(server: HttpTestServer, row: ChannelRow, fault: Fault) -> None:
    server.push(*[_resolve(row, r) for r in fault.replies])
    server.default = Reply(599, "unscripted request")
    redactor = Redactor()
    channel = row.make(server, redactor)
    clock = RecordingClock()
    try:
        result = await send_with_retry(channel, [_alert()], clock, retries=fault.retries)
    finally:
        await channel.aclose()
    assert result.ok is fault.ok, result
    assert result.attempts == fault.attempts
    assert len(server.requests) == fault.attempts
    assert result.delays == fault.delays
    assert clock.sleeps == list(fault.delays)
    assert result.status == fault.status
    for request in server.requests:
        assert request.method == row.method
        assert request.path == row.path
        assert request.body  # a payload was sent
    error = result.error or ""
    for text in fault.error_contains:
        assert text in error
    if fault.replies == [BAD]:
        assert row.bad_request_text in error
    assert SECRET not in error
    assert (error == "") is fault.ok


@pytest.mark.parametrize("row", CHANNELS, ids=[r.name for r in CHANNELS])
async def test_404(
    server: HttpTestServer, row: ChannelRow, caplog: pytest.LogCaptureFixture
) -> None:
    """404: final. Discord/Slack/Telegram disable themselves loudly; the webhook stays."""
    server.push(Reply(404, {"message": "Unknown Webhook", "code": 10015}))
    server.default = row.ok
    channel = row.make(server, Redactor())
    clock = RecordingClock()
    try:
        first = await send_with_retry(channel, [_alert()], clock)
        second = await send_with_retry(channel, [_alert()], clock)
    finally:
        await channel.aclose()
    assert not first.ok and first.attempts == 1 and first.status == 404
    assert clock.sleeps == []
    if row.disables_on_404:
        assert "disabled" in (first.error or "")
        assert not second.ok and second.attempts == 1
        assert len(server.requests) == 1  # no request after the 404
        assert getattr(channel, "disabled", None)
        loud = [r for r in caplog.records if r.levelname == "ERROR" and "disabled" in r.message]
        assert len(loud) == 1
    else:
        assert second.ok
        assert len(server.requests) == 2
    text = "\n".join(r.getMessage() for r in caplog.records) + (first.error or "")
    assert SECRET not in text


@pytest.mark.parametrize("row", CHANNELS, ids=[r.name for r in CHANNELS])
async def test_connection_refused(row: ChannelRow) -> None:
    """Nothing listens: retryable, backoff 1-2-4, the error names no secret."""
    async with HttpTestServer() as s:
        pass  # the port is now closed
    channel = row.make(s, Redactor())
    clock = RecordingClock()
    try:
        result = await send_with_retry(channel, [_alert()], clock)
    finally:
        await channel.aclose()
    assert not result.ok and result.attempts == 4
    assert result.delays == (1.0, 2.0, 4.0)
    assert "ConnectError" in (result.error or "")
    assert SECRET not in (result.error or "")


@pytest.mark.parametrize("row", CHANNELS, ids=[r.name for r in CHANNELS])
async def test_connection_is_reused(server: HttpTestServer, row: ChannelRow) -> None:
    """Pooled connections: several sends ride one connection."""
    server.default = row.ok
    channel = row.make(server, Redactor())
    try:
        for _ in range(3):
            await channel.send([_alert()])
    finally:
        await channel.aclose()
    assert len(server.requests) == 3
    assert len(server._writers) == 1


async def test_hang_does_not_block_other_channel(server: HttpTestServer) -> None:
    """A hanging endpoint holds up only its own send."""
    async with HttpTestServer(default=Reply(204)) as healthy:
        server.default = Reply(hang=True)
        stuck = _discord(server, Redactor())
        ok = _discord(healthy, Redactor())
        clock = RecordingClock()
        try:
            hanging = asyncio.ensure_future(send_with_retry(stuck, [_alert()], clock, retries=0))
            result = await send_with_retry(ok, [_alert()], clock)
            assert result.ok and not hanging.done()
            late = await hanging
            assert not late.ok and "no answer" in (late.error or "")
        finally:
            await stuck.aclose()
            await ok.aclose()
