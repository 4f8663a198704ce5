"""Scenarios with known answers for the statistical analyzers (issue 3, item 8)."""

from __future__ import annotations

import functools
import math
import random
import re
from array import array
from typing import Iterable, List, Optional, Tuple

import pytest

from sysops_agent.analyzers.ema import EmaAnalyzer
from sysops_agent.analyzers.registry import build_analyzer, build_analyzers
from sysops_agent.analyzers.trend import TrendAnalyzer
from sysops_agent.analyzers.window import RollingExtremes, RollingRegression, RollingStats
from sysops_agent.config import Config, load_config
from sysops_agent.model import Alert, AlertState, Labels, SeriesKey, make_labels
from sysops_agent.storage.store import Store

build_ema = functools.partial(build_analyzer, "ema")
build_leak = functools.partial(build_analyzer, "leak")
build_trend = functools.partial(build_analyzer, "trend")
build_zscore = functools.partial(build_analyzer, "zscore")

T0 = 1_700_000_000.0
HOUR = 3600.0
GB = 1024.0**3
MB = 1024.0**2
ROOT = make_labels(mountpoint="/", device="/dev/sda1", fstype="ext4")


def defaults(text: str = "") -> Config:
    loaded = load_config(text=text)
    assert not loaded.problems
    return loaded.config


Row = Tuple[float, str, float, Labels]


def run(analyzer: object, rows: Iterable[Row], every: float = 10.0) -> List[Alert]:
    """Append rows (time-ordered) and analyse every ``every`` seconds, like the daemon."""
    store = Store()
    out: List[Alert] = []
    next_tick: Optional[float] = None
    for ts, metric, value, labels in rows:
        if next_tick is None:
            next_tick = ts + every
        while ts >= next_tick:
            out.extend(analyzer.analyze(store, next_tick))  # type: ignore[attr-defined]
            next_tick += every
        store.add(ts, metric, value, labels)
    out.extend(analyzer.analyze(store, (next_tick or 0) + every))  # type: ignore[attr-defined]
    return out


def firing(alerts: List[Alert]) -> List[Alert]:
    return [a for a in alerts if a.state is AlertState.FIRING]


# --- trend ------------------------------------------------------------------------------


def test_linear_disk_fill_gets_eta_within_10_percent() -> None:
    rng = random.Random(7)
    size = 500 * GB
    rate = 1.5  # percentage points per hour
    start = 55.0
    rows: List[Row] = []
    for i in range(int(12 * HOUR / 60)):
        ts = T0 + i * 60
        pct = start + rate * (i * 60) / HOUR + rng.uniform(-0.05, 0.05)
        rows.append((ts, "disk_usage_percent", pct, ROOT))
        rows.append((ts, "disk_free_bytes", size * (1 - pct / 100), ROOT))
    analyzer = build_trend(defaults(), "web1")
    alerts = firing(run(analyzer, rows, every=60))
    assert alerts, "a disk filling 1.5 %/h from 55 % must be forecast"
    first = alerts[0]
    assert first.analyzer == "trend" and first.labels == ROOT
    # ETA truth at the alert: (100 - value) / rate hours
    truth = (100 - first.value) / rate * HOUR
    m = re.fullmatch(
        r"disk / (\d+\.\d)% full, growing (\d+\.\d) GB/h, full in ~(\d+)h(\d\d)m \(R² (0\.\d\d|1\.00)\)",
        first.message,
    )
    assert m, first.message
    eta = int(m.group(3)) * HOUR + int(m.group(4)) * 60
    assert abs(eta - truth) <= 0.1 * truth
    assert abs(float(m.group(2)) - size * rate / 100 / GB) < 0.2  # 7.5 GB/h
    assert truth <= 24 * HOUR * 1.1  # fired once the ETA entered the 24 h horizon
    # the analyzer's own forecast at the end is within 10 % too
    assert isinstance(analyzer, TrendAnalyzer)
    f = analyzer.forecast(SeriesKey("disk_usage_percent", ROOT))
    assert f is not None
    true_end = (100 - f.value) / rate * HOUR
    assert abs(f.eta - true_end) <= 0.1 * true_end


@pytest.mark.parametrize("rate", [0.5, 3.0])
def test_a_slow_fill_stored_as_a_staircase_of_resolution_steps_is_forecast(rate: float) -> None:
    """Percentages are stored at 0.05 points: a disk growing 0.5 %/h moves one step every
    6 minutes (36 samples at 10 s). The fit through the staircase still gives the ETA
    within 10 % (the forecast needs growth of 2 %/h at 50 %, 0.5 %/h at 90 %)."""
    start = 90.0 if rate < 1 else 55.0
    rows: List[Row] = []
    for i in range(int(12 * HOUR / 10)):
        ts = T0 + i * 10
        pct = min(start + rate * (i * 10) / HOUR, 100.0)
        rows.append((ts, "disk_usage_percent", pct, ROOT))
    analyzer = build_trend(defaults(), "web1")
    alerts = firing(run(analyzer, rows, every=60))
    assert alerts
    assert isinstance(analyzer, TrendAnalyzer)
    buf = Store()
    buf.add(T0, "disk_usage_percent", start + 0.01)
    assert buf.latest("disk_usage_percent") == (T0, start)  # really stored in steps
    f = analyzer.forecast(SeriesKey("disk_usage_percent", ROOT))
    assert f is not None
    true_end = (100 - f.value) / rate * HOUR
    assert abs(f.eta - true_end) <= 0.1 * true_end


def test_burst_then_cleanup_gives_no_disk_full_alert() -> None:
    rng = random.Random(3)
    rows: List[Row] = []
    ts = T0
    for _ in range(int(6 * HOUR / 60)):  # 6 h flat at 85 %
        rows.append((ts, "disk_usage_percent", 85.0 + rng.uniform(-0.05, 0.05), ROOT))
        ts += 60
    for i in range(10):  # 10-minute burst to 95 %
        rows.append((ts, "disk_usage_percent", 85.0 + i + 1, ROOT))
        ts += 60
    for _ in range(int(3 * HOUR / 60)):  # files deleted, back to 85 %
        rows.append((ts, "disk_usage_percent", 85.0 + rng.uniform(-0.05, 0.05), ROOT))
        ts += 60
    alerts = run(build_trend(defaults(), "h"), rows, every=60)
    assert alerts == []
    # with every analyzer (threshold fires at 90/95 % and resolves: that is right)
    everything = run(build_analyzers_list(), rows, every=60)
    assert not [a for a in everything if a.analyzer == "trend"]
    assert [a.analyzer for a in firing(everything)] and {
        a.analyzer for a in firing(everything)
    } <= {"threshold"}


class _All:
    def __init__(self) -> None:
        self.analyzers = build_analyzers(defaults(), "h")

    def analyze(self, store: Store, now: float) -> List[Alert]:
        return [a for an in self.analyzers for a in an.analyze(store, now)]


def build_analyzers_list() -> _All:
    return _All()


def test_memory_growth_right_after_boot_is_not_extrapolated() -> None:
    def rows(boot_offset: float) -> List[Row]:
        out: List[Row] = []
        for i in range(int(3 * HOUR / 10)):
            ts = T0 + i * 10
            pct = 60.0 + 10.0 * i * 10 / HOUR  # 10 %/h: full in 4 h
            out.append((ts, "memory_usage_percent", pct, ()))
            if i % 6 == 0:
                out.append((ts, "uptime_seconds", boot_offset + i * 10, ()))
        return out

    # the host booted just before: the first 15 min are ignored, the fit starts later
    after_boot = firing(run(build_trend(defaults(), "h"), rows(0.0)))
    long_up = firing(run(build_trend(defaults(), "h"), rows(10 * 86400.0)))
    assert long_up and after_boot
    assert after_boot[0].timestamp - long_up[0].timestamp >= 900
    assert "memory" in long_up[0].message and "exhausted in ~" in long_up[0].message
    # memory horizon is 6 h, so this is critical (within 1.5 h) or warn
    assert long_up[0].severity.label in ("warn", "critical")


def test_stable_memory_is_never_forecast() -> None:
    rng = random.Random(5)
    rows: List[Row] = [
        (T0 + i * 10, "memory_usage_percent", 92.0 + rng.uniform(-2, 2), ())
        for i in range(int(8 * HOUR / 10))
    ]
    assert run(build_trend(defaults(), "h"), rows) == []


# --- leak -------------------------------------------------------------------------------

PG = make_labels(pid=4121, name="postgres")


def leak_rows(
    labels: Labels, growth_per_hour: float, hours: float, start_ts: float = T0
) -> List[Row]:
    rng = random.Random(11)
    rows: List[Row] = []
    for i in range(int(hours * HOUR / 30)):
        ts = start_ts + i * 30
        rss = 1.5 * GB + growth_per_hour * (i * 30) / HOUR + rng.uniform(-3, 3) * MB
        rows.append((ts, "process_rss_bytes", rss, labels))
        rows.append((ts, "process_fd_count", 40.0 + (i % 3), labels))
    return rows


def test_leaking_process_flagged_within_min_period_plus_one_hour() -> None:
    alerts = firing(run(build_leak(defaults(), "db1"), leak_rows(PG, 180 * MB, 4), every=30))
    assert len(alerts) == 1
    a = alerts[0]
    assert a.metric == "process_rss_bytes" and a.labels == PG and a.analyzer == "leak"
    assert HOUR <= a.timestamp - T0 <= 2 * HOUR
    assert re.fullmatch(
        r"postgres \(pid 4121\) RSS \d\.\d GB, \+1[78]\d MB/h for 1h(\d\dm)? \(R² (0\.9\d|1\.00)\)",
        a.message,
    ), a.message


def test_stable_process_is_never_flagged() -> None:
    rows = leak_rows(PG, 0.0, 8)
    # plus a process whose memory saw-tooths (allocates, frees) heavily
    other = make_labels(pid=77, name="worker")
    rows += [
        (T0 + i * 30, "process_rss_bytes", 400 * MB + (i % 40) * 10 * MB, other)
        for i in range(int(8 * HOUR / 30))
    ]
    rows.sort(key=lambda r: r[0])
    assert run(build_leak(defaults(), "h"), rows, every=30) == []


def test_fd_leak_is_flagged_and_restart_starts_fresh() -> None:
    old = make_labels(pid=100, name="api")
    new = make_labels(pid=200, name="api")
    rows: List[Row] = [
        (T0 + i * 30, "process_fd_count", 100.0 + i * 0.75, old)  # 90 fds/h
        for i in range(int(2 * HOUR / 30))
    ]
    restart = T0 + 2 * HOUR
    rows += [
        (restart + i * 30, "process_fd_count", 100.0 + i * 0.75, new)
        for i in range(int(0.9 * HOUR / 30))
    ]
    analyzer = build_leak(defaults(), "h")
    store = Store()
    out: List[Alert] = []
    for ts, metric, value, labels in rows:
        store.add(ts, metric, value, labels)
        if ts == restart:
            store.drop_stale(ts, 10)  # the old pid vanished from the store
        out.extend(analyzer.analyze(store, ts))
    states = [(a.state.value, dict(a.labels)["pid"]) for a in out]
    assert states == [("firing", "100"), ("resolved", "100")]
    assert out[0].message.startswith("api (pid 100) open files ")
    assert "+90/h" in out[0].message


# --- EMA --------------------------------------------------------------------------------


def test_step_change_triggers_ema_once_then_it_adapts() -> None:
    rng = random.Random(1)
    rows: List[Row] = [
        (T0 + i * 10, "load_avg_1m", (2.0 if i < 200 else 6.0) + rng.uniform(-0.05, 0.05), ())
        for i in range(900)
    ]
    analyzer = build_ema(defaults(), "h")
    assert isinstance(analyzer, EmaAnalyzer)
    alerts = run(analyzer, rows)
    assert [a.state.value for a in alerts] == ["firing", "resolved"]
    fired, resolved = alerts
    # the median of 3 sees the new level from its 2nd sample, which must then last
    # sustain_secs (30 s = 3 samples at 10 s): it fires on the 4th sample
    assert fired.timestamp == T0 + 203 * 10
    assert re.fullmatch(
        r"load_avg_1m jumped to [56]\.\d+, \d+% above its recent average [12]\.\d+", fired.message
    )
    assert resolved.timestamp - fired.timestamp < 120  # adapted within a few samples


def test_lone_spike_is_not_an_ema_level_change() -> None:
    rows: List[Row] = [(T0 + i * 300, "m", 10.0 + (i % 3) * 0.1, ()) for i in range(300)]
    rows[250] = (rows[250][0], "m", 80.0, ())
    assert run(build_ema(defaults(), "h"), rows, every=300) == []


def test_ema_near_zero_does_not_divide_by_zero_or_cry_wolf() -> None:
    rows: List[Row] = [
        (T0 + i * 10, "cpu_iowait_percent", 0.0 if i % 7 else 0.3, ()) for i in range(500)
    ]
    assert run(build_ema(defaults(), "h"), rows) == []


# --- z-score ----------------------------------------------------------------------------


def test_flat_metric_never_gives_a_zscore_alert() -> None:
    for value in (0.0, 42.0, 3.3e9):
        rows: List[Row] = [(T0 + i * 10, "memory_used_bytes", value, ()) for i in range(800)]
        assert run(build_zscore(defaults(), "h"), rows) == []


def test_zscore_outlier_message_and_cold_start() -> None:
    rng = random.Random(2)
    rows: List[Row] = [
        (T0 + i * 10, "cpu_iowait_percent", 6.0 + rng.uniform(-1.5, 1.5), ()) for i in range(400)
    ]
    # 40 s of high iowait (a one-sample blip at 10 s sampling is not an alert)
    rows += [(T0 + (400 + i) * 10, "cpu_iowait_percent", 41.0 + i % 2, ()) for i in range(4)]
    rows += [(T0 + (404 + i) * 10, "cpu_iowait_percent", 6.0, ()) for i in range(5)]
    alerts = run(build_zscore(defaults(), "h"), rows)
    assert [a.state.value for a in alerts] == ["firing", "resolved"]
    assert re.fullmatch(
        r"cpu_iowait_percent 41\.0% is \d+\.\dσ above its 1h mean of [56]\.\d%", alerts[0].message
    ), alerts[0].message
    # an outlier during cold start (before 30 samples) is not judged
    early = [(T0 + i * 10, "x", 1.0 + (i % 2) * 0.01, ()) for i in range(20)]
    early.append((T0 + 200, "x", 100.0, ()))
    assert run(build_zscore(defaults(), "h"), early) == []


def test_sustain_is_time_based() -> None:
    """One high sample: noise at 10 s sampling, an event at 5-minute sampling."""

    def series(step: float) -> List[Row]:
        rows: List[Row] = [(T0 + i * step, "m", 10.0 + (i % 3) * 0.5, ()) for i in range(400)]
        rows.append((T0 + 400 * step, "m", 30.0, ()))
        rows += [(T0 + (401 + i) * step, "m", 10.0, ()) for i in range(3)]
        return rows

    assert run(build_zscore(defaults(), "h"), series(10.0)) == []
    assert [a.state.value for a in run(build_zscore(defaults(), "h"), series(300.0), 300)] == [
        "firing",
        "resolved",
    ]


def test_default_exclusions_and_rules() -> None:
    rows: List[Row] = [(T0 + i * 10, "net_rx_errors_total", float(i * i), ()) for i in range(400)]
    rows += [(T0 + 4000 + i, "net_rx_errors_total", 1e12, ()) for i in range(3)]
    assert run(build_zscore(defaults(), "h"), rows) == []
    cfg = defaults('[[analyzer.rules]]\nmetric = "load_*"\nzscore = false\n')
    spiky: List[Row] = [(T0 + i * 10, "load_avg_1m", 1.0 + (i % 2) * 0.1, ()) for i in range(400)]
    spiky += [(T0 + 4000 + i * 10, "load_avg_1m", 50.0, ()) for i in range(4)]
    assert run(build_zscore(cfg, "h"), spiky) == []
    assert firing(run(build_zscore(defaults(), "h"), spiky))
    # per-metric parameters: a higher |z| level for load_* only (spike is ~300σ here)
    strict = defaults('[[analyzer.rules]]\nmetric = "load_*"\nzscore_threshold = 1000.0\n')
    assert run(build_zscore(strict, "h"), spiky) == []
    other = defaults('[[analyzer.rules]]\nmetric = "cpu_*"\nzscore_threshold = 1000.0\n')
    assert firing(run(build_zscore(other, "h"), spiky))


def test_registry_builds_the_enabled_ones_and_skips_disabled() -> None:
    # issue 14: the anomaly analyzer replaces zscore and ema, which are off by default
    assert [a.name for a in build_analyzers(defaults(), "h")] == [
        "threshold",
        "anomaly",
        "trend",
        "leak",
    ]
    cfg = defaults("[analyzer.zscore]\nenabled = true\n[analyzer.leak]\nenabled = false\n")
    assert [a.name for a in build_analyzers(cfg, "h")] == [
        "threshold",
        "anomaly",
        "zscore",
        "trend",
    ]


# --- input validation -------------------------------------------------------------------


def test_nan_inf_and_impossible_negative_values_are_rejected_without_crashing() -> None:
    store = Store()
    analyzers = build_analyzers(defaults(), "h")
    for i in range(100):
        store.add(T0 + i * 10, "cpu_usage_percent", 20.0, ())
    assert not store.add(T0 + 1000, "cpu_usage_percent", math.nan, ())
    assert not store.add(T0 + 1010, "cpu_usage_percent", math.inf, ())
    # impossible for their unit: refused by the store itself (issue 18), never analyzed
    assert not store.add(T0 + 1020, "cpu_usage_percent", -50.0, ())
    assert not store.add(T0 + 1030, "process_rss_bytes", -1.0, make_labels(pid=1, name="x"))
    assert not store.add(T0 + 1040, "disk_usage_percent", -3.0, ROOT)
    assert not store.add(T0 + 1045, "fd_usage_percent", 500.0, ())  # a garbled file-nr
    out = [a for an in analyzers for a in an.analyze(store, T0 + 1050)]
    assert out == []
    assert store.rejected == 6


# --- window structures ------------------------------------------------------------------


def test_rolling_stats_match_exact_values() -> None:
    rng = random.Random(4)
    stats = RollingStats(50)
    values = [rng.uniform(0, 1e6) for _ in range(1000)]
    for v in values:
        stats.push(v)
    # The window holds float32, the ring buffers' precision: exact against those values.
    tail = list(array("f", values[-50:]))
    mean = sum(tail) / 50
    std = math.sqrt(sum((v - mean) ** 2 for v in tail) / 49)
    assert math.isclose(stats.mean, mean, rel_tol=1e-9)
    assert math.isclose(stats.std(), std, rel_tol=1e-6)


def test_rolling_extremes_and_regression() -> None:
    ext = RollingExtremes(1600.0)  # 16 blocks of 100 s
    for i in range(1000):
        ext.push(T0 + i * 10, float(i % 100))
    assert not ext.outside(50.0) and ext.outside(100.0) and ext.outside(-1.0)
    for i in range(1000, 1200):  # the old values leave the window
        ext.push(T0 + i * 10, 40.0 + i % 2)
    assert ext.outside(45.0) and not ext.outside(40.5)
    reg = RollingRegression(100.0)
    for i in range(1000):
        reg.add(float(i), 3.0 + 2.0 * i)
    slope, fitted, r2 = reg.fit()
    assert math.isclose(slope, 2.0) and math.isclose(fitted, 3.0 + 2.0 * 999)
    # the window holds window_secs and at most one bucket more
    assert r2 > 0.999 and 101 <= reg.n <= 101 + reg.bucket_secs + 1
    assert 100.0 <= reg.span() <= 100.0 + reg.bucket_secs
    flat = RollingRegression(100.0)
    for i in range(50):
        flat.add(float(i), 7.0)
    assert flat.fit()[2] == 0.0


def test_analyzers_built_on_a_full_store_learn_history_without_alerting_on_it() -> None:
    """After a reload the analyzers are rebuilt on a store holding hours of data."""
    store = Store()
    rng = random.Random(8)
    for i in range(2000):
        ts = T0 + i * 10
        store.add(ts, "cpu_usage_percent", 97.0 if 1000 <= i < 1020 else 30.0 + rng.uniform(-2, 2))
        store.add(ts, "disk_usage_percent", 95.0, ROOT)  # critical for hours already
    # rebuilt 2 minutes after the last sample: all of it is history (older than 60 s)
    now = T0 + 2000 * 10 + 120
    analyzers = build_analyzers(defaults(), "h")
    assert [a for an in analyzers for a in an.analyze(store, now)] == []
    # the next samples are news: the disk is still critical, the CPU spikes again
    for i in range(2012, 2022):
        store.add(T0 + i * 10, "cpu_usage_percent", 99.5)
        store.add(T0 + i * 10, "disk_usage_percent", 95.0, ROOT)
    out = [a for an in analyzers for a in an.analyze(store, T0 + 2022 * 10)]
    assert {(a.analyzer, a.metric) for a in firing(out)} >= {
        ("threshold", "disk_usage_percent"),
        ("threshold", "cpu_usage_percent"),
        ("anomaly", "cpu_usage_percent"),
    }
    assert min(a.timestamp for a in out) >= T0 + 2012 * 10


def test_ema_idle_metric_waking_up_slightly_is_not_a_jump() -> None:
    rng = random.Random(9)
    idle: List[Row] = [
        (T0 + i * 10, "load_avg_1m", 0.01 + rng.uniform(0, 0.01), ()) for i in range(400)
    ]
    idle += [(T0 + (400 + i) * 10, "load_avg_1m", 0.3, ()) for i in range(20)]
    assert run(build_ema(defaults(), "h"), idle) == []
    # the same change on a busy box (2 -> 6) is a jump (see the step test); and a
    # real change from idle, 0.01 -> 3, is one too
    busy = idle[:400] + [(T0 + (400 + i) * 10, "load_avg_1m", 3.0, ()) for i in range(20)]
    assert [a.state.value for a in run(build_ema(defaults(), "h"), busy)][:1] == ["firing"]


def test_zscore_ignores_trivial_changes_of_an_idle_metric() -> None:
    rng = random.Random(10)
    rows: List[Row] = [
        (T0 + i * 10, "cpu_iowait_percent", 0.05 + rng.uniform(0, 0.02), ()) for i in range(400)
    ]
    # 2 % iowait is ~100σ above this idle baseline, but not a change that matters
    rows += [(T0 + (400 + i) * 10, "cpu_iowait_percent", 2.0, ()) for i in range(6)]
    assert run(build_zscore(defaults(), "h"), rows) == []
    rows += [(T0 + (406 + i) * 10, "cpu_iowait_percent", 30.0, ()) for i in range(6)]
    assert [a.state.value for a in run(build_zscore(defaults(), "h"), rows)] == ["firing"]


def test_trend_resolves_when_the_disk_stops_filling() -> None:
    rows: List[Row] = []
    for i in range(int(4 * HOUR / 60)):  # 60 % -> 76 % in 4 h (4 %/h: full in ~6 h)
        rows.append((T0 + i * 60, "disk_usage_percent", 60.0 + 4.0 * i / 60, ROOT))
    level = rows[-1][2]
    for i in range(int(7 * HOUR / 60)):  # the job was stopped: flat (longer than the window)
        rows.append((T0 + 4 * HOUR + i * 60, "disk_usage_percent", level, ROOT))
    alerts = run(build_trend(defaults(), "h"), rows, every=60)
    states = [(a.state.value, a.severity.label) for a in alerts]
    assert states[0] == ("firing", "warn") and states[-1][0] == "resolved"
    assert "no longer forecast to be full within 24h" in alerts[-1].message
    assert alerts[-1].timestamp > T0 + 4 * HOUR


def test_leak_resolves_when_growth_stops_and_series_recreated_is_fresh() -> None:
    labels = make_labels(pid=9, name="cache")
    rows = leak_rows(labels, 200 * MB, 2)
    last = rows[-2][2]
    rows += [
        (T0 + 2 * HOUR + i * 30, "process_rss_bytes", last, labels)
        for i in range(int(7 * HOUR / 30))
    ]
    alerts = run(build_leak(defaults(), "h"), rows, every=30)
    assert [a.state.value for a in alerts] == ["firing", "resolved"]
    assert "growth stopped" in alerts[1].message
    # a store that re-creates the series (same key, new buffer) restarts its history
    analyzer = build_leak(defaults(), "h")
    store = Store()
    for ts, metric, value, lab in leak_rows(labels, 200 * MB, 1.5):
        store.add(ts, metric, value, lab)
    assert firing(analyzer.analyze(store, T0 + 1.5 * HOUR + 1))
    store.drop_stale(T0 + 10 * HOUR, 60)
    gone = analyzer.analyze(store, T0 + 10 * HOUR)
    assert [(a.state.value, a.metric) for a in gone] == [("resolved", "process_rss_bytes")]
    for ts, metric, value, lab in leak_rows(labels, 200 * MB, 0.5, start_ts=T0 + 10 * HOUR):
        store.add(ts, metric, value, lab)
    # only half an hour of the new history: not a leak yet
    assert firing(analyzer.analyze(store, T0 + 10.5 * HOUR)) == []
