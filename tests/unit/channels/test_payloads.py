"""Payloads of the HTTP channels: hostile, long and unicode text against each platform's rules.

Every alert goes through a real request to the loopback test server; the
checks read what arrived. The rules are those of /work/shared/PLATFORMS.md:
Discord limits and allowed_mentions, Slack escaping and block limits,
Telegram's UTF-16 length after entity parsing and well-formed HTML, and the
webhook's exact SPEC §6 JSON.
"""

from __future__ import annotations

import html
import json
import re
from html.parser import HTMLParser
from typing import Any, AsyncIterator, Dict, Iterator, List, Tuple

import pytest

from sysops_agent.alerting.route import wants_mention
from sysops_agent.channels import discord, slack, telegram
from sysops_agent.channels.discord import DiscordChannel, DiscordChannelConfig
from sysops_agent.channels.slack import SlackChannel, SlackChannelConfig
from sysops_agent.channels.telegram import TelegramChannel, TelegramChannelConfig
from sysops_agent.channels.text import truncate, utf16_len
from sysops_agent.channels.webhook import WebhookChannel, WebhookChannelConfig
from sysops_agent.model import Alert, AlertState, Severity, make_labels
from tests.support.httpserver import HttpTestServer, Reply

HOSTILE_HOST = "web-01.例え.jp 🚀 @everyone <!channel> **bold** <b>x</b> &amp; co\r\nX-Injected: 1"
HOSTILE_PROC = (
    "`rm -rf /` @here <@123456789012345678> <@&987654321> [click](http://evil.example) "
    "<script>alert(1)</script> 进程名 ||spoiler|| <!here> <http://evil.example|login>"
)
HOSTILE_MESSAGE = (
    "OOM killed `java` (pid 4242) @everyone <!channel> <!subteam^S1> &lt;not an entity&gt; "
    "# heading\n> quote\n**bold** __u__ ~~s~~ <a href='x'>link</a> &#x1F600; 日本語のログ 🔥🔥\r\n"
)


def hostile(
    i: int = 0,
    severity: Severity = Severity.CRITICAL,
    message_repeat: int = 1,
    state: AlertState = AlertState.FIRING,
) -> Alert:
    return Alert(
        timestamp=1_700_000_000.0 + i,
        hostname=HOSTILE_HOST,
        severity=severity,
        metric=f"process_memory_bytes_{i}",
        value=1.5e9 + i,
        threshold=1e9,
        message=HOSTILE_MESSAGE * message_repeat,
        analyzer="leak",
        labels=make_labels(process=HOSTILE_PROC, pid=str(4242 + i)),
        duration=3725.0,
        state=state,
    )


def long_unicode(i: int = 0, n: int = 6000) -> Alert:
    return hostile(i).evolve(message=("😀日本" * n)[: 3 * n], hostname="h" * 400 + "😀" * 300)


CASES: List[Tuple[str, List[Alert]]] = [
    ("one hostile", [hostile()]),
    ("one huge message", [hostile(message_repeat=200)]),
    ("one long unicode", [long_unicode()]),
    ("warn", [hostile(severity=Severity.WARN)]),
    ("resolved emergency", [hostile(severity=Severity.EMERGENCY, state=AlertState.RESOLVED)]),
    ("batch of 3", [hostile(i) for i in range(3)]),
    ("batch of 12 long", [hostile(i, message_repeat=30) for i in range(12)]),
    ("batch of 60", [hostile(i) for i in range(60)]),
    ("batch of 40 unicode", [long_unicode(i, 500) for i in range(40)]),
]
IDS = [c[0] for c in CASES]


@pytest.fixture
async def server() -> AsyncIterator[HttpTestServer]:
    async with HttpTestServer(default=Reply(200, "ok")) as s:
        yield s


def strings(obj: Any) -> Iterator[str]:
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from strings(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from strings(v)


# -- Discord ----------------------------------------------------------------------


async def discord_payload(server: HttpTestServer, alerts: List[Alert], **cfg: Any) -> Any:
    config = DiscordChannelConfig(
        enabled=True, webhook_url=server.url("/api/webhooks/1/tok"), **cfg
    )
    channel = DiscordChannel(config, timeout=5)
    server.default = Reply(204)
    try:
        await channel.send(alerts, mention=wants_mention(alerts))
    finally:
        await channel.aclose()
    return server.requests[-1].json()


def check_discord_limits(payload: Dict[str, Any], n_alerts: int) -> None:
    embeds = payload["embeds"]
    assert 1 <= len(embeds) <= discord.EMBEDS_MAX
    total = 0
    for e in embeds:
        assert utf16_len(e["title"]) <= discord.TITLE_MAX
        assert utf16_len(e.get("description", "")) <= discord.DESCRIPTION_MAX
        assert len(e.get("fields", [])) <= discord.FIELDS_MAX
        for f in e.get("fields", []):
            assert 1 <= utf16_len(f["name"]) <= discord.FIELD_NAME_MAX
            assert 1 <= utf16_len(f["value"]) <= discord.FIELD_VALUE_MAX
        assert utf16_len(e.get("footer", {}).get("text", "")) <= discord.FOOTER_MAX
        total += discord.embed_size(e)
    assert total <= discord.EMBEDS_TOTAL_MAX
    assert utf16_len(payload.get("content", "")) <= discord.CONTENT_MAX
    # every alert is accounted for: a full embed or a count in the summary
    last = embeds[-1]["title"]
    m = re.match(r"…and (\d+) more alert", last)
    shown = len(embeds) - 1 + int(m.group(1)) if m else len(embeds)
    assert shown == n_alerts


@pytest.mark.parametrize("alerts", [c[1] for c in CASES], ids=IDS)
async def test_discord_payload(server: HttpTestServer, alerts: List[Alert]) -> None:
    payload = await discord_payload(
        server, alerts, mention_user_ids=["111", "not-an-id"], mention_role_ids=["222"]
    )
    check_discord_limits(payload, len(alerts))
    # alert text can never ping: parse is empty, only configured ids are allowed
    allowed = payload["allowed_mentions"]
    assert allowed["parse"] == []
    if any(a.severity >= Severity.CRITICAL and a.state is AlertState.FIRING for a in alerts):
        assert payload["content"] == "<@111> <@&222>"
        assert allowed.get("users") == ["111"] and allowed.get("roles") == ["222"]
    else:
        assert "content" not in payload
        assert "users" not in allowed and "roles" not in allowed
    # markdown links and code in alert text are literal
    for text in strings(payload["embeds"]):
        assert "[click](http" not in text
        assert "\r" not in text


async def test_discord_embed_look(server: HttpTestServer) -> None:
    a = hostile(severity=Severity.WARN).evolve(hostname="web1", labels=make_labels(mount="/"))
    payload = await discord_payload(server, [a])
    (embed,) = payload["embeds"]
    assert embed["color"] == 0xFFA500
    assert [f["name"] for f in embed["fields"]] == [
        "Host",
        "Metric",
        "Value (threshold)",
        "Duration",
        "Analyzer",
        "Time",
    ]
    values = {f["name"]: f["value"] for f in embed["fields"]}
    assert values["Host"] == "web1"
    assert values["Value (threshold)"] == "1500000000 (growth limit 1000000000/h)"
    assert values["Duration"] == "1h02m"
    assert values["Time"] == "2023-11-14T22:13:20Z"
    assert embed["title"] == "\\[WARN\\] process\\_memory\\_bytes\\_0 on web1"
    assert payload["username"] == "SysOps Agent"
    colours = {
        Severity.CRITICAL: 0xFF0000,
        Severity.EMERGENCY: 0x8B0000,
    }
    for sev, colour in colours.items():
        assert discord.build_embed(a.evolve(severity=sev))["color"] == colour
    assert discord.build_embed(a.evolve(state=AlertState.RESOLVED))["color"] == 0x2ECC71


async def test_discord_value_is_shown_in_its_unit(server: HttpTestServer) -> None:
    """``1.4 GB`` as the alert message says it, not ``1500000000``; the leak's threshold
    is a slope, per hour, in the same unit."""
    a = hostile().evolve(metric="process_rss_bytes")
    payload = await discord_payload(server, [a])
    values = {f["name"]: f["value"] for f in payload["embeds"][0]["fields"]}
    assert values["Value (threshold)"] == "1.4 GB (growth limit 954 MB/h)"


async def test_discord_no_mention_without_configured_ids(server: HttpTestServer) -> None:
    payload = await discord_payload(server, [hostile(severity=Severity.EMERGENCY)])
    assert "content" not in payload
    assert payload["allowed_mentions"] == {"parse": []}


# -- Slack ------------------------------------------------------------------------


async def slack_payload(server: HttpTestServer, alerts: List[Alert], mention: str = "") -> Any:
    config = SlackChannelConfig(
        enabled=True, webhook_url=server.url("/services/T/B/x"), mention=mention
    )
    channel = SlackChannel(config, timeout=5)
    server.default = Reply(200, "ok")
    try:
        await channel.send(alerts, mention=wants_mention(alerts))
    finally:
        await channel.aclose()
    return server.requests[-1].json()


_BAD_ENTITY = re.compile(r"&(?!amp;|lt;|gt;)")


@pytest.mark.parametrize("alerts", [c[1] for c in CASES], ids=IDS)
async def test_slack_payload(server: HttpTestServer, alerts: List[Alert]) -> None:
    mention = "<!subteam^S0ONCALL>"
    payload = await slack_payload(server, alerts, mention=mention)
    blocks = payload["blocks"]
    assert 1 <= len(blocks) <= slack.BLOCKS_MAX
    total = 0
    texts: List[str] = [payload["text"]]
    for b in blocks:
        if "text" in b:
            assert len(b["text"]["text"]) <= slack.TEXT_OBJECT_MAX
            texts.append(b["text"]["text"])
        fields = b.get("fields", [])
        assert len(fields) <= slack.SECTION_FIELDS_MAX
        for f in fields:
            assert len(f["text"]) <= slack.FIELD_TEXT_MAX
            texts.append(f["text"])
        total += slack.block_text_size(b)
    assert total <= slack.TOTAL_TEXT_BUDGET
    assert len(payload["text"]) <= slack.FALLBACK_TEXT_MAX
    wants = any(a.severity >= Severity.CRITICAL and a.state is AlertState.FIRING for a in alerts)
    for t in texts:
        without_mention = t.replace(mention, "") if wants else t
        # no live control sequence from alert text: every < > & is an entity
        assert "<" not in without_mention and ">" not in without_mention, t[:200]
        assert not _BAD_ENTITY.search(without_mention), t[:200]
    assert (blocks[0]["text"]["text"] == mention) is wants
    assert payload["text"].startswith(mention) is wants
    dumped = json.dumps(payload)
    assert "&lt;!here&gt;" in dumped  # shown, inert
    assert "<!here>" not in dumped and "<!channel>" not in dumped
    last = blocks[-1]
    m = re.match(r"\*…and (\d+) more alert", last.get("text", {}).get("text", ""))
    sections = [b for b in blocks if b.get("fields")]
    assert len(sections) + (int(m.group(1)) if m else 0) == len(alerts)


def test_slack_escape_truncation_never_splits_an_entity() -> None:
    for limit in range(1, 40):
        out = truncate("a&<>&&<<" * 10, limit, len, slack.escape)
        assert len(out) <= limit
        assert not _BAD_ENTITY.search(out.rstrip("…"))


# -- Telegram ---------------------------------------------------------------------


class TagChecker(HTMLParser):
    ALLOWED = frozenset({"b", "i", "u", "s", "a", "code", "pre"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.stack: List[str] = []
        self.visible: List[str] = []

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        assert tag in self.ALLOWED, tag
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack.pop() == tag, tag

    def handle_data(self, data: str) -> None:
        assert "<" not in data and ">" not in data
        self.visible.append(data)

    def handle_entityref(self, name: str) -> None:
        assert name in ("lt", "gt", "amp", "quot"), name
        self.visible.append(html.unescape(f"&{name};"))

    def handle_charref(self, name: str) -> None:
        self.visible.append(html.unescape(f"&#{name};"))


def telegram_visible(text: str) -> str:
    assert not re.search(r"&(?!lt;|gt;|amp;|quot;|#\d+;|#x[0-9a-fA-F]+;)", text), "bad entity"
    p = TagChecker()
    p.feed(text)
    p.close()
    assert p.stack == [], "unclosed tag"
    return "".join(p.visible)


async def telegram_payload(server: HttpTestServer, alerts: List[Alert]) -> Any:
    config = TelegramChannelConfig(
        enabled=True, bot_token="123:abcDEF", chat_id="-100200", api_base_url=server.url("/")
    )
    channel = TelegramChannel(config, timeout=5)
    server.default = Reply(200, {"ok": True, "result": {}})
    try:
        await channel.send(alerts)
    finally:
        await channel.aclose()
    assert server.requests[-1].path == "/bot123:abcDEF/sendMessage"
    return server.requests[-1].json()


@pytest.mark.parametrize("alerts", [c[1] for c in CASES], ids=IDS)
async def test_telegram_payload(server: HttpTestServer, alerts: List[Alert]) -> None:
    payload = await telegram_payload(server, alerts)
    assert payload["parse_mode"] == "HTML"
    assert payload["disable_web_page_preview"] is True
    assert payload["chat_id"] == "-100200"
    visible = telegram_visible(payload["text"])
    assert 1 <= utf16_len(visible) <= telegram.MESSAGE_MAX
    assert "<!here>" in visible  # hostile text is shown, as text
    m = re.search(r"…and (\d+) more alerts$", visible)
    shown = len(re.findall(r"^Analyzer: leak$", visible, re.M))
    assert shown + (int(m.group(1)) if m else 0) == len(alerts)


def test_telegram_cut_lands_on_the_limit_exactly() -> None:
    # a message that must be cut: the visible length is as close to 4096 as a cut allows
    alert = long_unicode(n=9000)
    text = telegram.render(telegram.build_pieces([alert]))
    visible = telegram_visible(text)
    assert 4000 <= utf16_len(visible) <= telegram.MESSAGE_MAX
    pieces = telegram.build_pieces([alert], limit=100)
    assert telegram.visible_len(pieces) <= 100
    assert telegram_visible(telegram.render(pieces))


def test_telegram_escapes_everything() -> None:
    text = telegram.render(telegram.build_pieces([hostile()]))
    assert "&lt;script&gt;" in text and "<script>" not in text
    assert "&amp;lt;not an entity&amp;gt;" in text
    assert "&amp;#x1F600;" in text


# -- webhook ----------------------------------------------------------------------


async def test_webhook_sends_the_spec_json_one_per_alert(server: HttpTestServer) -> None:
    config = WebhookChannelConfig(
        enabled=True,
        url=server.url("/in"),
        method="PATCH",
        headers={"X-Token": "from-env-value", "content-type": "application/vnd.x+json"},
    )
    channel = WebhookChannel(config, timeout=5)
    server.default = Reply(202, "")
    alerts = [hostile(0), hostile(1, state=AlertState.RESOLVED), long_unicode(2)]
    try:
        await channel.send(alerts)
    finally:
        await channel.aclose()
    assert len(server.requests) == 3
    for req, alert in zip(server.requests, alerts):
        assert req.method == "PATCH" and req.path == "/in"
        assert req.headers["x-token"] == "from-env-value"
        assert req.headers["content-type"] == "application/vnd.x+json"
        body = req.json()
        assert body == alert.to_json_obj()
        assert list(body) == [
            "hostname",
            "timestamp",
            "severity",
            "metric",
            "value",
            "threshold",
            "message",
            "labels",
            "duration_secs",
            "analyzer",
            "state",
            "id",
        ]
    first = server.requests[0].json()
    assert first["timestamp"] == "2023-11-14T22:13:20Z"
    assert first["duration_secs"] == 3725
    assert first["labels"]["process"] == HOSTILE_PROC
    assert server.requests[1].json()["state"] == "resolved"


def test_telegram_token_is_masked_in_the_url() -> None:
    config = TelegramChannelConfig(enabled=True, bot_token="123456:AAHsecretPart_x-y", chat_id="1")
    channel = TelegramChannel(config)
    assert channel.url == "https://api.telegram.org/bot123456:AAHsecretPart_x-y/sendMessage"
    masked = channel.redact(f"error talking to {channel.url}")
    assert masked == "error talking to https://api.telegram.org/bot123456:***/sendMessage"
