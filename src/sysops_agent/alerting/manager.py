"""The alert manager: dedup → route → rate-limit → group → send (SPEC §6).

Each stage is its own module with a pure decision; this module only wires
them and owns the effects:

- :meth:`AlertManager.submit` runs dedup, routing and — per target channel —
  the rate limiter and the grouping stage. It never waits for a channel.
- Every channel has a *lane*: its rate limiter, its open groups, a queue of
  ready batches and one worker task that sends them with
  :func:`~sysops_agent.alerting.retry.send_with_retry`. A failing or hanging
  channel only ever holds up its own lane.
- :meth:`AlertManager.run` is the timer: it flushes groups whose window
  passed and emits rate-limit summaries when a token returns.
- :meth:`AlertManager.close` flushes what is pending (open groups, held-back
  counts as a last summary), lets the lanes finish within ``timeout`` (clock
  time), counts what could not be delivered as failed, and closes channels.

All time comes from the :class:`Clock` (``monotonic`` for windows and buckets,
``time`` for timestamps), so tests and ``replay`` run on virtual time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from typing import TYPE_CHECKING, Deque, Dict, List, Optional, Sequence, Tuple

from sysops_agent.alerting.config import AlertingConfig
from sysops_agent.alerting.dedup import DedupStage
from sysops_agent.alerting.group import GroupStage
from sysops_agent.alerting.ratelimit import RateLimitStage
from sysops_agent.alerting.retry import send_with_retry
from sysops_agent.alerting.route import channel_min_severity, route
from sysops_agent.channels.base import Channel
from sysops_agent.channels.console import format_line
from sysops_agent.clock import Clock
from sysops_agent.model import Alert, Severity
from sysops_agent.redact import Redactor

if TYPE_CHECKING:  # avoids an import cycle at runtime
    from sysops_agent.config import Config

#: batches waiting in one lane before the oldest is given up (and counted failed)
MAX_QUEUED_BATCHES = 1000
#: the pipeline's per-attempt timeout is the channel's own timeout plus this
#: grace, so the channel's more precise error (e.g. httpx's) normally wins
TIMEOUT_GRACE_SECS = 1.0
#: shortest timer the run loop sets (guards against float rounding spins)
MIN_TIMER_SECS = 1e-3


class _Lane:
    """Everything the manager keeps for one channel."""

    def __init__(
        self, name: str, channel: Channel, min_severity: Severity, cfg: AlertingConfig, now: float
    ) -> None:
        self.name = name
        self.channel = channel
        self.min_severity = min_severity
        self.limiter = RateLimitStage(name, cfg.rate_limit_per_minute, cfg.rate_limit_burst, now)
        window = cfg.group_window_secs if channel.supports_batch else 0.0
        self.grouper = GroupStage(window)
        self.queue: Deque[List[Alert]] = deque()
        self.inflight: Optional[List[Alert]] = None
        self.event: Optional[asyncio.Event] = None
        self.worker: Optional[asyncio.Task[None]] = None
        self.closing = False
        self.sent = 0
        self.failed = 0
        self.reported_disabled = False


class AlertManager:
    def __init__(
        self,
        config: AlertingConfig,
        channels: Sequence[Channel],
        clock: Clock,
        *,
        logger: Optional[logging.Logger] = None,
        redactor: Optional[Redactor] = None,
    ) -> None:
        self.config = config
        self.clock = clock
        self.log = logger or logging.getLogger("sysops_agent.alerting")
        self.redact = redactor if redactor is not None else Redactor()
        self.dedup = DedupStage(config.dedup_window_secs)
        now = clock.monotonic()
        self._lanes: Dict[str, _Lane] = {}
        for channel in channels:
            name = channel.name
            n = 2
            while name in self._lanes:  # two channels of one kind get distinct names
                name, n = f"{channel.name}#{n}", n + 1
            minimum = getattr(channel, "min_severity", None)
            if not isinstance(minimum, Severity):
                minimum = channel_min_severity(channel.name, config)
            self._lanes[name] = _Lane(name, channel, minimum, config, now)
        self._min = {name: lane.min_severity for name, lane in self._lanes.items()}
        self._wake: Optional[asyncio.Event] = None
        self._closed = False
        #: alerts dropped by dedup, and info alerts that were only logged
        self.deduplicated = 0
        self.logged_only = 0

    # -- intake -----------------------------------------------------------------

    async def submit(self, alert: Alert) -> None:
        """Run ``alert`` through dedup, routing, rate limiting and grouping."""
        if self._closed:
            self.log.error(
                "alert manager is closed: alert %s on %s not sent", alert.metric, alert.hostname
            )
            return
        now = self.clock.monotonic()
        if not self.dedup.admit(alert, now):
            self.deduplicated += 1
            return
        decision = route(alert, self._min, self.config.warn_channels)
        if decision.log:
            self.log.info("alert: %s", self.redact(format_line(alert)))
            if not decision.channels:
                self.logged_only += 1
        for name in decision.channels:
            lane = self._lanes[name]
            self._emit_summary(lane, now)
            # a channel that throttles by itself (Alertmanager) sets rate_limited = False
            bypass = decision.bypass_rate_limit or not getattr(lane.channel, "rate_limited", True)
            if lane.limiter.admit(alert, now, bypass=bypass):
                self._group(lane, alert, now)
        self._poke()

    def _group(self, lane: _Lane, alert: Alert, now: float) -> None:
        for batch in lane.grouper.add(alert, now):
            self._dispatch(lane, batch)

    def _emit_summary(self, lane: _Lane, now: float, *, force: bool = False) -> None:
        summary = lane.limiter.summary(now, self.clock.time(), force=force)
        if summary is not None:
            self.log.warning("%s: %s", lane.name, summary.message)
            self._group(lane, summary, now)

    def _dispatch(self, lane: _Lane, batch: List[Alert]) -> None:
        batches = [batch] if lane.channel.supports_batch else [[a] for a in batch]
        for b in batches:
            if len(lane.queue) >= MAX_QUEUED_BATCHES:
                dropped = lane.queue.popleft()
                lane.failed += len(dropped)
                self.log.error(
                    "%s: %d batches waiting; gave up the oldest (%d alerts)",
                    lane.name,
                    MAX_QUEUED_BATCHES,
                    len(dropped),
                )
            lane.queue.append(b)
        self._ensure_worker(lane)

    def _ensure_worker(self, lane: _Lane) -> None:
        if lane.event is None:
            lane.event = asyncio.Event()
        if lane.worker is None or lane.worker.done():
            lane.worker = asyncio.ensure_future(self._work(lane))
        lane.event.set()

    def _poke(self) -> None:
        if self._wake is not None:
            self._wake.set()

    # -- timers -----------------------------------------------------------------

    def _tick(self, now: float) -> Optional[float]:
        """Flush what is due at ``now``; return the next monotonic deadline."""
        deadlines: List[float] = []
        for lane in self._lanes.values():
            self._emit_summary(lane, now)
            for batch in lane.grouper.due(now):
                self._dispatch(lane, batch)
            for t in (lane.grouper.next_due(), lane.limiter.next_summary_at()):
                if t is not None:
                    deadlines.append(t)
        return min(deadlines) if deadlines else None

    async def run(self) -> None:
        """Background loop: group flushes and summaries. Returns once closed."""
        if self._wake is None:
            self._wake = asyncio.Event()
        wake = self._wake
        while not self._closed:
            wake.clear()
            now = self.clock.monotonic()
            deadline = self._tick(now)
            if self._closed:
                break
            if deadline is None:
                await wake.wait()
            else:
                await self._wait_either(wake, max(MIN_TIMER_SECS, deadline - now))

    async def _wait_either(self, event: asyncio.Event, seconds: float) -> None:
        waiter = asyncio.ensure_future(event.wait())
        timer = asyncio.ensure_future(self.clock.sleep(seconds))
        try:
            await asyncio.wait({waiter, timer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (waiter, timer):
                if not task.done():
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task

    # -- sending ----------------------------------------------------------------

    async def _work(self, lane: _Lane) -> None:
        assert lane.event is not None
        cfg = self.config
        while True:
            while not lane.queue:
                if lane.closing:
                    return
                lane.event.clear()
                await lane.event.wait()
            batch = lane.queue.popleft()
            lane.inflight = batch
            try:
                await self._send(lane, batch, cfg)
            finally:
                lane.inflight = None

    async def _send(self, lane: _Lane, batch: List[Alert], cfg: AlertingConfig) -> None:
        disabled = getattr(lane.channel, "disabled", None)
        if disabled:
            lane.failed += len(batch)
            if not lane.reported_disabled:
                lane.reported_disabled = True
                self.log.error(
                    "%s is disabled (%s): alerts for it are counted as failed",
                    lane.name,
                    self.redact(str(disabled)),
                )
            return
        result = await send_with_retry(
            lane.channel,
            batch,
            self.clock,
            retries=cfg.retries,
            base_delay=cfg.retry_base_delay_secs,
            max_delay=cfg.retry_max_delay_secs,
            timeout=cfg.send_timeout_secs + TIMEOUT_GRACE_SECS,
        )
        if result.ok:
            lane.sent += len(batch)
            if result.attempts > 1:
                self.log.info("%s: delivered after %d attempts", lane.name, result.attempts)
            return
        lane.failed += len(batch)
        self.log.error(
            "%s: %d alert(s) not delivered after %d attempt(s): %s",
            lane.name,
            len(batch),
            result.attempts,
            self.redact(result.error or "unknown error"),
        )
        if getattr(lane.channel, "disabled", None):
            lane.reported_disabled = True

    # -- shutdown ---------------------------------------------------------------

    async def close(self, timeout: float = 10.0) -> None:
        """Send what is pending within ``timeout`` (clock) seconds, then close the channels."""
        if self._closed:
            return
        now = self.clock.monotonic()
        for lane in self._lanes.values():
            self._emit_summary(lane, now, force=True)
            for batch in lane.grouper.drain():
                self._dispatch(lane, batch)
        workers = []
        for lane in self._lanes.values():
            lane.closing = True
            if lane.event is not None:
                lane.event.set()
            if lane.worker is not None and not lane.worker.done():
                workers.append(lane.worker)
        if workers:
            await self._wait_all(workers, timeout)
        for lane in self._lanes.values():
            if lane.worker is not None and not lane.worker.done():
                lost = sum(len(b) for b in lane.queue) + len(lane.inflight or [])
                lane.worker.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await lane.worker
                lane.queue.clear()
                lane.failed += lost
                self.log.error(
                    "%s: %d alert(s) not delivered within the %g s shutdown limit",
                    lane.name,
                    lost,
                    timeout,
                )
        for lane in self._lanes.values():
            try:
                await lane.channel.aclose()
            except Exception as exc:
                self.log.warning("%s: close failed: %s", lane.name, self.redact(str(exc)))
        self._closed = True
        self._poke()

    async def _wait_all(self, workers: List[asyncio.Task[None]], timeout: float) -> None:
        timer = asyncio.ensure_future(self.clock.sleep(timeout))
        pending = set(workers)
        try:
            while pending and not timer.done():
                done, _ = await asyncio.wait(pending | {timer}, return_when=asyncio.FIRST_COMPLETED)
                pending -= done
        finally:
            if not timer.done():
                timer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await timer

    # -- reporting --------------------------------------------------------------

    def counters(self) -> Dict[str, Tuple[int, int]]:
        """Per channel: (alerts sent, alerts failed)."""
        return {name: (lane.sent, lane.failed) for name, lane in self._lanes.items()}

    def suppressed(self) -> Dict[str, int]:
        """Per channel: alerts held back by the rate limiter (reported in summaries)."""
        return {name: lane.limiter.suppressed_total for name, lane in self._lanes.items()}

    @property
    def channel_names(self) -> List[str]:
        return list(self._lanes)


def build_alert_manager(config: Config, clock: Clock, redactor: Redactor) -> AlertManager:
    """The daemon's alert manager with every enabled channel (console when none)."""
    from sysops_agent.channels.registry import build_channels

    channels = build_channels(config, redactor, clock)
    return AlertManager(config.alerting, channels, clock, redactor=redactor)
