"""SIGKILL at random moments, in a loop: the database always opens, passes
``PRAGMA integrity_check`` and has every flush that completed before the kill.

Two writers are killed: a fast writer script driving :class:`SqliteHistory`
with simulated time (hundreds of flushes a second, so kills land in opens,
purges and transactions alike, and the check can be exact), and the real
daemon (``sysops-agent run`` with one-second flushes).
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Dict, List, Tuple

from sysops_agent.clock import VirtualClock
from sysops_agent.storage.sqlite_history import SqliteHistory
from tests.support import sqlite_writer_proc
from tests.support.agentproc import AgentProcess, agent_config, minimal_procfs

WRITER = Path(sqlite_writer_proc.__file__)
T0 = 1_780_000_000 - (1_780_000_000 % 60)
SERIES = 40


def integrity(db: Path) -> List[Tuple[str, ...]]:
    if not db.exists():  # killed before it was created
        return [("ok",)]
    conn = sqlite3.connect(db)  # a normal open: replays the WAL like the next agent start
    try:
        return [tuple(r) for r in conn.execute("PRAGMA integrity_check")]
    finally:
        conn.close()


def minutes(db: Path) -> List[Tuple[int, int, int, int]]:
    """Per minute: (ts, series present, min count, max count)."""
    if not db.exists():
        return []
    conn = sqlite3.connect(db)
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        # the schema is created in one transaction: all of it or nothing
        assert tables in (set(), {"schema_version", "series", "samples"}), tables
        if not tables:
            return []
        return [
            (int(ts), int(n), int(lo), int(hi))
            for ts, n, lo, hi in conn.execute(
                "SELECT ts, COUNT(*), MIN(count), MAX(count) FROM samples GROUP BY ts ORDER BY ts"
            )
        ]
    finally:
        conn.close()


def reopens_cleanly(db: Path) -> bool:
    async def go() -> bool:
        h = SqliteHistory(db, clock=VirtualClock(T0))
        await h.open()
        await h.close()
        return h.stats.open_failures == 0 and h.stats.corrupt_recoveries == 0

    return asyncio.run(go())


def test_sigkill_fast_writer_loses_at_most_the_flush_in_flight(tmp_path: Path) -> None:
    rng = random.Random(20261127)
    db = tmp_path / "metrics.db"
    next_minute = T0
    outcomes: Dict[str, int] = {
        "killed before the first flush": 0,
        "killed after a flush": 0,
        "in-flight flush kept": 0,
        "in-flight flush lost": 0,
    }
    started = time.monotonic()
    for iteration in range(10):
        proc = subprocess.Popen(
            [sys.executable, str(WRITER), str(db), str(next_minute), str(SERIES)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        lines: List[str] = []
        opened = threading.Event()

        def pump(
            p: subprocess.Popen[str] = proc, sink: List[str] = lines, ev: threading.Event = opened
        ) -> None:
            assert p.stdout is not None
            for line in p.stdout:
                sink.append(line.strip())
                ev.set()

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        if iteration % 2:  # anywhere after the open: in or between transactions, in the purge
            assert opened.wait(15), "writer did not start"
            time.sleep(rng.uniform(0.0, 0.4))
        else:  # anywhere from the start: imports, directory and file creation, migration, open
            time.sleep(rng.uniform(0.0, 0.5))
        proc.kill()
        proc.wait(10)
        reader.join(5)
        assert proc.stdout is not None and proc.stderr is not None
        err = proc.stderr.read()
        proc.stdout.close()
        proc.stderr.close()
        assert not any(ln.startswith(("open failed", "write failed")) for ln in lines), (
            lines[-3:],
            err,
        )

        assert integrity(db) == [("ok",)], f"iteration {iteration}"
        got = minutes(db)
        flushed = [int(ln.split()[1]) for ln in lines if ln.startswith("flushed ")]
        # every minute so far is there, complete (all series), counted once (6 samples)
        assert [m[0] for m in got] == list(range(T0, got[-1][0] + 60, 60)) if got else True
        assert all(m[1:] == (SERIES, 6, 6) for m in got), f"iteration {iteration}: {got[-3:]}"
        last = got[-1][0] if got else T0 - 60
        if flushed:
            outcomes["killed after a flush"] += 1
            # the last flush reported before the kill is durable; at most the one in flight is extra
            assert flushed[-1] in (last, last - 60), (iteration, flushed[-1], last)
            outcomes["in-flight flush kept" if last > flushed[-1] else "in-flight flush lost"] += 1
        else:
            assert last in (next_minute - 60, next_minute), (iteration, last)
            outcomes["killed before the first flush"] += 1
        next_minute = last + 60
    assert reopens_cleanly(db)
    total = len(minutes(db))
    elapsed = time.monotonic() - started
    print(
        f"\nfast writer: 10 SIGKILLs, {total} minutes x {SERIES} series intact, {outcomes}, {elapsed:.1f}s"
    )
    assert total > 10


def test_sigkill_real_daemon_keeps_every_completed_flush(tmp_path: Path) -> None:
    rng = random.Random(6)
    proc_root = minimal_procfs(tmp_path)
    config = agent_config(tmp_path, proc_root)
    text = config.read_text()
    assert "[storage]\nsqlite = false\n" in text
    config.write_text(
        text.replace(
            "[storage]\nsqlite = false\n", "[storage]\nsqlite = true\nflush_interval_secs = 1\n"
        )
    )
    db = tmp_path / "data" / "metrics.db"
    before: Dict[int, int] = {}  # minute -> samples of memory_usage_percent
    kills = 0
    for iteration in range(5):
        agent = AgentProcess(["run", "--config", str(config)])
        try:
            agent.wait_stderr("SQLite history", timeout=20)
            opened_at = time.time()
            time.sleep(rng.uniform(2.0, 4.0))  # flushes run every second
        finally:
            agent.proc.kill()
            agent.stop()  # reaps it and joins the output readers
            for pipe in (agent.proc.stdout, agent.proc.stderr):
                if pipe is not None:
                    pipe.close()
        kills += 1
        assert integrity(db) == [("ok",)], f"iteration {iteration}"
        conn = sqlite3.connect(db)
        now_counts = {
            int(ts): int(n)
            for ts, n in conn.execute(
                "SELECT ts, count FROM samples JOIN series ON series.id = series_id"
                " WHERE metric = 'memory_usage_percent'"
            )
        }
        conn.close()
        # nothing committed earlier is lost; each iteration adds samples; one per second at most
        for ts, n in before.items():
            assert now_counts.get(ts, 0) >= n, (iteration, ts)
        assert sum(now_counts.values()) > sum(before.values()), (
            f"iteration {iteration} wrote nothing"
        )
        assert all(n <= 62 for n in now_counts.values()), now_counts
        # the minute of a moment well before the kill is there (flushes run every second)
        # what was collected when the database opened went out with the first flush, a
        # second later, and survived every kill since (the collectors start before SQLite)
        assert int(opened_at) // 60 * 60 in now_counts, (iteration, opened_at, sorted(now_counts))
        before = now_counts
    assert reopens_cleanly(db)
    print(
        f"\nreal daemon: {kills} SIGKILLs, {sum(before.values())} samples in {len(before)} minute rows intact"
    )
