"""Leak analyzer: a process whose RSS or open-file count keeps growing (SPEC §5).

For every ``process_rss_bytes{pid,name}`` and ``process_fd_count{pid,name}``
series it fits a least-squares line over the last ``window_secs`` with O(1)
add/remove and calls a leak when

* the process has been watched for at least ``min_period_secs`` (1 h),
* the growth is steady: R² > ``min_r2`` (0.8) — a cache that warms up in
  steps or a worker that allocates and frees does not fit a line,
* the slope exceeds ``rss_slope_bytes_per_hour`` / ``fd_slope_per_hour``.

The series key holds the pid, so a restarted process (new pid) starts a fresh
history, and a leaking process that exits resolves its alert.

``cgroup_memory_bytes{cgroup,name}`` (a service or container whose memory
grows steadily for hours) is judged like RSS, with the same slope; a service
restarted in place drops its memory, which breaks the line.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Dict, List, Optional, Tuple

from sysops_agent.analyzers.base import AnalyzerContext
from sysops_agent.analyzers.common import forget_gone, transition_alert
from sysops_agent.analyzers.describe import process_name
from sysops_agent.analyzers.feed import Feed
from sysops_agent.analyzers.lifecycle import Lifecycle, Transition
from sysops_agent.analyzers.rules import RuleKey, Selector, toggle_key
from sysops_agent.analyzers.window import RollingRegression
from sysops_agent.model import Alert, SeriesKey, Severity
from sysops_agent.schema import opt
from sysops_agent.storage.store import Store
from sysops_agent.units import format_bytes, format_duration

NAME = "leak"


@dataclass(frozen=True)
class LeakConfig:
    #: the keys this analyzer adds to ``[[analyzer.rules]]``
    RULE_KEYS: ClassVar[Tuple[RuleKey, ...]] = (toggle_key(NAME),)

    enabled: bool = opt(True)
    window_secs: float = opt(21600.0, min=600, help="regression window per process")
    min_period_secs: float = opt(
        3600.0, min=60, help="a process must be watched this long before a leak is called"
    )
    min_r2: float = opt(0.8, min=0, max=1, help="how steady the growth must be")
    rss_slope_bytes_per_hour: float = opt(
        50 * 1024 * 1024, min=0, help="RSS growth that counts as a leak"
    )
    fd_slope_per_hour: float = opt(50.0, min=0, help="open-file growth that counts as a leak")
    hysteresis: float = opt(
        0.3, min=0, max=0.9, help="resolve when the slope falls below slope * (1 - this)"
    )


RSS = "process_rss_bytes"
FDS = "process_fd_count"
#: a service's or container's memory (the cgroup collector); judged like RSS
CGROUP_MEMORY = "cgroup_memory_bytes"
_BYTES = (RSS, CGROUP_MEMORY)


class _Series:
    __slots__ = ("first_ts", "fit", "r2", "slope_h", "span")

    def __init__(self, window_secs: float, ts: float) -> None:
        self.fit = RollingRegression(window_secs)
        self.first_ts = ts
        self.slope_h = 0.0
        self.r2 = 0.0
        self.span = 0.0


class LeakAnalyzer:
    name = NAME

    def __init__(
        self, config: LeakConfig, selector: Selector, hostname: str, recent_secs: float = 60.0
    ) -> None:
        self.config = config
        self.hostname = hostname
        self._feed = Feed(
            lambda k: k.metric in (RSS, FDS, CGROUP_MEMORY) and selector(k),
            backlog=100_000,
            recent_secs=recent_secs,
        )
        self._series: Dict[SeriesKey, _Series] = {}
        self._lifecycle = Lifecycle()

    def min_slope(self, metric: str) -> float:
        cfg = self.config
        return cfg.rss_slope_bytes_per_hour if metric in _BYTES else cfg.fd_slope_per_hour

    @property
    def lifecycle(self) -> Lifecycle:
        """The firing/resolved state of this analyzer's series (handed over on reload)."""
        return self._lifecycle

    def analyze(self, store: Store, now: float) -> List[Alert]:
        lifecycle = self._lifecycle
        batches, gone = self._feed.pull(store, now)
        alerts = forget_gone(gone, (self._series,), lifecycle, now, NAME, self.hostname)
        cfg = self.config
        for key, points, fresh, history in batches:
            series = self._series.get(key)
            if series is None or fresh:
                if not points:
                    continue
                series = self._series[key] = _Series(cfg.window_secs, points[0][0])
            min_slope = self.min_slope(key.metric)
            for ts, value in points:
                fit = series.fit
                fit.add(ts, value)
                slope, _fitted, r2 = fit.fit()
                series.slope_h, series.r2, series.span = slope * 3600.0, r2, fit.span()
                if history:
                    continue
                severity = self._severity(series, ts, min_slope, lifecycle.active(key) is not None)
                t = lifecycle.step(key, severity, ts, value)
                if t is not None:
                    alerts.append(self._alert(key, series, t))
        return alerts

    def _severity(
        self, s: _Series, ts: float, min_slope: float, active: bool
    ) -> Optional[Severity]:
        cfg = self.config
        if active:
            h = cfg.hysteresis
            keep = s.slope_h >= min_slope * (1 - h) and s.r2 >= cfg.min_r2 * (1 - h)
            return Severity.WARN if keep else None
        if ts - s.first_ts < cfg.min_period_secs or s.span < cfg.min_period_secs * 0.9:
            return None
        if s.r2 > cfg.min_r2 and s.slope_h > min_slope:
            return Severity.WARN
        return None

    def _alert(self, key: SeriesKey, s: _Series, t: Transition) -> Alert:
        if key.metric == CGROUP_MEMORY:
            proc = key.label("name", key.label("cgroup", "?"))
        else:
            proc = process_name(key)
        if key.metric == CGROUP_MEMORY:
            what, level, rate = "memory", format_bytes(t.value), f"{format_bytes(s.slope_h)}/h"
        elif key.metric == RSS:
            what, level, rate = "RSS", format_bytes(t.value), f"{format_bytes(s.slope_h)}/h"
        else:
            what, level, rate = "open files", f"{t.value:.0f}", f"{s.slope_h:.0f}/h"
        sign = "+" if s.slope_h >= 0 else ""
        if t.resolved:
            message = f"{proc} {what} {level}, growth stopped ({sign}{rate}, R² {s.r2:.2f})"
        else:
            message = (
                f"{proc} {what} {level}, {sign}{rate} for {format_duration(s.span)} (R² {s.r2:.2f})"
            )
        return transition_alert(NAME, self.hostname, key, t, message, self.min_slope(key.metric))


def create(cfg: LeakConfig, ctx: AnalyzerContext) -> LeakAnalyzer:
    return LeakAnalyzer(
        cfg,
        Selector(NAME, ctx.rules),
        ctx.hostname,
        recent_secs=ctx.recent_secs,
    )
