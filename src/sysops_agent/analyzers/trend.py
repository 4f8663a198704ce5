"""Trend analyzer: a disk or memory heading for exhaustion (SPEC §5).

For each ``disk_usage_percent``, ``disk_inode_usage_percent`` and
``memory_usage_percent`` series it fits a least-squares line over the last
``window_secs`` (6 h) with O(1) add/remove (:class:`RollingRegression`) and
forecasts when the line reaches 100 %. It alerts only when every one of these
holds, because a forecast operators cannot trust is worse than none:

* the window covers at least ``min_span_secs`` (no extrapolating 5 minutes);
* the fit is good: R² >= ``min_r2`` — a short burst (apt-get, a backup) on an
  otherwise flat history fits a line badly, and once the files are deleted
  the growth is gone from the fit too;
* exhaustion is predicted within the horizon: 24 h for disks, 6 h for memory;
* the headroom is already low: usage >= ``min_level_percent``;
* the host has been up for more than ``boot_grace_secs`` (from
  ``uptime_seconds`` in the store): caches and services filling memory right
  after boot are not a trend, so those samples never enter the fit.

It is critical when exhaustion is within ``critical_fraction`` of the horizon.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, Dict, List, Optional, Tuple

from sysops_agent.analyzers.base import AnalyzerContext
from sysops_agent.analyzers.common import forget_gone, transition_alert
from sysops_agent.analyzers.describe import subject
from sysops_agent.analyzers.feed import Feed
from sysops_agent.analyzers.lifecycle import Lifecycle, Transition
from sysops_agent.analyzers.rules import RuleKey, Selector, toggle_key
from sysops_agent.analyzers.window import RollingRegression
from sysops_agent.model import Alert, SeriesKey, Severity
from sysops_agent.schema import opt
from sysops_agent.storage.store import Store
from sysops_agent.units import format_bytes, format_duration

NAME = "trend"


@dataclass(frozen=True)
class TrendConfig:
    #: the keys this analyzer adds to ``[[analyzer.rules]]``
    RULE_KEYS: ClassVar[Tuple[RuleKey, ...]] = (toggle_key(NAME),)

    enabled: bool = opt(True)
    window_secs: float = opt(21600.0, min=600, help="regression window")
    min_span_secs: float = opt(
        3600.0, min=60, help="the window must cover at least this much time before forecasting"
    )
    min_r2: float = opt(0.8, min=0, max=1, help="fit quality required to trust a forecast")
    disk_horizon_hours: float = opt(24.0, min=0.1, help="alert when a disk is full within this")
    memory_horizon_hours: float = opt(6.0, min=0.1, help="alert when memory runs out within this")
    min_level_percent: float = opt(
        50.0, min=0, max=100, help="no forecast alert while usage is below this (headroom left)"
    )
    critical_fraction: float = opt(
        0.25, min=0, max=1, help="critical when exhaustion is within this fraction of the horizon"
    )
    boot_grace_secs: float = opt(
        900.0, min=0, help="samples from the first seconds after boot are not extrapolated"
    )
    hysteresis: float = opt(
        0.25, min=0, max=0.9, help="resolve when the ETA exceeds horizon * (1 + this)"
    )


FULL = 100.0

#: metric -> (which horizon applies, wording of the usage, wording of exhaustion)
TARGETS: Dict[str, Tuple[str, str, str]] = {
    "disk_usage_percent": ("disk", "full", "full"),
    "disk_inode_usage_percent": ("disk", "used", "out of inodes"),
    "memory_usage_percent": ("memory", "used", "exhausted"),
}


class Forecast:
    """The fit of one series at one moment."""

    __slots__ = ("eta", "r2", "slope_h", "span", "value")

    def __init__(self, value: float, slope_h: float, r2: float, span: float) -> None:
        self.value = value
        self.slope_h = slope_h  # percentage points per hour
        self.r2 = r2
        self.span = span
        self.eta = (FULL - value) / slope_h * 3600.0 if slope_h > 0 else math.inf


class TrendAnalyzer:
    name = NAME

    def __init__(
        self, config: TrendConfig, selector: Selector, hostname: str, recent_secs: float = 60.0
    ) -> None:
        self.config = config
        self.hostname = hostname
        self._feed = Feed(
            lambda k: k.metric in TARGETS and selector(k), backlog=100_000, recent_secs=recent_secs
        )
        self._fits: Dict[SeriesKey, RollingRegression] = {}
        self._last: Dict[SeriesKey, Forecast] = {}
        self._lifecycle = Lifecycle()

    def horizon(self, metric: str) -> float:
        kind = TARGETS[metric][0]
        hours = (
            self.config.disk_horizon_hours if kind == "disk" else self.config.memory_horizon_hours
        )
        return hours * 3600.0

    def _boot_time(self, store: Store) -> Optional[float]:
        latest = store.latest("uptime_seconds")
        return None if latest is None else latest[0] - latest[1]

    @property
    def lifecycle(self) -> Lifecycle:
        """The firing/resolved state of this analyzer's series (handed over on reload)."""
        return self._lifecycle

    def analyze(self, store: Store, now: float) -> List[Alert]:
        lifecycle = self._lifecycle
        batches, gone = self._feed.pull(store, now)
        alerts = forget_gone(
            gone,
            (
                self._fits,
                self._last,
            ),
            lifecycle,
            now,
            NAME,
            self.hostname,
        )
        if not batches:
            return alerts
        cfg = self.config
        boot = self._boot_time(store)
        settled = -math.inf if boot is None else boot + cfg.boot_grace_secs
        for key, points, fresh, history in batches:
            fit = self._fits.get(key)
            if fit is None or fresh:
                fit = self._fits[key] = RollingRegression(cfg.window_secs)
            horizon = self.horizon(key.metric)
            for ts, value in points:
                if ts < settled:
                    continue
                fit.add(ts, value)
                slope, _fitted, r2 = fit.fit()
                forecast = Forecast(value, slope * 3600.0, r2, fit.span())
                self._last[key] = forecast
                if history:
                    continue
                severity = self._severity(forecast, horizon, lifecycle.active(key))
                t = lifecycle.step(key, severity, ts, value)
                if t is not None:
                    alerts.append(self._alert(store, key, forecast, t, horizon))
        return alerts

    def _severity(
        self, f: Forecast, horizon: float, current: Optional[Severity]
    ) -> Optional[Severity]:
        cfg = self.config
        if current is None:
            ok = (
                f.span >= cfg.min_span_secs
                and f.r2 >= cfg.min_r2
                and f.eta <= horizon
                and f.value >= cfg.min_level_percent
            )
            if not ok:
                return None
            slack = 1.0
        else:  # hysteresis: stay until the forecast is clearly off
            h = cfg.hysteresis
            ok = f.r2 >= cfg.min_r2 * (1 - h) and f.eta <= horizon * (1 + h)
            if not ok:
                return None
            slack = 1 + h if current >= Severity.CRITICAL else 1.0
        if f.eta <= horizon * cfg.critical_fraction * slack:
            return Severity.CRITICAL
        return Severity.WARN

    def _growth(self, store: Store, key: SeriesKey, slope_h: float) -> str:
        """Growth per hour in bytes when the size is known, else in percentage points."""
        size: Optional[float] = None
        if key.metric == "disk_usage_percent":
            free = store.latest("disk_free_bytes", key.labels)
            used = store.latest(key.metric, key.labels)
            if free is not None and used is not None and used[1] < FULL:
                size = free[1] / (1 - used[1] / FULL)
        elif key.metric == "memory_usage_percent":
            total = store.latest("memory_total_bytes")
            size = None if total is None else total[1]
        if size:
            return f"{format_bytes(size * slope_h / FULL)}/h"
        return f"{slope_h:.2g}%/h" if abs(slope_h) < 1 else f"{slope_h:.1f}%/h"

    def _alert(
        self, store: Store, key: SeriesKey, f: Forecast, t: Transition, horizon: float
    ) -> Alert:
        _kind, used, exhausted = TARGETS[key.metric]
        what = "memory" if key.metric == "memory_usage_percent" else subject(key)
        growth = self._growth(store, key, f.slope_h)
        if t.resolved:
            message = (
                f"{what} {f.value:.1f}% {used}, no longer forecast to be {exhausted} within "
                f"{format_duration(horizon)} (trend {growth}, R² {f.r2:.2f})"
            )
        else:
            message = (
                f"{what} {f.value:.1f}% {used}, growing {growth}, {exhausted} in "
                f"~{format_duration(f.eta)} (R² {f.r2:.2f})"
            )
            if t.previous is not None:
                message += f"; {t.severity.label}, was {t.previous.label}"
        return transition_alert(NAME, self.hostname, key, t, message, FULL)

    def forecast(self, key: SeriesKey) -> Optional[Forecast]:
        """The latest forecast for ``key`` (for tests and diagnostics)."""
        return self._last.get(key)


def create(cfg: TrendConfig, ctx: AnalyzerContext) -> TrendAnalyzer:
    return TrendAnalyzer(
        cfg,
        Selector(NAME, ctx.rules),
        ctx.hostname,
        recent_secs=ctx.recent_secs,
    )
