"""The alert manager: stages → route → lane stages → send (SPEC §6).

The pipeline is lists of :class:`~sysops_agent.alerting.stage.Stage` built
from the config by :mod:`sysops_agent.alerting.pipeline` (today: dedup before
routing; rate limit and group in each lane); this module only drives them and
owns the effects:

- :meth:`AlertManager.submit` (synchronous: it never waits) runs the stages,
  routes, and runs each target channel's lane stages. What comes out is
  queued for the lane's worker.
- Every channel has a *lane*: its stages and one worker task. What the lane
  stages let out is written to the :class:`~sysops_agent.alerting.outbox.Outbox`
  (one row per message) before its first attempt; the worker sends the lane's
  due rows oldest first and deletes a row only when the channel accepted it.
  A failed attempt defers its row (capped exponential backoff, or the
  platform's Retry-After for the whole lane) and the worker goes on with the
  lane's other rows; a row is given up only when older than
  ``outbox_max_age_secs`` or refused for good (a non-retryable error). A
  failing or hanging channel only ever holds up its own lane; a *disabled*
  one (a permanent error about the channel itself) keeps its rows,
  unattempted, until a reload, the hourly re-probe or a restart enables it.
- What a lane's group stage holds (a group window) is kept in the outbox's
  ``held`` table, written in the same transaction as the messages, so a
  SIGKILL inside the window loses nothing: :meth:`AlertManager.start_pending`
  queues an earlier run's held alerts first.
- :meth:`AlertManager.run` is the timer: it calls the stages with ``[]`` when
  one of them is due (a group's window passed, a rate-limit token returned).
- :meth:`AlertManager.close` flushes every stage, lets the lanes finish within
  ``timeout`` (clock time) and closes channels; what is not delivered stays
  in the outbox for the next start (:meth:`AlertManager.start_pending`, called
  by :meth:`AlertManager.run`, delivers it first).

The mention decision is made here once per message (:func:`route.wants_mention`)
and passed to the channel. All time comes from the :class:`Clock`
(``monotonic`` for windows and buckets, ``time`` for timestamps), so tests and
``replay`` run on virtual time.

Size: the manager owns each lane's whole delivery loop (stages, outbox,
retries with backoff, Retry-After, re-probes, shutdown budget); the decisions
are in the stage modules and ``outbox.py``, what is left is their sequencing,
which reads best in one place.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Dict, List, Optional, Sequence, Set, Tuple

from sysops_agent.alerting.channel import Channel, ChannelError
from sysops_agent.alerting.config import PipelineConfig
from sysops_agent.alerting.dedup import DedupStage
from sysops_agent.alerting.group import GroupStage, messages
from sysops_agent.alerting.outbox import Entry, Outbox
from sysops_agent.alerting.pipeline import (
    Lane,
    build_lane_stages,
    build_stages,
    next_due,
    run_stages,
)
from sysops_agent.alerting.ratelimit import RateLimitStage
from sysops_agent.alerting.retry import call_with_timeout, outbox_retry_delay
from sysops_agent.alerting.route import route, wants_mention
from sysops_agent.alerting.stage import Stage
from sysops_agent.alerting.text import format_line
from sysops_agent.clock import Clock, race, wait_first
from sysops_agent.model import Alert, iso_utc
from sysops_agent.redact import Redactor

#: the pipeline's per-attempt timeout is the channel's own timeout plus this
#: grace, so the channel's more precise error (e.g. the HTTP client's) normally wins
TIMEOUT_GRACE_SECS = 1.0
#: the lane pauses this long after the outbox itself failed (the row stays and is retried)
OUTBOX_ERROR_PAUSE_SECS = 5.0
#: a channel disabled for a permanent error (HTTP 404, …) is tried again after this long
REPROBE_SECS = 3600.0
#: shortest timer the run loop sets (guards against float rounding spins)
MIN_TIMER_SECS = 1e-3


class _Lane:
    """Everything the manager keeps for one channel."""

    def __init__(self, name: str, channel: Channel, stages: List[Stage]) -> None:
        self.name = name
        self.channel = channel
        self.stages = stages
        self.inflight: Optional[List[Alert]] = None
        #: no attempt before this wall time (the platform's Retry-After)
        self.not_before = 0.0
        #: wall time of the first failure of the current outage (None while delivering)
        self.failing_since: Optional[float] = None
        #: monotonic time the manager first saw the channel disabled
        self.disabled_seen: Optional[float] = None
        self.event: Optional[asyncio.Event] = None
        self.worker: Optional[asyncio.Task[None]] = None
        self.closing = False
        self.sent = 0
        self.failed = 0
        self.reported_disabled = False
        #: clock times of the last delivery and the last failure (with its error), for status
        self.last_ok: Optional[float] = None
        self.last_error: Optional[Tuple[float, str]] = None
        #: ids of the alerts the lane's group stages hold that are in the outbox's held table
        self.held: Set[str] = set()
        self.groups = [s for s in stages if isinstance(s, GroupStage)]

    def holding(self) -> Dict[str, Alert]:
        return {a.id: a for g in self.groups for a in g.holding()}


class AlertManager:
    def __init__(
        self,
        config: PipelineConfig,
        channels: Sequence[Channel],
        clock: Clock,
        *,
        logger: Optional[logging.Logger] = None,
        redactor: Optional[Redactor] = None,
        outbox: Optional[Outbox] = None,
    ) -> None:
        self.config = config
        #: every message until its channel accepted it (in memory when not given)
        self.outbox = (
            outbox
            if outbox is not None
            else Outbox(
                max_count=config.outbox_max_notifications,
                max_bytes=config.outbox_max_bytes,
                max_age_secs=config.outbox_max_age_secs,
            )
        )
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
        #: outbox drops already reported by :meth:`health`
        self._dropped_reported = 0

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
        outs = run_stages(lane.stages, alerts, now, flush=flush)
        holding = lane.holding()
        if outs or holding.keys() != lane.held:
            self._dispatch(lane, outs, holding)

    def _dispatch(self, lane: _Lane, outs: List[List[Alert]], holding: Dict[str, Alert]) -> None:
        """Write each message to the outbox (before its first attempt), and what the lane's
        group stages hold to its held table, in one transaction; wake the lane."""
        batches = [b for out in outs for b in messages(out, lane.channel.supports_batch)]
        alerts = [a for b in batches for a in b]
        release = [i for i in lane.held if i not in holding]
        hold = [a for i, a in holding.items() if i not in lane.held]
        try:
            self.outbox.commit(lane.name, batches, self.clock.time(), hold=hold, release=release)
            lane.held = set(holding)
        except Exception as exc:  # a full disk must not lose the alert silently
            lane.failed += len(alerts)
            self.log.error(
                "%s: cannot write %d alert(s) to the outbox: %s", lane.name, len(alerts), exc
            )
        if batches:
            self._ensure_worker(lane)

    def start_pending(self) -> None:
        """Start the lanes that have messages left from an earlier run (delivered first).

        Alerts an earlier run held in a lane's group window (killed inside it) become
        messages first, with the time they were held. Messages for a channel that is no
        longer configured are dropped (and said so).
        """
        self._queue_earlier_held()
        for name in self.outbox.lanes():
            lane = self._lanes.get(name)
            if lane is not None:
                self._ensure_worker(lane)
                continue
            n = self.outbox.drop_lane(name)
            self.log.warning(
                "outbox: %d notification(s) for channel %s dropped: it is no longer configured",
                n,
                name,
            )

    def _queue_earlier_held(self) -> None:
        by_lane: Dict[str, List[Tuple[float, str, Alert]]] = {}
        for name, created, run, alert in self.outbox.take_held():
            by_lane.setdefault(name, []).append((created, run, alert))
        for name, items in by_lane.items():
            lane = self._lanes.get(name)
            batch = lane.channel.supports_batch if lane is not None else False
            when = {a.id: (created, run) for created, run, a in items}
            batches = [
                (min(when[a.id][0] for a in b), when[b[0].id][1], b)
                for b in messages([a for _, _, a in items], batch)
            ]
            self.outbox.queue_earlier(name, batches)
            self.log.info(
                "%s: %d alert(s) held in a group window when the agent stopped: queued",
                name,
                len(items),
            )

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
            if lane.channel.disabled:
                if lane.disabled_seen is None:
                    lane.disabled_seen = now
                elif now - lane.disabled_seen >= REPROBE_SECS:
                    self._reenable(lane, f"re-probing after {REPROBE_SECS:g} s")
                if lane.disabled_seen is not None:
                    deadlines.append(lane.disabled_seen + REPROBE_SECS)
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
        self.start_pending()
        while not self._closed:
            wake.clear()
            now = self.clock.monotonic()
            deadline = self._tick(now)
            if self._closed:
                break
            wait = None if deadline is None else max(MIN_TIMER_SECS, deadline - now)
            await wait_first(self.clock, wake, wait)

    def reenable(self, why: str) -> None:
        """Give every channel disabled for a permanent error another chance (a reload)."""
        for lane in self._lanes.values():
            if lane.channel.disabled:
                self._reenable(lane, why)

    def _reenable(self, lane: _Lane, why: str) -> None:
        self.log.info(
            "%s: enabled again (%s); it was disabled: %s",
            lane.name,
            why,
            self.redact(str(lane.channel.disabled)),
        )
        lane.channel.disabled = None
        lane.reported_disabled = False
        lane.disabled_seen = None
        if self.outbox.pending(lane.name):
            self._ensure_worker(lane)  # what waited is sent now

    # -- sending ----------------------------------------------------------------

    async def _work(self, lane: _Lane) -> None:
        """Send the lane's due messages from the outbox, oldest first, until closed."""
        assert lane.event is not None
        outbox = self.outbox
        while True:
            now = self.clock.time()
            disabled = lane.channel.disabled is not None
            ready = now >= lane.not_before and not disabled
            entries = outbox.due(lane.name, now) if ready else []
            if not entries:
                if lane.closing:
                    return
                lane.event.clear()
                # a disabled channel's messages wait, unattempted, until it is enabled again
                wake = None if disabled else outbox.next_at(lane.name)
                if wake is not None:
                    wake = max(wake, lane.not_before)
                wait = None if wake is None else max(MIN_TIMER_SECS, wake - now)
                await wait_first(self.clock, lane.event, wait)
                continue
            for entry in entries:
                if self.clock.time() < lane.not_before:
                    break  # the platform asked the whole channel to wait (Retry-After)
                try:
                    await self._attempt(lane, entry)
                except Exception as exc:  # the outbox itself failed (disk full, …)
                    self.log.error("%s: outbox error: %s", lane.name, exc)
                    await self.clock.sleep(OUTBOX_ERROR_PAUSE_SECS)
                    break

    async def _attempt(self, lane: _Lane, entry: Entry) -> None:
        """One attempt at one message: delivered, refused for good, or deferred.

        Long on purpose: one delivery attempt and every outcome of it (accepted, refused for
        good, retryable with backoff or Retry-After, outbox error) in the order they are
        decided.
        """
        cfg = self.config
        batch = entry.outgoing(self.clock.time())
        if lane.channel.disabled:
            self._report_disabled(lane)
            return  # kept: sent when the channel is enabled again
        lane.inflight = batch
        try:
            await call_with_timeout(
                self.clock,
                lambda: lane.channel.send(batch, mention=wants_mention(batch)),
                cfg.send_timeout_secs + TIMEOUT_GRACE_SECS,
            )
            error: Optional[ChannelError] = None
        except ChannelError as exc:
            error = exc
        except Exception as exc:  # a bug in a channel must not kill the lane
            error = ChannelError(f"{type(exc).__name__}: {exc}", retryable=False)
        finally:
            lane.inflight = None
        attempts = entry.attempts + 1
        if error is None:
            self.outbox.done(entry.seq)
            lane.sent += len(batch)
            lane.last_ok = self.clock.time()
            if lane.failing_since is not None:
                lane.failing_since = None
                self.log.info("%s: delivering again", lane.name)
            if attempts > 1 or entry.earlier_run:
                self.log.info(
                    "%s: delivered %d alert(s) queued %s after %d attempt(s)",
                    lane.name,
                    len(batch),
                    iso_utc(entry.created),
                    attempts,
                )
            return
        message = self.redact(str(error))
        lane.last_error = (self.clock.time(), message)
        if not error.retryable and lane.channel.disabled:
            # the channel, not this message, is refused (a deleted webhook): keep it
            self.outbox.defer(entry.seq, self.clock.time())
            self._report_disabled(lane, message)
            self._poke()  # the run loop times the re-probe
            return
        if not error.retryable:
            self.outbox.done(entry.seq)
            lane.failed += len(batch)
            self.log.error(
                "%s: %d alert(s) refused after %d attempt(s): %s",
                lane.name,
                len(batch),
                attempts,
                message,
            )
            return
        now = self.clock.time()
        delay = outbox_retry_delay(
            attempts, error, cfg.retry_base_delay_secs, cfg.retry_max_delay_secs
        )
        if error.retry_after is not None:
            lane.not_before = now + delay
        self.outbox.defer(entry.seq, now + delay)
        if lane.failing_since is None:
            lane.failing_since = now
            self.log.warning(
                "%s: %d alert(s) not delivered (%s); kept in the outbox, next try in %g s",
                lane.name,
                len(batch),
                message,
                delay,
            )

    def _report_disabled(self, lane: _Lane, why: Optional[str] = None) -> None:
        if lane.reported_disabled:
            return
        lane.reported_disabled = True
        self.log.error(
            "%s is disabled (%s): its notifications stay in the outbox until it is enabled"
            " again (a reload, the hourly re-probe or a restart)",
            lane.name,
            why or self.redact(str(lane.channel.disabled)),
        )

    # -- shutdown ---------------------------------------------------------------

    async def close(self, timeout: float = 10.0) -> None:
        """Send what is due within ``timeout`` (clock) seconds, then close the channels.

        What is still undelivered then stays in the outbox: delivered at the next
        start when the outbox is on disk, counted as failed when it is in memory.
        """
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
                lane.worker.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await lane.worker
            left = self.outbox.pending(lane.name)
            if not left:
                continue
            if self.outbox.durable:
                self.log.warning(
                    "%s: %d notification(s) not delivered yet: kept in the outbox for the next start",
                    lane.name,
                    left,
                )
            else:
                lane.failed += self.outbox.alerts_pending(lane.name)
                self.log.error(
                    "%s: %d notification(s) not delivered within the %g s shutdown limit",
                    lane.name,
                    left,
                    timeout,
                )
        for lane in self._lanes.values():
            try:
                await lane.channel.aclose()
            except Exception as exc:
                self.log.warning("%s: close failed: %s", lane.name, self.redact(str(exc)))
        self.outbox.close()
        self._closed = True
        self._poke()

    # -- reporting --------------------------------------------------------------

    def counters(self) -> Dict[str, Tuple[int, int]]:
        """Per channel: (alerts sent, alerts failed for good)."""
        return {name: (lane.sent, lane.failed) for name, lane in self._lanes.items()}

    def health(self) -> Optional[str]:
        """What is wrong with delivery right now (None when every channel delivers)."""
        problems: List[str] = []
        for lane in self._lanes.values():
            if lane.channel.disabled:
                problems.append(f"{lane.name} disabled ({self.redact(str(lane.channel.disabled))})")
            elif lane.failing_since is not None:
                problems.append(f"{lane.name} failing since {iso_utc(lane.failing_since)}")
        dropped = self.outbox.dropped - self._dropped_reported
        self._dropped_reported = self.outbox.dropped
        if dropped:
            problems.append(f"outbox full: {dropped} notification(s) dropped since the last check")
        return "; ".join(problems) or None

    def pending(self) -> Dict[str, int]:
        """Per channel: messages waiting in the outbox (0 once closed)."""
        if self._closed:
            return {name: 0 for name in self._lanes}
        return {name: self.outbox.pending(name) for name in self._lanes}

    def suppressed(self) -> Dict[str, int]:
        """Per channel: alerts held back by the rate limiter (reported in summaries)."""
        return {
            name: sum(s.suppressed_total for s in lane.stages if isinstance(s, RateLimitStage))
            for name, lane in self._lanes.items()
        }

    def lanes_status(self) -> List[Dict[str, object]]:
        """Per channel, for ``status``: counters, outbox, last delivery and last error."""
        return [
            {
                "name": name,
                "sent": lane.sent,
                "failed": lane.failed,
                "queued": self.outbox.pending(name),
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

    @property
    def channels(self) -> List[Channel]:
        return [lane.channel for lane in self._lanes.values()]
