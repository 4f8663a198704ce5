"""The SQLite history's schema: its versions, migrations and what a damaged file looks like.

Shared by the writer (``sqlite_writer.py``, which migrates) and the read-only
reader (``sqlite_reader.py``, which refuses a newer schema).
"""

from __future__ import annotations

import sqlite3
from typing import Tuple

#: migrations[i] takes the schema from version i to version i + 1
MIGRATIONS: Tuple[Tuple[str, ...], ...] = (
    (
        """CREATE TABLE series (
            id INTEGER PRIMARY KEY,
            metric TEXT NOT NULL,
            labels_json TEXT NOT NULL,
            UNIQUE (metric, labels_json)
        )""",
        """CREATE TABLE samples (
            series_id INTEGER NOT NULL REFERENCES series(id),
            ts INTEGER NOT NULL,
            avg REAL NOT NULL,
            min REAL NOT NULL,
            max REAL NOT NULL,
            count INTEGER NOT NULL,
            PRIMARY KEY (series_id, ts)
        ) WITHOUT ROWID""",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)

#: SQLite result codes that mean "this file is damaged" (SQLITE_CORRUPT, SQLITE_NOTADB)
_CORRUPT_CODES = (11, 26)
_CORRUPT_MESSAGES = ("file is not a database", "database disk image is malformed")


class CorruptDatabase(Exception):
    """The file is not a usable SQLite database (it will be moved aside)."""


class SchemaTooNew(Exception):
    """The database was written by a newer agent; it is left untouched."""


def is_corruption(e: BaseException) -> bool:
    if isinstance(e, CorruptDatabase):
        return True
    if not isinstance(e, sqlite3.DatabaseError):
        return False
    code = getattr(e, "sqlite_errorcode", None)  # Python >= 3.11
    if code is not None:
        return int(code) & 0xFF in _CORRUPT_CODES
    text = str(e).lower()
    return any(m in text for m in _CORRUPT_MESSAGES)


def schema_version(conn: sqlite3.Connection) -> int:
    """The schema version (0 = a new file); raises :class:`SchemaTooNew`."""
    if not conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
    ).fetchone():
        return 0
    row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
    current = int(row[0]) if row and row[0] is not None else 0
    if current > SCHEMA_VERSION:
        raise SchemaTooNew(
            f"schema version {current} is newer than this agent's ({SCHEMA_VERSION});"
            " not writing to it"
        )
    return current


def migrate(conn: sqlite3.Connection) -> None:
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        current = schema_version(conn)
        for version in range(current, SCHEMA_VERSION):
            for statement in MIGRATIONS[version]:
                conn.execute(statement)
        if current != SCHEMA_VERSION:
            conn.execute("DELETE FROM schema_version")
            conn.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
