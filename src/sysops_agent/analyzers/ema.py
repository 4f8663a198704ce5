"""EMA analyzer: a sudden change away from the recent level (SPEC §5).

Per series: ``ema = alpha*x + (1-alpha)*ema`` and, at a slower rate, the
mean absolute deviation of the samples from the EMA (``noise``). A sample
alerts when it is BOTH

* far from the EMA relative to its size: ``|x - ema| / max(|ema|, floor)``
  exceeds ``deviation`` — the SPEC's rule; ``floor`` guards the division when
  the EMA is near zero (see :func:`relative_floor`), and
* large compared with the series' own noise: ``|x - ema| > noise_factor * noise``,
  so a metric that always jumps around by 50 % does not alert on every jump.

A step change therefore fires once; the EMA then moves to the new level and
the alert resolves (with hysteresis on ``deviation``). Nothing is judged
before ``min_samples`` samples (cold start).
"""

from __future__ import annotations

from typing import Dict, List

from sysops_agent.analyzers.common import gone_alert, transition_alert
from sysops_agent.analyzers.config import EmaConfig
from sysops_agent.analyzers.describe import fmt_value
from sysops_agent.analyzers.feed import Feed
from sysops_agent.analyzers.lifecycle import Lifecycle, Transition
from sysops_agent.analyzers.rules import Selector
from sysops_agent.analyzers.window import RollingExtremes
from sysops_agent.config import Config
from sysops_agent.model import Alert, SeriesKey, Severity
from sysops_agent.storage.store import Store

NAME = "ema"

#: smallest denominator for the relative deviation when the EMA is ~0: one
#: percentage point for percentages (0.2% -> 0.9% iowait is not "a 350% jump"),
#: a tiny epsilon otherwise (the noise test then decides)
PERCENT_FLOOR = 1.0
EPSILON = 1e-9


def relative_floor(metric: str) -> float:
    return PERCENT_FLOOR if metric.endswith("_percent") else EPSILON


class _Series:
    __slots__ = ("ema", "extremes", "floor", "n", "noise", "quiet_until")

    def __init__(self, x: float, floor: float, extreme_window: int) -> None:
        self.extremes = RollingExtremes(extreme_window) if extreme_window else None
        self.ema = x
        self.noise = 0.0
        self.n = 1
        self.floor = floor
        self.quiet_until = 0


class EmaAnalyzer:
    name = NAME

    def __init__(self, config: EmaConfig, selector: Selector, hostname: str) -> None:
        self.config = config
        self.hostname = hostname
        self._feed = Feed(selector, backlog=config.min_samples * 4)
        self._series: Dict[SeriesKey, _Series] = {}
        self._lifecycle = Lifecycle()

    def analyze(self, store: Store, now: float) -> List[Alert]:
        alerts: List[Alert] = []
        lifecycle = self._lifecycle
        batches, gone = self._feed.pull(store)
        for key in gone:
            self._series.pop(key, None)
            t = lifecycle.drop(key, now)
            if t is not None:
                alerts.append(gone_alert(NAME, self.hostname, key, t))
        cfg = self.config
        alpha, beta = cfg.alpha, cfg.alpha * cfg.noise_rate
        deviation, noise_factor = cfg.deviation, cfg.noise_factor
        resolve_dev = deviation * (1.0 - cfg.hysteresis)
        min_samples, cooldown = cfg.min_samples, cfg.cooldown
        for key, points, fresh in batches:
            series = self._series.get(key)
            start = 0
            if series is None or fresh:
                if not points:
                    continue
                series = self._series[key] = _Series(
                    points[0][1], relative_floor(key.metric), cfg.extreme_window
                )
                start = 1
            for i in range(start, len(points)):
                ts, x = points[i]
                ema = series.ema
                diff = x - ema
                adiff = diff if diff >= 0 else -diff
                denom = ema if ema >= 0 else -ema
                if denom < series.floor:
                    denom = series.floor
                rel = adiff / denom
                active = lifecycle.active(key)
                if active is not None:
                    if rel <= resolve_dev:
                        t = lifecycle.step(key, None, ts, x)
                        if t is not None:
                            alerts.append(self._alert(key, series, t, rel))
                        series.quiet_until = series.n + cooldown
                elif (
                    rel > deviation
                    and adiff > noise_factor * series.noise
                    and series.n >= min_samples
                    and series.n >= series.quiet_until
                    and (series.extremes is None or series.extremes.outside(x))
                ):
                    t = lifecycle.step(key, Severity.WARN, ts, x)
                    if t is not None:
                        alerts.append(self._alert(key, series, t, rel))
                if series.extremes is not None:
                    series.extremes.push(x)
                series.noise += beta * (adiff - series.noise)
                series.ema = ema + alpha * diff
                series.n += 1
        return alerts

    def _alert(self, key: SeriesKey, series: _Series, t: Transition, rel: float) -> Alert:
        metric = key.metric
        level = fmt_value(metric, series.ema)
        if t.resolved:
            message = f"{key} back to {fmt_value(metric, t.value)}, close to its average {level}"
            threshold = series.ema
        else:
            up = t.value >= series.ema
            message = (
                f"{key} {'jumped' if up else 'dropped'} to {fmt_value(metric, t.value)}, "
                f"{rel * 100:.0f}% {'above' if up else 'below'} its recent average {level}"
            )
            span = self.config.deviation * max(abs(series.ema), series.floor)
            threshold = series.ema + span if up else series.ema - span
        return transition_alert(NAME, self.hostname, key, t, message, threshold)


def build(config: Config, hostname: str) -> EmaAnalyzer:
    return EmaAnalyzer(config.analyzer.ema, Selector(NAME, config.analyzer.rules), hostname)
