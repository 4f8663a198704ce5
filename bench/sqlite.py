"""Size of 30 days of SQLite history for 300 series, and the cost of one minute's write.

    .venv/bin/python bench/sqlite.py [--days 30] [--series 300] [--dir DIR]

1. **Size.** Writes ``--days`` simulated days of one-minute rows for
   ``--series`` series through the agent's own write path (series lookup, the
   merging upsert, WAL), minute by minute in the same order the daemon does,
   so the B-tree fills the way it does on a host. To finish in about a minute
   it commits 60 minutes per transaction instead of one (the rows and their
   order are identical; the file size differs by well under 1 %, see
   ``--check-batching``). Then it runs one retention purge a day later
   (30-day retention: one day of rows deleted, ``incremental_vacuum``) to show
   the steady state. Prints the file size and bytes per stored point.
   With fewer ``--days`` the 30-day size is extrapolated linearly and the
   output says so.
2. **Write cost.** Times ``SqliteHistory.flush`` for one minute of 300 series
   (6 samples each, a 10 s interval) with real time and the real worker
   thread, on a fresh database and on the full one: the event-loop side
   (reading the ring buffers) and the whole flush (including the commit).

The value mix is that of a real host: a third floats that vary (percentages,
rates), a third large byte counts (7 significant digits are kept, so these
store as integers), and a third small integers or constants (counts, totals).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import List, Tuple

from sysops_agent.clock import SystemClock, VirtualClock
from sysops_agent.model import Labels, make_labels
from sysops_agent.storage import sqlite_writer as sqlite_db
from sysops_agent.storage.sqlite_history import Row, SqliteHistory, labels_json
from sysops_agent.storage.sqlite_writer import HistoryDatabase
from sysops_agent.storage.store import Store
from sysops_agent.units import round_stored

MINUTE = 60
DAY = 86400


def series_keys(n: int) -> List[Tuple[str, Labels, str]]:
    """(metric, labels, kind): float / bytes / small int, in equal shares."""
    out: List[Tuple[str, Labels, str]] = []
    for i in range(n):
        kind = ("float", "bytes", "int")[i % 3]
        metric = {
            "float": "process_cpu_percent",
            "bytes": "process_rss_bytes",
            "int": "process_threads",
        }[kind]
        out.append((metric, make_labels(pid=1000 + i, name=f"proc{i}"), kind))
    return out


def row_values(kind: str, base: float, rng: random.Random) -> Tuple[float, float, float]:
    if kind == "float":
        vals = [base + rng.uniform(-5, 5) for _ in range(3)]
    elif kind == "bytes":
        vals = [float(int(base + rng.uniform(-1e6, 1e6))) for _ in range(3)]
    else:
        vals = [float(int(base + rng.choice((0, 0, 0, 1))))] * 3
    return round_stored(sum(vals) / 3), round_stored(min(vals)), round_stored(max(vals))


def simulate(
    db: HistoryDatabase, keys: List[Tuple[str, Labels, str]], start: int, minutes: int, batch: int
) -> float:
    rng = random.Random(42)
    bases = {
        "float": [rng.uniform(1, 90) for _ in keys],
        "bytes": [rng.uniform(1e7, 4e9) for _ in keys],
        "int": [float(rng.randrange(1, 200)) for _ in keys],
    }
    ljs = [labels_json(labels) for _, labels, _ in keys]
    t0 = time.perf_counter()
    rows: List[Row] = []
    for m in range(minutes):
        ts = start + m * MINUTE
        for i, (metric, _, kind) in enumerate(keys):
            avg, lo, hi = row_values(kind, bases[kind][i], rng)
            rows.append((metric, ljs[i], ts, avg, lo, hi, 6))
        if (m + 1) % batch == 0 or m == minutes - 1:
            db._write(rows)
            rows = []
        if m % (DAY // MINUTE) == 0 and m:
            print(f"  ... day {m // (DAY // MINUTE)}", file=sys.stderr, flush=True)
    return time.perf_counter() - t0


def new_db(path: Path, retention_days: int = 30) -> HistoryDatabase:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    h = SqliteHistory(path, clock=VirtualClock(0), retention_days=retention_days)
    db = h._db
    assert db.open(), db.stats.last_error
    h._executor.shutdown()
    return db


def file_size(path: Path) -> int:
    return sum(os.path.getsize(f"{path}{s}") for s in ("", "-wal") if os.path.exists(f"{path}{s}"))


async def flush_costs(
    path: Path, keys: List[Tuple[str, Labels, str]], start: int, minutes: int
) -> Tuple[List[float], List[float]]:
    """Per minute: (collect ms, whole flush ms) with the real clock and worker thread."""
    history = SqliteHistory(path, clock=SystemClock(), since=start)
    await history.open()
    store = Store()
    rng = random.Random(7)
    collect_ms: List[float] = []
    flush_ms: List[float] = []
    probe = SqliteHistory(path, clock=SystemClock(), since=start)  # collect() only: no writes
    for m in range(minutes):
        ts0 = start + m * MINUTE
        for s in range(0, MINUTE, 10):
            for metric, labels, _ in keys:
                store.add(ts0 + s, metric, rng.uniform(0, 100), labels)
        t = time.perf_counter()
        probe.collect(store, ts0 + MINUTE)
        collect_ms.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        await history.flush(store, ts0 + MINUTE)
        flush_ms.append((time.perf_counter() - t) * 1000)
    await history.close()
    await probe.close()
    assert history.stats.writes_failed == 0, history.stats.last_error
    return collect_ms, flush_ms


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def summary(ms: List[float]) -> str:
    ms = sorted(ms)
    p95 = ms[int(len(ms) * 0.95) - 1]
    return f"median {statistics.median(ms):6.2f} ms   p95 {p95:6.2f} ms   max {ms[-1]:6.2f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--days", type=float, default=30.0)
    parser.add_argument("--series", type=int, default=300)
    parser.add_argument("--dir", help="where to put the database (default: a temporary directory)")
    parser.add_argument(
        "--write-minutes", type=int, default=120, help="minutes timed for the write cost"
    )
    parser.add_argument(
        "--cache-kib",
        type=int,
        default=sqlite_db.CACHE_KIB,
        help=f"SQLite page cache per connection (the agent's: {sqlite_db.CACHE_KIB}; SQLite's: 2000)",
    )
    parser.add_argument(
        "--check-batching",
        action="store_true",
        help="also write 2 days one minute per transaction and compare the size",
    )
    args = parser.parse_args()
    sqlite_db.CACHE_KIB = args.cache_kib

    tmp = tempfile.TemporaryDirectory(dir=args.dir)
    path = Path(tmp.name) / "metrics.db"
    keys = series_keys(args.series)
    minutes = int(args.days * DAY / MINUTE)
    start = (int(time.time()) - minutes * MINUTE) // MINUTE * MINUTE
    rows = minutes * args.series

    # 2a. write cost on an empty database (before the big fill)
    collect_ms, flush_ms = asyncio.run(
        flush_costs(path, keys, start - 10 * DAY, args.write_minutes)
    )
    print(f"write cost, fresh database, {args.series} series, {args.write_minutes} minutes:")
    print(f"  event loop (read ring buffers):  {summary(collect_ms)}")
    print(f"  whole flush (incl. commit):      {summary(flush_ms)}")

    if args.check_batching:
        for batch in (1, 60):
            db = new_db(path)
            simulate(db, keys, start, 2 * DAY // MINUTE, batch)
            db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # type: ignore[union-attr]
            print(f"2 days, {batch:2d} minute(s) per transaction: {file_size(path):,} bytes")
            db.close()

    # 1. size after `days` of rows
    db = new_db(path)
    print(
        f"simulating {args.days:g} days x {args.series} series = {rows:,} rows ...", file=sys.stderr
    )
    secs = simulate(db, keys, start, minutes, 60)
    assert db.conn is not None
    db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    size = file_size(path)
    print(f"database after {args.days:g} days ({rows:,} rows, written in {secs:.0f} s):")
    print(f"  file size:        {size:,} bytes = {size / 2**20:,.1f} MiB")
    print(
        f"  per stored point: {size / rows:.1f} bytes (one row: avg, min, max, count of one minute)"
    )
    if args.days != 30:
        per_day = size / args.days
        print(
            f"  30 days (EXTRAPOLATED linearly from {args.days:g} days): "
            f"{per_day * 30 / 2**20:,.0f} MiB"
        )

    # steady state: a day later, the daily purge removes the oldest day and vacuums
    end = start + minutes * MINUTE
    if args.days > 1:
        t = time.perf_counter()
        db.retention_secs = args.days * DAY - DAY
        deleted = db.purge(end)
        purge_secs = time.perf_counter() - t
        after = file_size(path)
        print(
            f"  daily purge of one day ({deleted:,} rows) + incremental_vacuum: {purge_secs:.1f} s,"
            f" file {size / 2**20:,.1f} -> {after / 2**20:,.1f} MiB"
        )
    db.close()

    # 2b. write cost on the full database
    rss_before = rss_bytes()
    collect_ms, flush_ms = asyncio.run(flush_costs(path, keys, end, args.write_minutes))
    grown = rss_bytes() - rss_before
    print(
        f"write cost, full database ({args.days:g} days), {args.write_minutes} minutes, "
        f"page cache {args.cache_kib} KiB:"
    )
    print(f"  event loop (read ring buffers):  {summary(collect_ms)}")
    print(f"  whole flush (incl. commit):      {summary(flush_ms)}")
    print(
        f"  RSS growth over those minutes:   {grown / 2**20:.1f} MiB "
        "(page cache, ring buffers of 300 series, pending rows)"
    )
    tmp.cleanup()


if __name__ == "__main__":
    main()
