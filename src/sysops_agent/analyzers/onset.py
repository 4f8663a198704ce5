"""When a statistical deviation becomes an alert: shared by the z-score and EMA analyzers.

A single odd sample is not worth waking anyone. :class:`Onset` fires only when

* the run of deviating samples STARTED with a new extreme: a value above the
  highest (or below the lowest) of the last ``extreme_window_secs``. A value
  the series has already reached recently (the daily peak, a periodic batch
  job, a square wave) is not news, however many σ it is from the mean;
* the deviation has lasted ``sustain_secs``, each sample counting for the
  interval it represents — at 10 s sampling, 30 s means 3 samples; at 5-minute
  sampling one sample already covers it;
* the series is not cooling down: after an alert resolves it may not fire
  again for ``cooldown_secs``, so a metric hovering around the limit of
  normal produces one alert, not one per excursion.

All three are time-based, so the defaults mean the same at any sampling rate.
"""

from __future__ import annotations

import math
from typing import Optional

from sysops_agent.analyzers.window import RollingExtremes


class Onset:
    __slots__ = ("cooldown", "extremes", "gap", "last_ts", "quiet_until", "since", "sustain")

    def __init__(
        self, sustain_secs: float, cooldown_secs: float, extreme_window_secs: float
    ) -> None:
        self.sustain = sustain_secs
        self.cooldown = cooldown_secs
        self.extremes = RollingExtremes(extreme_window_secs) if extreme_window_secs > 0 else None
        self.since: Optional[float] = None
        self.gap = 0.0
        self.last_ts = -math.inf
        self.quiet_until = -math.inf

    def check(self, ts: float, x: float, deviating: bool) -> bool:
        """Call once per sample BEFORE :meth:`observe`; True when the alert should fire."""
        if not deviating:
            self.since = None
            return False
        if self.since is None:
            if self.extremes is not None and not self.extremes.outside(x):
                return False
            self.since = ts
        return ts - self.since + self.gap >= self.sustain and ts >= self.quiet_until

    def resolved(self, ts: float) -> None:
        """The alert resolved at ``ts``: start the cool-down."""
        self.since = None
        self.quiet_until = ts + self.cooldown

    def observe(self, ts: float, x: float) -> None:
        """Record the sample (after judging it)."""
        if self.last_ts > -math.inf:
            self.gap = ts - self.last_ts
        self.last_ts = ts
        if self.extremes is not None:
            self.extremes.push(ts, x)
