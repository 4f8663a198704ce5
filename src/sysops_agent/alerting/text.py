"""The one-line text form of an alert: the agent's log and the console channel print it."""

from __future__ import annotations

from datetime import datetime, timezone

from sysops_agent.model import Alert, AlertState, clean_text
from sysops_agent.units import format_level, format_value


def format_line(alert: Alert) -> str:
    when = datetime.fromtimestamp(alert.timestamp, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")
    state = "RESOLVED" if alert.state is AlertState.RESOLVED else alert.severity.label.upper()
    labels = ",".join(f"{k}={v}" for k, v in alert.labels)
    where = f"{alert.metric}{{{labels}}}" if labels else alert.metric
    # one line, whatever the message holds (an Alert's text is already free of the rest)
    message = clean_text(alert.message)
    return f"{when} {alert.hostname} [{state}] {where}: {message} ({alert.analyzer})"


def value_and_threshold(alert: Alert) -> str:
    """The value in its unit and what the threshold is, for every channel.

    ``85.0% (warn level 80%)``, ``1.2 GB (growth limit 50.0 MB/h)``,
    ``23.4 GB (σ bound 23.5 GB)``: a level of the threshold analyzer, a slope
    of the leak analyzer, a bound of the statistical ones, the forecast target
    of the trend analyzer.
    """
    metric, thr = alert.metric, alert.threshold
    value = format_value(metric, alert.value)
    resolved = alert.state is AlertState.RESOLVED
    if alert.analyzer == "threshold":
        what = "cleared below" if resolved else f"{alert.severity.label} level"
        return f"{value} ({what} {format_level(metric, thr)})"
    if alert.analyzer == "leak":
        return f"{value} (growth limit {format_value(metric, thr)}/h)"
    if alert.analyzer == "zscore":
        return f"{value} (σ bound {format_value(metric, thr)})"
    if alert.analyzer == "ema":
        return f"{value} (bound {format_value(metric, thr)} from its recent average)"
    if alert.analyzer == "trend":
        return f"{value} (forecast to reach {format_level(metric, thr)})"
    return f"{value} (threshold {format_level(metric, thr)})"
