"""Threshold analyzer and the shared alert lifecycle."""

from __future__ import annotations

from typing import List, Optional

import pytest

from sysops_agent.analyzers.lifecycle import Lifecycle, level_severity, make_levels
from sysops_agent.analyzers.registry import ANALYZERS, build_analyzers
from sysops_agent.analyzers.threshold import ThresholdAnalyzer, ThresholdRule, default_thresholds
from sysops_agent.config import load_config
from sysops_agent.model import Alert, AlertState, SeriesKey, Severity, make_labels
from sysops_agent.storage.store import Store

T0 = 1_700_000_000.0
DISK_ROOT = make_labels(mountpoint="/", device="/dev/sda1", fstype="ext4")


def feed(
    analyzer: ThresholdAnalyzer,
    store: Store,
    metric: str,
    values: List[float],
    labels: tuple = (),  # type: ignore[type-arg]
    step: float = 10.0,
    start: float = T0,
) -> List[Alert]:
    """Append values one interval apart, analysing after each (as the daemon does)."""
    out: List[Alert] = []
    for i, v in enumerate(values):
        ts = start + i * step
        store.add(ts, metric, v, labels)
        out.extend(analyzer.analyze(store, ts))
    return out


def states(alerts: List[Alert]) -> List[tuple]:  # type: ignore[type-arg]
    return [(a.state.value, a.severity.label) for a in alerts]


# --- level_severity: the hysteresis table ---------------------------------------------

LEVELS = make_levels([(80.0, Severity.WARN), (90.0, Severity.CRITICAL), (99.0, Severity.EMERGENCY)])


@pytest.mark.parametrize(
    ("value", "current", "expected"),
    [
        (50.0, None, None),
        (79.9, None, None),
        (80.0, None, Severity.WARN),
        (89.9, None, Severity.WARN),
        (90.0, None, Severity.CRITICAL),
        (99.5, None, Severity.EMERGENCY),
        (79.0, Severity.WARN, Severity.WARN),  # within hysteresis: stays
        (77.7, Severity.WARN, Severity.WARN),
        (77.5, Severity.WARN, None),  # below 80 * 0.97 = 77.6: resolves
        (88.0, Severity.CRITICAL, Severity.CRITICAL),  # above 90 * 0.97 = 87.3
        (87.0, Severity.CRITICAL, Severity.WARN),  # de-escalates
        (88.0, Severity.WARN, Severity.WARN),  # does not escalate before 90
        (78.0, Severity.CRITICAL, Severity.WARN),
    ],
)
def test_level_severity_hysteresis(
    value: float, current: Optional[Severity], expected: Optional[Severity]
) -> None:
    assert level_severity(value, LEVELS, current, 0.03) == expected


def test_make_levels_skips_unset_levels() -> None:
    assert make_levels([(None, Severity.WARN), (95.0, Severity.CRITICAL)]) == [
        (95.0, Severity.CRITICAL)
    ]


# --- Lifecycle ---------------------------------------------------------------------------

KEY = SeriesKey("x", ())


def test_lifecycle_for_duration_and_duration_field() -> None:
    lc = Lifecycle()
    assert lc.step(KEY, Severity.WARN, 100.0, 1.0, for_secs=30) is None
    assert lc.step(KEY, Severity.WARN, 120.0, 1.0, for_secs=30) is None
    fired = lc.step(KEY, Severity.WARN, 130.0, 1.0, for_secs=30)
    assert fired is not None and not fired.resolved
    assert fired.started == 100.0 and fired.duration == 30.0
    resolved = lc.step(KEY, None, 190.0, 0.5)
    assert resolved is not None and resolved.resolved
    assert resolved.severity == Severity.WARN and resolved.duration == 90.0
    assert len(lc) == 0


def test_lifecycle_blip_shorter_than_for_never_notifies() -> None:
    lc = Lifecycle()
    assert lc.step(KEY, Severity.CRITICAL, 0.0, 1.0, for_secs=60) is None
    assert lc.step(KEY, None, 50.0, 0.0, for_secs=60) is None
    assert lc.active(KEY) is None and len(lc) == 0


def test_lifecycle_escalation_and_deescalation_fire_again() -> None:
    lc = Lifecycle()
    t1 = lc.step(KEY, Severity.WARN, 0.0, 81.0)
    t2 = lc.step(KEY, Severity.CRITICAL, 10.0, 91.0)
    t3 = lc.step(KEY, Severity.CRITICAL, 20.0, 92.0)
    t4 = lc.step(KEY, Severity.WARN, 30.0, 85.0)
    assert t1 is not None and t1.previous is None
    assert t2 is not None and (t2.severity, t2.previous) == (Severity.CRITICAL, Severity.WARN)
    assert t3 is None
    assert t4 is not None and (t4.severity, t4.previous) == (Severity.WARN, Severity.CRITICAL)
    assert t4.duration == 30.0


def test_lifecycle_drop_resolves_only_when_firing() -> None:
    lc = Lifecycle()
    lc.step(KEY, Severity.WARN, 0.0, 85.0, for_secs=100)
    assert lc.drop(KEY, 10.0) is None
    lc.step(KEY, Severity.WARN, 20.0, 86.0)
    dropped = lc.drop(KEY, 30.0)
    assert dropped is not None and dropped.resolved and dropped.value == 86.0


# --- ThresholdAnalyzer -------------------------------------------------------------------


def make(thresholds: Optional[dict] = None) -> ThresholdAnalyzer:  # type: ignore[type-arg]
    return ThresholdAnalyzer(thresholds or default_thresholds(), "web1")


def test_cpu_fires_after_for_and_resolves_with_messages() -> None:
    store, an = Store(), make()
    # default: cpu for_secs 60 -> 7 samples at 10 s above 95 before firing
    values = [50.0] * 3 + [95.2] * 8 + [96.0, 70.1]
    alerts = feed(an, store, "cpu_usage_percent", values)
    assert states(alerts) == [("firing", "critical"), ("resolved", "critical")]
    fired, resolved = alerts
    assert fired.message == "CPU usage 95.2% exceeds the critical level 95%"
    assert fired.timestamp == T0 + 9 * 10 and fired.duration == 60
    assert fired.analyzer == "threshold" and fired.hostname == "web1"
    assert fired.threshold == 95
    assert resolved.message == "CPU usage back to 70.1% (below 77.6%)"
    assert resolved.state is AlertState.RESOLVED and resolved.duration == 90


def test_disk_message_and_escalation() -> None:
    store, an = Store(), make()
    alerts = feed(an, store, "disk_usage_percent", [70.0, 85.0, 91.2, 91.3, 99.4], DISK_ROOT)
    assert states(alerts) == [("firing", "warn"), ("firing", "critical"), ("firing", "emergency")]
    assert alerts[0].message == "disk / 85.0% full (warn level 80%)"
    assert alerts[1].message == "disk / 91.2% full (critical level 90%)"
    assert alerts[2].labels == DISK_ROOT
    assert alerts[2].duration == 30.0  # since the warn started


def test_oscillating_value_does_not_flap() -> None:
    store, an = Store(), make()
    values = [79.0, 80.5, 79.0, 80.5, 78.5, 80.1, 79.9, 80.2, 77.0]
    alerts = feed(an, store, "memory_usage_percent", values)
    assert states(alerts) == [("firing", "warn"), ("resolved", "warn")]
    assert alerts[1].message == "memory usage back to 77.0% (below 77.6%)"


def test_exact_beats_glob_and_label_filters() -> None:
    thresholds = {
        "disk_*": ThresholdRule(warn=10),
        "disk_usage_percent": ThresholdRule(warn=50, labels={"mountpoint": "/data*"}),
    }
    store, an = Store(), make(thresholds)
    data = make_labels(mountpoint="/data1")
    root = make_labels(mountpoint="/")
    assert an.rule_for(SeriesKey("disk_usage_percent", data)) is thresholds["disk_usage_percent"]
    # the exact rule does not match "/", so the glob applies
    assert an.rule_for(SeriesKey("disk_usage_percent", root)) is thresholds["disk_*"]
    assert an.rule_for(SeriesKey("cpu_usage_percent", ())) is None
    out = feed(an, store, "disk_usage_percent", [20.0], data)
    out += feed(an, store, "disk_usage_percent", [20.0], root, start=T0 + 1)
    assert [a.labels for a in out] == [root]


def test_vanished_series_resolves_and_state_is_forgotten() -> None:
    store, an = Store(), make()
    labels = make_labels(mountpoint="/mnt")
    assert states(feed(an, store, "disk_usage_percent", [95.0], labels)) == [("firing", "critical")]
    store.drop_stale(T0 + 1000, 100)
    gone = an.analyze(store, T0 + 1000)
    assert states(gone) == [("resolved", "critical")]
    assert "no longer reported" in gone[0].message and gone[0].value == 95.0
    assert len(an._lifecycle) == 0 and not list(an._feed)


def test_only_new_samples_are_read_and_batches_are_handled() -> None:
    store, an = Store(), make({"m": ThresholdRule(warn=1)})
    for i, v in enumerate([0.0, 2.0, 0.0, 2.0]):
        store.add(T0 + i, "m", v)
    alerts = an.analyze(store, T0 + 4)  # one call, four samples
    assert states(alerts) == [("firing", "warn"), ("resolved", "warn"), ("firing", "warn")]
    assert an.analyze(store, T0 + 5) == []


def test_negative_percent_is_rejected_not_alerted() -> None:
    store, an = Store(), make({"cpu_usage_percent": ThresholdRule(warn=-5)})
    alerts = feed(an, store, "cpu_usage_percent", [-1.0, -3.0])
    assert alerts == [] and store.rejected == 2  # refused by the store, never analyzed


def test_registry_and_build_respects_enabled() -> None:
    assert "threshold" in [p.name for p in ANALYZERS]
    config = load_config(text="").config
    assert [a.name for a in build_analyzers(config, "h")][:1] == ["threshold"]
    config = load_config(text="[analyzer.threshold]\nenabled = false\n").config
    assert "threshold" not in [a.name for a in build_analyzers(config, "h")]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        # held at warn by the hysteresis: 78.1 exceeds nothing
        (
            [99.5, 78.1],
            "CPU usage 78.1%, down from emergency: still warn until below 77.6% (warn level 80%)",
        ),
        ([99.5, 85.0], "CPU usage 85.0% exceeds the warn level 80%, down from emergency"),
    ],
)
def test_deescalation_wording(values: List[float], message: str) -> None:
    store = Store()
    an = make({"cpu_usage_percent": ThresholdRule(warn=80, critical=95, emergency=99)})
    alerts = feed(an, store, "cpu_usage_percent", values)
    assert alerts[-1].severity is Severity.WARN and alerts[-1].message == message
