"""Runs the collectors at their intervals (STYLE.md point 6), one timer per interval.

Collectors with equal intervals share one task and one tick (issue 17: one
wake-up of the event loop and one batch of samples instead of one each),
and every interval's ticks lie on one grid of the monotonic clock, so the
10, 30 and 60 s ticks coincide. Each run happens in a worker thread (a ``statvfs`` on a hung NFS mount must
not freeze the event loop) under a timeout. A collector that can block (a
filesystem, a driver, another process's memory map, a subprocess: the
default) runs in a thread of its own; those that say ``may_block = False``
(they read only the kernel's own counters, such as ``/proc/stat``) run one
after the other in one thread job per tick, which costs one thread wake-up
and one hand-off to the loop instead of one each. A run that is still going when
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
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from sysops_agent.cardinality import SeriesCap
from sysops_agent.clock import Clock, until_next, wait_first
from sysops_agent.collectors.base import Collector
from sysops_agent.model import Sample, make_labels

log = logging.getLogger("sysops_agent.scheduler")

#: A run may take at most this fraction of its interval (and at least MIN_TIMEOUT s).
TIMEOUT_FRACTION = 0.8
MIN_TIMEOUT = 2.0

#: one collector's run in a worker job: its samples, or the exception it raised, and its duration
_Outcome = Tuple[List[Sample], Optional[BaseException], float]


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
        self._inflight: Dict[str, concurrent.futures.Future[List[_Outcome]]] = {}
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
        groups: Dict[float, List[Collector]] = {}
        for c in self.collectors:  # equal intervals: one timer, one tick
            groups.setdefault(c.interval, []).append(c)
        for group in groups.values():
            self._tasks.append(asyncio.ensure_future(self._loop(group)))

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
        await self.run_group([collector])

    async def run_group(self, collectors: Sequence[Collector]) -> None:
        """One guarded run of collectors that share an interval: one tick, one batch of samples.

        The collectors that cannot block run in one worker job together; each
        of the others in its own job. The jobs run at once and the tick waits
        for all of them (they share the interval, hence the timeout) and hands
        their samples on as one batch. A job that hangs holds its group's batch
        until the timeout, once: the ticks after it skip its collectors while
        it is still running.
        """
        ready: List[Collector] = []
        for collector in collectors:
            prev = self._inflight.get(collector.name)
            if prev is not None and not prev.done():
                log.warning(
                    "collector %s: previous run still in progress; skipping this tick",
                    collector.name,
                )
                continue
            ready.append(collector)
        if not ready:
            return
        shared = [c for c in ready if not may_block(c)]
        units = ([shared] if shared else []) + [[c] for c in ready if may_block(c)]
        runs: Dict[asyncio.Future[List[_Outcome]], List[Collector]] = {}
        now = self._clock.time()
        for unit in units:
            job = self._executor.submit(_run_unit, [c.collect for c in unit], now)
            for c in unit:
                self.last_run[c.name] = now
                self._inflight[c.name] = job
            runs[asyncio.wrap_future(job)] = unit
        timeout = max(MIN_TIMEOUT, max(c.interval for c in ready) * TIMEOUT_FRACTION)
        _done, late = await asyncio.wait(runs, timeout=timeout)
        batch: List[Sample] = []
        for fut, unit in runs.items():
            if fut in late:
                fut.add_done_callback(_retrieve)  # its error, if it ever returns, is not ours
                for collector in unit:
                    self._failed(collector.name, f"no result after {timeout:.1f}s")
                    log.warning(
                        "collector %s: no result after %.1fs; skipping until it returns",
                        collector.name,
                        timeout,
                    )
                continue
            failed = fut.exception()  # not an Exception (those are per collector): SystemExit …
            outcomes = fut.result() if failed is None else [([], failed, 0.0) for _ in unit]
            for collector, (samples, exc, elapsed) in zip(unit, outcomes):
                if exc is not None:  # one collector's bug must not stop the others
                    self._failed(collector.name, str(exc) or type(exc).__name__)
                    log.error(
                        "collector %s failed: %s",
                        collector.name,
                        exc,
                        exc_info=exc if log.isEnabledFor(logging.DEBUG) else None,
                    )
                    continue
                batch.extend(self._accept(collector, samples, elapsed))
        if batch:
            self._sink(batch)

    def _failed(self, name: str, why: str) -> None:
        self.failures[name] = self.failures.get(name, 0) + 1
        self.last_error[name] = why

    def _accept(self, collector: Collector, samples: List[Sample], elapsed: float) -> List[Sample]:
        """A good run's samples, through the series cap, with the run's duration."""
        name = collector.name
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
        return samples

    async def _loop(self, group: List[Collector]) -> None:
        """The collectors of one interval: at once on start, then on that interval's grid.

        The grid is the clock's monotonic time in whole intervals, so the
        groups (10, 30, 60 s …) and the daemon's other timers that use it
        (:func:`~sysops_agent.clock.until_next`) wake the event loop together;
        a run that overruns a grid point skips it (no burst of missed ticks),
        and so does one that started less than half an interval before it (the
        first, mostly: the rate collectors' next readings would span a moment).
        """
        interval = group[0].interval
        first = True
        while not self._stop.is_set():
            started = self._clock.monotonic()
            await self.run_group(group)
            if first:
                first = False
                self._first_runs += len(group)
                if self._first_runs == len(self.collectors):
                    self.first_cycle.set()
            wait = until_next(self._clock, interval)
            if self._clock.monotonic() + wait - started < interval / 2:
                wait += interval  # rates over less than half an interval are noise: next point
            if await self._wait_stop(wait):
                return

    async def _wait_stop(self, seconds: float) -> bool:
        """Sleep on the clock; True if stop was requested meanwhile."""
        return await wait_first(self._clock, self._stop, seconds)


def may_block(collector: Collector) -> bool:
    """Whether ``collector`` needs a worker thread of its own (``may_block``; True if unsaid)."""
    return bool(getattr(collector, "may_block", True))


def _run_unit(collects: List[Callable[[float], List[Sample]]], now: float) -> List[_Outcome]:
    """Each ``collect(now)`` in turn in the worker thread: what it returned or raised, and how
    long it took there (real time)."""
    out: List[_Outcome] = []
    for collect in collects:
        started = time.perf_counter()
        try:
            out.append((collect(now), None, time.perf_counter() - started))
        except Exception as exc:
            out.append(([], exc, time.perf_counter() - started))
    return out


def _retrieve(fut: asyncio.Future[Any]) -> None:
    """Mark a late run's outcome as seen (asyncio would log an error nobody waited for)."""
    if not fut.cancelled():
        fut.exception()
