"""The log watcher (SPEC §7): sources -> matcher -> event pipeline -> alerts and counters.

The sources are the entries of :data:`registry.SOURCES` (one module and one line
each, see :mod:`sysops_agent.logwatch.source`). Each enabled source (``/dev/kmsg``, the journal, syslog files) runs as its own
task; an exception in one is logged and that source alone is restarted after
a backoff. A ticker sends burst follow-ups, the ``kernel_*_total`` counters and
saves read positions: every 10 s, and every second while a burst window is
open or a counter changed (issue 17: no wake-ups that find nothing to do). :meth:`stop` stops the sources, sends pending follow-ups
and saves every position.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from typing import Callable, Dict, List, Optional

from sysops_agent.clock import Clock, until_next
from sysops_agent.fsutil import StrPath
from sysops_agent.logwatch.config import LogConfig, check_name, check_regex
from sysops_agent.logwatch.events import EventPipeline
from sysops_agent.logwatch.journal import JOURNALD_SOCKET
from sysops_agent.logwatch.kmsg import KmsgSource
from sysops_agent.logwatch.patterns import LIBRARY, Hit, Matcher, PatternSpec, compile_custom
from sysops_agent.logwatch.registry import SOURCES, section_for
from sysops_agent.logwatch.source import LogSource, SourceContext
from sysops_agent.model import Alert, Sample

log = logging.getLogger("sysops_agent.logwatch")

#: seconds between ticks (burst windows are checked this often)
TICK = 1.0
#: seconds between ticks while no burst window is open and no counter changed
IDLE_TICK = 10.0
SOURCE_RESTART_MAX = 60.0


def build_matcher(config: LogConfig) -> Matcher:
    """The library plus every valid custom pattern (invalid ones are config problems)."""
    custom: List[PatternSpec] = []
    for cp in config.custom_patterns:
        err = check_name(cp.name) or check_regex(cp.pattern)
        if err:
            log.warning("custom log pattern %r skipped: %s", cp.name, err)
            continue
        custom.append(compile_custom(cp))
    return Matcher(LIBRARY, custom)


class LogWatcher:
    def __init__(
        self,
        config: LogConfig,
        *,
        hostname: str,
        data_dir: StrPath,
        clock: Clock,
        syslog_paths: List[str],
        emit_alert: Callable[[Alert], None],
        emit_sample: Callable[[Sample], None],
        kmsg_path: str = "/dev/kmsg",
        journalctl: str = "journalctl",
        journald_socket: str = JOURNALD_SOCKET,
        boot_id_path: str = "/proc/sys/kernel/random/boot_id",
        own_pid: Optional[int] = None,
        journal_backoff: float = 1.0,
    ) -> None:
        self.config = config
        self.clock = clock
        self.data_dir = os.fspath(data_dir)
        self.matcher = build_matcher(config)
        self.pipeline = EventPipeline(
            hostname=hostname,
            clock=clock,
            emit_alert=emit_alert,
            emit_sample=emit_sample,
            burst_window=config.burst_window_secs,
            dedup_window=config.dedup_window_secs,
            max_line=config.max_line_length,
            own_pid=os.getpid() if own_pid is None else own_pid,
        )
        ctx = SourceContext(
            data_dir=self.data_dir,
            matcher=self.matcher,
            deliver=self._deliver,
            clock=clock,
            syslog_paths=list(syslog_paths),
            files_serve_kernel=self.files_serve_kernel,
            kmsg_path=kmsg_path,
            boot_id_path=boot_id_path,
            journalctl=journalctl,
            journald_socket=journald_socket,
            journal_backoff=journal_backoff,
        )
        self.sources: List[LogSource] = []
        for plugin in SOURCES:
            source = plugin.create(section_for(plugin, config), ctx)
            if source is not None:
                self.sources.append(source)
        self._tasks: List[asyncio.Task[None]] = []
        self._stopped: Optional[asyncio.Event] = None
        self._stopping = False
        #: the per-second ticker, running while the pipeline is busy (:meth:`_deliver`)
        self._busy: Optional[asyncio.Task[None]] = None

    def _deliver(self, source: str, hit: Hit, meta: Dict[str, str]) -> None:
        """An event into the pipeline; the per-second ticker starts when it made it busy."""
        self.pipeline.deliver(source, hit, meta)
        idle = self._busy is None or self._busy.done()
        if idle and self._tasks and not self._stopping and self.pipeline.busy():
            self._busy = asyncio.ensure_future(self._busy_ticker())

    def files_serve_kernel(self) -> bool:
        """Syslog files' ``kernel`` lines count only while kmsg (the proof) is not reading."""
        kmsg = self.source("kmsg")
        return not (isinstance(kmsg, KmsgSource) and kmsg.reading)

    @property
    def kmsg(self) -> Optional[KmsgSource]:
        kmsg = self.source("kmsg")
        return kmsg if isinstance(kmsg, KmsgSource) else None

    def source(self, name: str) -> Optional[LogSource]:
        return next((s for s in self.sources if s.name == name), None)

    async def run(self) -> None:
        """Run every source until :meth:`stop`."""
        self._stopped = asyncio.Event()
        if self._stopping:
            return
        names = ", ".join(s.name for s in self.sources) or "none"
        log.info("log watcher: sources %s; %d custom patterns", names, len(self.matcher.custom))
        self.pipeline.tick(all_counters=True)
        self._tasks = [asyncio.ensure_future(self._supervise(s)) for s in self.sources]
        self._tasks.append(asyncio.ensure_future(self._ticker()))
        try:
            await self._stopped.wait()
        finally:
            if not self._stopping:  # cancelled without stop(): leave nothing running
                self._stopping = True
                self._adopt_busy()
                for t in self._tasks:
                    t.cancel()
                self.save_state()
                for s in self.sources:
                    with contextlib.suppress(Exception):
                        s.close()

    async def _supervise(self, source: LogSource) -> None:
        backoff = 1.0
        while not self._stopping:
            try:
                await source.run()
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("log source %s failed; restarting in %g s", source.name, backoff)
                with contextlib.suppress(Exception):
                    source.close()
            await self.clock.sleep(backoff)
            backoff = min(backoff * 2, SOURCE_RESTART_MAX)

    async def _ticker(self) -> None:
        last_counters = self.clock.monotonic()
        last_save = last_counters
        cfg = self.config
        every_s = max(
            TICK, min(IDLE_TICK, cfg.state_save_interval_secs, cfg.counters_interval_secs)
        )
        while True:
            # On the clock's grid (with the files' polls and the collectors); the
            # seconds in between, while the pipeline is busy, are :meth:`_busy_ticker`'s.
            await self.clock.sleep(until_next(self.clock, every_s))
            now = self.clock.monotonic()
            every = now - last_counters >= self.config.counters_interval_secs
            if every:
                last_counters = now
            try:
                self.pipeline.tick(all_counters=every)
                if now - last_save >= self.config.state_save_interval_secs:
                    last_save = now
                    self.save_state()
            except Exception:
                log.exception("log watcher tick failed")

    def _adopt_busy(self) -> None:
        """The per-second ticker joins the tasks that stopping cancels."""
        if self._busy is not None:
            self._tasks.append(self._busy)
            self._busy = None

    async def _busy_ticker(self) -> None:
        """Tick every second while a burst window is open or a counter changed, then end."""
        while True:
            await self.clock.sleep(until_next(self.clock, TICK))
            try:
                self.pipeline.tick()
            except Exception:
                log.exception("log watcher tick failed")
            if not self.pipeline.busy():
                return

    def save_state(self) -> None:
        for s in self.sources:
            try:
                s.save_state()
            except Exception:
                log.exception("saving the position of log source %s failed", s.name)

    async def stop(self) -> None:
        """Stop the sources, send pending burst follow-ups, save every position."""
        self._stopping = True
        self._adopt_busy()
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self._tasks = []
        self.save_state()
        for s in self.sources:
            with contextlib.suppress(Exception):
                s.close()
        self.pipeline.tick(all_counters=True, force_flush=True)
        if self._stopped is not None:
            self._stopped.set()
