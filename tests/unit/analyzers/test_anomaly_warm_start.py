"""Warm start of the anomaly analyzer from the SQLite one-minute history (issue 14).

A daemon restart loses the in-memory store; the analyzer rebuilds its
baselines, seasonal profiles and novelty peaks from SQLite. Measured on a
weekday traffic series: restarted half-way, with and without the warm start,
compared with the run that never restarted.
"""

from __future__ import annotations

import functools
import json
import math
import random
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import pytest

from sysops_agent.analyzers.anomaly import AnomalyAnalyzer
from sysops_agent.analyzers.registry import build_analyzer
from sysops_agent.clock import VirtualClock
from sysops_agent.config import load_config
from sysops_agent.model import AlertState
from sysops_agent.storage.sqlite_writer import HistoryDatabase, HistoryStats
from sysops_agent.storage.store import Store

#: the anomaly analyzer from a whole configuration (its section and the shared context)
build = functools.partial(build_analyzer, "anomaly")

MIN = 60.0
HOUR = 3600.0
DAY = 86400.0
MONDAY = 1_699_228_800.0  # 2023-11-06 00:00 UTC
METRIC = "http_requests_per_second"


def traffic(ts: float, rng: random.Random) -> float:
    """980/s at noon on weekdays, 200/s at night, half of it at weekends; ±3 %."""
    in_day = ts % DAY
    weekday = int(((ts - MONDAY) % (7 * DAY)) // DAY) < 5
    level = 200.0 + 780.0 * max(0.0, math.sin(math.pi * (in_day - 6 * HOUR) / (12 * HOUR)))
    return level * (1.0 if weekday else 0.5) * (1.0 + rng.gauss(0, 0.03))


def series(days: float, step: float, seed: int) -> List[Tuple[float, float]]:
    rng = random.Random(seed)
    return [
        (MONDAY + i * step, traffic(MONDAY + i * step, rng)) for i in range(int(days * DAY / step))
    ]


def write_history(path: Path, points: List[Tuple[float, float]], now: float) -> None:
    """The one-minute rows the daemon's SQLite history would hold for ``points``."""
    minutes: Dict[int, List[float]] = {}
    for ts, x in points:
        minutes.setdefault(int(ts // 60) * 60, []).append(x)
    db = HistoryDatabase(
        str(path),
        retention_secs=30 * DAY,
        clock=VirtualClock(now),
        busy_timeout_ms=1000,
        max_pending_secs=3600,
        pragmas=(),
        stats=HistoryStats(),
    )
    assert db.open()
    db.add([(METRIC, json.dumps({}), m, sum(v) / len(v), min(v), max(v), len(v))
            for m, v in sorted(minutes.items())])  # fmt: skip
    db.write_pending(now)
    db.close()


def alerts_after(
    points: List[Tuple[float, float]], restart: Optional[float], db: Optional[Path]
) -> List[float]:
    """Firing times at or after ``restart``; the daemon restarts there (store lost)."""
    config = load_config(text="").config
    store = Store()
    analyzer: AnomalyAnalyzer = build(config, "web1")
    fired: List[float] = []
    restarted = restart is None
    for ts, x in points:
        if not restarted and restart is not None and ts >= restart:
            store = Store()
            analyzer = build(config, "web1")
            if db is not None:
                stats = analyzer.warm_start(str(db), store, ts)
                assert stats.series == 1 and stats.points > 0
            restarted = True
        store.add(ts, METRIC, x)
        fired += [a.timestamp for a in analyzer.analyze(store, ts) if a.state is AlertState.FIRING]
    return [t for t in fired if restart is None or t >= restart]


@pytest.mark.slow
def test_warm_start_from_sqlite_closes_the_blind_spot_of_a_restart(tmp_path: Path) -> None:
    step = 30.0
    points = series(17, step, seed=11)
    restart = MONDAY + 14 * DAY + 3 * HOUR  # Monday 03:00 of the third week
    before = [p for p in points if p[0] < restart]
    db = tmp_path / "metrics.db"
    write_history(db, before, restart)

    plain = [t for t in alerts_after(points, None, None) if t >= restart]
    cold = alerts_after(points, restart, None)
    warm = alerts_after(points, restart, db)
    # never restarted: the third week is quiet
    assert plain == []
    # restarted without the history: the first day's rise is "news" again
    assert len(cold) >= 1
    # restarted from the history: as if it had never stopped
    assert warm == plain


def test_missing_or_foreign_database_is_no_warm_start(tmp_path: Path) -> None:
    analyzer: AnomalyAnalyzer = build(load_config(text="").config, "web1")
    assert analyzer.warm_start(str(tmp_path / "none.db"), Store(), MONDAY).series == 0
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database at all" * 100)
    assert analyzer.warm_start(str(junk), Store(), MONDAY).series == 0


async def test_daemon_warms_the_analyzer_from_its_history_database(tmp_path: Path) -> None:
    from sysops_agent.daemon import Daemon
    from sysops_agent.model import SeriesKey

    db = tmp_path / "metrics.db"
    now = MONDAY + 3 * DAY
    write_history(db, series(3, 60.0, seed=12), now)
    text = f'[storage]\nsqlite = true\nsqlite_path = "{db}"\n'
    daemon = Daemon(load_config(text=text), None, clock=VirtualClock(now))
    daemon._start_analyzers()
    (analyzer,) = [a for a in daemon.analysis.analyzers if isinstance(a, AnomalyAnalyzer)]
    model = analyzer.model(SeriesKey(METRIC, ()))
    assert model is not None and model.n == 3 * 288  # three days of 5-minute buckets
    assert now - model.last_ts < 300
    # without the SQLite history configured, nothing is read
    plain = Daemon(load_config(text=""), None, clock=VirtualClock(now))
    plain._start_analyzers()
    (analyzer,) = [a for a in plain.analysis.analyzers if isinstance(a, AnomalyAnalyzer)]
    assert analyzer.model(SeriesKey(METRIC, ())) is None
