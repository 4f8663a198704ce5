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
  size) never alerts and never divides by zero; on a nearly idle metric the
  change must also be one that matters
  (the unit's ``min_change``, :func:`~sysops_agent.units.unit_of`: 5 points of a
  percentage…);
* |z| > ``threshold`` is not enough on its own: the
  :class:`~sysops_agent.analyzers.onset.Onset` rules also require the run of
  outliers to start with the highest/lowest value of ``extreme_window_secs``
  (a week: the daily peak is not news), to last ``sustain_secs`` and not to
  follow a resolved alert within ``cooldown_secs``. On NAB's labelled data
  this turns a rolling z-score (the "Windowed Gaussian" baseline, 26.5) into
  a detector that scores above 55 on its own;
* the alert resolves only when |z| falls below ``threshold * (1 - hysteresis)``.

The window (and the min-samples cold start) counts samples, as the SPEC
says; everything else is in seconds. The message states the time the window
covers (``1h`` at 10 s sampling, ``30h`` at 5 min).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, Dict, List, Optional, Tuple

from sysops_agent.analyzers.base import AnalyzerContext
from sysops_agent.analyzers.common import forget_gone, transition_alert
from sysops_agent.analyzers.feed import Feed
from sysops_agent.analyzers.lifecycle import Lifecycle, Transition
from sysops_agent.analyzers.onset import Onset
from sysops_agent.analyzers.rules import RuleBase, RuleKey, Selector, rule_value, toggle_key
from sysops_agent.analyzers.window import RollingStats
from sysops_agent.model import Alert, SeriesKey, Severity
from sysops_agent.schema import opt
from sysops_agent.storage.store import Store
from sysops_agent.units import format_duration, format_value, unit_of

NAME = "zscore"


@dataclass(frozen=True)
class ZScoreConfig:
    """Deprecated (issue 14): the ``anomaly`` analyzer replaces it; off unless enabled."""

    #: the keys this analyzer adds to ``[[analyzer.rules]]``
    RULE_KEYS: ClassVar[Tuple[RuleKey, ...]] = (
        toggle_key(NAME),
        (
            "zscore_threshold",
            Optional[float],
            opt(None, min=0.5, help="|z| level for these series"),
        ),
    )

    enabled: bool = opt(False)
    window: int = opt(360, min=10, max=100_000, help="samples in the rolling window")
    min_samples: int = opt(30, min=2, help="no alert before the window holds this many")
    threshold: float = opt(3.0, min=0.5, help="alert when |z| exceeds this")
    hysteresis: float = opt(
        0.33, min=0, max=0.9, help="resolve once |z| < threshold * (1 - hysteresis)"
    )
    sustain_secs: float = opt(
        30.0, min=0, help="the deviation must last this long (one sample if samples are sparser)"
    )
    cooldown_secs: float = opt(
        3600.0, min=0, help="after an alert resolves, the series may not fire again for this long"
    )
    extreme_window_secs: float = opt(
        7 * 86400.0,
        min=0,
        help="also require the highest/lowest value of this period (0 = off)",
    )


#: standard deviations below this fraction of |mean| count as "no variance"
#: (float32 storage makes a flat series wobble by ~1e-7 relative)
REL_STD_FLOOR = 1e-6


class _Series:
    __slots__ = (
        "count",
        "first_ts",
        "last_ts",
        "min_change",
        "onset",
        "resolve_z",
        "stats",
        "threshold",
    )

    def __init__(self, config: ZScoreConfig, ts: float, threshold: float, change: float) -> None:
        self.threshold = threshold
        self.min_change = change
        self.resolve_z = threshold * (1.0 - config.hysteresis)
        self.stats = RollingStats(config.window)
        self.onset = Onset(config.sustain_secs, config.cooldown_secs, config.extreme_window_secs)
        self.first_ts = ts
        self.last_ts = ts
        self.count = 0

    def window_secs(self) -> float:
        """Time the window covers: its length times the average sample interval."""
        if self.count < 2:
            return 0.0
        return self.stats.n * (self.last_ts - self.first_ts) / (self.count - 1)


class ZScoreAnalyzer:
    name = NAME

    def __init__(
        self,
        config: ZScoreConfig,
        selector: Selector,
        hostname: str,
        rules: Optional[List[RuleBase]] = None,
        recent_secs: float = 60.0,
    ) -> None:
        self.config = config
        self._rules = list(rules or [])
        self.hostname = hostname
        self._feed = Feed(selector, backlog=config.window + 1, recent_secs=recent_secs)
        self._series: Dict[SeriesKey, _Series] = {}
        self._lifecycle = Lifecycle()

    @property
    def lifecycle(self) -> Lifecycle:
        """The firing/resolved state of this analyzer's series (handed over on reload)."""
        return self._lifecycle

    def analyze(self, store: Store, now: float) -> List[Alert]:
        lifecycle = self._lifecycle
        batches, gone = self._feed.pull(store, now)
        alerts = forget_gone(gone, (self._series,), lifecycle, now, NAME, self.hostname)
        cfg = self.config
        min_samples = cfg.min_samples
        for key, points, fresh, history in batches:
            series = self._series.get(key)
            if series is None or fresh:
                if not points:
                    continue
                threshold = rule_value(self._rules, key, "zscore_threshold", cfg.threshold)
                series = self._series[key] = _Series(
                    cfg, points[0][0], threshold, unit_of(key.metric).min_change
                )
            stats, onset = series.stats, series.onset
            threshold, resolve_z = series.threshold, series.resolve_z
            change = series.min_change
            for ts, x in points:
                z = 0.0
                if stats.n >= min_samples:
                    std = stats.std()
                    if std > REL_STD_FLOOR * abs(stats.mean):
                        z = (x - stats.mean) / std
                az = abs(z)
                if lifecycle.active(key) is not None:
                    if az <= resolve_z:
                        t = lifecycle.step(key, None, ts, x)
                        if t is not None:
                            alerts.append(self._alert(key, series, t, z))
                        onset.resolved(ts)
                elif (
                    onset.check(ts, x, az > threshold and abs(x - stats.mean) >= change)
                    and not history
                ):
                    t = lifecycle.step(key, Severity.WARN, ts, x)
                    if t is not None:
                        alerts.append(self._alert(key, series, t, z))
                stats.push(x)
                onset.observe(ts, x)
                series.last_ts = ts
                series.count += 1
        return alerts

    def _alert(self, key: SeriesKey, series: _Series, t: Transition, z: float) -> Alert:
        stats = series.stats
        metric = key.metric
        window = format_duration(series.window_secs())
        if t.resolved:
            message = (
                f"{key} back to {format_value(metric, t.value)}, within "
                f"{abs(z):.1f}σ of its {window} mean of {format_value(metric, stats.mean)}"
            )
        else:
            direction = "above" if z > 0 else "below"
            message = (
                f"{key} {format_value(metric, t.value)} is {abs(z):.1f}σ {direction} "
                f"its {window} mean of {format_value(metric, stats.mean)}"
            )
        threshold = stats.mean + math.copysign(series.threshold, z or 1.0) * stats.std()
        return transition_alert(NAME, self.hostname, key, t, message, threshold)


def create(cfg: ZScoreConfig, ctx: AnalyzerContext) -> ZScoreAnalyzer:
    rules = list(ctx.rules)
    return ZScoreAnalyzer(
        cfg,
        Selector(NAME, rules, statistical=True),
        ctx.hostname,
        rules,
        recent_secs=ctx.recent_secs,
    )
