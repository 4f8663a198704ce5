"""The history reader opens a database by a ``file:`` URI without importing urllib.parse."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote

import pytest

from sysops_agent.clock import VirtualClock
from sysops_agent.storage.sqlite_history import SqliteHistory
from sysops_agent.storage.sqlite_reader import HistoryReader, uri_quote
from sysops_agent.storage.store import Store
from tests.unit.storage.test_sqlite import T0, fill_minute


@pytest.mark.parametrize(
    "path",
    ["/var/lib/sysops-agent/metrics.db", "/a b/c?d#e%f&g=h", "/tmp/ünï ☃/x.db", "rel/~_.-/db"],
)
def test_uri_quote_is_urllib_quote(path: str) -> None:
    assert uri_quote(path) == quote(path)


async def test_a_database_under_a_name_that_needs_escaping_is_read(tmp_path: Path) -> None:
    folder = tmp_path / "his tory?#%"
    folder.mkdir()
    path = folder / "metrics.db"
    store = Store()
    fill_minute(store, T0)
    h = SqliteHistory(str(path), clock=VirtualClock(T0))
    await h.open()
    await h.flush(store, T0 + 60)
    await h.close()
    reader = HistoryReader(path)
    try:
        assert reader.path == os.fspath(path)
        assert "cpu_usage_percent" in reader.metrics()
    finally:
        reader.close()
