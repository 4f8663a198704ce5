"""The worker-thread side of the SQLite history: connection, schema, writes, purge, recovery.

Everything here runs in :class:`~sysops_agent.storage.sqlite_history.SqliteHistory`'s
single worker thread, which owns the ``sqlite3`` connection; see that module
for the design (schema, durability, failure handling).

Size: one class owns the worker thread's connection, and its failure handling
(busy, full, corrupt, read-only) is one state machine; the schema and
migrations already live in ``sqlite_schema.py``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import stat
import time
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

from sysops_agent.clock import Clock
from sysops_agent.storage.sqlite_schema import (
    SCHEMA_VERSION,
    CorruptDatabase,
    is_corruption,
    migrate,
    schema_version,
)
from sysops_agent.throttle import ThrottledWarnings

log = logging.getLogger("sysops_agent.storage.sqlite_history")

#: how often old rows are purged
PURGE_EVERY_SECS = 86400.0
#: a repeated failure is logged at most this often (the first one at once)
LOG_EVERY_SECS = 600.0
#: cap on pending rows whatever their age (a series explosion must not eat memory)
MAX_PENDING_ROWS = 200_000
#: shrink the -wal file back to this size after a checkpoint (the daily purge makes it big)
JOURNAL_SIZE_LIMIT = 4 * 1024 * 1024
#: page cache per connection, KiB (SQLite's default is 2,000): a flush touches one leaf
#: per series, and the pages it misses come from the OS page cache. 128 KiB writes a
#: minute as fast as 512 did (bench/sqlite.py --cache-kib) and is full within minutes,
#: where 512 KiB filled over hours (issue 12's soak read that as creep)
CACHE_KIB = 128


_UPSERT = """INSERT INTO samples (series_id, ts, avg, min, max, count) VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (series_id, ts) DO UPDATE SET
    avg = (samples.avg * samples.count + excluded.avg * excluded.count)
          / (samples.count + excluded.count),
    min = MIN(samples.min, excluded.min),
    max = MAX(samples.max, excluded.max),
    count = samples.count + excluded.count"""
_MERGE_UPDATE = """UPDATE samples SET
    avg = (avg * count + :avg * :count) / (count + :count),
    min = MIN(min, :min), max = MAX(max, :max), count = count + :count
WHERE series_id = :series_id AND ts = :ts"""
_MERGE_KEYS = ("series_id", "ts", "avg", "min", "max", "count")
_INSERT = "INSERT INTO samples (series_id, ts, avg, min, max, count) VALUES (?, ?, ?, ?, ?, ?)"

#: (metric, labels_json, minute ts, avg, min, max, count)
Row = Tuple[str, str, int, float, float, float, int]


@dataclass
class HistoryStats:
    """Counters for the agent's own metrics and logs.

    Written by the worker thread, read by the event loop: plain ints and a
    string, each assignment atomic under the GIL.
    """

    writes_ok: int = 0
    writes_failed: int = 0
    rows_written: int = 0
    #: rows given up because the database stayed unwritable longer than the pending window
    rows_dropped: int = 0
    pending_rows: int = 0
    purges: int = 0
    rows_purged: int = 0
    corrupt_recoveries: int = 0
    open_failures: int = 0
    last_error: str = ""


def _is_busy(e: BaseException) -> bool:
    text = str(e).lower()
    return isinstance(e, sqlite3.OperationalError) and ("locked" in text or "busy" in text)


def utc_stamp(ts: float) -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(ts))


class HistoryDatabase:
    """Everything that touches the connection. Used only from the worker thread."""

    def __init__(
        self,
        path: str,
        *,
        retention_secs: float,
        clock: Clock,
        busy_timeout_ms: int,
        max_pending_secs: float,
        pragmas: Sequence[str],
        stats: HistoryStats,
        reader_group: str = "",
    ) -> None:
        self.path = path
        #: group allowed to read the database (mode 0640); empty: 0600, the agent's user only
        self.reader_group = reader_group
        self.retention_secs = retention_secs
        self.clock = clock
        self.busy_timeout_ms = busy_timeout_ms
        self.max_pending_secs = max_pending_secs
        self.pragmas = pragmas
        self.stats = stats
        self.conn: Optional[sqlite3.Connection] = None
        self.checked = False  # quick_check runs once per process, not at every reopen
        self.series_ids: Dict[Tuple[str, str], int] = {}
        self.pending: List[Row] = []
        self.last_purge: Optional[float] = None
        self.upsert = sqlite3.sqlite_version_info >= (3, 24, 0)
        self._failing_since: Optional[float] = None
        self._warnings = ThrottledWarnings(log, monotonic=clock.monotonic, every=LOG_EVERY_SECS)

    # ------------------------------------------------------------ logging
    def _failed(self, what: str, e: BaseException) -> None:
        self.stats.last_error = f"{what}: {e}"
        if self._failing_since is None:
            self._failing_since = self.clock.monotonic()
        suppressed = self._warnings.suppressed("failing")
        self._warnings.warning(
            "failing",
            "SQLite history %s: %s: %s; %d rows kept to retry at the next flush%s",
            self.path,
            what,
            e,
            len(self.pending),
            f" ({suppressed} similar failures not logged)" if suppressed else "",
            count=False,
        )

    def _recovered(self) -> None:
        if self._failing_since is not None:
            log.info("SQLite history %s: writing again (%s)", self.path, self.stats.last_error)
            self._failing_since = None
            self._warnings.recovered("failing")

    # ------------------------------------------------------------ open / close
    def _prepare_files(self) -> None:
        """Create the database file 0600 (0640 with a reader group) before SQLite opens it.

        ``O_NOFOLLOW``: a symlink at the path is refused. SQLite gives ``-wal``
        and ``-shm`` the database file's mode when it creates them, so they
        follow; existing ones with looser bits are tightened here.
        """
        from sysops_agent.fsutil import PRIVATE, open_private, sqlite_files, tighten

        mode = 0o640 if self.reader_group else PRIVATE
        gid = -1
        if self.reader_group:
            import grp

            try:
                gid = grp.getgrnam(self.reader_group).gr_gid
            except KeyError:
                raise OSError(
                    f"storage.sqlite_group: no group named {self.reader_group!r}"
                ) from None
        for path in sqlite_files(self.path):
            fd = open_private(path, os.O_RDWR, mode)
            try:
                if gid != -1 and os.fstat(fd).st_gid != gid:
                    os.fchown(fd, -1, gid)
                if stat.S_IMODE(os.fstat(fd).st_mode) != mode:
                    with contextlib.suppress(OSError):
                        os.fchmod(fd, mode)
                problem = tighten(fd, mode)
            finally:
                os.close(fd)
            if problem:
                self._warnings.warning(f"mode {path}", "SQLite history %s: %s", path, problem)

    def _connect(self) -> sqlite3.Connection:
        self._prepare_files()
        conn = sqlite3.connect(
            self.path, timeout=self.busy_timeout_ms / 1000.0, isolation_level=None
        )
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_ms)}")
            # Before changing anything: a newer agent's database is left exactly as it is.
            schema_version(conn)
            # Must precede the first CREATE TABLE; a no-op on an existing database.
            conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                log.warning("SQLite history %s: journal mode is %s, not wal", self.path, mode)
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
            conn.execute(f"PRAGMA journal_size_limit = {JOURNAL_SIZE_LIMIT}")
            for pragma in self.pragmas:
                conn.execute(f"PRAGMA {pragma}")
            if not self.checked:
                rows = conn.execute("PRAGMA quick_check").fetchall()
                if [r[0] for r in rows] != ["ok"]:
                    raise CorruptDatabase("; ".join(str(r[0]) for r in rows[:5]))
                self.checked = True
            migrate(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def _move_aside(self) -> str:
        stamp = utc_stamp(self.clock.time())
        target = f"{self.path}.corrupt-{stamp}"
        n = 1
        while os.path.exists(target):
            n += 1
            target = f"{self.path}.corrupt-{stamp}-{n}"
        os.replace(self.path, target)
        for suffix in ("-wal", "-shm"):
            side = f"{self.path}{suffix}"
            if os.path.exists(side):
                if suffix == "-wal":
                    os.replace(side, f"{target}{suffix}")
                else:
                    os.unlink(side)
        return target

    def _recover_corrupt(self, e: BaseException) -> None:
        self.close()
        target = self._move_aside()
        self.stats.corrupt_recoveries += 1
        self.checked = False
        log.error(
            "SQLite history %s is corrupted (%s): moved it to %s and started a new database",
            self.path,
            e,
            os.path.basename(target),
        )

    def open(self) -> bool:
        """Open (creating the directory and the schema); False after a logged failure."""
        if self.conn is not None:
            return True
        try:
            parent = os.path.dirname(self.path)
            if parent:
                os.makedirs(parent, mode=0o750, exist_ok=True)
            try:
                self.conn = self._connect()
            except Exception as e:
                if not is_corruption(e) or not os.path.isfile(self.path):
                    raise
                self._recover_corrupt(e)
                self.conn = self._connect()
            log.info(
                "SQLite history %s: open (schema v%d, %d days kept)",
                self.path,
                SCHEMA_VERSION,
                self.retention_secs // 86400,
            )
            return True
        except Exception as e:
            self.conn = None
            self.stats.open_failures += 1
            self._failed("cannot open", e)
            return False

    def close(self) -> None:
        self.series_ids.clear()
        conn, self.conn = self.conn, None
        if conn is not None:
            try:
                conn.close()
            except sqlite3.Error as e:
                log.warning("SQLite history %s: close failed: %s", self.path, e)

    # ------------------------------------------------------------ writing
    def add(self, rows: List[Row]) -> None:
        self.pending.extend(rows)
        self.stats.pending_rows = len(self.pending)

    def _trim(self, now: float) -> None:
        """After a failure: give up rows older than the pending window, and beyond the cap."""
        cutoff = now - self.max_pending_secs
        keep = [r for r in self.pending if r[2] >= cutoff]
        if len(keep) > MAX_PENDING_ROWS:
            keep = keep[len(keep) - MAX_PENDING_ROWS :]
        dropped = len(self.pending) - len(keep)
        if dropped:
            self.stats.rows_dropped += dropped
            log.warning(
                "SQLite history %s: gave up %d rows older than the pending window",
                self.path,
                dropped,
            )
        self.pending = keep
        self.stats.pending_rows = len(keep)

    def write_pending(self, now: float) -> None:
        """Write every pending row in one transaction; then purge if a day has passed."""
        if not self.pending:
            self._maybe_purge(now)
            return
        if not self.open():
            self.stats.writes_failed += 1
            self._trim(now)
            return
        for attempt in (1, 2):
            try:
                self._write(self.pending)
            except Exception as e:
                if attempt == 1 and is_corruption(e) and os.path.isfile(self.path):
                    self._recover_corrupt(e)
                    if self.open():
                        continue
                self.stats.writes_failed += 1
                if not _is_busy(e):
                    # Reopen next time: the file may have been replaced, the disk remounted.
                    self.close()
                self._trim(now)
                self._failed("write failed", e)
                return
            break
        self.stats.writes_ok += 1
        self.stats.rows_written += len(self.pending)
        log.debug("SQLite history %s: wrote %d rows", self.path, len(self.pending))
        self.pending = []
        self.stats.pending_rows = 0
        self._recovered()
        self._maybe_purge(now)

    def _ids(
        self, conn: sqlite3.Connection, keys: Sequence[Tuple[str, str]]
    ) -> Dict[Tuple[str, str], int]:
        missing = [k for k in dict.fromkeys(keys) if k not in self.series_ids]
        if missing:
            conn.executemany(
                "INSERT OR IGNORE INTO series (metric, labels_json) VALUES (?, ?)", missing
            )
            for metric, lj in missing:
                row = conn.execute(
                    "SELECT id FROM series WHERE metric = ? AND labels_json = ?", (metric, lj)
                ).fetchone()
                self.series_ids[(metric, lj)] = int(row[0])
        return self.series_ids

    def _write(self, rows: Sequence[Row]) -> None:
        conn = self.conn
        assert conn is not None
        conn.execute("BEGIN IMMEDIATE")
        try:
            ids = self._ids(conn, [(r[0], r[1]) for r in rows])
            params = [(ids[(r[0], r[1])], r[2], r[3], r[4], r[5], r[6]) for r in rows]
            if self.upsert:
                conn.executemany(_UPSERT, params)
            else:  # SQLite < 3.24 (2018): no ON CONFLICT ... DO UPDATE
                for p in params:
                    if conn.execute(_MERGE_UPDATE, dict(zip(_MERGE_KEYS, p))).rowcount == 0:
                        conn.execute(_INSERT, p)
            conn.execute("COMMIT")
        except BaseException:
            self.series_ids.clear()  # ids inserted by the rolled-back transaction are void
            try:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            raise

    # ------------------------------------------------------------ retention
    def _maybe_purge(self, now: float) -> None:
        if self.conn is None:
            return
        if self.last_purge is not None and now - self.last_purge < PURGE_EVERY_SECS:
            return
        try:
            self.purge(now)
        except Exception as e:
            self.close()
            self._failed("retention purge failed", e)
            return
        self.last_purge = now

    def purge(self, now: float) -> int:
        """Delete rows older than the retention, forget empty series, give the space back."""
        conn = self.conn
        assert conn is not None
        cutoff = int(now - self.retention_secs)
        deleted = 0
        conn.execute("BEGIN IMMEDIATE")
        try:
            ids = [int(r[0]) for r in conn.execute("SELECT id FROM series").fetchall()]
            for sid in ids:
                # One range delete per series walks the primary key: no table scan.
                cur = conn.execute(
                    "DELETE FROM samples WHERE series_id = ? AND ts < ?", (sid, cutoff)
                )
                deleted += max(cur.rowcount, 0)
                if (
                    conn.execute(
                        "SELECT 1 FROM samples WHERE series_id = ? LIMIT 1", (sid,)
                    ).fetchone()
                    is None
                ):
                    conn.execute("DELETE FROM series WHERE id = ?", (sid,))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        finally:
            self.series_ids.clear()
        # Each step frees one page and execute() steps once: executescript runs it to the end.
        conn.executescript("PRAGMA incremental_vacuum;")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self.stats.purges += 1
        self.stats.rows_purged += deleted
        if deleted:
            log.info(
                "SQLite history %s: purged %d rows older than the retention", self.path, deleted
            )
        return deleted
