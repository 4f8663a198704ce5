"""The durable outbox: every notification, per channel, until that channel accepted it.

Alertmanager keeps a notification log and retries until a notification is
delivered or superseded; Monit keeps an event queue on disk and replays it
when the mail server is back. This is the agent's equivalent.

Every message a lane's stages let out is written here (one row: the lane,
the message's alerts as JSON, when it was queued) *before* its first
attempt, and deleted only when the channel accepted it. A failed attempt
leaves the row with a later ``next_at``; the lane's worker goes on with its
other rows meanwhile. A row older than ``max_age_secs`` is given up. After a
restart (SIGTERM or SIGKILL) the rows are still there, oldest first, and are
delivered before anything new; the alerts keep their ``id``, so a webhook or
Alertmanager receiver can de-duplicate a notification sent twice.

Storage: one SQLite table (``<data_dir>/outbox.db``) in WAL mode with
``synchronous = FULL``: every commit — a new notification, a delivery — is
fsynced before the call returns, so a notification survives a crash or a
power loss from the moment it is queued. Notifications are few (after dedup,
rate limiting and grouping), so the cost, about one fsync per message, is
small. Without a data directory the same table lives in memory (nothing
survives a restart).

Bounded by count and bytes: when full, the oldest row of the lowest severity
goes first; drops are counted (:attr:`Outbox.dropped`) and logged at most once
per :data:`WARN_INTERVAL_SECS` with the count since the previous line.

All times are wall-clock seconds (``Clock.time``): they must mean the same
thing after a restart.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
from dataclasses import dataclass
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

from sysops_agent.fsutil import open_private, sqlite_files
from sysops_agent.model import Alert, AlertState, Severity, iso_utc, new_alert_id

log = logging.getLogger("sysops_agent.alerting")

FILE_NAME = "outbox.db"
#: "dropped"/"cannot write" warnings: at most one line per this many seconds
WARN_INTERVAL_SECS = 600.0
#: a notification delivered this long after it was queued is marked as delayed
DELAYED_AFTER_SECS = 60.0
#: SQLite page cache of the outbox connection, KiB (the default, 2 MiB, is for big
#: databases; the outbox is a few rows: bench/outbox_held.py times 64 and 256 alike)
CACHE_KIB = 64

SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    lane TEXT NOT NULL,
    created REAL NOT NULL,
    run TEXT NOT NULL,
    severity INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at REAL NOT NULL,
    size INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_lane_next ON outbox (lane, next_at);
CREATE TABLE IF NOT EXISTS held (
    lane TEXT NOT NULL,
    id TEXT NOT NULL,
    created REAL NOT NULL,
    run TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (lane, id)
);
"""


def alert_to_obj(alert: Alert) -> Dict[str, Any]:
    return {
        "timestamp": alert.timestamp,
        "hostname": alert.hostname,
        "severity": int(alert.severity),
        "metric": alert.metric,
        "value": alert.value,
        "threshold": alert.threshold,
        "message": alert.message,
        "analyzer": alert.analyzer,
        "labels": [list(kv) for kv in alert.labels],
        "duration": alert.duration,
        "state": alert.state.value,
        "id": alert.id,
    }


def alert_from_obj(obj: Dict[str, Any]) -> Alert:
    return Alert(
        timestamp=float(obj["timestamp"]),
        hostname=str(obj["hostname"]),
        severity=Severity(int(obj["severity"])),
        metric=str(obj["metric"]),
        value=float(obj["value"]),
        threshold=float(obj["threshold"]),
        message=str(obj["message"]),
        analyzer=str(obj["analyzer"]),
        labels=tuple((str(k), str(v)) for k, v in obj["labels"]),
        duration=None if obj["duration"] is None else float(obj["duration"]),
        state=AlertState(obj["state"]),
        id=str(obj["id"]),
    )


@dataclass(frozen=True)
class Entry:
    """One queued message of one lane."""

    seq: int
    lane: str
    #: wall time it was queued
    created: float
    #: True if an earlier run of the agent queued it
    earlier_run: bool
    attempts: int
    alerts: Tuple[Alert, ...]

    def delayed(self, now: float) -> bool:
        return self.earlier_run or now - self.created >= DELAYED_AFTER_SECS

    def outgoing(self, now: float) -> List[Alert]:
        """The alerts as they are sent at ``now``: a late one says it is late and since when."""
        if not self.delayed(now):
            return list(self.alerts)
        note = f" (delayed notification, raised {iso_utc(self.created)})"
        return [a.evolve(message=a.message + note) for a in self.alerts]


def db_path(data_dir: str) -> str:
    return os.path.join(data_dir, FILE_NAME) if data_dir else ":memory:"


class Outbox:
    """The outbox table (see the module docstring). Every method commits before it returns."""

    def __init__(
        self,
        path: str = ":memory:",
        *,
        max_count: int = 10_000,
        max_bytes: int = 16 * 1024 * 1024,
        max_age_secs: float = 86_400.0,
    ) -> None:
        self.path = path
        self.max_count = max_count
        self.max_bytes = max_bytes
        self.max_age_secs = max_age_secs
        self.run = new_alert_id()
        #: messages dropped because the outbox was full (a counter)
        self.dropped = 0
        #: messages given up because they were older than ``max_age_secs``
        self.expired = 0
        self._unreported = 0
        self._last_warn = -float("inf")
        self._db = self._open(path)

    @property
    def durable(self) -> bool:
        return self.path != ":memory:"

    @staticmethod
    def _open(path: str) -> sqlite3.Connection:
        if path != ":memory:":
            os.makedirs(os.path.dirname(path) or ".", mode=0o750, exist_ok=True)
            # the messages are the alerts' texts: 0600 before SQLite opens the file (its
            # -wal and -shm take the database's mode); looser existing files are tightened
            for name in sqlite_files(path):
                os.close(open_private(name, os.O_RDWR))
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        db.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
        if path != ":memory:":
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = FULL")
        db.executescript(SCHEMA)
        # what an earlier run left is due at once: it goes out before anything new
        db.execute("UPDATE outbox SET next_at = 0")
        return db

    @classmethod
    def open(cls, data_dir: str, **limits: Any) -> Outbox:
        """The outbox in ``data_dir``; in memory (with an error logged) if it cannot be opened."""
        path = db_path(data_dir)
        try:
            return cls(path, **limits)
        except (OSError, sqlite3.Error) as exc:
            log.error(
                "outbox %s cannot be opened (%s): notifications are kept in memory only",
                path,
                exc,
            )
            return cls(":memory:", **limits)

    # -- writing ---------------------------------------------------------------

    def put(self, lane: str, alerts: Sequence[Alert], now: float) -> int:
        """Queue one message for ``lane`` (due at once); returns its sequence number."""
        seq = self._insert(lane, alerts, now, self.run)
        self._bound(now)
        return seq

    def _insert(self, lane: str, alerts: Sequence[Alert], created: float, run: str) -> int:
        body = json.dumps([alert_to_obj(a) for a in alerts], separators=(",", ":"))
        severity = max(int(a.severity) for a in alerts)
        cur = self._db.execute(
            "INSERT INTO outbox (lane, created, run, severity, next_at, size, body)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (lane, created, run, severity, created, len(body), body),
        )
        return int(cur.lastrowid or 0)

    # -- held alerts (a lane stage's window) -------------------------------------

    def commit(
        self,
        lane: str,
        batches: Sequence[Sequence[Alert]],
        now: float,
        *,
        hold: Sequence[Alert] = (),
        release: Sequence[str] = (),
    ) -> List[int]:
        """One transaction (fsynced): queue ``batches`` for ``lane``, keep the alerts that
        now wait in the lane's stages (``hold``: a group window) and forget the held ones
        that left them (``release``, their ids). After a crash an alert is held or
        queued, never lost and never both. Returns the new messages' sequence numbers."""
        with self._transaction():
            seqs = [self._insert(lane, b, now, self.run) for b in batches if b]
            self._db.executemany(
                "DELETE FROM held WHERE lane = ? AND id = ?", [(lane, i) for i in release]
            )
            self._db.executemany(
                "INSERT OR REPLACE INTO held (lane, id, created, run, body) VALUES (?, ?, ?, ?, ?)",
                [
                    (lane, a.id, now, self.run, json.dumps(alert_to_obj(a), separators=(",", ":")))
                    for a in hold
                ],
            )
        if seqs:
            self._bound(now)
        return seqs

    def held_count(self, lane: Optional[str] = None) -> int:
        if lane is None:
            return int(self._db.execute("SELECT COUNT(*) FROM held").fetchone()[0])
        row = self._db.execute("SELECT COUNT(*) FROM held WHERE lane = ?", (lane,)).fetchone()
        return int(row[0])

    def take_held(self) -> List[Tuple[str, float, str, Alert]]:
        """The alerts an earlier run held in a lane's window (lane, when held, run, alert),
        oldest first; they are removed by :meth:`queue_earlier`."""
        rows = self._db.execute(
            "SELECT lane, created, run, body FROM held WHERE run != ? ORDER BY created, rowid",
            (self.run,),
        ).fetchall()
        return [
            (str(lane), float(created), str(run), alert_from_obj(json.loads(body)))
            for lane, created, run, body in rows
        ]

    def queue_earlier(
        self, lane: str, batches: Sequence[Tuple[float, str, Sequence[Alert]]]
    ) -> None:
        """Move alerts an earlier run held into the outbox as messages of that run
        (``(created, run, alerts)``: delivered first, marked delayed with the original time)."""
        with self._transaction():
            for created, run, alerts in batches:
                self._insert(lane, alerts, created, run)
                self._db.executemany(
                    "DELETE FROM held WHERE lane = ? AND id = ?", [(lane, a.id) for a in alerts]
                )

    def drop_held(self, lane: str) -> int:
        return int(self._db.execute("DELETE FROM held WHERE lane = ?", (lane,)).rowcount)

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _bound(self, now: float) -> None:
        count, size = self._db.execute(
            "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM outbox"
        ).fetchone()
        dropped = 0
        while count > self.max_count or (size > self.max_bytes and count > 1):
            row = self._db.execute(
                "SELECT seq, size FROM outbox ORDER BY severity ASC, seq ASC LIMIT 1"
            ).fetchone()
            self._db.execute("DELETE FROM outbox WHERE seq = ?", (row[0],))
            count, size, dropped = count - 1, size - row[1], dropped + 1
        if dropped:
            self.dropped += dropped
            self._unreported += dropped
            if now - self._last_warn >= WARN_INTERVAL_SECS:
                log.warning(
                    "outbox full (%d notifications / %d bytes at most): dropped %d,"
                    " oldest of the lowest severity first",
                    self.max_count,
                    self.max_bytes,
                    self._unreported,
                )
                self._unreported = 0
                self._last_warn = now

    def done(self, seq: int) -> None:
        """The channel accepted message ``seq`` (or refused it for good): forget it."""
        self._db.execute("DELETE FROM outbox WHERE seq = ?", (seq,))

    def defer(self, seq: int, next_at: float) -> None:
        """Attempt failed: try message ``seq`` again at ``next_at``."""
        self._db.execute(
            "UPDATE outbox SET attempts = attempts + 1, next_at = ? WHERE seq = ?",
            (next_at, seq),
        )

    # -- reading ---------------------------------------------------------------

    def due(self, lane: str, now: float, limit: int = 50) -> List[Entry]:
        """Messages of ``lane`` due at ``now``, oldest first (expired ones are given up)."""
        self._expire(lane, now)
        rows = self._db.execute(
            "SELECT seq, created, run, attempts, body FROM outbox"
            " WHERE lane = ? AND next_at <= ? ORDER BY seq LIMIT ?",
            (lane, now, limit),
        ).fetchall()
        return [
            Entry(
                seq,
                lane,
                created,
                run != self.run,
                attempts,
                tuple(alert_from_obj(o) for o in json.loads(body)),
            )
            for seq, created, run, attempts, body in rows
        ]

    def _expire(self, lane: str, now: float) -> None:
        cur = self._db.execute(
            "DELETE FROM outbox WHERE lane = ? AND created < ?", (lane, now - self.max_age_secs)
        )
        if cur.rowcount > 0:
            self.expired += cur.rowcount
            log.error(
                "%s: %d notification(s) given up: not delivered within %g s",
                lane,
                cur.rowcount,
                self.max_age_secs,
            )

    def next_at(self, lane: str) -> Optional[float]:
        """When the next message of ``lane`` is due (None if it has none)."""
        row = self._db.execute("SELECT MIN(next_at) FROM outbox WHERE lane = ?", (lane,)).fetchone()
        return None if row[0] is None else float(row[0])

    def pending(self, lane: Optional[str] = None) -> int:
        """Alert messages waiting (for ``lane``, or in all)."""
        if lane is None:
            row = self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()
        else:
            row = self._db.execute("SELECT COUNT(*) FROM outbox WHERE lane = ?", (lane,)).fetchone()
        return int(row[0])

    def alerts_pending(self, lane: str) -> int:
        """Alerts (not messages) waiting for ``lane`` (reads the rows: for shutdown)."""
        rows = self._db.execute("SELECT body FROM outbox WHERE lane = ?", (lane,))
        return sum(len(json.loads(body)) for (body,) in rows)

    def lanes(self) -> List[str]:
        return [
            r[0] for r in self._db.execute("SELECT lane FROM outbox UNION SELECT lane FROM held")
        ]

    def drop_lane(self, lane: str) -> int:
        """Forget every message of ``lane`` (a channel that is no longer configured)."""
        held = self.drop_held(lane)
        return held + int(self._db.execute("DELETE FROM outbox WHERE lane = ?", (lane,)).rowcount)

    def close(self) -> None:
        self._db.close()
