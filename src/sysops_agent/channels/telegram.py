"""Telegram Bot API channel: ``sendMessage`` with ``parse_mode=HTML``.

A message is built as a list of :class:`Piece` — plain text plus an optional
tag (``b``, ``i``, ``code``) — and only rendered to HTML at the end, with every
piece's text HTML-escaped (``&``, ``<``, ``>``). That makes the two hard rules
easy to keep:

- Telegram's 4096 limit applies *after entity parsing* and counts UTF-16 code
  units; the visible length is exactly the UTF-16 length of the pieces' plain
  text, so it is measured there (:func:`visible_len`).
- Cutting happens on a piece's plain text, before escaping, so a cut can never
  split a tag or an entity; a tag is always closed.

A batch keeps as many whole alerts as fit and ends with "…and N more".
Errors show Telegram's ``description`` (e.g. "Bad Request: chat not found");
429 carries ``parameters.retry_after``. The token is part of the URL path;
the redactor masks it as ``bot123:***``. 401/404 (token revoked or wrong)
disable the channel with one loud error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, List, NamedTuple, Optional, Sequence

from sysops_agent.alerting.text import value_and_threshold
from sysops_agent.channels.base import SEVERITIES, ChannelContext, missing
from sysops_agent.channels.http import HttpChannel, json_body
from sysops_agent.channels.text import (
    ELLIPSIS,
    format_labels,
    one_line,
    strip_control,
    truncate,
    utf16_len,
)
from sysops_agent.model import Alert, AlertState, Severity, iso_utc
from sysops_agent.schema import Problem, opt
from sysops_agent.units import format_duration

#: Telegram's limit for ``text`` after entity parsing, in UTF-16 code units
MESSAGE_MAX = 4096
# Our budgets inside it
HEADLINE_BUDGET = 300
FIELD_BUDGET = 300
MESSAGE_BUDGET_BATCH = 800
#: kept free for "…and N more alerts" when not every alert fits
SUMMARY_RESERVE = 40

EMOJI = {
    Severity.INFO: "ℹ️",
    Severity.WARN: "⚠️",
    Severity.CRITICAL: "🔴",
    Severity.EMERGENCY: "🚨",
}
RESOLVED_EMOJI = "✅"


@dataclass(frozen=True)
class TelegramChannelConfig:
    enabled: bool = opt(False)
    bot_token: str = opt("", secret=True)
    chat_id: str = opt("")
    api_base_url: str = opt("https://api.telegram.org")
    min_severity: str = opt("warn", choices=SEVERITIES)

    def problems(self, path: str) -> List[Problem]:
        return missing(self, path, ["bot_token", "chat_id"])


class Piece(NamedTuple):
    text: str
    tag: Optional[str] = None


def escape(text: str) -> str:
    """``html.escape(text, quote=False)``, without importing :mod:`html` (and its entity table)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def render(pieces: Sequence[Piece]) -> str:
    out = []
    for p in pieces:
        body = escape(p.text)
        out.append(f"<{p.tag}>{body}</{p.tag}>" if p.tag and p.text else body)
    return "".join(out)


def visible_len(pieces: Sequence[Piece]) -> int:
    """What Telegram counts against :data:`MESSAGE_MAX`."""
    return sum(utf16_len(p.text) for p in pieces)


def _cut(text: str, limit: int) -> str:
    return truncate(text, limit, utf16_len)


def alert_pieces(alert: Alert, message_budget: int) -> List[Piece]:
    firing = alert.state is AlertState.FIRING
    emoji = EMOJI[alert.severity] if firing else RESOLVED_EMOJI
    state = alert.severity.label.upper() if firing else "RESOLVED"
    pieces = [
        Piece(f"{emoji} "),
        Piece(state, "b"),
        Piece(" "),
        Piece(_cut(one_line(alert.metric), HEADLINE_BUDGET), "b"),
        Piece(" on "),
        Piece(_cut(one_line(alert.hostname), HEADLINE_BUDGET), "b"),
        Piece("\n"),
    ]
    if alert.message and message_budget > 0:
        pieces += [Piece(_cut(strip_control(alert.message).strip(), message_budget)), Piece("\n")]
    facts = [
        (
            "Value",
            value_and_threshold(alert),
        ),
    ]
    if alert.labels:
        facts.append(("Labels", format_labels(alert.labels)))
    facts += [
        ("Duration", format_duration(alert.duration)),
        ("Analyzer", alert.analyzer),
    ]
    for name, value in facts:
        pieces += [Piece(f"{name}: ", "b"), Piece(_cut(one_line(value), FIELD_BUDGET)), Piece("\n")]
    pieces.append(Piece(iso_utc(alert.timestamp), "i"))
    return pieces


def build_pieces(alerts: Sequence[Alert], limit: int = MESSAGE_MAX) -> List[Piece]:
    if len(alerts) == 1:
        # the message gets whatever the other lines leave of the limit
        alert = alerts[0]
        others = visible_len(alert_pieces(alert.evolve(message=""), 0))
        pieces = alert_pieces(alert, limit - others - 1)
        return pieces if visible_len(pieces) <= limit else fit(pieces, limit)
    out: List[Piece] = []
    for i, alert in enumerate(alerts):
        sep = [Piece("\n\n")] if out else []
        candidate = sep + alert_pieces(alert, MESSAGE_BUDGET_BATCH)
        reserve = SUMMARY_RESERVE if i < len(alerts) - 1 else 0
        if visible_len(out) + visible_len(candidate) + reserve > limit:
            rest = len(alerts) - i
            tail = [Piece("\n\n" if out else ""), Piece(f"{ELLIPSIS}and {rest} more alerts", "i")]
            return fit(out + tail, limit)
        out += candidate
    return out


def fit(pieces: Sequence[Piece], limit: int) -> List[Piece]:
    """Cut ``pieces`` from the end so the visible length is at most ``limit``."""
    out: List[Piece] = []
    used = 0
    for p in pieces:
        size = utf16_len(p.text)
        if used + size <= limit:
            out.append(p)
            used += size
            continue
        room = limit - used
        if room > utf16_len(ELLIPSIS):
            out.append(Piece(_cut(p.text, room), p.tag))
        break
    return out


class TelegramChannel(HttpChannel[TelegramChannelConfig]):
    name = "telegram"
    supports_batch = True
    disable_on = frozenset({401, 404})

    def secret_values(self, config: TelegramChannelConfig) -> List[str]:
        token = config.bot_token.strip()
        return [token, f"bot{token}"]

    @property
    def url(self) -> str:
        token = self.config.bot_token.strip()
        return f"{self.config.api_base_url.rstrip('/')}/bot{token}/sendMessage"

    def payload(self, alerts: Sequence[Alert]) -> dict[str, Any]:
        return {
            "chat_id": self.config.chat_id,
            "text": render(build_pieces(alerts)),
            "parse_mode": "HTML",
            "disable_web_page_preview": True,
        }

    def error_detail(self, response: Any) -> str:
        body = json_body(response)
        if isinstance(body, dict) and body.get("description"):
            return str(body["description"])
        return str(response.text)

    async def send(self, alerts: Sequence[Alert], *, mention: bool = False) -> None:
        if alerts:
            await self.post_json(self.url, self.payload(alerts))


def create(cfg: TelegramChannelConfig, ctx: ChannelContext) -> TelegramChannel:
    return TelegramChannel(
        cfg, redactor=ctx.redactor, timeout=ctx.send_timeout_secs, clock=ctx.clock
    )
