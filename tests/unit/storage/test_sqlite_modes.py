"""The history database's files are the agent's alone (issue 18 item 4): the database,
``-wal`` and ``-shm`` are 0600 whatever the umask, 0640 for a configured reader group,
and a symlink planted at the database's path is refused."""

from __future__ import annotations

import grp
import os
import stat
from pathlib import Path
from typing import Iterator

import pytest

from sysops_agent.clock import VirtualClock
from sysops_agent.storage.sqlite_history import SqliteHistory
from sysops_agent.storage.store import Store
from tests.unit.storage.test_sqlite import T0, fill_minute


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


async def write_and_keep_open(path: Path, **kw: str) -> SqliteHistory:
    h = SqliteHistory(path, clock=VirtualClock(T0), **kw)  # type: ignore[arg-type]
    await h.open()
    store = Store()
    fill_minute(store, T0)
    await h.flush(store, T0 + 60)
    return h


@pytest.mark.usefixtures("umask_022")
async def test_database_wal_and_shm_are_0600_under_umask_022(tmp_path: Path) -> None:
    path = tmp_path / "metrics.db"
    h = await write_and_keep_open(path)
    try:
        assert h.stats.rows_written > 0
        for name in ("metrics.db", "metrics.db-wal", "metrics.db-shm"):
            assert mode(tmp_path / name) == 0o600, name
    finally:
        await h.close()


@pytest.mark.usefixtures("umask_022")
async def test_a_reader_group_gives_0640_and_the_group(tmp_path: Path) -> None:
    group = grp.getgrgid(os.getgid()).gr_name
    path = tmp_path / "metrics.db"
    h = await write_and_keep_open(path, reader_group=group)
    try:
        for name in ("metrics.db", "metrics.db-wal", "metrics.db-shm"):
            assert mode(tmp_path / name) == 0o640, name
            assert (tmp_path / name).stat().st_gid == os.getgid()
    finally:
        await h.close()


async def test_an_existing_database_with_a_loose_mode_is_tightened(tmp_path: Path) -> None:
    path = tmp_path / "metrics.db"
    h = await write_and_keep_open(path)
    await h.close()
    path.chmod(0o666)
    h = await write_and_keep_open(path)
    await h.close()
    assert mode(path) == 0o600


async def test_a_symlink_at_the_database_path_is_refused(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    path = tmp_path / "metrics.db"
    path.symlink_to(victim)
    h = await write_and_keep_open(path)
    await h.close()
    assert h.stats.open_failures >= 1 and h.stats.rows_written == 0
    assert victim.read_text() == "precious\n"
