"""The alert manager: stages → route → lane stages → send (SPEC §6).

The pipeline is lists of :class:`~sysops_agent.alerting.stage.Stage` built
from the config by :mod:`sysops_agent.alerting.pipeline` (today: dedup before
routing; rate limit and group in each lane); this module only drives them and
owns the effects:

- :meth:`AlertManager.submit` (synchronous: it never waits) runs the stages,
  routes, and runs each target channel's lane stages. What comes out is
  queued for the lane's worker.
- Every channel has a *lane*: its stages, a queue of ready messages and one
  worker task that sends them with
  :func:`~sysops_agent.alerting.retry.send_with_retry`. A failing or hanging
  channel only ever holds up its own lane.
- :meth:`AlertManager.run` is the timer: it calls the stages with ``[]`` when
  one of them is due (a group's window passed, a rate-limit token returned).
- :meth:`AlertManager.close` flushes every stage, lets the lanes finish within
  ``timeout`` (clock time), counts what could not be delivered as failed, and
  closes channels.

The mention decision is made here once per message (:func:`route.wants_mention`)
and passed to the channel. All time comes from the :class:`Clock`
(``monotonic`` for windows and buckets, ``time`` for timestamps), so tests and
``replay`` run on virtual time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from typing import Deque, Dict, List, Optional, Sequence, Tuple

from sysops_agent.alerting.channel import Channel
from sysops_agent.alerting.config import PipelineConfig
from sysops_agent.alerting.dedup import DedupStage
from sysops_agent.alerting.group import messages
from sysops_agent.alerting.pipeline import (
    Lane,
    build_lane_stages,
    build_stages,
    next_due,
    run_stages,
)
from sysops_agent.alerting.ratelimit import RateLimitStage
from sysops_agent.alerting.retry import send_with_retry
from sysops_agent.alerting.route import route, wants_mention
from sysops_agent.alerting.stage import Stage
from sysops_agent.alerting.text import format_line
from sysops_agent.clock import Clock, race, wait_first
from sysops_agent.model import Alert
from sysops_agent.redact import Redactor

#: messages waiting in one lane before the oldest is given up (and counted failed)
MAX_QUEUED_BATCHES = 1000
#: the pipeline's per-attempt timeout is the channel's own timeout plus this
#: grace, so the channel's more precise error (e.g. httpx's) normally wins
TIMEOUT_GRACE_SECS = 1.0
#: shortest timer the run loop sets (guards against float rounding spins)
MIN_TIMER_SECS = 1e-3

#: one message: its alerts and whether it carries the channel's mention
Message = Tuple[List[Alert], bool]


class _Lane:
    """Everything the manager keeps for one channel."""

    def __init__(self, name: str, channel: Channel, stages: List[Stage]) -> None:
        self.name = name
        self.channel = channel
        self.stages = stages
        self.queue: Deque[Message] = deque()
        self.inflight: Optional[List[Alert]] = None
        self.event: Optional[asyncio.Event] = None
        self.worker: Optional[asyncio.Task[None]] = None
        self.closing = False
        self.sent = 0
        self.failed = 0
        self.reported_disabled = False
        #: clock times of the last delivery and the last failure (with its error), for status
        self.last_ok: Optional[float] = None
        self.last_error: Optional[Tuple[float, str]] = None


class AlertManager:
    def __init__(
        self,
        config: PipelineConfig,
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
        self.stages = build_stages(config)
        self._lanes: Dict[str, _Lane] = {}
        for channel in channels:
            name = channel.name
            n = 2
            while name in self._lanes:  # two channels of one kind get distinct names
                name, n = f"{channel.name}#{n}", n + 1
            lane = Lane(name, channel.supports_batch, channel.rate_limited, clock)
            self._lanes[name] = _Lane(name, channel, build_lane_stages(config, lane))
        self._min = {name: lane.channel.min_severity for name, lane in self._lanes.items()}
        self._wake: Optional[asyncio.Event] = None
        self._closed = False
        #: info alerts that were only logged
        self.logged_only = 0

    @property
    def deduplicated(self) -> int:
        """Alerts dropped by dedup."""
        return sum(s.dropped for s in self.stages if isinstance(s, DedupStage))

    # -- intake -----------------------------------------------------------------

    def submit(self, alert: Alert) -> None:
        """Run ``alert`` through the stages, routing and the lane stages of its channels."""
        if self._closed:
            self.log.error(
                "alert manager is closed: alert %s on %s not sent", alert.metric, alert.hostname
            )
            return
        now = self.clock.monotonic()
        for out in run_stages(self.stages, [alert], now):
            for a in out:
                self._route(a, now)
        self._poke()

    def _route(self, alert: Alert, now: float) -> None:
        decision = route(alert, self._min, self.config.warn_channels)
        if decision.log:
            self.log.info("alert: %s", self.redact(format_line(alert)))
            if not decision.channels:
                self.logged_only += 1
        for name in decision.channels:
            lane = self._lanes[name]
            self._advance(lane, [alert], now)

    def _advance(self, lane: _Lane, alerts: List[Alert], now: float, flush: bool = False) -> None:
        for out in run_stages(lane.stages, alerts, now, flush=flush):
            self._dispatch(lane, out)

    def _dispatch(self, lane: _Lane, alerts: List[Alert]) -> None:
        for batch in messages(alerts, lane.channel.supports_batch):
            if len(lane.queue) >= MAX_QUEUED_BATCHES:
                dropped, _ = lane.queue.popleft()
                lane.failed += len(dropped)
                self.log.error(
                    "%s: %d batches waiting; gave up the oldest (%d alerts)",
                    lane.name,
                    MAX_QUEUED_BATCHES,
                    len(dropped),
                )
            lane.queue.append((batch, wants_mention(batch)))
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

    def _tick(self, now: float, flush: bool = False) -> Optional[float]:
        """Let out what is due at ``now`` (everything with ``flush``); return the next deadline."""
        for out in run_stages(self.stages, [], now, flush=flush):
            for a in out:
                self._route(a, now)
        deadlines: List[float] = []
        for lane in self._lanes.values():
            self._advance(lane, [], now, flush)
            t = next_due(lane.stages)
            if t is not None:
                deadlines.append(t)
        t = next_due(self.stages)
        if t is not None:
            deadlines.append(t)
        return min(deadlines) if deadlines else None

    async def run(self) -> None:
        """Background loop: calls the stages when one is due. Returns once closed."""
        if self._wake is None:
            self._wake = asyncio.Event()
        wake = self._wake
        while not self._closed:
            wake.clear()
            now = self.clock.monotonic()
            deadline = self._tick(now)
            if self._closed:
                break
            wait = None if deadline is None else max(MIN_TIMER_SECS, deadline - now)
            await wait_first(self.clock, wake, wait)

    # -- sending ----------------------------------------------------------------

    async def _work(self, lane: _Lane) -> None:
        assert lane.event is not None
        while True:
            while not lane.queue:
                if lane.closing:
                    return
                lane.event.clear()
                await lane.event.wait()
            batch, mention = lane.queue.popleft()
            lane.inflight = batch
            try:
                await self._send(lane, batch, mention)
            finally:
                lane.inflight = None

    async def _send(self, lane: _Lane, batch: List[Alert], mention: bool) -> None:
        cfg = self.config
        disabled = lane.channel.disabled
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
            mention=mention,
        )
        if result.ok:
            lane.sent += len(batch)
            lane.last_ok = self.clock.time()
            if result.attempts > 1:
                self.log.info("%s: delivered after %d attempts", lane.name, result.attempts)
            return
        lane.failed += len(batch)
        lane.last_error = (self.clock.time(), self.redact(result.error or "unknown error"))
        self.log.error(
            "%s: %d alert(s) not delivered after %d attempt(s): %s",
            lane.name,
            len(batch),
            result.attempts,
            self.redact(result.error or "unknown error"),
        )
        if lane.channel.disabled:
            lane.reported_disabled = True

    # -- shutdown ---------------------------------------------------------------

    async def close(self, timeout: float = 10.0) -> None:
        """Send what is pending within ``timeout`` (clock) seconds, then close the channels."""
        if self._closed:
            return
        self._tick(self.clock.monotonic(), flush=True)
        workers = []
        for lane in self._lanes.values():
            lane.closing = True
            if lane.event is not None:
                lane.event.set()
            if lane.worker is not None and not lane.worker.done():
                workers.append(lane.worker)
        if workers:
            await race(self.clock, asyncio.wait(workers), timeout)
        for lane in self._lanes.values():
            if lane.worker is not None and not lane.worker.done():
                lost = sum(len(b) for b, _ in lane.queue) + len(lane.inflight or [])
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

    # -- reporting --------------------------------------------------------------

    def counters(self) -> Dict[str, Tuple[int, int]]:
        """Per channel: (alerts sent, alerts failed)."""
        return {name: (lane.sent, lane.failed) for name, lane in self._lanes.items()}

    def suppressed(self) -> Dict[str, int]:
        """Per channel: alerts held back by the rate limiter (reported in summaries)."""
        return {
            name: sum(s.suppressed_total for s in lane.stages if isinstance(s, RateLimitStage))
            for name, lane in self._lanes.items()
        }

    def lanes_status(self) -> List[Dict[str, object]]:
        """Per channel, for ``status``: counters, queue, last delivery and last error."""
        return [
            {
                "name": name,
                "sent": lane.sent,
                "failed": lane.failed,
                "queued": sum(len(b) for b, _ in lane.queue) + len(lane.inflight or []),
                "disabled": lane.channel.disabled or None,
                "last_ok": lane.last_ok,
                "last_error": lane.last_error,
            }
            for name, lane in self._lanes.items()
        ]

    def poke(self) -> None:
        """Re-run the stages now (a silence was added or expired)."""
        self._poke()

    @property
    def channel_names(self) -> List[str]:
        return list(self._lanes)
