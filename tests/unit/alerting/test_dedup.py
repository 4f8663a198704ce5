from __future__ import annotations

from typing import List, Tuple

import pytest

from sysops_agent.alerting.dedup import DedupStage, dedup_decision
from sysops_agent.model import Alert, AlertState, Severity, make_labels


def alert(
    metric: str = "cpu_usage_percent",
    severity: Severity = Severity.WARN,
    state: AlertState = AlertState.FIRING,
    **labels: str,
) -> Alert:
    return Alert(
        timestamp=1_700_000_000.0,
        hostname="web1",
        severity=severity,
        metric=metric,
        value=95.0,
        threshold=90.0,
        message="high",
        analyzer="threshold",
        labels=make_labels(labels),
        state=state,
    )


W = Severity.WARN
C = Severity.CRITICAL
F = AlertState.FIRING
R = AlertState.RESOLVED

# (time, metric, severity, state, labels, expected admit)
Step = Tuple[float, str, Severity, AlertState, Tuple[Tuple[str, str], ...], bool]
CASES: List[Tuple[str, List[Step]]] = [
    ("first alert passes", [(0, "cpu", W, F, (), True)]),
    ("repeat inside window", [(0, "cpu", W, F, (), True), (599, "cpu", W, F, (), False)]),
    ("repeat at window end", [(0, "cpu", W, F, (), True), (600, "cpu", W, F, (), True)]),
    (
        "suppressed repeat does not extend the window",
        [
            (0, "cpu", W, F, (), True),
            (300, "cpu", W, F, (), False),
            (600, "cpu", W, F, (), True),
        ],
    ),
    ("other severity is another key", [(0, "cpu", W, F, (), True), (1, "cpu", C, F, (), True)]),
    (
        "other labels are another key",
        [(0, "disk", W, F, (("mount", "/"),), True), (1, "disk", W, F, (("mount", "/var"),), True)],
    ),
    (
        "resolved always passes and clears the key",
        [
            (0, "cpu", W, F, (), True),
            (10, "cpu", W, R, (), True),
            (11, "cpu", W, R, (), True),
            (12, "cpu", W, F, (), True),
            (13, "cpu", W, F, (), False),
        ],
    ),
    (
        "resolved clears every severity of the series",
        [
            (0, "cpu", C, F, (), True),
            (5, "cpu", W, R, (), True),
            (6, "cpu", C, F, (), True),
        ],
    ),
    (
        "resolve of another series leaves the key",
        [
            (0, "disk", W, F, (("mount", "/"),), True),
            (5, "disk", W, R, (("mount", "/var"),), True),
            (6, "disk", W, F, (("mount", "/"),), False),
        ],
    ),
    (
        "de-escalation inside the window passes (warn -> critical -> warn)",
        [
            (0, "cpu", W, F, (), True),
            (60, "cpu", C, F, (), True),
            (120, "cpu", W, F, (), True),
            (130, "cpu", W, F, (), False),
            (180, "cpu", W, R, (), True),
        ],
    ),
    (
        "clock going backwards stays suppressed",
        [(100, "cpu", W, F, (), True), (50, "cpu", W, F, (), False)],
    ),
]


@pytest.mark.parametrize("steps", [c[1] for c in CASES], ids=[c[0] for c in CASES])
def test_dedup_table(steps: List[Step]) -> None:
    stage = DedupStage(600)
    for now, metric, sev, state, labels, expected in steps:
        a = alert(metric, sev, state, **dict(labels))
        assert stage.admit(a, now) is expected, (now, metric, sev, state, labels)


def test_dedup_decision_is_pure() -> None:
    a = alert()
    table = {a.identity: (a.severity, 100.0)}
    assert dedup_decision(a, table, 200.0, 600.0) is False
    assert dedup_decision(a, table, 700.0, 600.0) is True
    assert table == {a.identity: (a.severity, 100.0)}


def test_zero_window_never_suppresses() -> None:
    stage = DedupStage(0)
    assert stage.admit(alert(), 0) and stage.admit(alert(), 0)


def test_table_is_pruned() -> None:
    stage = DedupStage(10)
    for i in range(5000):
        stage.admit(alert(f"m{i}"), float(i))
    assert len(stage) < 5000


def test_two_analyzers_on_one_series_are_two_alerts() -> None:
    """The disk trend's critical does not hide the disk threshold's critical that follows."""
    stage = DedupStage(600)
    trend = alert("disk_usage_percent", C, mountpoint="/srv").evolve(analyzer="trend")
    threshold = alert("disk_usage_percent", C, mountpoint="/srv")
    assert stage.admit(trend, 0) is True
    assert stage.admit(threshold, 60) is True
    assert stage.admit(threshold.evolve(value=96.0), 70) is False
