"""Discord webhook channel: one embed per alert, coloured by severity.

Mentions: every payload carries ``allowed_mentions`` with ``parse: []``, so an
``@everyone``, ``@here``, ``<@id>`` or ``<@&role>`` inside alert text (a
process name, a log line) never pings anyone. Only the configured user/role
ids are allowed, and only in messages the pipeline marks ``mention=True`` (a
firing critical/emergency alert, decided by :mod:`sysops_agent.alerting.route`),
where they are written into ``content``.

Limits (Discord answers 400 and drops the message when one is exceeded):
the constants below. Lengths are counted in UTF-16 units, which is never less
than Discord's own count. A batch that does not fit into 10 embeds / 6000
characters keeps as many whole embeds as fit and summarises the rest in a
last embed, so one request still carries every alert.

A 401/403/404 means the webhook was deleted or its token is wrong: the
channel disables itself with one loud error instead of retrying forever
(Discord bans IPs that send many invalid requests). Success is 204 (or 200).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence

from sysops_agent.alerting.text import value_and_threshold
from sysops_agent.channels.base import SEVERITIES, ChannelContext, missing
from sysops_agent.channels.http import HttpChannel, json_body
from sysops_agent.channels.text import (
    format_labels,
    one_line,
    strip_control,
    truncate,
    utf16_len,
)
from sysops_agent.model import Alert, AlertState, Severity, iso_utc
from sysops_agent.schema import Problem, opt
from sysops_agent.units import format_duration

# Discord's limits (https://discord.com/developers/docs/resources/message#embed-object-embed-limits)
CONTENT_MAX = 2000
EMBEDS_MAX = 10
EMBEDS_TOTAL_MAX = 6000  # title + description + field names/values + footer + author, all embeds
TITLE_MAX = 256
DESCRIPTION_MAX = 4096
FIELDS_MAX = 25
FIELD_NAME_MAX = 256
FIELD_VALUE_MAX = 1024
FOOTER_MAX = 2048
AUTHOR_NAME_MAX = 256
USERNAME_MAX = 80
#: allowed_mentions takes at most 100 user and 100 role ids
MENTION_IDS_MAX = 100

# Our own budgets inside those limits, so that several alerts fit one message.
#: field values are short facts; a longer one is cut here
FIELD_VALUE_BUDGET = 300
#: the description (alert message) of one embed in a batch of several
BATCH_DESCRIPTION_BUDGET = 1000
#: characters kept free for the summary embed when not every alert fits
SUMMARY_RESERVE = 700
#: one line of the summary embed
SUMMARY_LINE_MAX = 120

COLOURS = {
    Severity.INFO: 0x3498DB,  # blue
    Severity.WARN: 0xFFA500,  # orange
    Severity.CRITICAL: 0xFF0000,  # red
    Severity.EMERGENCY: 0x8B0000,  # dark red
}
RESOLVED_COLOUR = 0x2ECC71  # green

_MARKDOWN = re.compile(r"([\\*_~`|>#\[\]<])")
_SNOWFLAKE = re.compile(r"^\d{1,25}$")


def check_discord_id(value: str) -> Optional[str]:
    if not re.fullmatch(r"\d{1,25}", value.strip()):
        return f"{value!r} is not a Discord id (digits only, e.g. 123456789012345678)"
    return None


def check_discord_username(value: str) -> Optional[str]:
    # Discord rejects the whole message (HTTP 400) for these names
    lowered = value.lower()
    if not value.strip() or len(value) > 80 or "discord" in lowered or "clyde" in lowered:
        return f"{value!r}: Discord needs 1-80 characters without 'discord' or 'clyde'"
    return None


@dataclass(frozen=True)
class DiscordChannelConfig:
    enabled: bool = opt(False)
    webhook_url: str = opt("", secret=True)
    mention_user_ids: List[str] = opt(
        factory=list, validate=check_discord_id, help="users pinged on critical/emergency"
    )
    mention_role_ids: List[str] = opt(
        factory=list, validate=check_discord_id, help="roles pinged on critical/emergency"
    )
    username: str = opt("SysOps Agent", validate=check_discord_username)
    min_severity: str = opt("warn", choices=SEVERITIES)

    def problems(self, path: str) -> List[Problem]:
        return missing(self, path, ["webhook_url"])


def escape_markdown(text: str) -> str:
    """Make Discord markdown in alert text literal (no bold, links, spoilers, quotes)."""
    return _MARKDOWN.sub(r"\\\1", text)


def _field(name: str, value: str) -> Dict[str, Any]:
    return {
        "name": truncate(name, FIELD_NAME_MAX, utf16_len),
        "value": truncate(one_line(value) or "-", FIELD_VALUE_BUDGET, utf16_len, escape_markdown),
        "inline": True,
    }


def alert_title(alert: Alert) -> str:
    state = "RESOLVED" if alert.state is AlertState.RESOLVED else alert.severity.label.upper()
    return f"[{state}] {alert.metric} on {alert.hostname}"


def build_embed(alert: Alert, description_max: int = DESCRIPTION_MAX) -> Dict[str, Any]:
    colour = RESOLVED_COLOUR if alert.state is AlertState.RESOLVED else COLOURS[alert.severity]
    metric = alert.metric
    if alert.labels:
        metric += " {" + format_labels(alert.labels) + "}"
    embed: Dict[str, Any] = {
        "title": truncate(one_line(alert_title(alert)), TITLE_MAX, utf16_len, escape_markdown),
        "color": colour,
        "fields": [
            _field("Host", alert.hostname),
            _field("Metric", metric),
            _field(
                "Value (threshold)",
                value_and_threshold(alert),
            ),
            _field("Duration", format_duration(alert.duration)),
            _field("Analyzer", alert.analyzer),
            _field("Time", iso_utc(alert.timestamp)),
        ],
        "footer": {"text": truncate(f"SysOps Agent · {alert.id}", FOOTER_MAX, utf16_len)},
        "timestamp": iso_utc(alert.timestamp),
    }
    budget = min(DESCRIPTION_MAX, description_max)
    if budget > 0 and alert.message:
        embed["description"] = truncate(
            strip_control(alert.message).strip(), budget, utf16_len, escape_markdown
        )
    return embed


def embed_size(embed: Dict[str, Any]) -> int:
    """Characters that count towards the 6000 total (UTF-16 units)."""
    size = utf16_len(embed.get("title", "")) + utf16_len(embed.get("description", ""))
    for f in embed.get("fields", []):
        size += utf16_len(f["name"]) + utf16_len(f["value"])
    size += utf16_len(embed.get("footer", {}).get("text", ""))
    size += utf16_len(embed.get("author", {}).get("name", ""))
    return size


def summary_embed(rest: Sequence[Alert], budget: int) -> Dict[str, Any]:
    """One embed that lists alerts that did not fit, within ``budget`` characters."""
    title = f"…and {len(rest)} more alert{'s' if len(rest) != 1 else ''}"
    budget = min(DESCRIPTION_MAX, budget - utf16_len(title))
    lines: List[str] = []
    used = 0
    for i, alert in enumerate(rest):
        line = truncate(one_line(alert_title(alert)), SUMMARY_LINE_MAX, utf16_len, escape_markdown)
        line = "• " + line
        more = f"…and {len(rest) - i} more"
        if used + utf16_len(line) + 1 + utf16_len(more) > budget:
            lines.append(more)
            break
        lines.append(line)
        used += utf16_len(line) + 1
    return {
        "title": title,
        "description": "\n".join(lines),
        "color": max(
            (COLOURS[a.severity] for a in rest if a.state is AlertState.FIRING),
            default=RESOLVED_COLOUR,
        ),
    }


def pack_embeds(alerts: Sequence[Alert]) -> List[Dict[str, Any]]:
    """Embeds for ``alerts`` within every per-message limit (see module doc)."""
    per_embed = DESCRIPTION_MAX if len(alerts) == 1 else BATCH_DESCRIPTION_BUDGET
    embeds: List[Dict[str, Any]] = []
    used = 0
    for i, alert in enumerate(alerts):
        more_after = len(alerts) - i - 1
        reserve = SUMMARY_RESERVE if more_after else 0
        slots = EMBEDS_MAX - (1 if more_after else 0)
        if len(embeds) >= slots:
            break
        bare = embed_size(build_embed(alert, 0))
        room = EMBEDS_TOTAL_MAX - used - reserve - bare
        if room < 0:
            break
        embed = build_embed(alert, min(per_embed, room))
        embeds.append(embed)
        used += embed_size(embed)
    rest = alerts[len(embeds) :]
    if rest:
        embeds.append(summary_embed(rest, EMBEDS_TOTAL_MAX - used))
    return embeds


def mention_ids(ids: Sequence[str]) -> List[str]:
    """Configured ids that are valid snowflakes, at most :data:`MENTION_IDS_MAX`."""
    return [i.strip() for i in ids if _SNOWFLAKE.match(i.strip())][:MENTION_IDS_MAX]


def build_payload(
    alerts: Sequence[Alert],
    *,
    username: str = "",
    user_ids: Sequence[str] = (),
    role_ids: Sequence[str] = (),
    mention: bool = False,
) -> Dict[str, Any]:
    allowed: Dict[str, Any] = {"parse": []}
    payload: Dict[str, Any] = {"embeds": pack_embeds(alerts), "allowed_mentions": allowed}
    if username:
        payload["username"] = truncate(one_line(username), USERNAME_MAX)
    if mention:
        users: List[str] = []
        roles: List[str] = []
        parts: List[str] = []
        length = 0
        for kind, ids, fmt in (("u", user_ids, "<@{}>"), ("r", role_ids, "<@&{}>")):
            for snowflake in mention_ids(ids):
                token = fmt.format(snowflake)
                if length + len(token) + 1 > CONTENT_MAX:
                    break
                parts.append(token)
                length += len(token) + 1
                (users if kind == "u" else roles).append(snowflake)
        if parts:
            payload["content"] = " ".join(parts)
            if users:
                allowed["users"] = users
            if roles:
                allowed["roles"] = roles
    return payload


class DiscordChannel(HttpChannel[DiscordChannelConfig]):
    name = "discord"
    supports_batch = True
    disable_on = frozenset({401, 403, 404})

    def secret_values(self, config: DiscordChannelConfig) -> List[str]:
        return [config.webhook_url]

    def payload(self, alerts: Sequence[Alert], mention: bool = False) -> Dict[str, Any]:
        return build_payload(
            alerts,
            username=self.config.username,
            user_ids=self.config.mention_user_ids,
            role_ids=self.config.mention_role_ids,
            mention=mention,
        )

    def error_detail(self, response: Any) -> str:
        body = json_body(response)
        if isinstance(body, dict) and "message" in body:
            code = body.get("code")
            return f"{body['message']}" + (f" (code {code})" if code is not None else "")
        return str(response.text)

    async def send(self, alerts: Sequence[Alert], *, mention: bool = False) -> None:
        if alerts:
            await self.post_json(self.config.webhook_url, self.payload(alerts, mention))


def create(cfg: DiscordChannelConfig, ctx: ChannelContext) -> DiscordChannel:
    return DiscordChannel(
        cfg, redactor=ctx.redactor, timeout=ctx.send_timeout_secs, clock=ctx.clock
    )
