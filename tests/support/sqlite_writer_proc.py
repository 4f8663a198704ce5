"""A fast SqliteHistory writer for the SIGKILL durability test (run as a script).

``sqlite_writer_proc.py DB FIRST_MINUTE SERIES``: from the minute starting at
``FIRST_MINUTE`` (unix seconds) on, adds 6 samples per series per minute and
flushes after each minute, as fast as it can, printing ``flushed <minute>``
after each flush has returned. Time is simulated (no sleeping), so one real
second covers many minutes of history and a kill can land anywhere: in the
open, a migration, the purge, a transaction or between them.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from sysops_agent.clock import VirtualClock
from sysops_agent.model import make_labels
from sysops_agent.storage.sqlite_history import SqliteHistory
from sysops_agent.storage.store import Store


async def main(db: Path, first_minute: int, n_series: int) -> None:
    clock = VirtualClock(first_minute - 1)
    history = SqliteHistory(db, clock=clock)
    await history.open()
    if history.stats.open_failures:
        print(f"open failed: {history.stats.last_error}", flush=True)
        raise SystemExit(3)
    print("opened", flush=True)
    store = Store(max_samples=12)
    labels = [make_labels(pid=i, name=f"proc{i}") for i in range(n_series)]
    minute = first_minute
    while True:
        for s in range(0, 60, 10):
            for i, lb in enumerate(labels):
                store.add(minute + s, "process_rss_bytes", float(i * 1000 + s), lb)
        await history.flush(store, minute + 60)
        if history.stats.writes_failed:
            print(f"write failed: {history.stats.last_error}", flush=True)
            raise SystemExit(4)
        print(f"flushed {minute}", flush=True)
        minute += 60
        clock.set(minute)


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])))
