"""The SQLite history: one row per series per minute (avg, min, max, count) for 30 days.

SPEC §4. Every ``flush`` (each ``storage.flush_interval_secs``) takes, for every
series in the in-memory :class:`~sysops_agent.storage.store.Store`, the samples
appended since the previous flush, groups them by minute and hands the rows to
a single worker thread that owns the ``sqlite3`` connection. The event loop
never waits on disk or on another process's lock: it only awaits the worker.

Schema (version 1)::

    schema_version(version)                         -- one row; migrations below
    series(id INTEGER PRIMARY KEY, metric, labels_json, UNIQUE(metric, labels_json))
    samples(series_id, ts, avg, min, max, count,    -- ts = start of the minute (unix s)
            PRIMARY KEY(series_id, ts)) WITHOUT ROWID

The primary key is the index a history query needs (one series, a time range)
and, in a WITHOUT ROWID table, it *is* the table: no second copy of the key.
Two writes for the same minute (a flush that straddles a minute, the final
flush at shutdown, a restart) merge into one row, weighting by ``count``.

Durability: WAL with ``synchronous=NORMAL``. A commit appends the transaction
to the ``-wal`` file before it returns; NORMAL only skips the fsync at commit
(WAL is synced at checkpoints). So a killed process (SIGKILL, OOM killer, a
crash) loses nothing that was committed — at most the transaction in flight,
i.e. the last flush — and the next open replays the WAL. A power loss or
kernel crash may roll back the transactions since the last checkpoint, but
never corrupts the file. FULL would add an fsync per minute on every host for
no gain against the failures a monitoring agent must survive.

Space: ``auto_vacuum=INCREMENTAL`` is set before the first table is created;
once a day rows older than ``retention_days`` are deleted and
``PRAGMA incremental_vacuum`` returns the freed pages to the file system, so
the file stays at about 30 days of rows.

Failures (locked by another process, disk full, read-only or missing
directory, a corrupted file) are logged (rate-limited), counted in
:class:`HistoryStats` and retried at the next flush; the rows that could not be
written wait in a bounded in-memory buffer (``max_pending_secs`` of minutes,
default one hour) so that a transient failure loses nothing. A file that is not
a database or fails ``PRAGMA quick_check`` is renamed to
``metrics.db.corrupt-<UTC timestamp>`` and a new database is started. Nothing
here raises into the daemon.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Dict, List, Optional, Sequence, Tuple, TypeVar

from sysops_agent.clock import Clock
from sysops_agent.fsutil import StrPath
from sysops_agent.model import Labels, SeriesKey
from sysops_agent.storage.config import StorageConfig, sqlite_db_path
from sysops_agent.storage.ringbuffer import Point
from sysops_agent.storage.sqlite_schema import SCHEMA_VERSION
from sysops_agent.storage.sqlite_writer import (
    HistoryDatabase,
    HistoryStats,
    Row,
)
from sysops_agent.storage.store import Cursors, Store
from sysops_agent.units import round_stored

log = logging.getLogger(__name__)

T = TypeVar("T")

#: one row per series per this many seconds
ROW_SECONDS = 60


def labels_json(labels: Labels) -> str:
    """The canonical JSON text of a label set (sorted keys, no spaces): the series identity."""
    return json.dumps(dict(labels), sort_keys=True, separators=(",", ":"))


def aggregate(points: Sequence[Point]) -> List[Tuple[int, float, float, float, int]]:
    """Group points by minute: ``[(minute_ts, avg, min, max, count)]`` in time order."""
    out: List[Tuple[int, float, float, float, int]] = []
    bucket = -1
    total = lo = hi = 0.0
    n = 0
    for ts, value in points:
        b = int(ts) // ROW_SECONDS * ROW_SECONDS
        if b != bucket:
            if n:
                out.append((bucket, round_stored(total / n), round_stored(lo), round_stored(hi), n))
            bucket, total, lo, hi, n = b, 0.0, value, value, 0
        total += value
        lo = min(lo, value)
        hi = max(hi, value)
        n += 1
    if n:
        out.append((bucket, round_stored(total / n), round_stored(lo), round_stored(hi), n))
    return out


class SqliteHistory:
    """Per-minute history in SQLite, written from one worker thread. See the module docstring."""

    def __init__(
        self,
        path: StrPath,
        *,
        retention_days: int = 30,
        clock: Clock,
        busy_timeout_ms: int = 5000,
        max_pending_secs: float = 3600.0,
        pragmas: Sequence[str] = (),
        since: Optional[float] = None,
        reader_group: str = "",
    ) -> None:
        """``pragmas`` are extra ``PRAGMA`` statements run on every connection (tuning, tests).

        ``since``: samples older than this are never written (for a writer created while the
        store already holds samples that an earlier writer wrote); default: all of them.
        """
        self.path = os.fspath(path)
        self.clock = clock
        self.stats = HistoryStats()
        #: extra PRAGMAs for every new connection; edits apply at the next (re)connect
        self.extra_pragmas: List[str] = list(pragmas)
        self._db = HistoryDatabase(
            self.path,
            retention_secs=retention_days * 86400.0,
            clock=clock,
            busy_timeout_ms=busy_timeout_ms,
            max_pending_secs=max_pending_secs,
            pragmas=self.extra_pragmas,
            stats=self.stats,
            reader_group=reader_group,
        )
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sysops-sqlite")
        #: per series: the buffer and its append count at the previous flush
        self._cursors = Cursors()
        #: each flushed series' :func:`labels_json`, kept while the series lives
        self._labels: Dict[SeriesKey, str] = {}
        #: samples older than this are not ours to write
        self._since = 0.0 if since is None else since
        self._closed = False

    @classmethod
    def from_config(cls, storage: StorageConfig, data_dir: str, *, clock: Clock) -> SqliteHistory:
        """Build from the ``[storage]`` section (path: ``sqlite_path`` or ``<data_dir>/metrics.db``)."""
        return cls(
            sqlite_db_path(storage, data_dir),
            retention_days=storage.retention_days,
            clock=clock,
            busy_timeout_ms=storage.sqlite_busy_timeout_ms,
            max_pending_secs=storage.sqlite_max_pending_minutes * 60.0,
            reader_group=storage.sqlite_group,
        )

    async def _run(self, fn: Callable[[], T]) -> T:
        # shield: a cancelled flush (daemon shutdown) must not cancel a queued job,
        # whose rows are already handed over to the worker.
        fut = asyncio.get_running_loop().run_in_executor(self._executor, fn)
        return await asyncio.shield(fut)

    async def open(self) -> None:
        """Open or create the database. Never raises: a failure is logged and retried at flush."""
        if self._closed:
            return
        try:
            await self._run(self._db.open)
        except Exception:
            log.exception("SQLite history %s: open failed unexpectedly", self.path)

    def collect(self, store: Store, now: float) -> List[Row]:
        """The rows for every sample appended since the previous call (event-loop side)."""
        rows: List[Row] = []
        cursors = self._cursors
        seen = 0
        for key, buf in store.series():
            seen += 1
            unread = cursors.take(key, buf)
            if unread is None:  # a new series (or one dropped and re-created since the last flush)
                points = buf.since(self._since)
            elif unread:
                points = buf.new_since(buf.total - unread)
            else:
                continue
            if not points:
                continue
            lj = self._labels.get(key)
            if lj is None:
                lj = self._labels[key] = labels_json(key.labels)
            for ts, avg, lo, hi, n in aggregate(points):
                rows.append((key.metric, lj, ts, avg, lo, hi, n))
        for key in cursors.forget_missing(store, seen):
            self._labels.pop(key, None)
        return rows

    async def flush(self, store: Store, now: float) -> None:
        """Write what was collected since the previous flush; never raises."""
        if self._closed:
            return
        try:
            rows = self.collect(store, now)
            db = self._db

            def job() -> None:
                db.add(rows)
                db.write_pending(now)

            await self._run(job)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("SQLite history %s: flush failed unexpectedly", self.path)

    async def close(self) -> None:
        """Close the connection after queued writes finish (the daemon flushes first)."""
        if self._closed:
            return
        self._closed = True
        db = self._db
        try:
            await self._run(db.close)
        except Exception:
            log.exception("SQLite history %s: close failed unexpectedly", self.path)
        finally:
            if db.pending:
                log.warning(
                    "SQLite history %s: %d rows could not be written before exit",
                    self.path,
                    len(db.pending),
                )
            self._executor.shutdown(wait=False)


__all__ = ["ROW_SECONDS", "SCHEMA_VERSION", "HistoryStats", "Row", "SqliteHistory", "aggregate"]
