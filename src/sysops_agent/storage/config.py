"""``[storage]``: in-memory ring buffers and the optional SQLite history (SPEC §4)."""

from __future__ import annotations

from dataclasses import dataclass

from sysops_agent.schema import opt


@dataclass
class StorageConfig:
    ring_buffer_samples: int = opt(8640, min=10, max=1_000_000, help="samples kept per series")
    sqlite: bool = opt(False, help="keep one-minute averages in SQLite under agent.data_dir")
    sqlite_path: str = opt("", help="empty = <agent.data_dir>/metrics.db")
    retention_days: int = opt(30, min=1, max=3650)
    flush_interval_secs: float = opt(60.0, min=10, max=3600)
