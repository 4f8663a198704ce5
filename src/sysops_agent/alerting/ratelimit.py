"""Stage 3 of the alert pipeline: a token bucket per channel.

The bucket holds at most ``burst`` tokens and gains one every
``60 / per_minute`` seconds (SPEC §6: 10/min → one per 6 s, burst 5). An alert
that finds the bucket empty is *held back*: it is not sent, but it is counted,
and as soon as a token returns the stage produces one summary alert
("…and 7 more alerts suppressed") that takes that token. Nothing is dropped
silently. Emergency alerts bypass the bucket (they take no token), and so do
the transitions that end or lower an alert — a resolved notice and a
de-escalation (a firing at a lower severity than the last one seen for the
same :attr:`Alert.identity`): a receiver must never be left believing an alert
is still critical because its "resolved" became a count in a summary. They
are still grouped with whatever else goes out (the group stage comes next).

:func:`take_token` and :func:`next_token_at` are pure functions of the bucket
state and ``now``; :class:`RateLimitStage` keeps the state of one channel and
is a lane :class:`~sysops_agent.alerting.stage.Stage`. A channel that throttles
by itself (``Channel.rate_limited`` False, Alertmanager) gets no rate limiter.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Dict, List, Optional, Tuple

from sysops_agent.alerting.config import PipelineConfig
from sysops_agent.alerting.route import bypasses_rate_limit
from sysops_agent.model import (
    SUMMARY_ANALYZER,
    Alert,
    AlertIdentity,
    AlertState,
    Severity,
    make_labels,
)

if TYPE_CHECKING:
    from sysops_agent.alerting.pipeline import Lane

log = logging.getLogger("sysops_agent.alerting")

SUMMARY_METRIC = "agent_alerts_suppressed"
#: how many metric names the summary message lists before "…"
SUMMARY_TOP_METRICS = 5
#: identities whose last severity the stage remembers (to recognise a de-escalation)
MAX_REMEMBERED = 10_000


@dataclass(frozen=True)
class Bucket:
    tokens: float
    updated: float


def refill(bucket: Bucket, now: float, per_minute: float, burst: int) -> Bucket:
    """The bucket at ``now`` (time never runs backwards for the bucket)."""
    if now <= bucket.updated:
        return bucket
    gained = (now - bucket.updated) * per_minute / 60.0
    return Bucket(min(float(burst), bucket.tokens + gained), now)


def take_token(bucket: Bucket, now: float, per_minute: float, burst: int) -> Tuple[bool, Bucket]:
    """Try to take one token at ``now``: (taken, new bucket)."""
    b = refill(bucket, now, per_minute, burst)
    # a tiny epsilon absorbs float error in "exactly one interval later"
    if b.tokens >= 1.0 - 1e-9:
        return True, Bucket(max(0.0, b.tokens - 1.0), b.updated)
    return False, b


def next_token_at(bucket: Bucket, per_minute: float) -> float:
    """When the bucket will hold one whole token again."""
    if bucket.tokens >= 1.0 - 1e-9:
        return bucket.updated
    return bucket.updated + (1.0 - bucket.tokens) * 60.0 / per_minute


@dataclass
class Suppressed:
    """What was held back since the last summary."""

    count: int = 0
    severity: Severity = Severity.INFO
    hostname: str = ""
    by_metric: Counter[str] = field(default_factory=Counter)

    def add(self, alert: Alert) -> None:
        if not self.count:
            self.hostname = alert.hostname
        self.count += 1
        self.severity = max(self.severity, alert.severity)
        self.by_metric[alert.metric] += 1


def summary_alert(channel: str, held: Suppressed, timestamp: float) -> Alert:
    """The alert that stands for ``held.count`` suppressed alerts."""
    top = held.by_metric.most_common(SUMMARY_TOP_METRICS)
    parts = [f"{metric} ×{n}" for metric, n in top]
    if len(held.by_metric) > len(top):
        parts.append("…")
    noun = "alert" if held.count == 1 else "alerts"
    return Alert(
        timestamp=timestamp,
        hostname=held.hostname,
        severity=held.severity,
        metric=SUMMARY_METRIC,
        value=float(held.count),
        threshold=0.0,
        message=f"…and {held.count} more {noun} suppressed by rate limiting ({', '.join(parts)})",
        analyzer=SUMMARY_ANALYZER,
        labels=make_labels(channel=channel),
    )


class RateLimitStage:
    """The token bucket and held-back tally of one channel."""

    def __init__(
        self,
        channel: str,
        per_minute: float,
        burst: int,
        now: float,
        *,
        wall_time: Optional[Callable[[], float]] = None,
    ) -> None:
        self.channel = channel
        #: the summary alert's timestamp (wall clock); ``now`` is monotonic
        self.wall_time = wall_time
        self.per_minute = float(per_minute)
        self.burst = int(burst)
        self._bucket = Bucket(float(burst), now)
        self._held = Suppressed()
        #: the severity last seen firing per identity (admitted or held back)
        self._severity: Dict[AlertIdentity, Severity] = {}
        #: total alerts ever held back (they are reported through summaries)
        self.suppressed_total = 0

    def __call__(self, alerts: List[Alert], now: float) -> List[Alert]:
        out = self._summary(now, force=False)
        for alert in alerts:
            bypass = bypasses_rate_limit(alert) or self.lowers(alert)
            if self.admit(alert, now, bypass=bypass):
                out.append(alert)
        return out

    def lowers(self, alert: Alert) -> bool:
        """True for a resolved notice or a de-escalation (and remember ``alert``'s severity)."""
        ident = alert.identity
        if alert.state is AlertState.RESOLVED:
            self._severity.pop(ident, None)
            return True
        last = self._severity.pop(ident, None)
        if len(self._severity) >= MAX_REMEMBERED:  # forget the oldest
            del self._severity[next(iter(self._severity))]
        self._severity[ident] = alert.severity
        return last is not None and alert.severity < last

    def next_due(self) -> Optional[float]:
        return self.next_summary_at()

    def flush(self, now: float) -> List[Alert]:
        return self._summary(now, force=True)

    def _summary(self, now: float, *, force: bool) -> List[Alert]:
        stamp = self.wall_time() if self.wall_time is not None else now
        summary = self.summary(now, stamp, force=force)
        if summary is None:
            return []
        log.warning("%s: %s", self.channel, summary.message)
        return [summary]

    def admit(self, alert: Alert, now: float, *, bypass: bool = False) -> bool:
        """True if ``alert`` may go on; otherwise it is counted for the next summary."""
        if bypass:
            return True
        ok, self._bucket = take_token(self._bucket, now, self.per_minute, self.burst)
        if not ok:
            self._held.add(alert)
            self.suppressed_total += 1
        return ok

    @property
    def held(self) -> int:
        return self._held.count

    def next_summary_at(self) -> Optional[float]:
        """When a summary can go out (None if nothing is held back)."""
        if not self._held.count:
            return None
        return next_token_at(self._bucket, self.per_minute)

    def summary(self, now: float, timestamp: float, *, force: bool = False) -> Optional[Alert]:
        """The summary alert if something is held back and a token is free (or ``force``)."""
        if not self._held.count:
            return None
        ok, bucket = take_token(self._bucket, now, self.per_minute, self.burst)
        if not ok and not force:
            self._bucket = bucket
            return None
        self._bucket = bucket
        alert = summary_alert(self.channel, self._held, timestamp)
        self._held = Suppressed()
        return alert

    def state(self) -> Dict[str, float]:
        return {"tokens": self._bucket.tokens, "held": float(self._held.count)}


def create(cfg: PipelineConfig, lane: Lane) -> Optional[RateLimitStage]:
    if not lane.rate_limited:
        return None
    return RateLimitStage(
        lane.name,
        cfg.rate_limit_per_minute,
        cfg.rate_limit_burst,
        lane.clock.monotonic(),
        wall_time=lane.clock.time,
    )
