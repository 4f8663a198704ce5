"""Reading the SQLite history (for ``sysops-agent history``): read-only, the daemon need not run.

The database is opened with a ``mode=ro`` URI, so reading never takes a write
lock, never creates the file and never runs a migration. Rows can be
re-bucketed into a coarser ``step`` in SQL; the merged average is weighted
by each row's sample count, like the writer's merge.
"""

from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Tuple

from sysops_agent.fsutil import StrPath
from sysops_agent.storage.sqlite_schema import SCHEMA_VERSION
from sysops_agent.units import round_stored

#: (minute or step start, avg, min, max, sample count)
HistoryPoint = Tuple[int, float, float, float, int]


#: what a URI path keeps as it is (urllib.parse.quote's default, "/" included)
_URI_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~/")


def uri_quote(path: str) -> str:
    """``path`` percent-encoded for a ``file:`` URI, as ``urllib.parse.quote(path)`` does.

    Not urllib.parse itself: it (with ipaddress) is 0.3 MiB of RSS on the daemon's
    path, which reads the history at start-up (the anomaly analyzer's warm start).
    """
    return "".join(
        c if c in _URI_SAFE else "".join(f"%{b:02X}" for b in c.encode("utf-8", "surrogateescape"))
        for c in path
    )


class HistoryError(Exception):
    """The database cannot be read (missing, not a database, not ours); the message says why."""


@dataclass(frozen=True)
class SeriesHistory:
    metric: str
    labels: Dict[str, str]
    points: List[HistoryPoint]


class HistoryReader:
    def __init__(self, path: StrPath) -> None:
        self.path = os.fspath(path)
        if not os.path.exists(self.path):
            raise HistoryError(
                f"no history database at {self.path} (is [storage] sqlite enabled in the"
                " agent's config, and has it run for a minute?)"
            )
        if not os.path.isfile(self.path):
            raise HistoryError(f"{self.path} is not a file")
        self.conn = self._open_or_explain(immutable=False)

    def _connect(self, *, immutable: bool) -> sqlite3.Connection:
        uri = f"file:{uri_quote(self.path)}?mode=ro" + ("&immutable=1" if immutable else "")
        conn: Optional[sqlite3.Connection] = None
        try:
            conn = sqlite3.connect(uri, uri=True)
            self._check(conn)
            return conn
        except BaseException:
            if conn is not None:
                conn.close()
            raise

    def _open_or_explain(self, *, immutable: bool) -> sqlite3.Connection:
        try:
            return self._connect(immutable=immutable)
        except sqlite3.OperationalError as e:
            # A reader that may not create the -shm file next to a WAL database (another
            # user, a read-only directory): read the main file as it is. A running
            # daemon's last minutes may then be missing, which is why it is only a fallback.
            if not immutable and "unable to open" in str(e):
                return self._open_or_explain(immutable=True)
            raise HistoryError(f"cannot read {self.path}: {e}") from None
        except sqlite3.DatabaseError as e:
            raise HistoryError(f"{self.path} is not a readable SQLite database: {e}") from None

    def _check(self, conn: sqlite3.Connection) -> None:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not {"schema_version", "series", "samples"} <= tables:
            raise HistoryError(f"{self.path} is not a sysops-agent history database")
        version = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()[0]
        if version is None or int(version) > SCHEMA_VERSION:
            raise HistoryError(
                f"{self.path} has schema version {version}; this sysops-agent reads up to"
                f" {SCHEMA_VERSION}"
            )

    def close(self) -> None:
        self.conn.close()

    def metrics(self) -> List[str]:
        return [r[0] for r in self.conn.execute("SELECT DISTINCT metric FROM series ORDER BY 1")]

    def series(self, metric: str, match: Mapping[str, str]) -> List[Tuple[int, Dict[str, str]]]:
        """``(series id, labels)`` of ``metric`` whose labels include every ``match`` pair."""
        out: List[Tuple[int, Dict[str, str]]] = []
        for sid, lj in self.conn.execute(
            "SELECT id, labels_json FROM series WHERE metric = ? ORDER BY labels_json", (metric,)
        ):
            labels = {str(k): str(v) for k, v in json.loads(lj).items()}
            if all(labels.get(k) == v for k, v in match.items()):
                out.append((int(sid), labels))
        return out

    def points(self, series_id: int, since: float, until: float, step: int) -> List[HistoryPoint]:
        """Rows with ``since <= ts < until``, merged into ``step``-second buckets (60 = as stored)."""
        cur = self.conn.execute(
            """SELECT (ts / :step) * :step AS bucket, SUM(avg * count) / SUM(count), MIN(min),
                      MAX(max), SUM(count)
               FROM samples WHERE series_id = :sid AND ts >= :since AND ts < :until
               GROUP BY bucket ORDER BY bucket""",
            {"step": max(int(step), 1), "sid": series_id, "since": int(since), "until": int(until)},
        )
        # the merged average carries float noise (0.09999999999999999): 7 digits were stored
        return [
            (int(b), round_stored(a), round_stored(lo), round_stored(hi), int(n))
            for b, a, lo, hi, n in cur
        ]

    def time_range(self, series_id: int) -> Optional[Tuple[int, int]]:
        row = self.conn.execute(
            "SELECT MIN(ts), MAX(ts) FROM samples WHERE series_id = ?", (series_id,)
        ).fetchone()
        if row is None or row[0] is None:
            return None
        return int(row[0]), int(row[1])

    def query(
        self, metric: str, match: Mapping[str, str], since: float, until: float, step: int
    ) -> List[SeriesHistory]:
        return [
            SeriesHistory(metric, labels, self.points(sid, since, until, step))
            for sid, labels in self.series(metric, match)
        ]
