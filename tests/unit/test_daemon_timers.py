"""The daemon's timers at idle (issue 17): analysis only after new samples, on the collectors' grid."""

from __future__ import annotations

import asyncio
from typing import List

import pytest

from sysops_agent.analysis import AnalysisTick
from sysops_agent.clock import VirtualClock
from sysops_agent.config import load_config
from sysops_agent.daemon import ANALYSIS_LAG_SECS, Daemon
from sysops_agent.model import Alert, Sample
from sysops_agent.storage.store import Store

T0 = 1_780_000_000.0


class CountingTick(AnalysisTick):
    def __init__(self, clock: VirtualClock) -> None:
        super().__init__(())
        self.clock = clock
        self.at: List[float] = []

    def __call__(self, store: Store, now: float) -> List[Alert]:
        self.at.append(self.clock.monotonic())
        return []


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def test_no_analysis_pass_without_new_samples_and_passes_after_the_grid_point() -> None:
    clock = VirtualClock(T0)
    daemon = Daemon(load_config(None, env={}), None, clock=clock)
    tick = daemon.analysis = CountingTick(clock)
    interval = daemon.config.analyzer.interval_secs
    tasks = [
        asyncio.ensure_future(daemon._storage_loop()),
        asyncio.ensure_future(daemon._analyzer_loop()),
    ]
    try:
        await settle()
        daemon.samples.put(Sample(T0, "load_1m", 0.5))
        await settle()
        await clock.advance(interval)  # one pass, the lag after the grid point
        assert tick.at == [ANALYSIS_LAG_SECS]
        await clock.advance(3 * interval)  # nothing new: no pass
        assert tick.at == [ANALYSIS_LAG_SECS]
        daemon.samples.put(Sample(T0 + 40, "load_1m", 0.6))
        await settle()
        await clock.advance(interval)
        assert tick.at == [ANALYSIS_LAG_SECS, 4 * interval + ANALYSIS_LAG_SECS]
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def test_a_series_forgotten_as_stale_gets_a_pass_without_new_samples() -> None:
    clock = VirtualClock(T0)
    daemon = Daemon(load_config(None, env={}), None, clock=clock)
    tick = daemon.analysis = CountingTick(clock)
    daemon.store.note_interval("load_1m", 10.0)
    daemon.store.add(T0, "load_1m", 0.5)
    daemon.run_analyzers(only_if_new=True)  # the first pass always runs
    assert len(tick.at) == 1
    daemon.run_analyzers(only_if_new=True)
    assert len(tick.at) == 1
    clock.set(T0 + 31)  # three intervals without a sample: gone
    daemon.run_analyzers(only_if_new=True)
    assert len(tick.at) == 2 and daemon.store.get("load_1m") is None


async def test_self_metrics_are_never_two_samples_a_moment_apart() -> None:
    clock = VirtualClock(T0)
    clock.set(T0 + 9.8)  # just before a grid point of the 10 s interval
    daemon = Daemon(load_config(None, env={}), None, clock=clock)
    at: List[float] = []
    daemon.record_self_metrics = lambda: at.append(clock.monotonic())  # type: ignore[method-assign]
    task = asyncio.ensure_future(daemon._housekeeping_loop())
    try:
        await settle()
        await clock.advance(0.2)  # the grid point at 10 s: 0.2 s would look like the interval
        await clock.advance(10)
        await clock.advance(10)
        assert at == pytest.approx([9.8, 20.0, 30.0])
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
