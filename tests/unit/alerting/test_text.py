"""One formatter of value and threshold for every channel: the unit, and what the threshold is."""

from __future__ import annotations

import pytest

from sysops_agent.alerting.text import value_and_threshold
from sysops_agent.model import Alert, AlertState, Severity


def alert(analyzer: str, metric: str, value: float, threshold: float, **kw: object) -> Alert:
    return Alert(
        timestamp=1_700_000_000.0,
        hostname="h",
        severity=kw.pop("severity", Severity.WARN),  # type: ignore[arg-type]
        metric=metric,
        value=value,
        threshold=threshold,
        message="m",
        analyzer=analyzer,
        state=kw.pop("state", AlertState.FIRING),  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("a", "text"),
    [
        (alert("threshold", "cpu_usage_percent", 85.04, 80), "85.0% (warn level 80%)"),
        (
            alert("threshold", "cpu_usage_percent", 70.1, 77.6, state=AlertState.RESOLVED),
            "70.1% (cleared below 77.6%)",
        ),
        # the leak alert: "73228290 (52428800)"
        (
            alert("leak", "process_rss_bytes", 73228290, 52428800),
            "69.8 MB (growth limit 50.0 MB/h)",
        ),
        # the z-score alert: "23444390000 (threshold 23486270000)"
        (
            alert("zscore", "memory_used_bytes", 23444390000, 23486270000),
            "21.8 GB (σ bound 21.9 GB)",
        ),
        (alert("trend", "disk_usage_percent", 91.0, 100), "91.0% (forecast to reach 100%)"),
        (alert("log", "log_event", 1, 0), "1 (threshold 0)"),
    ],
)
def test_value_and_threshold(a: Alert, text: str) -> None:
    assert value_and_threshold(a) == text
