"""The runtime pieces: sample queue, collector scheduler, PID file, collect CLI."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import List

import pytest

from sysops_agent.cli import main
from sysops_agent.clock import VirtualClock
from sysops_agent.collectors.base import CollectorStats
from sysops_agent.model import Sample
from sysops_agent.pidfile import PidFile, PidFileError
from sysops_agent.queues import DropOldestQueue
from sysops_agent.scheduler import CollectorScheduler


async def test_sample_queue_drops_oldest_counts_and_warns_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]
    q: DropOldestQueue[Sample] = DropOldestQueue(
        5, monotonic=lambda: now[0], what="samples", warn_interval=60
    )
    caplog.set_level(logging.WARNING)
    q.put_many(Sample(float(i), "m", float(i)) for i in range(8))
    q.put_many([Sample(8.0, "m", 8.0)])
    assert q.dropped == 4
    assert [s.value for s in q.drain()] == [4.0, 5.0, 6.0, 7.0, 8.0]
    warnings = [r.getMessage() for r in caplog.records]
    assert warnings == ["Dropped 3 samples due to backpressure"]  # rate-limited: one line
    now[0] = 61.0
    q.put_many(Sample(float(i), "m", 0.0) for i in range(7))
    assert caplog.records[-1].getMessage() == "Dropped 3 samples due to backpressure"


async def test_drop_warnings_are_one_line_per_10_minutes_with_the_count(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]
    q: DropOldestQueue[int] = DropOldestQueue(1000, monotonic=lambda: now[0], what="alerts")
    caplog.set_level(logging.WARNING)
    for i in range(50_000):  # one alert at a time, as the log watcher used to put them
        q.put(i)
    assert q.dropped == 49_000
    assert [r.getMessage() for r in caplog.records] == ["Dropped 1 alerts due to backpressure"]
    now[0] = 599.0
    q.report()
    assert len(caplog.records) == 1
    now[0] = 600.0
    q.report()  # the daemon's housekeeping tick: the rest, with the count, in one line
    assert [r.getMessage() for r in caplog.records][1:] == [
        "Dropped 48999 alerts due to backpressure"
    ]
    now[0] = 5000.0
    q.report()
    q.drain()
    q.put(1)
    assert len(caplog.records) == 2  # nothing more to say


class FakeCollector:
    """A collector whose behaviour the test scripts: values, exceptions or blocking."""

    def __init__(self, name: str, interval: float = 10.0) -> None:
        self.name = name
        self.interval = interval
        self.stats = CollectorStats()
        self.calls = 0
        self.fail = False
        self.block = threading.Event()
        self.block.set()

    def collect(self, now: float) -> List[Sample]:
        self.calls += 1
        self.block.wait(5)
        if self.fail:
            raise RuntimeError("boom")
        return [Sample(now, f"{self.name}_value", float(self.calls))]


@pytest.mark.slow
async def test_scheduler_isolates_failures_and_never_overlaps(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = VirtualClock(start=1000.0)
    got: List[Sample] = []
    good, bad, slow = (
        FakeCollector("good"),
        FakeCollector("bad"),
        FakeCollector("slow", interval=2.5),
    )
    bad.fail = True
    sched = CollectorScheduler([good, bad, slow], got.extend, clock)
    await sched.run_once(good)
    await sched.run_once(bad)
    assert [s.metric for s in got] == ["good_value", "agent_collect_duration_seconds"]
    assert sched.failures == {"bad": 1}
    assert any("collector bad failed: boom" in r.getMessage() for r in caplog.records)

    # A run that does not return within its timeout is abandoned, and the next tick
    # is skipped while it is still in progress (no overlapping runs).
    slow.block.clear()
    await sched.run_once(slow)  # times out after MIN_TIMEOUT (2 s) of real time
    assert sched.failures["slow"] == 1
    await sched.run_once(slow)
    assert slow.calls == 1
    assert any("previous run still in progress" in r.getMessage() for r in caplog.records)
    slow.block.set()
    await asyncio.sleep(0.05)
    await sched.run_once(slow)
    assert slow.calls == 2
    await sched.stop()


async def test_scheduler_runs_each_collector_at_its_interval() -> None:
    clock = VirtualClock(start=1000.0)
    got: List[Sample] = []
    fast, slow = FakeCollector("fast", 10), FakeCollector("slow", 60)
    sched = CollectorScheduler([fast, slow], got.extend, clock)

    async def settle(fast_calls: int, slow_calls: int) -> None:
        """Wait (in real time, the runs happen in threads) for the runs due by now."""
        deadline = time.monotonic() + 10

        def done() -> tuple[int, int]:
            return (
                sum(1 for s in got if s.metric == "fast_value"),
                sum(1 for s in got if s.metric == "slow_value"),
            )

        while done() != (fast_calls, slow_calls):
            assert time.monotonic() < deadline, done()
            await asyncio.sleep(0.005)
        for _ in range(10):  # let the loops register their next sleep on the clock
            await asyncio.sleep(0)

    sched.start()
    await settle(1, 1)  # both run at once on start
    for tick in range(1, 13):  # two virtual minutes
        await clock.advance(10)
        await settle(1 + tick, 1 + tick // 6)
    await sched.stop()
    assert (fast.calls, slow.calls) == (13, 3)
    assert sum(1 for s in got if s.metric == "fast_value") == 13


def test_pid_file(tmp_path: Path) -> None:
    path = tmp_path / "run" / "agent.pid"
    pf = PidFile(path)
    pf.acquire()
    assert path.read_text() == f"{os.getpid()}\n"
    pf.release()
    assert not path.exists()
    path.write_text("1\n")  # pid 1 is alive
    with pytest.raises(PidFileError, match="another sysops-agent is running"):
        PidFile(path).acquire()


def test_collect_once_json_against_a_fixture_tree(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.support.agentproc import agent_config, minimal_procfs

    proc = minimal_procfs(tmp_path, used_percent=25.0)
    config = agent_config(tmp_path, proc)
    assert main(["collect", "--once", "--json", "--interval", "0", "--config", str(config)]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    by_metric = {d["metric"]: d for d in lines}
    assert set(lines[0]) == {"ts", "metric", "labels", "value"}
    assert by_metric["memory_usage_percent"]["value"] == pytest.approx(25.0, abs=0.01)
    assert by_metric["load_avg_15m"]["value"] == pytest.approx(0.30)
    assert by_metric["uptime_seconds"]["value"] == pytest.approx(12345.67)
