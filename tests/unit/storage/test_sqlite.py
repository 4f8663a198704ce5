"""SQLite history: schema, per-minute aggregation, retention, and every failure mode."""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import time
from contextlib import closing
from pathlib import Path
from typing import List, Tuple

import pytest

from sysops_agent.clock import VirtualClock
from sysops_agent.config import load_config
from sysops_agent.model import make_labels
from sysops_agent.storage.config import sqlite_db_path
from sysops_agent.storage.sqlite_history import (
    SCHEMA_VERSION,
    SqliteHistory,
    aggregate,
    labels_json,
)
from sysops_agent.storage.sqlite_schema import CorruptDatabase, is_corruption
from sysops_agent.storage.sqlite_writer import utc_stamp
from sysops_agent.storage.store import Store

T0 = 1_780_000_000.0 - (1_780_000_000 % 60)  # a minute boundary
CPU = make_labels(core="0")
DISK = make_labels(mountpoint="/", device="sda1", fstype="ext4")

Row = Tuple[str, str, int, float, float, float, int]


def rows(path: Path) -> List[Row]:
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        return [
            (m, lj, int(ts), a, lo, hi, int(n))
            for m, lj, ts, a, lo, hi, n in conn.execute(
                "SELECT metric, labels_json, ts, avg, min, max, count FROM samples"
                " JOIN series ON series.id = samples.series_id ORDER BY metric, labels_json, ts"
            )
        ]


def fill_minute(store: Store, minute_start: float, n_series: int = 2, step: float = 10.0) -> None:
    """Samples every ``step`` seconds through one minute: value = seconds into the minute."""
    t = minute_start
    while t < minute_start + 60:
        store.add(t, "cpu_usage_percent", t - minute_start, CPU)
        for i in range(n_series - 1):
            store.add(t, "disk_usage_percent", 50.0 + i / 10, make_labels(mountpoint=f"/m{i}"))
        t += step


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(T0)


async def make(path: Path, clock: VirtualClock, **kw: object) -> SqliteHistory:
    h = SqliteHistory(path, clock=clock, **kw)  # type: ignore[arg-type]
    await h.open()
    return h


# --------------------------------------------------------------------------- schema


async def test_schema_wal_incremental_vacuum_and_primary_key(
    tmp_path: Path, clock: VirtualClock
) -> None:
    path = tmp_path / "data" / "metrics.db"  # the directory is created
    h = await make(path, clock)
    await h.close()
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA auto_vacuum").fetchone()[0] == 2  # incremental
    ddl = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'samples'").fetchone()[0]
    assert "WITHOUT ROWID" in ddl and "PRIMARY KEY (series_id, ts)" in ddl
    plan = " ".join(
        str(r[-1])
        for r in conn.execute(
            "EXPLAIN QUERY PLAN SELECT * FROM samples WHERE series_id = 1 AND ts >= 0 AND ts < 9"
        )
    )
    assert "PRIMARY KEY" in plan and "ts>? AND ts<?" in plan.replace("=", "")
    conn.close()
    assert path.stat().st_mode & 0o777 == 0o600  # the agent's user only (no sqlite_group)


async def test_reopen_keeps_data_and_schema(tmp_path: Path, clock: VirtualClock) -> None:
    path = tmp_path / "metrics.db"
    store = Store()
    h = await make(path, clock)
    fill_minute(store, T0)
    await h.flush(store, T0 + 60)
    await h.close()
    h2 = await make(path, clock)
    await h2.close()
    assert len(rows(path)) == 2
    assert h2.stats.open_failures == 0


async def test_newer_schema_is_left_alone(tmp_path: Path, clock: VirtualClock) -> None:
    path = tmp_path / "metrics.db"
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        conn.execute("INSERT INTO schema_version VALUES (99)")
    before = path.read_bytes()
    h = await make(path, clock)
    store = Store()
    fill_minute(store, T0)
    await h.flush(store, T0 + 60)
    await h.close()
    assert h.stats.open_failures == 2 and h.stats.writes_ok == 0
    assert "newer than this agent" in h.stats.last_error
    assert path.read_bytes() == before
    assert not list(tmp_path.glob("*.corrupt-*"))


def test_db_path_from_config() -> None:
    cfg = load_config(text='[agent]\ndata_dir = "/srv/agent"\n[storage]\nsqlite = true\n').config
    assert sqlite_db_path(cfg.storage, cfg.agent.data_dir) == "/srv/agent/metrics.db"
    cfg = load_config(text='[storage]\nsqlite_path = "/x/h.db"\n').config
    assert sqlite_db_path(cfg.storage, cfg.agent.data_dir) == "/x/h.db"


# --------------------------------------------------------------------------- aggregation


def test_aggregate_groups_by_minute() -> None:
    points = [(T0 + 0, 1.0), (T0 + 30, 3.0), (T0 + 59, 5.0), (T0 + 60, 10.0), (T0 + 130, 2.5)]
    assert aggregate(points) == [
        (int(T0), 3.0, 1.0, 5.0, 3),
        (int(T0) + 60, 10.0, 10.0, 10.0, 1),
        (int(T0) + 120, 2.5, 2.5, 2.5, 1),
    ]
    assert aggregate([]) == []


async def test_flush_writes_one_row_per_series_per_minute(
    tmp_path: Path, clock: VirtualClock
) -> None:
    path = tmp_path / "metrics.db"
    store = Store()
    h = await make(path, clock)
    fill_minute(store, T0, n_series=3)
    clock.set(T0 + 60)
    await h.flush(store, T0 + 60)
    fill_minute(store, T0 + 60, n_series=3)
    await h.flush(store, T0 + 120)
    await h.close()
    got = rows(path)
    cpu = [r for r in got if r[0] == "cpu_usage_percent"]
    # values 0, 10, ..., 50 each minute
    assert cpu == [
        ("cpu_usage_percent", '{"core":"0"}', int(T0), 25.0, 0.0, 50.0, 6),
        ("cpu_usage_percent", '{"core":"0"}', int(T0) + 60, 25.0, 0.0, 50.0, 6),
    ]
    disks = [r for r in got if r[0] == "disk_usage_percent"]
    assert len(disks) == 4 and {r[1] for r in disks} == {
        '{"mountpoint":"/m0"}',
        '{"mountpoint":"/m1"}',
    }
    assert h.stats.writes_ok == 2 and h.stats.rows_written == 6 and h.stats.writes_failed == 0


async def test_flush_mid_minute_merges_into_the_same_row(
    tmp_path: Path, clock: VirtualClock
) -> None:
    path = tmp_path / "metrics.db"
    store = Store()
    h = await make(path, clock)
    store.add(T0 + 5, "load_avg_1m", 1.0)
    store.add(T0 + 15, "load_avg_1m", 2.0)
    await h.flush(store, T0 + 20)
    for off, v in ((25, 3.0), (35, 4.0), (45, 5.0), (61, 7.0)):
        store.add(T0 + off, "load_avg_1m", v)
    await h.flush(store, T0 + 62)
    await h.flush(store, T0 + 63)  # nothing new: nothing written twice
    await h.close()
    assert rows(path) == [
        ("load_avg_1m", "{}", int(T0), 3.0, 1.0, 5.0, 5),
        ("load_avg_1m", "{}", int(T0) + 60, 7.0, 7.0, 7.0, 1),
    ]


async def test_merge_fallback_for_old_sqlite_matches_upsert(
    tmp_path: Path, clock: VirtualClock
) -> None:
    path = tmp_path / "metrics.db"
    store = Store()
    h = await make(path, clock)
    h._db.upsert = False  # what SQLite < 3.24 gets
    store.add(T0 + 5, "load_avg_1m", 1.0)
    await h.flush(store, T0 + 10)
    store.add(T0 + 25, "load_avg_1m", 4.0)
    store.add(T0 + 65, "load_avg_1m", 2.0)
    await h.flush(store, T0 + 70)
    await h.close()
    assert rows(path) == [
        ("load_avg_1m", "{}", int(T0), 2.5, 1.0, 4.0, 2),
        ("load_avg_1m", "{}", int(T0) + 60, 2.0, 2.0, 2.0, 1),
    ]


async def test_first_flush_writes_what_the_store_holds(tmp_path: Path, clock: VirtualClock) -> None:
    store = Store()
    store.add(T0 - 30, "load_avg_1m", 9.0)  # collected before the writer was created
    h = await make(tmp_path / "m.db", clock)
    store.add(T0 + 1, "load_avg_1m", 1.0)
    await h.flush(store, T0 + 60)
    await h.close()
    assert [r[2:] for r in rows(tmp_path / "m.db")] == [
        (int(T0) - 60, 9.0, 9.0, 9.0, 1),
        (int(T0), 1.0, 1.0, 1.0, 1),
    ]


async def test_samples_before_since_are_not_written(tmp_path: Path, clock: VirtualClock) -> None:
    store = Store()
    store.add(T0 - 120, "load_avg_1m", 9.0)  # an earlier writer's business
    h = await make(tmp_path / "m.db", clock, since=T0)
    store.add(T0 + 1, "load_avg_1m", 1.0)
    await h.flush(store, T0 + 60)
    await h.close()
    assert [r[2:] for r in rows(tmp_path / "m.db")] == [(int(T0), 1.0, 1.0, 1.0, 1)]


async def test_series_recreated_between_flushes_is_written_fully(
    tmp_path: Path, clock: VirtualClock
) -> None:
    store = Store()
    h = await make(tmp_path / "m.db", clock)
    for i in range(5):
        store.add(T0 + i, "process_rss_bytes", 100.0, make_labels(pid=1, name="x"))
    await h.flush(store, T0 + 10)
    store.drop_stale(T0 + 10_000, 60)  # the process vanished ...
    store.add(T0 + 30, "process_rss_bytes", 200.0, make_labels(pid=1, name="x"))  # ... and is back
    await h.flush(store, T0 + 40)
    await h.close()
    ((_, _, ts, avg, lo, hi, n),) = rows(tmp_path / "m.db")
    assert (ts, lo, hi, n) == (int(T0), 100.0, 200.0, 6)
    assert avg == pytest.approx(700 / 6)


async def test_labels_json_is_canonical() -> None:
    assert labels_json(make_labels(b="2", a="1")) == '{"a":"1","b":"2"}'
    assert labels_json(()) == "{}"


async def test_each_series_labels_are_encoded_once_and_forgotten_with_it(
    tmp_path: Path, clock: VirtualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 17: every flush encoded every series' labels again (JSON each minute)."""
    from sysops_agent.storage import sqlite_history

    encoded: List[object] = []
    real = sqlite_history.labels_json
    monkeypatch.setattr(
        sqlite_history, "labels_json", lambda labels: encoded.append(labels) or real(labels)
    )
    store = Store()
    h = await make(tmp_path / "m.db", clock)
    for minute in range(3):
        fill_minute(store, T0 + 60 * minute, n_series=3)
        h.collect(store, T0 + 60 * minute + 60)
    assert len(encoded) == 3  # three series, three minutes: encoded once each
    store.drop_stale(T0 + 3600, 60)  # every series gone
    h.collect(store, T0 + 3600)
    assert len(h._labels) == 0
    await h.close()


# --------------------------------------------------------------------------- retention


@pytest.mark.slow
async def test_daily_purge_deletes_old_rows_and_shrinks_the_file(
    tmp_path: Path, clock: VirtualClock
) -> None:
    path = tmp_path / "metrics.db"
    store = Store(max_samples=100_000)
    h = await make(path, clock, retention_days=1)
    # a day of per-minute rows for 40 short-lived series
    for m in range(0, 1440, 1):
        for s in range(40):
            store.add(T0 + m * 60, "process_rss_bytes", float(m * s), make_labels(pid=s, name="p"))
    await h.flush(store, T0 + 86400)  # first flush purges (nothing that old yet)
    assert h.stats.purges == 1 and h.stats.rows_purged == 0
    size_full = path.stat().st_size
    assert len(rows(path)) == 40 * 1440

    store2 = Store()
    store2.add(T0 + 2 * 86400 + 5, "load_avg_1m", 1.0)
    await h.flush(store2, T0 + 2 * 86400 + 10)  # < 24 h since the last purge? no: 1 day + 10 s
    assert h.stats.purges == 2
    assert h.stats.rows_purged == 40 * 1440
    await h.flush(store2, T0 + 2 * 86400 + 3600)  # an hour later: no second purge
    assert h.stats.purges == 2
    await h.close()
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT COUNT(*) FROM samples").fetchone()[0] == 1
    assert conn.execute("SELECT metric FROM series").fetchall() == [("load_avg_1m",)]
    assert conn.execute("PRAGMA freelist_count").fetchone()[0] == 0
    conn.close()
    assert path.stat().st_size < size_full / 10


# --------------------------------------------------------------------------- failures


async def test_locked_database_keeps_rows_and_retries(tmp_path: Path, clock: VirtualClock) -> None:
    path = tmp_path / "metrics.db"
    store = Store()
    h = await make(path, clock, busy_timeout_ms=50)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    fill_minute(store, T0)
    await h.flush(store, T0 + 60)
    assert h.stats.writes_failed == 1 and h.stats.pending_rows == 2
    assert "locked" in h.stats.last_error
    fill_minute(store, T0 + 60)
    await h.flush(store, T0 + 120)
    assert h.stats.writes_failed == 2 and h.stats.pending_rows == 4
    other.execute("COMMIT")
    other.close()
    fill_minute(store, T0 + 120)
    await h.flush(store, T0 + 180)
    await h.close()
    assert h.stats.writes_ok == 1 and h.stats.pending_rows == 0 and h.stats.rows_written == 6
    got = rows(path)
    assert len(got) == 6 and all(r[6] == 6 for r in got)  # nothing lost, nothing counted twice


async def test_a_blocked_write_does_not_block_the_event_loop(
    tmp_path: Path, clock: VirtualClock
) -> None:
    path = tmp_path / "metrics.db"
    store = Store()
    h = await make(path, clock, busy_timeout_ms=400)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    fill_minute(store, T0)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    task = asyncio.ensure_future(ticker())
    started = time.monotonic()
    await h.flush(store, T0 + 60)  # waits ~0.4 s for the lock, in the worker thread
    elapsed = time.monotonic() - started
    task.cancel()
    other.execute("COMMIT")
    other.close()
    await h.close()
    assert elapsed >= 0.3
    assert ticks >= 10  # the loop kept running meanwhile
    assert h.stats.writes_failed == 1


async def test_disk_full_keeps_rows_until_space_returns(
    tmp_path: Path, clock: VirtualClock
) -> None:
    path = tmp_path / "metrics.db"
    h = await make(path, clock)
    await h.close()
    with closing(sqlite3.connect(path)) as conn:
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
    # a "disk" with no room beyond the empty schema: SQLITE_FULL on the first insert
    h = await make(path, clock, pragmas=[f"max_page_count = {pages}"])
    store = Store()
    for m in range(3):
        fill_minute(store, T0 + 60 * m, n_series=300)
        await h.flush(store, T0 + 60 * (m + 1))
    assert h.stats.writes_failed == 3 and h.stats.writes_ok == 0
    assert "full" in h.stats.last_error
    assert h.stats.pending_rows == 900
    h.extra_pragmas.clear()  # space freed
    await h.flush(store, T0 + 240)
    await h.close()
    assert h.stats.writes_ok == 1 and h.stats.pending_rows == 0
    assert len(rows(path)) == 900


async def test_unwritable_directory_then_recovery(tmp_path: Path, clock: VirtualClock) -> None:
    # Root ignores permission bits, so make the directory impossible instead: a file is in its way.
    blocker = tmp_path / "data"
    blocker.write_text("not a directory")
    path = blocker / "metrics.db"
    h = await make(path, clock)
    assert h.stats.open_failures == 1
    store = Store()
    fill_minute(store, T0)
    await h.flush(store, T0 + 60)  # collection goes on; nothing raised
    assert h.stats.writes_failed == 1 and h.stats.pending_rows == 2
    assert "cannot open" in h.stats.last_error
    blocker.unlink()
    fill_minute(store, T0 + 60)
    await h.flush(store, T0 + 120)
    await h.close()
    assert len(rows(path)) == 4


async def test_directory_that_not_even_root_can_write(clock: VirtualClock) -> None:
    # /proc refuses new files to everyone, root included: the agent carries on regardless.
    h = await make(Path("/proc/metrics.db"), clock)
    store = Store()
    fill_minute(store, T0)
    await h.flush(store, T0 + 60)
    await h.close()
    assert h.stats.open_failures == 2 and h.stats.writes_failed == 1
    assert h.stats.pending_rows == 2 and "cannot open: " in h.stats.last_error


async def test_database_path_that_is_a_directory(tmp_path: Path, clock: VirtualClock) -> None:
    path = tmp_path / "metrics.db"
    path.mkdir()
    h = await make(path, clock)
    store = Store()
    fill_minute(store, T0)
    await h.flush(store, T0 + 60)
    await h.close()
    assert h.stats.open_failures == 2 and h.stats.writes_failed == 1
    assert h.stats.corrupt_recoveries == 0 and path.is_dir()


async def test_read_only_database_file(tmp_path: Path, clock: VirtualClock) -> None:
    path = tmp_path / "metrics.db"
    h = await make(path, clock)
    await h.close()
    # A read-only open (what a read-only mount gives even root): writes fail, are kept, retried.
    # SQLITE_READONLY, as on a read-only mount (which even root cannot write)
    h = await make(path, clock, pragmas=["query_only = ON"])
    store = Store()
    fill_minute(store, T0)
    await h.flush(store, T0 + 60)
    assert h.stats.writes_failed == 1 and h.stats.pending_rows == 2
    h.extra_pragmas.clear()
    await h.flush(store, T0 + 61)
    await h.close()
    assert len(rows(path)) == 2


async def test_garbage_file_is_moved_aside(tmp_path: Path, clock: VirtualClock) -> None:
    path = tmp_path / "metrics.db"
    garbage = b"this is not an sqlite database\n" * 200
    path.write_bytes(garbage)
    h = await make(path, clock)
    store = Store()
    fill_minute(store, T0)
    await h.flush(store, T0 + 60)
    await h.close()
    aside = list(tmp_path.glob("metrics.db.corrupt-*"))
    assert [p.name for p in aside] == [f"metrics.db.corrupt-{utc_stamp(T0)}"]
    assert aside[0].read_bytes() == garbage
    assert h.stats.corrupt_recoveries == 1 and h.stats.writes_ok == 1
    assert len(rows(path)) == 2


async def test_damaged_pages_fail_quick_check_and_are_moved_aside(
    tmp_path: Path, clock: VirtualClock
) -> None:
    path = tmp_path / "metrics.db"
    h = await make(path, clock)
    store = Store(max_samples=10_000)
    for m in range(60):
        fill_minute(store, T0 + 60 * m, n_series=20)
    await h.flush(store, T0 + 3600)
    await h.close()
    data = bytearray(path.read_bytes())
    page = 4096
    assert len(data) > 5 * page
    data[3 * page : 5 * page] = b"\xa5" * (2 * page)  # keep the header, smash two b-tree pages
    path.write_bytes(bytes(data))
    h = await make(path, clock)
    await h.close()
    assert h.stats.corrupt_recoveries == 1
    assert len(list(tmp_path.glob("metrics.db.corrupt-*"))) == 1
    assert rows(path) == []  # a fresh database


async def test_corruption_found_while_running_starts_a_new_file(
    tmp_path: Path, clock: VirtualClock
) -> None:
    path = tmp_path / "metrics.db"
    # a tiny page cache, so that the next write reads its pages from the file again
    h = await make(path, clock, pragmas=["cache_size = 1"])
    store = Store(max_samples=10_000)
    for m in range(30):
        fill_minute(store, T0 + 60 * m, n_series=20)
    await h.flush(store, T0 + 1800)
    with closing(sqlite3.connect(path, isolation_level=None)) as other:
        other.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = bytearray(path.read_bytes())
    page = 4096
    data[page:] = b"\xa5" * (len(data) - page)  # a failing disk: every page but the header
    path.write_bytes(bytes(data))
    fill_minute(store, T0 + 1800, n_series=20)
    await h.flush(store, T0 + 1860)
    await h.close()
    assert h.stats.corrupt_recoveries == 1, h.stats
    assert h.stats.writes_ok == 2
    assert {r[2] for r in rows(path)} == {int(T0) + 1800}  # the new file has the new minute


async def test_pending_rows_are_bounded(tmp_path: Path, clock: VirtualClock) -> None:
    blocker = tmp_path / "data"
    blocker.write_text("x")
    path = blocker / "metrics.db"
    h = await make(path, clock, max_pending_secs=600)
    store = Store()
    for m in range(30):
        fill_minute(store, T0 + 60 * m)
        await h.flush(store, T0 + 60 * (m + 1))
    # 10 minutes x 2 series are kept (the window is [now - 600, now))
    assert h.stats.pending_rows == 20
    assert h.stats.rows_dropped == 40
    blocker.unlink()
    await h.flush(store, T0 + 1800)
    await h.close()
    assert sorted({r[2] for r in rows(path)}) == [int(T0) + 60 * m for m in range(20, 30)]


async def test_failures_are_logged_rate_limited(
    tmp_path: Path, clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="sysops_agent.storage.sqlite_history")
    blocker = tmp_path / "data"
    blocker.write_text("x")
    h = await make(blocker / "metrics.db", clock)  # failure 1: logged
    store = Store()
    for m in range(5):  # 5 more failures within 10 minutes: not logged
        fill_minute(store, T0 + 60 * m)
        clock.set(T0 + 60 * (m + 1))
        await h.flush(store, clock.time())
    clock.set(T0 + 700)
    await h.flush(store, clock.time())  # 10 min later: logged again, with the count
    blocker.unlink()
    await h.flush(store, clock.time())
    await h.close()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2, warnings
    assert "5 similar failures not logged" in warnings[1]
    infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert any("writing again" in m for m in infos)


async def test_cancelled_flush_loses_and_duplicates_nothing(
    tmp_path: Path, clock: VirtualClock
) -> None:
    path = tmp_path / "metrics.db"
    store = Store()
    h = await make(path, clock, busy_timeout_ms=2000)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    fill_minute(store, T0)
    task = asyncio.ensure_future(h.flush(store, T0 + 60))
    await asyncio.sleep(0.05)
    task.cancel()  # the daemon cancels its flush loop at shutdown
    with pytest.raises(asyncio.CancelledError):
        await task
    other.execute("COMMIT")
    other.close()
    fill_minute(store, T0 + 60)
    await h.flush(store, T0 + 120)  # the shutdown flush
    await h.close()
    got = rows(path)
    assert len(got) == 4 and all(r[6] == 6 for r in got)


async def test_flush_after_close_is_a_no_op(tmp_path: Path, clock: VirtualClock) -> None:
    h = await make(tmp_path / "m.db", clock)
    await h.close()
    store = Store()
    fill_minute(store, T0)
    await h.flush(store, T0 + 60)
    await h.close()
    assert h.stats.writes_ok == 0


def test_corruption_is_told_apart_from_other_errors() -> None:
    # message fallback (Python < 3.11 has no sqlite_errorcode)
    assert is_corruption(sqlite3.DatabaseError("file is not a database"))
    assert is_corruption(sqlite3.DatabaseError("database disk image is malformed"))
    assert is_corruption(CorruptDatabase("*** in database main ***"))
    assert not is_corruption(sqlite3.OperationalError("database is locked"))
    assert not is_corruption(sqlite3.OperationalError("database or disk is full"))
    assert not is_corruption(OSError("Read-only file system"))


async def test_from_config_uses_the_storage_section(tmp_path: Path, clock: VirtualClock) -> None:
    cfg = load_config(
        text=f'[agent]\ndata_dir = "{tmp_path}"\n[storage]\nsqlite = true\nretention_days = 7\n'
        "sqlite_busy_timeout_ms = 250\nsqlite_max_pending_minutes = 5\n"
    )
    assert not cfg.problems
    h = SqliteHistory.from_config(cfg.config.storage, cfg.config.agent.data_dir, clock=clock)
    await h.open()
    await h.close()
    assert h.path == str(tmp_path / "metrics.db") and os.path.isfile(h.path)
    db = h._db
    assert (db.retention_secs, db.busy_timeout_ms, db.max_pending_secs) == (7 * 86400, 250, 300)
