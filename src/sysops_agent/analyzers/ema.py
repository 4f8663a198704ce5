"""EMA analyzer: a sudden, lasting change away from the recent level (SPEC §5).

Per series: ``ema = alpha*x + (1-alpha)*ema`` and, at a slower rate, the
mean absolute deviation of the samples from the EMA (``noise``). What is
compared with the EMA is the median of the last three samples, so a lone
spike (the z-score analyzer's business) is ignored and a level shift is seen
from its second sample on. It alerts when that level is BOTH

* far from the EMA relative to its size: ``|x - ema| / max(|ema|, floor)``
  exceeds ``deviation`` — the SPEC's rule; ``floor`` (from the smallest change
  that matters per unit, ``min_change`` in :func:`~sysops_agent.units.unit_of`)
  guards the division when the EMA is near zero, and
* large compared with the series' own noise: ``|x - ema| > noise_factor * noise``,
  so a metric that always jumps around by 50 % does not alert on every jump.

and the :class:`~sysops_agent.analyzers.onset.Onset` rules hold (the level
is the highest/lowest of ``extreme_window_secs``, lasts ``sustain_secs``, and
the series is not cooling down after a previous alert). A step change
therefore fires once; the EMA then moves to the new level and the alert
resolves (with hysteresis on ``deviation``). Nothing is judged before
``min_samples`` samples (cold start).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Dict, List, Optional, Tuple

from sysops_agent.analyzers.base import AnalyzerContext
from sysops_agent.analyzers.common import forget_gone, transition_alert
from sysops_agent.analyzers.feed import Feed
from sysops_agent.analyzers.lifecycle import Lifecycle, Transition
from sysops_agent.analyzers.onset import Onset
from sysops_agent.analyzers.rules import RuleBase, RuleKey, Selector, rule_value, toggle_key
from sysops_agent.model import Alert, SeriesKey, Severity
from sysops_agent.schema import opt
from sysops_agent.storage.store import Store
from sysops_agent.units import format_value, unit_of

NAME = "ema"


@dataclass(frozen=True)
class EmaConfig:
    """Deprecated (issue 14): the ``anomaly`` analyzer replaces it; off unless enabled."""

    #: the keys this analyzer adds to ``[[analyzer.rules]]``
    RULE_KEYS: ClassVar[Tuple[RuleKey, ...]] = (
        toggle_key(NAME),
        (
            "ema_deviation",
            Optional[float],
            opt(None, min=0.01, help="EMA deviation for these series"),
        ),
    )

    enabled: bool = opt(False)
    alpha: float = opt(0.2, min=0.01, max=1.0, help="weight of the newest sample")
    deviation: float = opt(0.2, min=0.01, help="alert when |x-ema|/|ema| exceeds this")
    noise_factor: float = opt(
        6.0, min=0, help="... and |x-ema| exceeds this many times the usual |x-ema|"
    )
    noise_rate: float = opt(
        0.25, min=0.01, max=1.0, help="the usual |x-ema| adapts at alpha * noise_rate"
    )
    min_samples: int = opt(30, min=2, help="no alert before this many samples")
    hysteresis: float = opt(0.3, min=0, max=0.9, help="resolve below deviation * (1 - this)")
    sustain_secs: float = opt(
        30.0, min=0, help="the change must last this long (one sample if samples are sparser)"
    )
    cooldown_secs: float = opt(
        3600.0, min=0, help="after an alert resolves, the series may not fire again for this long"
    )
    extreme_window_secs: float = opt(
        3 * 86400.0,
        min=0,
        help="also require the highest/lowest value of this period (0 = off)",
    )


#: only guards the division for metrics of unknown unit (recorded series)
EPSILON = 1e-9


def relative_floor(metric: str, deviation: float) -> float:
    """The smallest |ema| a deviation of ``metric`` is measured against."""
    return max(unit_of(metric).min_change / deviation, EPSILON)


class _Series:
    __slots__ = ("base", "deviation", "ema", "floor", "n", "noise", "onset", "p1", "p2")

    def __init__(
        self, config: EmaConfig, ts: float, x: float, floor: float, deviation: float
    ) -> None:
        self.deviation = deviation
        self.onset = Onset(config.sustain_secs, config.cooldown_secs, config.extreme_window_secs)
        self.onset.observe(ts, x)
        self.ema = x
        self.p1 = self.p2 = x
        #: the EMA before the current deviation began (what the message compares with)
        self.base = x
        self.noise = 0.0
        self.n = 1
        self.floor = floor


class EmaAnalyzer:
    name = NAME

    def __init__(
        self,
        config: EmaConfig,
        selector: Selector,
        hostname: str,
        rules: Optional[List[RuleBase]] = None,
        recent_secs: float = 60.0,
    ) -> None:
        self.config = config
        self._rules = list(rules or [])
        self.hostname = hostname
        self._feed = Feed(selector, backlog=config.min_samples * 4, recent_secs=recent_secs)
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
        alpha, beta = cfg.alpha, cfg.alpha * cfg.noise_rate
        noise_factor, keep = cfg.noise_factor, 1.0 - cfg.hysteresis
        min_samples = cfg.min_samples
        for key, points, fresh, history in batches:
            series = self._series.get(key)
            start = 0
            if series is None or fresh:
                if not points:
                    continue
                ts0, x0 = points[0]
                dev = rule_value(self._rules, key, "ema_deviation", cfg.deviation)
                series = self._series[key] = _Series(
                    cfg, ts0, x0, relative_floor(key.metric, dev), dev
                )
                start = 1
            for i in range(start, len(points)):
                ts, raw = points[i]
                p1, p2 = series.p1, series.p2
                series.p2, series.p1 = p1, raw
                # median of the last three samples: a level shift passes, a lone spike does not
                if p1 < p2:
                    p1, p2 = p2, p1
                x = p1 if raw > p1 else (p2 if raw < p2 else raw)
                ema = series.ema
                diff = x - ema
                adiff = diff if diff >= 0 else -diff
                denom = ema if ema >= 0 else -ema
                if denom < series.floor:
                    denom = series.floor
                rel = adiff / denom
                onset = series.onset
                if lifecycle.active(key) is not None:
                    if rel <= series.deviation * keep:
                        t = lifecycle.step(key, None, ts, raw)
                        if t is not None:
                            alerts.append(self._alert(key, series, t, rel))
                        onset.resolved(ts)
                else:
                    deviating = (
                        rel > series.deviation
                        and adiff > noise_factor * series.noise
                        and series.n >= min_samples
                    )
                    if not deviating:
                        series.base = ema
                    if onset.check(ts, x, deviating) and not history:
                        t = lifecycle.step(key, Severity.WARN, ts, raw)
                        if t is not None:
                            alerts.append(self._alert(key, series, t, rel))
                onset.observe(ts, x)
                series.noise += beta * (adiff - series.noise)
                series.ema = ema + alpha * (raw - ema)
                series.n += 1
        return alerts

    def _alert(self, key: SeriesKey, series: _Series, t: Transition, rel: float) -> Alert:
        metric = key.metric
        level = format_value(metric, series.ema)
        if t.resolved:
            message = f"{key} back to {format_value(metric, t.value)}, close to its average {level}"
            threshold = series.ema
        else:
            base = series.base
            up = t.value >= base
            change = abs(t.value - base) / max(abs(base), series.floor)
            message = (
                f"{key} {'jumped' if up else 'dropped'} to {format_value(metric, t.value)}, "
                f"{change * 100:.0f}% {'above' if up else 'below'} its recent average "
                f"{format_value(metric, base)}"
            )
            span = series.deviation * max(abs(base), series.floor)
            threshold = base + span if up else base - span
        return transition_alert(NAME, self.hostname, key, t, message, threshold)


def create(cfg: EmaConfig, ctx: AnalyzerContext) -> EmaAnalyzer:
    rules = list(ctx.rules)
    return EmaAnalyzer(
        cfg,
        Selector(NAME, rules, statistical=True),
        ctx.hostname,
        rules,
        recent_secs=ctx.recent_secs,
    )
