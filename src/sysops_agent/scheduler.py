"""Runs each collector in its own task at its own interval (STYLE.md point 6).

Each run happens in a worker thread (a ``statvfs`` on a hung NFS mount must
not freeze the event loop) under a timeout. A run that is still going when
the next tick comes is not overlapped: the tick is skipped with a warning.
A run slower than half its interval is logged as slow. Exceptions are
caught per collector: one broken collector never stops the others. Each
collector's samples pass its :class:`~sysops_agent.cardinality.SeriesCap`
(``max_series``) on their way to the store.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time
from typing import Callable, Dict, List, Optional, Sequence

from sysops_agent.cardinality import SeriesCap
from sysops_agent.clock import Clock, wait_first
from sysops_agent.collectors.base import Collector
from sysops_agent.model import Sample, make_labels

log = logging.getLogger("sysops_agent.scheduler")

#: A run may take at most this fraction of its interval (and at least MIN_TIMEOUT s).
TIMEOUT_FRACTION = 0.8
MIN_TIMEOUT = 2.0


class CollectorScheduler:
    def __init__(
        self,
        collectors: Sequence[Collector],
        sink: Callable[[List[Sample]], None],
        clock: Clock,
        *,
        executor: Optional[concurrent.futures.Executor] = None,
        note_interval: Optional[Callable[[str, float], None]] = None,
        max_series: int = 0,
    ) -> None:
        self.collectors = list(collectors)
        #: each collector's series cap (``max_series``; 0: none)
        self.caps = {c.name: SeriesCap(c.name, max_series) for c in self.collectors}
        self._sink = sink
        self._clock = clock
        self._executor = executor or concurrent.futures.ThreadPoolExecutor(
            max_workers=min(4, max(1, len(self.collectors))), thread_name_prefix="collect"
        )
        self._own_executor = executor is None
        self._note_interval = note_interval
        self._known_metrics: set[str] = set()
        self._stop = asyncio.Event()
        self._tasks: List[asyncio.Task[None]] = []
        self._inflight: Dict[str, concurrent.futures.Future[List[Sample]]] = {}
        #: last run duration per collector, seconds
        self.durations: Dict[str, float] = {}
        #: failed or timed-out runs per collector
        self.failures: Dict[str, int] = {}
        #: clock time of the last run's start, and the last run's error (None after a good run)
        self.last_run: Dict[str, float] = {}
        self.last_error: Dict[str, Optional[str]] = {}
        #: set once every collector has run once (systemd's READY=1 waits for it)
        self.first_cycle = asyncio.Event()
        self._first_runs = 0

    def start(self) -> None:
        if not self.collectors:
            self.first_cycle.set()
        for c in self.collectors:
            self._tasks.append(asyncio.ensure_future(self._loop(c)))

    async def stop(self, timeout: float = 10.0) -> None:
        """Let each collector finish its current cycle, then end the loops."""
        self._stop.set()
        if self._tasks:
            _done, pending = await asyncio.wait(self._tasks, timeout=timeout)
            for t in pending:
                t.cancel()
        self._tasks = []
        if self._own_executor:
            self._executor.shutdown(wait=False)

    async def run_once(self, collector: Collector) -> None:
        """One guarded run of one collector (also used directly by tests)."""
        name = collector.name
        prev = self._inflight.get(name)
        if prev is not None and not prev.done():
            log.warning("collector %s: previous run still in progress; skipping this tick", name)
            return
        timeout = max(MIN_TIMEOUT, collector.interval * TIMEOUT_FRACTION)
        # The duration is a measurement of real cost, so it uses the real timer.
        started = time.perf_counter()
        self.last_run[name] = self._clock.time()
        fut = self._executor.submit(collector.collect, self._clock.time())
        self._inflight[name] = fut
        try:
            samples = await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(fut)), timeout)
        except asyncio.TimeoutError:
            self.failures[name] = self.failures.get(name, 0) + 1
            self.last_error[name] = f"no result after {timeout:.1f}s"
            log.warning(
                "collector %s: no result after %.1fs; skipping until it returns", name, timeout
            )
            return
        except Exception as e:  # one collector's bug must not stop the others
            self.failures[name] = self.failures.get(name, 0) + 1
            self.last_error[name] = str(e) or type(e).__name__
            log.error("collector %s failed: %s", name, e, exc_info=log.isEnabledFor(logging.DEBUG))
            return
        elapsed = time.perf_counter() - started
        self.durations[name] = elapsed
        self.last_error[name] = None
        if elapsed > collector.interval / 2:
            log.warning(
                "collector %s is slow: %.2fs for a %.0fs interval",
                name,
                elapsed,
                collector.interval,
            )
        if self._note_interval is not None:
            for s in samples:
                if s.metric not in self._known_metrics:
                    self._known_metrics.add(s.metric)
                    self._note_interval(s.metric, collector.interval)
        cap = self.caps.get(name)
        if cap is None:
            cap = self.caps[name] = SeriesCap(name, 0)
        samples = cap(samples)
        now = self._clock.time()
        labels = make_labels(collector=name)
        samples.append(Sample(now, "agent_collect_duration_seconds", elapsed, labels))
        if cap.dropped:
            samples.append(Sample(now, "agent_series_dropped_total", float(cap.dropped), labels))
        self._sink(samples)

    async def _loop(self, collector: Collector) -> None:
        next_run = self._clock.monotonic()
        first = True
        while not self._stop.is_set():
            await self.run_once(collector)
            if first:
                first = False
                self._first_runs += 1
                if self._first_runs == len(self.collectors):
                    self.first_cycle.set()
            next_run += collector.interval
            now = self._clock.monotonic()
            if next_run < now:  # fell behind: skip missed ticks instead of bursting
                next_run = now + collector.interval
            if await self._wait_stop(next_run - now):
                return

    async def _wait_stop(self, seconds: float) -> bool:
        """Sleep on the clock; True if stop was requested meanwhile."""
        return await wait_first(self._clock, self._stop, seconds)
