"""The console channel: one readable line per alert on stdout (the default channel)."""

from __future__ import annotations

import sys
from datetime import datetime, timezone
from typing import Sequence, TextIO

from sysops_agent.model import Alert, AlertState


def format_line(alert: Alert) -> str:
    when = datetime.fromtimestamp(alert.timestamp, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")
    state = "RESOLVED" if alert.state is AlertState.RESOLVED else alert.severity.label.upper()
    labels = ",".join(f"{k}={v}" for k, v in alert.labels)
    where = f"{alert.metric}{{{labels}}}" if labels else alert.metric
    return f"{when} {alert.hostname} [{state}] {where}: {alert.message} ({alert.analyzer})"


class ConsoleChannel:
    name = "console"
    supports_batch = True

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream

    async def send(self, alerts: Sequence[Alert]) -> None:
        stream = self._stream or sys.stdout
        for alert in alerts:
            stream.write(format_line(alert) + "\n")
        stream.flush()

    async def aclose(self) -> None:
        return None
