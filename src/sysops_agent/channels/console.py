"""The console channel: one readable line per alert on stdout (the default channel).

The line is :func:`sysops_agent.alerting.text.format_line`, the one the alert
manager logs too (a downward import of a record helper).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Optional, Sequence, TextIO

from sysops_agent.alerting.text import format_line
from sysops_agent.channels.base import SEVERITIES, ChannelContext, severity_of
from sysops_agent.model import Alert, Severity
from sysops_agent.schema import opt

__all__ = ["ConsoleChannel", "ConsoleChannelConfig", "create", "format_line"]


@dataclass(frozen=True)
class ConsoleChannelConfig:
    enabled: bool = opt(True, help="print alerts to stdout; also used when no channel is enabled")
    min_severity: str = opt("info", choices=SEVERITIES)


class ConsoleChannel:
    name = "console"
    supports_batch = True
    rate_limited = True

    def __init__(
        self, stream: Optional[TextIO] = None, *, min_severity: Severity = Severity.INFO
    ) -> None:
        self._stream = stream
        self.min_severity = min_severity
        self.disabled: Optional[str] = None

    async def send(self, alerts: Sequence[Alert], *, mention: bool = False) -> None:
        stream = self._stream or sys.stdout
        for alert in alerts:
            stream.write(format_line(alert) + "\n")
        stream.flush()

    async def aclose(self) -> None:
        return None


def create(cfg: ConsoleChannelConfig, ctx: ChannelContext) -> ConsoleChannel:
    return ConsoleChannel(min_severity=severity_of(cfg.min_severity))
