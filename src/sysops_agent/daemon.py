"""Wiring, signals and ordered shutdown of the agent (SPEC §2, §11).

Start-up order: storage → alert manager → analyzers → collectors → log
analyzer → SQLite history → Prometheus exporter → self-metrics. Shutdown is
the reverse, each step protected and bounded in time (STYLE.md point 11):
collectors finish their current cycle, the log watcher saves its cursors,
the analyzers take a last look, pending alerts are delivered while the budget
lasts (what is not delivered stays in the outbox for the next start), SQLite
is flushed and closed, the PID file is removed, and the process exits 0 —
all within :data:`SHUTDOWN_BUDGET_SECS` (10 s) of the signal.

SIGHUP re-reads the configuration: if it is valid it is applied section by
section (only the parts whose configuration changed are rebuilt, so
analyzer state and alert history survive a reload that did not touch them);
otherwise the old configuration stays in force and a warning is logged.

Size: the daemon is wiring only, but there are many parts to wire: each has a
start, a stop within the shutdown budget and a reload rule (collectors,
analyzers with their state file, alert manager with its outbox, log watcher,
SQLite, exporter, remote write, heartbeat, control socket, systemd), plus the
five loops; each method is one part's start, stop or loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from typing import TYPE_CHECKING, Any, Callable, List, Optional

from sysops_agent import alertstate
from sysops_agent.agent_logging import setup_logging
from sysops_agent.analysis import AnalysisTick
from sysops_agent.analyzers.registry import build_analyzers
from sysops_agent.clock import Clock, SystemClock, until_next
from sysops_agent.collectors.registry import build_collectors
from sysops_agent.config import Config, LoadResult, Overrides, load_config, resolve_hostname
from sysops_agent.model import Alert, Sample, Severity
from sysops_agent.pidfile import PidFile
from sysops_agent.procfs import ProcFS
from sysops_agent.queues import ALERT_QUEUE_CAPACITY, SAMPLE_QUEUE_CAPACITY, DropOldestQueue
from sysops_agent.redact import Redactor
from sysops_agent.scheduler import CollectorScheduler
from sysops_agent.sdnotify import SystemdService
from sysops_agent.selfmetrics import SELF_METRICS_INTERVAL, self_samples
from sysops_agent.storage.store import Store
from sysops_agent.throttle import ThrottledWarnings

if TYPE_CHECKING:
    from sysops_agent.alerting.manager import AlertManager
    from sysops_agent.channels.heartbeat import Heartbeat
    from sysops_agent.control_api import Operator
    from sysops_agent.exporters.prometheus import PrometheusExporter
    from sysops_agent.exporters.remote_write import RemoteWriter
    from sysops_agent.logwatch.watcher import LogWatcher
    from sysops_agent.storage.sqlite_history import SqliteHistory

log = logging.getLogger("sysops_agent.daemon")

#: SIGTERM: pending alerts get at most this long to go out
ALERT_FLUSH_TIMEOUT = 10.0
#: SIGTERM to exit, in total, measured from the signal (SPEC §11); every step
#: of the shutdown gets what is left of it
SHUTDOWN_BUDGET_SECS = 10.0
#: kept back from the alert manager for the steps after it (SQLite, PID file, exit)
SHUTDOWN_RESERVE_SECS = 2.0
#: series of unknown collection interval without a new sample for this long are forgotten
STALE_SERIES_SECS = 3600.0
#: a series (process, disk, mount, interface) missing for this many of its collection
#: intervals is gone: forgotten, and the analyzers resolve its alerts
GONE_INTERVALS = 3
#: the analysis pass and the SQLite flush run this long after the collectors' grid points
#: (clock.until_next), when the samples of that tick are in the store
ANALYSIS_LAG_SECS = 1.0


class Daemon:
    def __init__(
        self,
        loaded: LoadResult,
        config_path: Optional[str],
        clock: Optional[Clock] = None,
        overrides: Optional[Overrides] = None,
    ) -> None:
        self.config_path = config_path
        #: command-line settings re-applied on every reload (``--procfs``)
        self.overrides = overrides or Overrides()
        self.config: Config = loaded.config
        self.clock: Clock = clock or SystemClock()
        self.redactor = Redactor(loaded.secrets.values())
        self.hostname = resolve_hostname(self.config)
        self.store = Store(max_samples=self.config.storage.ring_buffer_samples)
        #: the daemon's repeated warnings (refused samples): one line per 10 minutes per kind
        self.warnings = ThrottledWarnings(log, monotonic=self.clock.monotonic)
        self.samples: DropOldestQueue[Sample] = DropOldestQueue(
            SAMPLE_QUEUE_CAPACITY, monotonic=self.clock.monotonic, what="samples"
        )
        self.alerts: DropOldestQueue[Alert] = DropOldestQueue(
            ALERT_QUEUE_CAPACITY, monotonic=self.clock.monotonic, what="alerts"
        )
        self.scheduler: Optional[CollectorScheduler] = None
        self.analysis = AnalysisTick(())
        self.manager: Optional[AlertManager] = None
        self.heartbeat: Optional[Heartbeat] = None
        self.log_watcher: Optional[LogWatcher] = None
        self.sqlite: Optional[SqliteHistory] = None
        self.exporter: Optional[PrometheusExporter] = None
        self.remote_writer: Optional[RemoteWriter] = None
        self.pidfile: Optional[PidFile] = None
        self.operator: Optional[Operator] = None  # the control socket and the silences
        self._stopping = asyncio.Event()
        #: monotonic time of the first stop request (the shutdown budget starts there)
        self._stop_requested_at: Optional[float] = None
        #: monotonic start time while restored alerts wait for a confirming sample
        self._restored_since: Optional[float] = None
        self._state_saved_at = 0.0
        #: the alert state file's content as last written (an unchanged state is not rewritten)
        self._state_written: Optional[str] = None
        #: samples taken from the queue into the store, and their count at the last analysis pass
        self._received = 0
        self._analyzed = -1
        #: alert-queue drops already reported by the heartbeat
        self._dropped_reported = 0
        self._reload_requested = asyncio.Event()
        self._tasks: dict[str, asyncio.Task[Any]] = {}
        self._manager_task: Optional[asyncio.Task[None]] = None
        self._log_task: Optional[asyncio.Task[None]] = None
        self.systemd = SystemdService.from_environ(self.clock)  # no-op without NOTIFY_SOCKET

    # ------------------------------------------------------------------ sinks
    def _put_samples(self, samples: List[Sample]) -> None:
        self.samples.put_many(samples)

    def _put_sample(self, sample: Sample) -> None:
        self.samples.put(sample)

    def _put_alert(self, alert: Alert) -> None:
        self.systemd.observe(alert)  # STATUS= shows what fires
        self.alerts.put(alert)

    # ------------------------------------------------------------- components
    def _procfs(self) -> ProcFS:
        return ProcFS(self.config.agent.proc_root, self.config.agent.sys_root)

    def _start_collectors(self) -> None:
        collectors = build_collectors(self._procfs(), self.config.collector)
        self.scheduler = CollectorScheduler(
            collectors,
            self._put_samples,
            self.clock,
            note_interval=self.store.note_interval,
            max_series=self.config.storage.max_series_per_collector,
        )
        self.scheduler.start()
        log.info(
            "collectors: %s", ", ".join(f"{c.name}/{c.interval:g}s" for c in collectors) or "none"
        )

    def _start_analyzers(self) -> None:
        self.analysis = AnalysisTick(build_analyzers(self.config, self.hostname))
        log.info("analyzers: %s", ", ".join(self.analysis.names) or "none")
        if self.config.storage.sqlite:  # issue 14: statistics rebuilt from the history
            from sysops_agent.analyzers.anomaly import warm_start
            from sysops_agent.storage.config import sqlite_db_path

            db = sqlite_db_path(self.config.storage, self._data_dir())
            warm_start(self.analysis.analyzers, db, self.store, self.clock.time())
        restored = alertstate.restore(self._state_path(), self.analysis.analyzers)
        if restored:
            self._restored_since = self.clock.monotonic()
            log.info("%d firing alert(s) restored from %s", restored, self._state_path())
            if self.operator is not None:  # status' firing table, repeats and acks
                firing = alertstate.firing_identities(self.analysis.analyzers)
                self.operator.restore_pipeline(
                    alertstate.load_pipeline(self._state_path()), firing.__contains__
                )

    def _state_path(self) -> str:
        return alertstate.state_path(self._data_dir())

    def save_alert_state(self) -> None:
        """Save the firing alerts; first hand the alert queue to the manager, so the file
        never says "notified" of an alert that is not yet in the (durable) outbox."""
        self._state_saved_at = self.clock.monotonic()
        for alert in self.alerts.drain():
            self._submit_now(alert)
        pipeline = self.operator.pipeline_state() if self.operator is not None else None
        self._state_written = alertstate.save(
            self._state_path(), self.analysis.analyzers, pipeline, unless=self._state_written
        )

    def _resolve_unconfirmed(self) -> None:
        """Resolve restored alerts that no sample confirmed within the grace time."""
        if self._restored_since is None:
            return
        collectors = self.scheduler.collectors if self.scheduler is not None else []
        interval = max((c.interval for c in collectors), default=60.0)
        if self.clock.monotonic() - self._restored_since < alertstate.grace_secs(interval):
            return
        self._restored_since = None
        self.alerts.put_many(
            alertstate.resolve_unconfirmed(
                self.analysis.analyzers, self.store, self.hostname, self.clock.time()
            )
        )

    def _reload_analyzers(self, old: Config, new: Config) -> None:
        """Keep the analyzers whose configuration did not change; hand over or resolve the rest."""
        from sysops_agent.analyzers.registry import rebuild_analyzers

        analyzers, alerts = rebuild_analyzers(
            old, new, self.hostname, self.analysis.analyzers, self.clock.time()
        )
        self.analysis = AnalysisTick(analyzers)
        self.alerts.put_many(alerts)
        log.info("analyzers: %s", ", ".join(self.analysis.names) or "none")

    def _start_manager(self) -> None:
        from sysops_agent.channels.alertmanager import AlertmanagerChannel
        from sysops_agent.channels.registry import build_alert_manager

        self.manager = build_alert_manager(
            self.config.alerting,
            self.clock,
            self.redactor,
            self.config.agent.labels,
            self._data_dir(),
        )
        if self.operator is not None:
            self.operator.attach(self.manager)
        self._manager_task = asyncio.ensure_future(self.manager.run())
        for channel in self.manager.channels:
            if isinstance(channel, AlertmanagerChannel) and channel.config.watchdog:
                channel.start_watchdog(self.hostname)

    def health(self) -> Optional[str]:
        """What the heartbeat reports as degraded (None when all is well)."""
        problems = []
        if self.manager is not None:
            problem = self.manager.health()
            if problem:
                problems.append(problem)
        dropped = self.alerts.dropped - self._dropped_reported
        self._dropped_reported = self.alerts.dropped
        if dropped:
            problems.append(f"{dropped} alert(s) dropped by the alert queue since the last ping")
        return "; ".join(problems) or None

    def _start_heartbeat(self) -> None:
        cfg = self.config.alerting.heartbeat
        if not cfg.url:
            return
        from sysops_agent.channels.heartbeat import Heartbeat

        self.heartbeat = Heartbeat(cfg, self.clock, self.health, redactor=self.redactor)
        self._spawn("heartbeat", self.heartbeat.run())
        log.info("heartbeat: every %g s (%s style)", cfg.interval_secs, cfg.style)

    async def _stop_heartbeat(self) -> None:
        task = self._tasks.pop("heartbeat", None)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self.heartbeat is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.heartbeat.aclose(), 1.0)
            self.heartbeat = None

    def _stopping_notice(self) -> None:
        if not self.config.alerting.notify_on_stop or self.manager is None:
            return
        self.manager.submit(
            Alert(
                timestamp=self.clock.time(),
                hostname=self.hostname,
                severity=Severity.INFO,
                metric="agent_up",
                value=0.0,
                threshold=0.0,
                message=f"sysops-agent on {self.hostname} stopping (pid {os.getpid()})",
                analyzer="agent",
            )
        )

    def _data_dir(self) -> str:
        return self.config.agent.data_dir

    def _start_log_watcher(self) -> None:
        cfg = self.config.collector.log
        if not cfg.enabled:
            return
        from sysops_agent.logwatch.watcher import LogWatcher
        from sysops_agent.osinfo import default_syslog_paths, detect_distro

        distro = detect_distro(self.config.agent.etc_root)
        self.log_watcher = LogWatcher(
            cfg,
            hostname=self.hostname,
            data_dir=self._data_dir(),
            clock=self.clock,
            syslog_paths=default_syslog_paths(distro),
            emit_alert=self._put_alert,
            emit_sample=self._put_sample,
        )
        self._log_task = asyncio.ensure_future(self.log_watcher.run())

    async def _start_sqlite(self) -> None:
        st = self.config.storage
        if not st.sqlite:
            return
        from sysops_agent.storage.sqlite_history import SqliteHistory

        self.sqlite = SqliteHistory.from_config(st, self._data_dir(), clock=self.clock)
        await self.sqlite.open()

    def _start_exporter(self) -> None:
        if not self.config.prometheus.enabled:
            return
        from sysops_agent.exporters.counters import KernelCounters
        from sysops_agent.exporters.prometheus import PrometheusExporter

        counters = KernelCounters(self._procfs(), self.config.collector)
        exporter = PrometheusExporter(
            self.config.prometheus,
            self.store,
            hostname=self.hostname,
            counters=counters.families,
            labels=self.config.agent.labels,
        )
        try:
            exporter.start()
        except (ValueError, OSError) as e:
            log.error("prometheus exporter not started: %s", e)
            return
        self.exporter = exporter

    def _optional(self, what: str, start: Callable[[], None]) -> None:
        try:
            start()
        except Exception as e:
            log.error("%s not started: %s", what, e, exc_info=log.isEnabledFor(logging.DEBUG))

    # ------------------------------------------------------------------ loops
    async def _storage_loop(self) -> None:
        store = self.store
        while True:
            await self.samples.wait()
            batch = self.samples.drain()
            self._received += len(batch)
            for s in batch:
                if not store.append(s):
                    self.warnings.warning(
                        "rejected",
                        "refused an impossible sample: %s (counted in agent_samples_rejected_total)",
                        store.last_rejected,
                    )

    async def _analyzer_loop(self) -> None:
        while True:
            interval = self.config.analyzer.interval_secs
            lag = min(ANALYSIS_LAG_SECS, interval / 2)
            await self.clock.sleep(until_next(self.clock, interval, lag))
            self.run_analyzers(only_if_new=True)

    def run_analyzers(self, only_if_new: bool = False) -> None:
        """One analysis pass at now; ``only_if_new``: none when no sample arrived since the last.

        A series forgotten as stale counts as new: the analyzers resolve its alerts.
        """
        now = self.clock.time()
        dropped = self.store.drop_stale(now, STALE_SERIES_SECS, GONE_INTERVALS)
        if not only_if_new or dropped or self._received != self._analyzed:
            self._analyzed = self._received
            for alert in self.analysis(self.store, now):
                self._put_alert(alert)
        self._resolve_unconfirmed()

    async def _alert_loop(self) -> None:
        while True:
            await self.alerts.wait()
            for alert in self.alerts.drain():
                await self._submit(alert)

    async def _submit(self, alert: Alert) -> None:
        self._submit_now(alert)

    def _submit_now(self, alert: Alert) -> None:
        if self.manager is None:
            return
        try:
            self.manager.submit(alert)
        except Exception:
            log.exception("alert manager rejected an alert for %s", alert.metric)

    async def _sqlite_loop(self) -> None:
        while True:
            interval = self.config.storage.flush_interval_secs
            await self.clock.sleep(
                until_next(self.clock, interval, min(ANALYSIS_LAG_SECS, interval / 2))
            )
            if self.sqlite is not None:
                await self.sqlite.flush(self.store, self.clock.time())

    async def _housekeeping_loop(self) -> None:
        while True:
            self.record_self_metrics()
            self.alerts.report()  # drops not said yet (at most one line per 10 minutes)
            if self.clock.monotonic() - self._state_saved_at >= alertstate.SAVE_INTERVAL_SECS:
                self.save_alert_state()
            every = SELF_METRICS_INTERVAL
            await self.clock.sleep(until_next(self.clock, every, at_least=every / 2))

    def record_self_metrics(self) -> None:
        self.samples.put_many(
            self_samples(
                self.clock.time(),
                samples_dropped=self.samples.dropped,
                alerts_dropped=self.alerts.dropped,
                samples_rejected=self.store.rejected,
                manager=self.manager,
                sqlite=self.sqlite,
                store=self.store,
            )
        )

    def _spawn(self, name: str, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        task.add_done_callback(lambda t: self._task_done(name, t))
        self._tasks[name] = task

    def _task_done(self, name: str, task: asyncio.Task[Any]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            log.error("task %s died: %r", name, exc)

    # -------------------------------------------------------------- lifecycle
    def request_stop(self) -> None:
        if not self._stopping.is_set():
            self._stop_requested_at = self.clock.monotonic()
            log.info("stopping (signal received)")
        self._stopping.set()

    def _budget_left(self, reserve: float = 0.0) -> float:
        """Seconds of the shutdown budget left (minus ``reserve``), never below zero."""
        start = self._stop_requested_at
        if start is None:
            start = self._stop_requested_at = self.clock.monotonic()
        return max(0.0, start + SHUTDOWN_BUDGET_SECS - reserve - self.clock.monotonic())

    def request_reload(self) -> None:
        self._reload_requested.set()

    async def start(self) -> None:
        agent = self.config.agent
        if agent.pid_file:
            self.pidfile = PidFile(agent.pid_file)
            self.pidfile.acquire()
            if self.pidfile.took_over is not None:
                log.warning(
                    "took over stale PID file %s (pid %d is gone)",
                    agent.pid_file,
                    self.pidfile.took_over,
                )
        log.info("sysops-agent starting on %s (pid %d)", self.hostname, os.getpid())
        self._spawn("storage", self._storage_loop())
        from sysops_agent.control_api import Operator

        self.operator = Operator(self)
        self._start_manager()
        self._spawn("alerts", self._alert_loop())
        self._start_analyzers()
        self._spawn("analyzers", self._analyzer_loop())
        self._start_collectors()
        assert self.scheduler is not None
        self._spawn("systemd", self.systemd.run(self.scheduler.first_cycle))
        # Optional components: one that cannot start is reported and left out;
        # collection and alerting carry on without it.
        self._optional("log watcher", self._start_log_watcher)
        try:
            await self._start_sqlite()
        except Exception as e:
            log.error("SQLite history not started: %s", e, exc_info=log.isEnabledFor(logging.DEBUG))
            self.sqlite = None
        if self.sqlite is not None:
            self._spawn("sqlite", self._sqlite_loop())
        self._optional("prometheus exporter", self._start_exporter)
        self._optional("remote_write", self._start_remote_write)
        self._spawn("housekeeping", self._housekeeping_loop())
        await self.operator.start()
        self._optional("heartbeat", self._start_heartbeat)

    async def serve(self) -> None:
        """Run until a stop is requested; handle reload requests meanwhile."""
        while not self._stopping.is_set():
            stop = asyncio.ensure_future(self._stopping.wait())
            reload = asyncio.ensure_future(self._reload_requested.wait())
            await asyncio.wait({stop, reload}, return_when=asyncio.FIRST_COMPLETED)
            stop.cancel()
            reload.cancel()
            if self._reload_requested.is_set() and not self._stopping.is_set():
                self._reload_requested.clear()
                await self.reload()

    async def reload(self) -> bool:
        """Re-read the config file; apply what changed if it is valid."""
        if self.config_path is None:
            log.warning("reload requested but the agent runs without a config file; nothing to do")
            return False
        loaded = load_config(self.config_path, overrides=self.overrides)
        if loaded.problems:
            # refused as a whole: a value replaced by its default is not what was asked for
            log.warning(
                "config reload failed, keeping the old configuration (%d problem(s)): %s",
                len(loaded.problems),
                "; ".join(self.redactor(str(p)) for p in loaded.problems),
            )
            return False
        old, new = self.config, loaded.config
        self.config = new
        for secret in loaded.secrets.values():
            self.redactor.add(secret)
        setup_logging(new.agent.log_level, new.agent.log_file, self.redactor)
        if new.collector != old.collector or new.agent != old.agent:
            if self.scheduler is not None:
                await self.scheduler.stop()
            self._start_collectors()
        if new.thresholds != old.thresholds or new.analyzer != old.analyzer:
            self._reload_analyzers(old, new)
        if new.alerting != old.alerting:
            await self._stop_manager()
            self._start_manager()
            await self._stop_heartbeat()
            self._optional("heartbeat", self._start_heartbeat)
        elif self.manager is not None:
            self.manager.reenable("configuration reloaded")
        if new.collector.log != old.collector.log:
            await self._stop_log_watcher()
            self._optional("log watcher", self._start_log_watcher)
        if new.prometheus != old.prometheus:
            self._stop_exporter()
            self._optional("prometheus exporter", self._start_exporter)
        if new.remote_write != old.remote_write or new.agent.labels != old.agent.labels:
            await self._stop_remote_write()
            self._optional("remote_write", self._start_remote_write)
        log.info("configuration reloaded from %s", self.config_path)
        return True

    async def _stop_manager(self, timeout: float = ALERT_FLUSH_TIMEOUT, grace: float = 1.0) -> None:
        if self.manager is None:
            return
        try:
            await asyncio.wait_for(self.manager.close(timeout), timeout + grace)
        except (asyncio.TimeoutError, Exception) as e:
            log.warning("alert manager did not close cleanly: %r", e)
        if self._manager_task is not None:
            self._manager_task.cancel()
        self.manager = None

    async def _stop_log_watcher(self, timeout: float = 5.0) -> None:
        if self.log_watcher is None:
            return
        try:
            await asyncio.wait_for(self.log_watcher.stop(), timeout)
        except (asyncio.TimeoutError, Exception) as e:
            log.warning("log watcher did not stop cleanly: %r", e)
        if self._log_task is not None:
            self._log_task.cancel()
        self.log_watcher = None

    def _start_remote_write(self) -> None:
        if not self.config.remote_write.enabled:
            return
        from sysops_agent.exporters.remote_write import RemoteWriter

        writer = RemoteWriter(
            self.config.remote_write,
            self.store,
            self.clock,
            hostname=self.hostname,
            labels=self.config.agent.labels,
        )
        self.remote_writer = writer
        self._spawn("remote_write", writer.run())
        log.info("remote_write: pushing to %s", self.redactor(self.config.remote_write.url))

    async def _stop_remote_write(self) -> None:
        task = self._tasks.pop("remote_write", None)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(task, 5)
        if self.remote_writer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.remote_writer.aclose(), 5)
            self.remote_writer = None

    def _stop_exporter(self) -> None:
        if self.exporter is None:
            return
        try:
            self.exporter.stop()
        except Exception as e:
            log.warning("prometheus exporter did not stop cleanly: %r", e)
        self.exporter = None

    async def shutdown(self) -> None:
        """Reverse order of start-up; every step bounded by what is left of the budget.

        The whole shutdown takes at most :data:`SHUTDOWN_BUDGET_SECS` from the
        stop request; notifications not delivered by then stay in the outbox.
        """
        await self._stop_heartbeat()
        await self._stop_remote_write()
        self.systemd.stopping()
        if self.operator is not None:
            await self.operator.close()
        self._stop_exporter()
        if self.scheduler is not None:
            await self.scheduler.stop(min(5.0, self._budget_left(SHUTDOWN_RESERVE_SECS + 3)))
        await self._stop_log_watcher(min(5.0, self._budget_left(SHUTDOWN_RESERVE_SECS + 2)))
        # Move what the last cycle produced into storage, take a last look, deliver.
        for s in self.samples.drain():
            self.store.append(s)
        self.run_analyzers()
        self.save_alert_state()
        for name in ("analyzers", "housekeeping", "alerts", "sqlite"):
            task = self._tasks.pop(name, None)
            if task is not None:
                task.cancel()
        for alert in self.alerts.drain():
            await self._submit(alert)
        self._stopping_notice()
        await self._stop_manager(
            min(ALERT_FLUSH_TIMEOUT, self._budget_left(SHUTDOWN_RESERVE_SECS)), grace=0.5
        )
        if self.sqlite is not None:
            try:
                flush = self.sqlite.flush(self.store, self.clock.time())
                await asyncio.wait_for(flush, max(0.1, self._budget_left(0.7)))
                await asyncio.wait_for(self.sqlite.close(), max(0.1, self._budget_left(0.2)))
            except (asyncio.TimeoutError, Exception) as e:
                log.warning("SQLite did not close cleanly: %r", e)
        for task in self._tasks.values():
            task.cancel()
        if self.pidfile is not None:
            self.pidfile.release()
        log.info("sysops-agent stopped")


async def run_daemon(
    loaded: LoadResult, config_path: Optional[str], overrides: Optional[Overrides] = None
) -> int:
    daemon = Daemon(loaded, config_path, overrides=overrides)
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, daemon.request_stop)
    loop.add_signal_handler(signal.SIGINT, daemon.request_stop)
    loop.add_signal_handler(signal.SIGHUP, daemon.request_reload)
    from sysops_agent.pidfile import PidFileError

    try:
        await daemon.start()
    except PidFileError as e:
        log.error("%s", e)
        return 1
    try:
        await daemon.serve()
    finally:
        await daemon.shutdown()
    return 0
