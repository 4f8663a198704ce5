"""The one-line text form of an alert: the agent's log and the console channel print it."""

from __future__ import annotations

from datetime import datetime, timezone

from sysops_agent.model import Alert, AlertState, clean_text


def format_line(alert: Alert) -> str:
    when = datetime.fromtimestamp(alert.timestamp, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")
    state = "RESOLVED" if alert.state is AlertState.RESOLVED else alert.severity.label.upper()
    labels = ",".join(f"{k}={v}" for k, v in alert.labels)
    where = f"{alert.metric}{{{labels}}}" if labels else alert.metric
    # one line, whatever the message holds (an Alert's text is already free of the rest)
    message = clean_text(alert.message)
    return f"{when} {alert.hostname} [{state}] {where}: {message} ({alert.analyzer})"
