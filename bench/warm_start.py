"""Warm start of the anomaly analyzer from SQLite, measured (issue 14).

Replays a weekday traffic series (17 days at 30 s), restarts the daemon
half-way through the third week (the in-memory store is lost) with and
without the warm start from the one-minute history, and compares the alerts
after the restart with those of the run that never stopped. Then times the
warm start itself: 300 series x 15 days of one-minute rows (read as 5-minute buckets).

    .venv/bin/python bench/warm_start.py
"""

from __future__ import annotations

import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from tests.unit.analyzers.test_anomaly_warm_start import (
    DAY,
    HOUR,
    MONDAY,
    alerts_after,
    series,
    write_history,
)

from sysops_agent.analyzers.anomaly import AnomalyAnalyzer, build
from sysops_agent.clock import VirtualClock
from sysops_agent.config import load_config
from sysops_agent.storage.sqlite_writer import HistoryDatabase, HistoryStats
from sysops_agent.storage.store import Store


def stamp(ts: float) -> str:
    return time.strftime("%a %d %H:%M", time.gmtime(ts))


def compare() -> None:
    points = series(17, 30.0, seed=11)
    for restart in (MONDAY + 14 * DAY + 3 * HOUR, MONDAY + 15 * DAY + 11 * HOUR):
        with tempfile.TemporaryDirectory() as tmp:
            db = Path(tmp) / "metrics.db"
            write_history(db, [p for p in points if p[0] < restart], restart)
            plain = [t for t in alerts_after(points, None, None) if t >= restart]
            cold = alerts_after(points, restart, None)
            warm = alerts_after(points, restart, db)
        print(f"restart at {stamp(restart)}: alerts after it")
        for name, got in (("never restarted", plain), ("cold restart", cold), ("warm start", warm)):
            extra = sorted(set(got) - set(plain))
            text = ", ".join(stamp(t) for t in extra) or "-"
            print(f"  {name:<16} {len(got):>3} alerts   extra vs never restarted: {text}")


def timing(n_series: int = 300, days: float = 15.0) -> None:
    now = MONDAY + days * DAY
    rng = random.Random(3)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "metrics.db")
        db = HistoryDatabase(
            path,
            retention_secs=30 * DAY,
            clock=VirtualClock(now),
            busy_timeout_ms=1000,
            max_pending_secs=3600,
            pragmas=(),
            stats=HistoryStats(),
        )
        assert db.open()
        for s in range(n_series):
            labels = json.dumps({"i": str(s)}, sort_keys=True, separators=(",", ":"))
            db.add(
                [
                    ("net_rx_bytes_per_second", labels, int(MONDAY) + m * 60, v, v, v, 6)
                    for m in range(int(days * 1440))
                    for v in (1e6 + rng.gauss(0, 1e4),)
                ]
            )
        db.write_pending(now)
        db.close()
        analyzer: AnomalyAnalyzer = build(load_config(text="").config, "h")
        stats = analyzer.warm_start(path, Store(), now)
    per = stats.secs / max(stats.points, 1) * 1e6
    print(
        f"warm start: {stats.series} series, {stats.points:,} five-minute points in "
        f"{stats.secs:.1f} s ({per:.2f} µs a point)"
    )


def main() -> int:
    compare()
    timing()
    return 0


if __name__ == "__main__":
    sys.exit(main())
