"""The collector scheduler's timers (issue 17): one tick per interval, on one grid."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from typing import Any, Callable, List

import pytest

from sysops_agent.clock import VirtualClock, until_next
from sysops_agent.model import Sample
from sysops_agent.scheduler import CollectorScheduler
from tests.unit.test_runtime import FakeCollector


async def settle(done: Callable[[], bool]) -> None:
    """Wait (in real time: the runs happen in threads) until ``done()``, then let loops re-arm."""
    deadline = time.monotonic() + 10
    while not done():
        assert time.monotonic() < deadline
        await asyncio.sleep(0.005)
    for _ in range(10):
        await asyncio.sleep(0)


@pytest.mark.parametrize(
    ("now", "interval", "offset", "expected"),
    [
        (0.0, 10.0, 0.0, 10.0),  # on a grid point: a whole interval
        (3.0, 10.0, 0.0, 7.0),
        (59.5, 30.0, 0.0, 0.5),
        (10.5, 10.0, 1.0, 0.5),  # the grid shifted by one second
        (11.0, 10.0, 1.0, 10.0),
    ],
)
def test_until_next_is_the_next_grid_point(
    now: float, interval: float, offset: float, expected: float
) -> None:
    clock = VirtualClock()
    clock.set(clock.time() + now)
    assert until_next(clock, interval, offset) == pytest.approx(expected)


async def test_collectors_with_one_interval_share_one_tick_and_one_batch() -> None:
    clock = VirtualClock()
    batches: List[List[Sample]] = []
    a, b, c = FakeCollector("a"), FakeCollector("b"), FakeCollector("c")
    slow = FakeCollector("slow", 30)
    sched = CollectorScheduler([a, b, c, slow], batches.append, clock)
    sched.start()
    await settle(lambda: len(batches) == 2)  # the 10 s group and the 30 s one
    assert sched.first_cycle.is_set()
    ten = [s.metric for s in batches[0] if s.metric.endswith("_value")]
    assert ten == ["a_value", "b_value", "c_value"]
    await clock.advance(10)
    await settle(lambda: len(batches) == 3)
    assert [s.metric for s in batches[2] if s.metric.endswith("_value")] == ten
    await sched.stop()


async def test_ticks_lie_on_the_interval_grid_whatever_the_start() -> None:
    clock = VirtualClock()
    clock.set(clock.time() + 3)  # started 3 s past a grid point
    got: List[Sample] = []
    fast = FakeCollector("fast", 10)
    sched = CollectorScheduler([fast], got.extend, clock)
    sched.start()
    await settle(lambda: fast.calls == 1)
    await clock.advance(7)  # the next grid point, not 10 s after the start
    await settle(lambda: fast.calls == 2)
    await clock.advance(9.9)
    await asyncio.sleep(0.05)
    assert fast.calls == 2
    await clock.advance(0.1)
    await settle(lambda: fast.calls == 3)
    await sched.stop()


@pytest.mark.slow
async def test_a_hung_collector_does_not_lose_its_group_s_samples() -> None:
    clock = VirtualClock()
    batches: List[List[Sample]] = []
    good, hung = FakeCollector("good", 2.5), FakeCollector("hung", 2.5)
    hung.block.clear()
    sched = CollectorScheduler([good, hung], batches.append, clock)
    await sched.run_group([good, hung])  # waits MIN_TIMEOUT (2 s) of real time for "hung"
    assert [s.metric for s in batches[0]] == ["good_value", "agent_collect_duration_seconds"]
    assert sched.failures == {"hung": 1}
    assert sched.last_error["hung"] == "no result after 2.0s"
    hung.block.set()
    await sched.stop()


async def test_a_grid_point_less_than_half_an_interval_after_a_run_is_skipped() -> None:
    clock = VirtualClock()
    clock.set(clock.time() + 9.9)  # started just before a grid point
    fast = FakeCollector("fast", 10)
    sched = CollectorScheduler([fast], [].extend, clock)
    sched.start()
    await settle(lambda: fast.calls == 1)
    await clock.advance(0.1)  # the grid point at 10 s: a rate over 0.1 s would be noise
    await asyncio.sleep(0.05)
    assert fast.calls == 1
    await clock.advance(10)  # the next one
    await settle(lambda: fast.calls == 2)
    await sched.stop()


def test_until_next_skips_a_grid_point_closer_than_at_least() -> None:
    clock = VirtualClock()
    clock.set(clock.time() + 9.8)
    assert until_next(clock, 10.0, at_least=5.0) == pytest.approx(10.2)
    assert until_next(clock, 10.0) == pytest.approx(0.2)


class KernelCounterCollector(FakeCollector):
    """A collector that cannot block: the scheduler may run it with others in one job."""

    may_block = False

    def __init__(self, name: str, interval: float = 10.0) -> None:
        super().__init__(name, interval)
        self.threads: List[int] = []

    def collect(self, now: float) -> List[Sample]:
        self.threads.append(threading.get_ident())
        return super().collect(now)


class CountingExecutor(concurrent.futures.ThreadPoolExecutor):
    def __init__(self) -> None:
        super().__init__(max_workers=4)
        self.jobs = 0

    def submit(self, *args: Any, **kwargs: Any) -> concurrent.futures.Future[Any]:
        self.jobs += 1
        return super().submit(*args, **kwargs)


async def test_collectors_that_cannot_block_share_one_worker_job() -> None:
    """Issue 17: a thread job per collector per tick was a third of the idle CPU's hand-offs."""
    clock = VirtualClock()
    batches: List[List[Sample]] = []
    cpu, mem, load = (KernelCounterCollector(n) for n in ("cpu", "memory", "load"))
    disk = FakeCollector("disk_usage")  # statvfs may hang: a thread of its own
    pool = CountingExecutor()
    sched = CollectorScheduler([cpu, mem, disk, load], batches.append, clock, executor=pool)
    await sched.run_group(sched.collectors)
    assert pool.jobs == 2
    assert len({*cpu.threads, *mem.threads, *load.threads}) == 1
    values = [s.metric for s in batches[0] if s.metric.endswith("_value")]
    assert sorted(values) == ["cpu_value", "disk_usage_value", "load_value", "memory_value"]
    durations = [s.labels for s in batches[0] if s.metric == "agent_collect_duration_seconds"]
    assert len(durations) == 4 and set(sched.durations) == {"cpu", "memory", "load", "disk_usage"}
    pool.shutdown()


async def test_a_failure_in_a_shared_job_stops_only_its_own_collector(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = VirtualClock()
    batches: List[List[Sample]] = []
    first, broken, last = (KernelCounterCollector(n) for n in ("first", "broken", "last"))
    broken.fail = True
    sched = CollectorScheduler([first, broken, last], batches.append, clock)
    await sched.run_group(sched.collectors)
    assert [s.metric for s in batches[0] if s.metric.endswith("_value")] == [
        "first_value",
        "last_value",
    ]
    assert sched.failures == {"broken": 1} and sched.last_error["broken"] == "boom"
    assert "collector broken failed: boom" in caplog.text
    await sched.stop()


@pytest.mark.slow
async def test_a_hung_shared_job_skips_its_collectors_until_it_returns() -> None:
    clock = VirtualClock()
    batches: List[List[Sample]] = []
    stuck, fine = KernelCounterCollector("stuck"), KernelCounterCollector("fine")
    alone = FakeCollector("alone", 2.5)
    stuck.interval = fine.interval = 2.5
    stuck.block.clear()
    sched = CollectorScheduler([stuck, fine, alone], batches.append, clock)
    await sched.run_group(sched.collectors)  # waits MIN_TIMEOUT (2 s) for the shared job
    assert [s.metric for s in batches[0] if s.metric.endswith("_value")] == ["alone_value"]
    assert sched.failures == {"stuck": 1, "fine": 1}
    await sched.run_group(sched.collectors)  # still stuck: only "alone" runs
    assert (stuck.calls, fine.calls, alone.calls) == (1, 0, 2)
    stuck.block.set()
    await settle(lambda: fine.calls == 1)
    await sched.run_group(sched.collectors)
    assert (stuck.calls, fine.calls, alone.calls) == (2, 2, 3)
    await sched.stop()


def test_only_the_kernel_counter_collectors_share_a_job() -> None:
    """Everything that reads a filesystem, a driver, another process or a child keeps its thread."""
    from sysops_agent.collectors.registry import build_collectors
    from sysops_agent.config import load_config
    from sysops_agent.procfs import ProcFS
    from sysops_agent.scheduler import may_block

    config = load_config(text="", env={}).config
    shared = {c.name for c in build_collectors(ProcFS(), config.collector) if not may_block(c)}
    assert shared == {"cpu", "memory", "disk_io", "network", "load", "pressure", "uptime", "fd"}


async def test_a_collector_that_raises_system_exit_fails_alone() -> None:
    class Exiting(FakeCollector):
        def collect(self, now: float) -> List[Sample]:
            raise SystemExit(3)

    clock = VirtualClock()
    batches: List[List[Sample]] = []
    sched = CollectorScheduler([Exiting("plugin"), FakeCollector("good")], batches.append, clock)
    await sched.run_group(sched.collectors)
    assert [s.metric for s in batches[0] if s.metric.endswith("_value")] == ["good_value"]
    assert sched.failures == {"plugin": 1}
    await sched.stop()
