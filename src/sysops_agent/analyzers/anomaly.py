"""Anomaly analyzer: one robust, time-aware anomaly score per series (issue 14).

It replaces the separate z-score and EMA alerting (both stay loadable as
configuration sections, disabled by default). Per series it keeps, all in
O(1) per sample and under 4 KB:

* **three baselines** that predict the next value: a flat EWMA (``level_secs``),
  a time-of-day profile (48 bins of 30 min) and a day-of-week x hour profile
  (168 bins), each bin an EWMA across its visits. Each baseline keeps its
  running (winsorized) absolute error; a seasonal baseline is used only while
  its error is below ``season_gain`` times the flat one, so a series without a
  cycle is judged by the flat baseline alone;
* a **robust spread**: the running absolute error of the chosen baseline,
  updated with the residual clipped at ``WINSOR`` times itself, so one past
  outlier does not inflate it (and blind the detector) for a day;
* the **score** ``z = residual / (1.2533 * error)`` (1.2533 turns a mean
  absolute deviation into a Gaussian σ), judged BEFORE the sample is learnt;
* a **novelty gate on the residual**: a spike fires only when its residual
  exceeds, by ``novelty_margin`` robust σ, the largest residual of the same
  sign of the last ``novelty_secs`` to twice that (two buckets, O(1)), not
  counting the current run of outliers (a ramp is not compared with its own
  previous sample). A nightly peak predicted by the profile has a small
  residual, a recurring one is not new, and a big spike is forgotten after
  3 to 6 days instead of hiding every smaller anomaly for a week;
* a **sustained-shift channel**: the mean residual over ``shift_secs`` (an
  EWMA), scored against its own running winsorized size; it fires at
  ``shift_threshold`` robust σ (and, like spikes, only when that mean exceeds
  the largest of the novelty window): ramps, plateaus and level shifts whose
  single samples are each unremarkable;
* a **floor of meaningful change** per unit (:func:`meaningful_change`): 5
  points of a percentage, 1 MiB/s, ...; unknown units get 0 (statistics alone).

Every parameter is in seconds, so the defaults mean the same at 10 s
collection and at 5-minute replay. An alert fires at most once per episode,
resolves when both channels are back below ``threshold * (1 - hysteresis)``
and the series then cools down for ``cooldown_secs``.

Size: one statistical model (baselines, spreads, novelty gate, shift channel,
warm start); :meth:`SeriesModel.step` is its per-sample update, kept as one
function on purpose: it is the hot path (about 1.3 µs a sample) and its order
of updates is the algorithm.
"""

from __future__ import annotations

import logging
import math
import os
import time
from array import array
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, ClassVar, Dict, Iterable, List, Optional, Set, Tuple

from sysops_agent.analyzers.base import AnalyzerContext
from sysops_agent.analyzers.common import forget_gone, transition_alert
from sysops_agent.analyzers.describe import subject
from sysops_agent.analyzers.lifecycle import Lifecycle, Transition
from sysops_agent.analyzers.rules import RuleKey, toggle_key
from sysops_agent.model import Alert, SeriesKey, Severity, make_labels
from sysops_agent.schema import opt
from sysops_agent.units import format_duration, format_value, unit_of

if TYPE_CHECKING:
    from sysops_agent.analyzers.feed import Feed
    from sysops_agent.storage.store import Store

NAME = "anomaly"

log = logging.getLogger("sysops_agent.analyzers.anomaly")

#: time-of-day bins (30 min) and day-of-week x hour bins
TOD_BINS = 48
WEEK_BINS = 168
DAY = 86400.0
WEEK = 7 * DAY
#: 1970-01-01 was a Thursday: shift so that bin 0 is Monday 00:00 UTC
_WEEK_SHIFT = 3 * DAY
#: residuals are clipped at this many times the running error before it learns them
WINSOR = 4.0
#: mean absolute deviation -> σ for Gaussian noise
MAD_TO_SIGMA = 1.2533
#: spreads below this fraction of |level| count as none (float32 storage wobble)
REL_SPREAD_FLOOR = 1e-6
#: how far back a warm start reads the SQLite history
WARM_SECS = 15 * 86400.0
#: ... merged into 5-minute buckets (every parameter is in seconds: the same
#: state at a fifth of the cost of one-minute rows)
WARM_STEP = 300
#: samples a series new to the analyzer (start-up, reload) learns from the store
BACKLOG = 8640
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


@dataclass(frozen=True)
class AnomalyConfig:
    #: the keys this analyzer adds to ``[[analyzer.rules]]``
    RULE_KEYS: ClassVar[Tuple[RuleKey, ...]] = (toggle_key(NAME),)
    #: a rule's ``zscore = true/false`` (the analyzer this one replaces) also speaks for it
    #: when the rule says nothing about ``anomaly``
    RULE_ALIASES: ClassVar[Tuple[str, ...]] = ("zscore",)

    enabled: bool = opt(True)
    level_secs: float = opt(
        4 * 3600.0, min=60, help="time constant of the flat baseline (an EWMA of the series)"
    )
    error_secs: float = opt(
        86400.0, min=60, help="time constant of each baseline's running error (the spread)"
    )
    season_cycles: float = opt(
        3.0, min=1, help="a seasonal bin forgets with a time constant of this many visits"
    )
    season_gain: float = opt(
        0.7,
        min=0.1,
        max=1.0,
        help="a seasonal baseline is used while its error is below this fraction of the flat one",
    )
    threshold: float = opt(5.0, min=1, help="alert when |residual| exceeds this many robust σ")
    novelty_secs: float = opt(
        3 * 86400.0,
        min=0,
        help="a spike must exceed the largest residual of this long ago (0 = no gate)",
    )
    novelty_margin: float = opt(
        1.0,
        min=0,
        help="... by this many robust σ (chance maxima of the same recurring peak are not new)",
    )
    shift_secs: float = opt(
        3600.0, min=60, help="time constant of the sustained-shift channel (mean score)"
    )
    shift_threshold: float = opt(
        4.0,
        min=0.5,
        help="alert when the mean residual over shift_secs is this many of its own robust σ",
    )
    warmup_secs: float = opt(
        7200.0, min=0, help="no alert before the series has been watched this long"
    )
    hysteresis: float = opt(
        0.4, min=0, max=0.9, help="resolve once both channels are below threshold * (1 - this)"
    )
    cooldown_secs: float = opt(
        3600.0, min=0, help="after an alert resolves, the series may not fire again for this long"
    )


def meaningful_change(metric: str) -> float:
    """The smallest absolute change of ``metric`` worth an alert (the unit catalog's floor).

    The one place this analyzer asks the unit catalog.
    """
    return unit_of(metric).min_change


def _alpha(dt: float, tau: float) -> float:
    return 1.0 - math.exp(-dt / tau) if tau > 0 else 1.0


class Verdict:
    """Why a sample is anomalous: which channel, the baseline and the score."""

    __slots__ = ("baseline", "channel", "expected", "score", "spread")

    def __init__(
        self, channel: str, baseline: str, expected: float, spread: float, score: float
    ) -> None:
        self.channel = channel
        self.baseline = baseline
        self.expected = expected
        self.spread = spread
        self.score = score


class SeriesModel:
    """The statistical state of one series (baselines, errors, gate, shift channel)."""

    __slots__ = (
        "a_err",
        "a_lvl",
        "a_shift",
        "a_tod",
        "a_week",
        "bucket_ts",
        "cfg",
        "change",
        "cur_neg",
        "cur_pos",
        "dt",
        "err_flat",
        "err_shift",
        "err_tod",
        "err_week",
        "first_ts",
        "judge_from",
        "last_ts",
        "level",
        "n",
        "ne",
        "prev_neg",
        "prev_pos",
        "quiet_until",
        "run_neg",
        "run_pos",
        "run_shift",
        "shift",
        "shift_peak",
        "shift_peak_prev",
        "tod",
        "week",
    )

    def __init__(self, cfg: AnomalyConfig, change: float) -> None:
        self.cfg = cfg
        self.change = change
        self.n = 0
        #: samples in the running errors (reset when they restart from live samples)
        self.ne = 0
        #: no verdict before this time (warm-up)
        self.judge_from = math.inf
        self.first_ts = self.last_ts = 0.0
        self.level = 0.0
        self.err_flat = self.err_tod = self.err_week = self.err_shift = 0.0
        self.tod = array("d", [math.nan]) * TOD_BINS
        self.week = array("d", [math.nan]) * WEEK_BINS
        self.cur_pos = self.cur_neg = self.prev_pos = self.prev_neg = 0.0
        self.bucket_ts = 0.0
        self.run_pos = self.run_neg = self.run_shift = 0.0
        self.shift = self.shift_peak = self.shift_peak_prev = 0.0
        self.quiet_until = -math.inf
        self.dt = -1.0
        self.a_lvl = self.a_err = self.a_shift = self.a_tod = self.a_week = 1.0

    def _rates(self, dt: float) -> None:
        cfg = self.cfg
        self.dt = dt
        self.a_lvl = _alpha(dt, cfg.level_secs)
        self.a_err = _alpha(dt, cfg.error_secs)
        self.a_shift = _alpha(dt, cfg.shift_secs)
        self.a_tod = _alpha(dt, cfg.season_cycles * DAY / TOD_BINS)
        self.a_week = _alpha(dt, cfg.season_cycles * WEEK / WEEK_BINS)

    def expected(self, ts: float) -> Tuple[str, float, float]:
        """(baseline name, prediction, its running error) for a sample at ``ts``."""
        cfg = self.cfg
        span = self.last_ts - self.first_ts
        best, pred, err = "flat", self.level, self.err_flat
        if span >= 2 * DAY:
            p = self.tod[int((ts % DAY) * (TOD_BINS / DAY))]
            if p == p and self.err_tod < cfg.season_gain * err:
                best, pred, err = "day", p, self.err_tod
            if span >= 2 * WEEK:
                p = self.week[int(((ts + _WEEK_SHIFT) % WEEK) * (WEEK_BINS / WEEK))]
                if p == p and self.err_week < cfg.season_gain * err:
                    best, pred, err = "week", p, self.err_week
        return best, pred, err

    def step(self, ts: float, x: float, judge: bool) -> Optional[Verdict]:
        """Learn the sample (ts, x); when ``judge``, return the verdict if it is anomalous.

        A sample is judged against the state BEFORE it is learnt.

        Long on purpose: the per-sample update of every channel of the model, in the order
        the algorithm needs (see the module docstring); it is the hot path.
        """
        n = self.n
        if n == 0:
            self.first_ts = self.last_ts = self.bucket_ts = ts
            self.judge_from = ts + self.cfg.warmup_secs
            self.level = x
            self.n = 1
            ti = int((ts % DAY) * (TOD_BINS / DAY))
            wi = int(((ts + _WEEK_SHIFT) % WEEK) * (WEEK_BINS / WEEK))
            self.tod[ti] = x
            self.week[wi] = x
            return None
        dt = ts - self.last_ts
        if dt <= 0:
            return None
        if dt != self.dt:
            self._rates(dt)
        cfg = self.cfg
        ti = int((ts % DAY) * (TOD_BINS / DAY))
        wi = int(((ts + _WEEK_SHIFT) % WEEK) * (WEEK_BINS / WEEK))
        level = self.level
        name, pred, err = self.expected(ts)
        res = x - pred
        spread = MAD_TO_SIGMA * err
        floor = REL_SPREAD_FLOOR * abs(pred) + 1e-12
        if spread < floor:
            spread = floor
        z = res / spread
        verdict: Optional[Verdict] = None
        # the shift channel: the mean residual over shift_secs, scored against
        # its own running (winsorized) size
        shift = self.shift + self.a_shift * (res - self.shift)
        self.shift = shift
        e = self.err_shift
        s_spread = MAD_TO_SIGMA * e
        if s_spread < floor:
            s_spread = floor
        sz = shift / s_spread
        r = abs(shift)
        if e > 0 and r > WINSOR * e:
            r = WINSOR * e
        a = self.a_err
        ne = self.ne = self.ne + 1
        if a * ne < 1.0:  # a running mean until the EWMA has seen its time constant
            a = 1.0 / ne
        self.err_shift = e + a * (r - e)
        # the novelty gate: the largest residual of each sign over the last
        # novelty_secs (two buckets: the window covers novelty_secs to twice that)
        if ts - self.bucket_ts >= cfg.novelty_secs:
            if ts - self.bucket_ts >= 2 * cfg.novelty_secs:
                self.prev_pos = self.prev_neg = self.shift_peak = 0.0
            else:
                self.prev_pos, self.prev_neg = self.cur_pos, self.cur_neg
            self.cur_pos = self.cur_neg = 0.0
            self.shift_peak_prev = self.shift_peak
            self.shift_peak = 0.0
            self.bucket_ts = ts
        peak_pos = self.cur_pos if self.cur_pos > self.prev_pos else self.prev_pos
        peak_neg = self.cur_neg if self.cur_neg > self.prev_neg else self.prev_neg
        ashift = shift if shift >= 0 else -shift
        shift_peak = (
            self.shift_peak if self.shift_peak > self.shift_peak_prev else (self.shift_peak_prev)
        )
        thr = cfg.threshold
        spiking = z > thr or z < -thr
        shifting = sz > cfg.shift_threshold or sz < -cfg.shift_threshold
        if judge and ts >= self.judge_from and abs(res) >= self.change:
            margin = cfg.novelty_margin * spread
            if spiking and (res > peak_pos + margin if res > 0 else -res > peak_neg + margin):
                verdict = Verdict("spike", name, pred, spread, z)
            elif (
                shifting and shift * res > 0 and ashift > shift_peak + cfg.novelty_margin * s_spread
            ):
                verdict = Verdict("shift", name, pred, s_spread, sz)
        # the peaks the gate compares with exclude the current run of outliers (a
        # ramp is not compared with its own previous sample); a run joins them
        # when it ends
        if spiking:
            if res > self.run_pos:
                self.run_pos = res
            elif -res > self.run_neg:
                self.run_neg = -res
        else:
            if self.run_pos > self.cur_pos:
                self.cur_pos = self.run_pos
            if self.run_neg > self.cur_neg:
                self.cur_neg = self.run_neg
            self.run_pos = self.run_neg = 0.0
            if res > self.cur_pos:
                self.cur_pos = res
            elif -res > self.cur_neg:
                self.cur_neg = -res
        if shifting:
            if ashift > self.run_shift:
                self.run_shift = ashift
        else:
            if self.run_shift > self.shift_peak:
                self.shift_peak = self.run_shift
            self.run_shift = 0.0
            if ashift > self.shift_peak:
                self.shift_peak = ashift
        # learn: errors of every baseline (winsorized), then the baselines
        r = abs(x - level)
        e = self.err_flat
        if e > 0 and r > WINSOR * e:
            r = WINSOR * e
        self.err_flat = e + a * (r - e)
        p = self.tod[ti]
        if p == p:
            r = abs(x - p)
            e = self.err_tod
            if e > 0 and r > WINSOR * e:
                r = WINSOR * e
            self.err_tod = e + a * (r - e) if e > 0 else r
            self.tod[ti] = p + self.a_tod * (x - p)
        else:
            self.tod[ti] = x
        p = self.week[wi]
        if p == p:
            r = abs(x - p)
            e = self.err_week
            if e > 0 and r > WINSOR * e:
                r = WINSOR * e
            self.err_week = e + a * (r - e) if e > 0 else r
            self.week[wi] = p + self.a_week * (x - p)
        else:
            self.week[wi] = x
        # the flat level learns a winsorized sample: one outlier barely moves it
        d = x - level
        lim = WINSOR * MAD_TO_SIGMA * self.err_flat
        if lim > 0 and abs(d) > lim:
            d = math.copysign(lim, d)
        self.level = level + self.a_lvl * d
        self.last_ts = ts
        self.n = n + 1
        return verdict

    def calm(self, ts: float, x: float) -> bool:
        """True when an active alert may resolve: both channels back inside the hysteresis."""
        cfg = self.cfg
        _name, pred, err = self.expected(ts)
        spread = max(MAD_TO_SIGMA * err, REL_SPREAD_FLOOR * abs(pred) + 1e-12)
        keep = 1.0 - cfg.hysteresis
        return (
            abs(x - pred) <= cfg.threshold * keep * spread
            and abs(self.shift) <= cfg.shift_threshold * keep * MAD_TO_SIGMA * self.err_shift
        )

    def relearn_spread(self, ts: float) -> None:
        """Live samples start at ``ts`` after a warm start from one-minute averages.

        The baselines, the seasonal profiles and the novelty peaks learnt from
        the history stay; the spreads do not carry over (a minute's average is
        smoother than 10 s samples), so they are re-estimated from the live
        samples and nothing is judged for ``warmup_secs``.
        """
        self.err_flat = self.err_tod = self.err_week = self.err_shift = 0.0
        self.ne = 0
        self.shift = 0.0
        self.judge_from = ts + self.cfg.warmup_secs


class AnomalyAnalyzer:
    name = NAME

    def __init__(
        self,
        config: AnomalyConfig,
        feed: Feed,
        hostname: str,
        select: Callable[[SeriesKey], bool] = lambda key: True,
    ) -> None:
        self.config = config
        self.hostname = hostname
        self._feed = feed
        self._select = select
        self._series: Dict[SeriesKey, SeriesModel] = {}
        #: series warmed from history whose live samples have not started yet
        self._warmed: Set[SeriesKey] = set()
        self._lifecycle = Lifecycle()

    def warm_start(self, db_path: str, store: Store, now: float) -> WarmStats:
        """Rebuild the state of every watched series from the SQLite one-minute history.

        Reads the last :data:`WARM_SECS` (two weeks and a day: the day-of-week
        profile is trusted after two weeks) up to the oldest sample the store
        still holds for the series (those come through the feed as history).
        A missing or unreadable database is no warm start, not an error.
        """
        stats = WarmStats()
        t0 = time.perf_counter()
        if not db_path or not os.path.isfile(db_path):
            return stats
        import sqlite3

        from sysops_agent.storage.sqlite_reader import HistoryError, HistoryReader
        from sysops_agent.units import is_impossible

        try:
            reader = HistoryReader(db_path)
        except (HistoryError, OSError, sqlite3.Error) as e:
            log.warning("anomaly: no warm start from %s: %s", db_path, e)
            return stats
        try:
            for metric in reader.metrics():
                for sid, labels in reader.series(metric, {}):
                    key = SeriesKey(metric, make_labels(labels))
                    if not self._select(key):
                        continue
                    until = now + 1.0
                    buf = store.get(metric, key.labels)
                    if buf is not None and len(buf):
                        until = buf.last_n(min(len(buf), BACKLOG))[0][0]
                    rows = reader.points(sid, now - WARM_SECS, until, WARM_STEP)
                    rows = [r for r in rows if not is_impossible(metric, r[1])]
                    if not rows:
                        continue
                    model = self._new(key)
                    for minute, avg, _lo, _hi, _count in rows:
                        model.step(minute + WARM_STEP / 2, avg, False)
                    self._warmed.add(key)
                    stats.series += 1
                    stats.points += len(rows)
        except sqlite3.Error as e:
            log.warning("anomaly: warm start from %s stopped: %s", db_path, e)
        finally:
            reader.close()
        stats.secs = time.perf_counter() - t0
        return stats

    def model(self, key: SeriesKey) -> Optional[SeriesModel]:
        return self._series.get(key)

    def _new(self, key: SeriesKey) -> SeriesModel:
        model = self._series[key] = SeriesModel(self.config, meaningful_change(key.metric))
        return model

    def analyze(self, store: Store, now: float) -> List[Alert]:
        lifecycle = self._lifecycle
        batches, gone = self._feed.pull(store, now)
        alerts = forget_gone(gone, (self._series,), lifecycle, now, NAME, self.hostname)
        cooldown = self.config.cooldown_secs
        warmed = self._warmed
        for key, points, fresh, history in batches:
            model = self._series.get(key)
            if key in warmed and model is not None and points:
                warmed.discard(key)
                points = [p for p in points if p[0] > model.last_ts]
                if points:
                    model.relearn_spread(points[0][0])
            elif model is None or (fresh and model.n and points and points[0][0] <= model.last_ts):
                if not points:
                    continue
                model = self._new(key)
            judge = not history
            step = model.step
            for ts, x in points:
                if lifecycle.active(key) is not None:
                    calm = model.calm(ts, x)
                    model.step(ts, x, False)
                    if calm:
                        t = lifecycle.step(key, None, ts, x)
                        if t is not None:
                            alerts.append(self._resolved(key, model, t))
                        model.quiet_until = ts + cooldown
                    continue
                verdict = step(ts, x, judge and ts >= model.quiet_until)
                if verdict is not None:
                    t = lifecycle.step(key, Severity.WARN, ts, x)
                    if t is not None:
                        alerts.append(self._firing(key, model, t, verdict))
        return alerts

    def _firing(self, key: SeriesKey, model: SeriesModel, t: Transition, v: Verdict) -> Alert:
        metric = key.metric
        expected = format_value(metric, v.expected)
        when = time.strftime("%H:%M %a", time.gmtime(t.at))
        usual = {
            "flat": "its usual",
            "day": "the usual",
            "week": "the usual",
        }[v.baseline]
        for_what = {
            "flat": "",
            "day": " for this time of day",
            "week": f" for {_DAYS[time.gmtime(t.at).tm_wday]} at this hour",
        }[v.baseline]
        direction = "above" if v.score > 0 else "below"
        if v.channel == "spike":
            message = (
                f"{subject(key)} {format_value(metric, t.value)} at {when} is "
                f"{abs(v.score):.1f} robust σ {direction} {usual} {expected}{for_what}"
            )
        else:
            message = (
                f"{subject(key)} has run {abs(v.score):.1f} robust σ {direction} "
                f"{usual} {expected}{for_what} on average for "
                f"{format_duration(self.config.shift_secs)} (now {format_value(metric, t.value)})"
            )
        limit = v.expected + math.copysign(self.config.threshold * v.spread, v.score)
        return transition_alert(NAME, self.hostname, key, t, message, limit)

    def _resolved(self, key: SeriesKey, model: SeriesModel, t: Transition) -> Alert:
        metric = key.metric
        _name, pred, _err = model.expected(t.at)
        message = (
            f"{subject(key)} back to {format_value(metric, t.value)}, close to the usual "
            f"{format_value(metric, pred)}"
        )
        return transition_alert(NAME, self.hostname, key, t, message, pred)


class WarmStats:
    """What a warm start learnt: series, one-minute points, seconds it took."""

    __slots__ = ("points", "secs", "series")

    def __init__(self) -> None:
        self.series = 0
        self.points = 0
        self.secs = 0.0


def warm_start(analyzers: Iterable[object], db_path: str, store: Store, now: float) -> None:
    """Warm every anomaly analyzer among ``analyzers`` from the SQLite history (daemon hook)."""
    for analyzer in analyzers:
        if isinstance(analyzer, AnomalyAnalyzer):
            stats = analyzer.warm_start(db_path, store, now)
            if stats.series:
                log.info(
                    "anomaly: warm start from %s: %d series, %d one-minute points in %.1f s",
                    db_path,
                    stats.series,
                    stats.points,
                    stats.secs,
                )


def create(cfg: AnomalyConfig, ctx: AnalyzerContext) -> AnomalyAnalyzer:
    """The factory: this analyzer from its own section and the shared context."""
    from sysops_agent.analyzers.feed import Feed
    from sysops_agent.analyzers.rules import Selector

    select = Selector(NAME, ctx.rules, statistical=True, aliases=AnomalyConfig.RULE_ALIASES)
    feed = Feed(select, backlog=BACKLOG, recent_secs=ctx.recent_secs)
    return AnomalyAnalyzer(cfg, feed, ctx.hostname, select)
