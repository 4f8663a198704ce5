"""Slack incoming-webhook channel: Block Kit, every piece of alert text escaped.

Slack's mrkdwn gives ``<…>`` a meaning (``<!channel>``, ``<!here>``,
``<@U123>``, links) and uses ``&`` for entities, so ``&``, ``<`` and ``>`` in
alert text are written ``&amp;``, ``&lt;``, ``&gt;`` (:func:`escape`): a log
line quoting ``<!channel>`` shows up as text. The configured ``mention`` is
the one thing added raw, on messages the pipeline marks ``mention=True`` (a
firing critical or emergency alert, decided by :mod:`sysops_agent.alerting.route`).

Limits: the constants below. A text object is measured after escaping (that
is what Slack receives), and cut on the plain text so an entity is never
split. A batch that would pass :data:`BLOCKS_MAX` or :data:`TOTAL_TEXT_BUDGET`
lists the rest in one summary section.

404 ``no_service``, 410 ``channel_is_archived`` and 403 (``invalid_token``,
``action_prohibited``) disable the channel with one loud error. Success is
200 with body ``ok``; error bodies (``invalid_payload``, …) are reported.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence

from sysops_agent.alerting.text import value_and_threshold
from sysops_agent.channels.base import SEVERITIES, ChannelContext, missing
from sysops_agent.channels.http import HttpChannel
from sysops_agent.channels.text import (
    format_labels,
    one_line,
    strip_control,
    truncate,
)
from sysops_agent.model import Alert, AlertState, Severity, iso_utc
from sysops_agent.schema import Problem, opt
from sysops_agent.units import format_duration

# Slack's limits (Block Kit reference; msg_blocks_too_long observed near 13k characters)
TEXT_OBJECT_MAX = 3000
BLOCKS_MAX = 50
SECTION_FIELDS_MAX = 10
FIELD_TEXT_MAX = 2000
#: the ``text`` fallback (used for notifications) — Slack truncates at 40,000
FALLBACK_TEXT_MAX = 3000
#: all text of one message together, kept well under the undocumented ~13k
TOTAL_TEXT_BUDGET = 12000

# Our budgets inside those limits
FIELD_BUDGET = 300
BATCH_MESSAGE_BUDGET = 1000
SUMMARY_LINE_MAX = 150
SUMMARY_RESERVE = 1500

EMOJI = {
    Severity.INFO: ":information_source:",
    Severity.WARN: ":warning:",
    Severity.CRITICAL: ":red_circle:",
    Severity.EMERGENCY: ":rotating_light:",
}
RESOLVED_EMOJI = ":white_check_mark:"


def check_slack_mention(value: str) -> Optional[str]:
    if value and not re.fullmatch(r"(\s*<[!@#][^<>\s]+>)+\s*", value):
        return (
            f"{value!r} is not Slack mention syntax: use <!here>, <!channel>, <@U12345> "
            "or <!subteam^S12345>"
        )
    return None


@dataclass(frozen=True)
class SlackChannelConfig:
    enabled: bool = opt(False)
    webhook_url: str = opt("", secret=True)
    mention: str = opt(
        "",
        validate=check_slack_mention,
        help="e.g. <@U12345> or <!subteam^S123>, added on critical/emergency",
    )
    min_severity: str = opt("warn", choices=SEVERITIES)

    def problems(self, path: str) -> List[Problem]:
        return missing(self, path, ["webhook_url"])


def escape(text: str) -> str:
    """Slack's three control characters as entities (the only escaping Slack wants)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _esc(text: str, limit: int) -> str:
    return truncate(text, limit, len, escape)


def headline(alert: Alert) -> str:
    state = "RESOLVED" if alert.state is AlertState.RESOLVED else alert.severity.label.upper()
    return f"[{state}] {alert.metric} on {alert.hostname}"


def alert_blocks(alert: Alert, message_budget: int) -> List[Dict[str, Any]]:
    emoji = RESOLVED_EMOJI if alert.state is AlertState.RESOLVED else EMOJI[alert.severity]
    text = f"{emoji} *{_esc(one_line(headline(alert)), 500)}*"
    if alert.message:
        text += "\n" + _esc(
            strip_control(alert.message), min(message_budget, TEXT_OBJECT_MAX - len(text) - 1)
        )
    metric = alert.metric + (" {" + format_labels(alert.labels) + "}" if alert.labels else "")
    facts = [
        ("Host", alert.hostname),
        ("Metric", metric),
        (
            "Value (threshold)",
            value_and_threshold(alert),
        ),
        ("Duration", format_duration(alert.duration)),
        ("Analyzer", alert.analyzer),
        ("Time", iso_utc(alert.timestamp)),
    ]
    fields = [
        {"type": "mrkdwn", "text": f"*{name}*\n{_esc(one_line(value) or '-', FIELD_BUDGET)}"}
        for name, value in facts
    ][:SECTION_FIELDS_MAX]
    return [
        {"type": "section", "text": {"type": "mrkdwn", "text": text}, "fields": fields},
        {"type": "divider"},
    ]


def block_text_size(block: Dict[str, Any]) -> int:
    size = len(block.get("text", {}).get("text", ""))
    for f in block.get("fields", []):
        size += len(f["text"])
    return size


def summary_block(rest: Sequence[Alert], budget: int) -> Dict[str, Any]:
    head = f"*…and {len(rest)} more alert{'s' if len(rest) != 1 else ''}:*"
    lines = [head]
    used = len(head)
    limit = min(TEXT_OBJECT_MAX, budget)
    for i, alert in enumerate(rest):
        line = "• " + _esc(one_line(headline(alert)), SUMMARY_LINE_MAX)
        more = f"…and {len(rest) - i} more"
        if used + 1 + len(line) + 1 + len(more) > limit:
            lines.append(more)
            break
        lines.append(line)
        used += 1 + len(line)
    return {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)}}


def build_payload(
    alerts: Sequence[Alert], *, mention: str = "", with_mention: bool = False
) -> Dict[str, Any]:
    """The message; ``mention`` (the configured text) leads it when ``with_mention``."""
    blocks: List[Dict[str, Any]] = []
    used = 0
    prefix = ""
    if mention and with_mention:
        prefix = mention.strip()[:500]
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": prefix}})
        used += len(prefix)
    single = len(alerts) == 1
    placed = 0
    for i, alert in enumerate(alerts):
        more_after = len(alerts) - i - 1
        reserve_blocks = 1 if more_after else 0
        reserve_text = SUMMARY_RESERVE if more_after else 0
        candidate = alert_blocks(alert, TEXT_OBJECT_MAX if single else BATCH_MESSAGE_BUDGET)
        size = sum(block_text_size(b) for b in candidate)
        if len(blocks) + len(candidate) + reserve_blocks > BLOCKS_MAX:
            break
        if used + size + reserve_text > TOTAL_TEXT_BUDGET:
            break
        blocks.extend(candidate)
        used += size
        placed += 1
    rest = alerts[placed:]
    if rest:
        blocks.append(summary_block(rest, TOTAL_TEXT_BUDGET - used))
    first = alerts[0]
    fallback = headline(first) + (f": {first.message}" if first.message else "")
    if len(alerts) > 1:
        fallback += f" (+{len(alerts) - 1} more)"
    text = _esc(one_line(fallback), FALLBACK_TEXT_MAX - len(prefix) - 1)
    if prefix:
        text = f"{prefix} {text}"
    return {"text": text, "blocks": blocks}


class SlackChannel(HttpChannel[SlackChannelConfig]):
    name = "slack"
    supports_batch = True
    disable_on = frozenset({403, 404, 410})

    def secret_values(self, config: SlackChannelConfig) -> List[str]:
        return [config.webhook_url]

    def payload(self, alerts: Sequence[Alert], mention: bool = False) -> Dict[str, Any]:
        return build_payload(alerts, mention=self.config.mention, with_mention=mention)

    async def send(self, alerts: Sequence[Alert], *, mention: bool = False) -> None:
        if alerts:
            await self.post_json(self.config.webhook_url, self.payload(alerts, mention))


def create(cfg: SlackChannelConfig, ctx: ChannelContext) -> SlackChannel:
    return SlackChannel(cfg, redactor=ctx.redactor, timeout=ctx.send_timeout_secs, clock=ctx.clock)
