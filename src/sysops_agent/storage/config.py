"""``[storage]``: in-memory ring buffers and the optional SQLite history (SPEC §4)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from sysops_agent.schema import opt

#: file name of the history database inside ``agent.data_dir``
DEFAULT_DB_NAME = "metrics.db"


@dataclass(frozen=True)
class StorageConfig:
    ring_buffer_samples: int = opt(8640, min=10, max=1_000_000, help="samples kept per series")
    #: 1,000 series of 24 h cost a few MiB at the usual compression; no collector of a
    #: normal host comes near it (the process collector's top 20 give ~100)
    max_series_per_collector: int = opt(
        1000,
        min=0,
        max=1_000_000,
        help="series one collector may store (0: no cap); beyond it, new series are dropped "
        "and counted in agent_series_dropped_total",
    )
    sqlite: bool = opt(False, help="keep one-minute averages in SQLite under agent.data_dir")
    sqlite_path: str = opt("", help="empty = <agent.data_dir>/metrics.db")
    sqlite_group: str = opt(
        "",
        help="group that may read the database (files 0640, for `history` run by its members); "
        "empty = 0600, the agent's user only",
    )
    retention_days: int = opt(30, min=1, max=3650)
    flush_interval_secs: float = opt(
        60.0, min=1, max=3600, help="how often the last minute(s) are written (rows are per minute)"
    )
    sqlite_busy_timeout_ms: int = opt(
        5000,
        min=0,
        max=60_000,
        help="wait this long for another process's lock before retrying later",
    )
    sqlite_max_pending_minutes: int = opt(
        60,
        min=1,
        max=1440,
        help="minutes of rows kept in memory while the database cannot be written",
    )


def sqlite_db_path(storage: StorageConfig, data_dir: str) -> str:
    """Where the history database lives: ``sqlite_path`` or ``<data_dir>/metrics.db``."""
    if storage.sqlite_path:
        return storage.sqlite_path
    return os.path.join(data_dir, DEFAULT_DB_NAME)
