"""Z-score analyzer: a value far outside its series' recent distribution (SPEC §5).

Per series it keeps a rolling window of the last ``window`` samples (an
``array('d')`` used as a ring) with its mean and variance maintained by
Welford's method with removal: adding the new sample and removing the one that
leaves the window are O(1). Rounding drift is removed by recomputing the sums
exactly once per window's worth of samples (amortised O(1)).

A sample is judged against the window BEFORE it is added. Rules that keep it
quiet when nothing is wrong:

* cold start: nothing is judged before the window holds ``min_samples``;
* zero variance (a flat metric, or one that barely moves relative to its
  size) never alerts and never divides by zero;
* the alert resolves only when |z| falls below ``threshold * (1 - hysteresis)``.
"""

from __future__ import annotations

import math
from typing import Dict, List

from sysops_agent.analyzers.common import gone_alert, transition_alert
from sysops_agent.analyzers.config import ZScoreConfig
from sysops_agent.analyzers.describe import fmt_duration, fmt_value
from sysops_agent.analyzers.feed import Feed
from sysops_agent.analyzers.lifecycle import Lifecycle, Transition
from sysops_agent.analyzers.rules import Selector
from sysops_agent.analyzers.window import RollingExtremes, RollingStats
from sysops_agent.config import Config
from sysops_agent.model import Alert, SeriesKey, Severity
from sysops_agent.storage.store import Store

NAME = "zscore"

#: standard deviations below this fraction of |mean| count as "no variance"
#: (float32 storage makes a flat series wobble by ~1e-7 relative)
REL_STD_FLOOR = 1e-6


class _Series:
    __slots__ = ("count", "extremes", "first_ts", "last_ts", "over", "quiet_until", "stats")

    def __init__(self, size: int, ts: float, extreme_window: int) -> None:
        self.stats = RollingStats(size)
        self.extremes = RollingExtremes(extreme_window) if extreme_window else None
        self.first_ts = ts
        self.last_ts = ts
        self.count = 0
        #: consecutive samples beyond the threshold
        self.over = 0
        #: no new firing before ``count`` reaches this (cool-down after a resolve)
        self.quiet_until = 0

    def window_secs(self) -> float:
        """Time the window covers: its length times the average sample interval."""
        if self.count < 2:
            return 0.0
        return self.stats.n * (self.last_ts - self.first_ts) / (self.count - 1)


class ZScoreAnalyzer:
    name = NAME

    def __init__(self, config: ZScoreConfig, selector: Selector, hostname: str) -> None:
        self.config = config
        self.hostname = hostname
        self._feed = Feed(selector, backlog=config.window + 1)
        self._series: Dict[SeriesKey, _Series] = {}
        self._lifecycle = Lifecycle()
        self._resolve_z = config.threshold * (1.0 - config.hysteresis)

    def analyze(self, store: Store, now: float) -> List[Alert]:
        alerts: List[Alert] = []
        lifecycle = self._lifecycle
        batches, gone = self._feed.pull(store)
        for key in gone:
            self._series.pop(key, None)
            t = lifecycle.drop(key, now)
            if t is not None:
                alerts.append(gone_alert(NAME, self.hostname, key, t))
        window, min_samples = self.config.window, self.config.min_samples
        threshold, resolve_z = self.config.threshold, self._resolve_z
        sustain, cooldown = self.config.sustain, self.config.cooldown
        new_extreme = self.config.extreme_window
        for key, points, fresh in batches:
            series = self._series.get(key)
            if series is None or fresh:
                if not points:
                    continue
                series = self._series[key] = _Series(window, points[0][0], new_extreme)
            stats = series.stats
            for ts, x in points:
                z = 0.0
                if stats.n >= min_samples:
                    std = stats.std()
                    if std > REL_STD_FLOOR * abs(stats.mean):
                        z = (x - stats.mean) / std
                active = lifecycle.active(key)
                az = abs(z)
                if active is not None:
                    if az <= resolve_z:
                        t = lifecycle.step(key, None, ts, x)
                        if t is not None:
                            alerts.append(self._alert(key, series, t, z))
                        series.quiet_until = series.count + cooldown
                        series.over = 0
                elif az > threshold and (series.extremes is None or series.extremes.outside(x)):
                    series.over += 1
                    if series.over >= sustain and series.count >= series.quiet_until:
                        t = lifecycle.step(key, Severity.WARN, ts, x)
                        if t is not None:
                            alerts.append(self._alert(key, series, t, z))
                else:
                    series.over = 0
                stats.push(x)
                if series.extremes is not None:
                    series.extremes.push(x)
                series.last_ts = ts
                series.count += 1
        return alerts

    def _alert(self, key: SeriesKey, series: _Series, t: Transition, z: float) -> Alert:
        stats = series.stats
        metric = key.metric
        window = fmt_duration(series.window_secs())
        if t.resolved:
            message = (
                f"{key} back to {fmt_value(metric, t.value)}, within "
                f"{abs(z):.1f}σ of its {window} mean of {fmt_value(metric, stats.mean)}"
            )
        else:
            direction = "above" if z > 0 else "below"
            message = (
                f"{key} {fmt_value(metric, t.value)} is {abs(z):.1f}σ {direction} "
                f"its {window} mean of {fmt_value(metric, stats.mean)}"
            )
        threshold = stats.mean + math.copysign(self.config.threshold, z or 1.0) * stats.std()
        return transition_alert(NAME, self.hostname, key, t, message, threshold)


def build(config: Config, hostname: str) -> ZScoreAnalyzer:
    cfg = config.analyzer.zscore
    return ZScoreAnalyzer(cfg, Selector(NAME, config.analyzer.rules), hostname)
