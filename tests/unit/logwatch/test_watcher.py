"""LogWatcher wiring: isolated sources, counters over time, saved positions, shutdown."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import List

import pytest

from sysops_agent.clock import VirtualClock
from sysops_agent.logwatch.config import CustomPattern, LogConfig
from sysops_agent.logwatch.journal import JournalSource
from sysops_agent.logwatch.watcher import LogWatcher
from sysops_agent.model import Alert, Sample

COUNTERS = {
    "kernel_oom_kills_total",
    "kernel_hung_tasks_total",
    "kernel_hardware_errors_total",
    "kernel_fs_errors_total",
    "kernel_io_errors_total",
    "kernel_segfaults_total",
}


class Run:
    def __init__(self, tmp_path: Path, cfg: LogConfig, paths: List[str]) -> None:
        self.clock = VirtualClock()
        self.alerts: List[Alert] = []
        self.samples: List[Sample] = []
        self.la = LogWatcher(
            cfg,
            hostname="h",
            data_dir=tmp_path / "data",
            clock=self.clock,
            syslog_paths=paths,
            emit_alert=self.alerts.append,
            emit_sample=self.samples.append,
            kmsg_path=str(tmp_path / "no-kmsg"),
            journalctl="no-such-journalctl-binary",
        )
        self.task = asyncio.ensure_future(self.la.run())

    async def stop(self) -> None:
        await self.la.stop()
        await asyncio.wait_for(self.task, 5)


async def test_counters_start_at_zero_follow_changes_and_are_refreshed(tmp_path: Path) -> None:
    log = tmp_path / "syslog"
    log.write_text("")
    r = Run(tmp_path, LogConfig(counters_interval_secs=60), [str(log)])
    await r.clock.advance(0)
    assert {s.metric for s in r.samples} == COUNTERS
    assert all(s.value == 0 for s in r.samples)
    r.samples.clear()
    with log.open("a") as f:
        f.write(
            "Nov 27 00:00:00 h kernel: [1.0] app[9]: segfault at 0 ip 0 sp 0 error 4 in a[1+2]\n"
        )
    await r.clock.advance(1.0)  # the file poll
    await r.clock.advance(1.0)  # the tick after it
    assert [(s.metric, s.value) for s in r.samples] == [("kernel_segfaults_total", 1.0)]
    assert [a.metric for a in r.alerts] == ["log_segfault"]
    r.samples.clear()
    await r.clock.advance(58.0)
    assert {s.metric for s in r.samples} == COUNTERS, "all six again after a minute"
    await r.stop()


async def test_positions_are_saved_periodically_and_at_stop(tmp_path: Path) -> None:
    log = tmp_path / "syslog"
    log.write_text("old line\n")
    r = Run(tmp_path, LogConfig(state_save_interval_secs=10), [str(log)])
    await r.clock.advance(1.0)
    state = tmp_path / "data" / "files.state"
    assert not state.exists()
    await r.clock.advance(10.0)
    saved = json.loads(state.read_text())[str(log)]["files"]
    assert saved[0]["offset"] == len("old line\n")
    with log.open("a") as f:
        f.write("new line\n")
    await r.clock.advance(1.0)
    await r.stop()
    saved = json.loads(state.read_text())[str(log)]["files"]
    assert saved[0]["offset"] == len("old line\nnew line\n")


async def test_a_failing_source_is_restarted_and_does_not_stop_the_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []

    async def broken_run(self: JournalSource) -> None:
        calls.append(1)
        raise RuntimeError("boom")

    monkeypatch.setattr(JournalSource, "run", broken_run)
    log = tmp_path / "syslog"
    log.write_text("")
    cfg = LogConfig(
        custom_patterns=[
            CustomPattern(name="deploy", pattern=r"deployed (?P<app>\w+)", severity="info")
        ]
    )
    r = Run(tmp_path, cfg, [str(log)])
    await r.clock.advance(0)
    assert len(calls) == 1
    with log.open("a") as f:
        f.write("Nov 27 00:00:00 h ci[3]: deployed shop\n")
    await r.clock.advance(1.0)
    assert [(a.metric, dict(a.labels)["app"]) for a in r.alerts] == [("log_deploy", "shop")]
    assert len(calls) == 2  # restarted after 1 s
    await r.clock.advance(2.0)
    assert len(calls) == 3  # then after 2 s more
    await r.stop()


async def test_stop_sends_pending_burst_follow_ups(tmp_path: Path) -> None:
    log = tmp_path / "syslog"
    log.write_text("")
    r = Run(tmp_path, LogConfig(), [str(log)])
    await r.clock.advance(0)
    with log.open("a") as f:
        for i in range(20):
            f.write(f"Nov 27 00:00:00 h kernel: [1.{i}] Buffer I/O error on dev sdd1, block {i}\n")
    await r.clock.advance(1.0)
    assert len(r.alerts) == 1
    await r.stop()
    assert r.alerts[-1].message == "20 I/O errors on sdd1 in 0s"


def test_disabled_sources_are_not_built(tmp_path: Path) -> None:
    la = LogWatcher(
        LogConfig(kmsg=False, journal=False),
        hostname="h",
        data_dir=tmp_path,
        clock=VirtualClock(),
        syslog_paths=[],
        emit_alert=lambda a: None,
        emit_sample=lambda s: None,
    )
    assert la.sources == []
    la2 = LogWatcher(
        LogConfig(kmsg=False, journal=False, files=["/x/custom.log"]),
        hostname="h",
        data_dir=tmp_path,
        clock=VirtualClock(),
        syslog_paths=["/var/log/syslog"],
        emit_alert=lambda a: None,
        emit_sample=lambda s: None,
    )
    assert [f.path for f in la2.sources[0].followers] == ["/x/custom.log"]  # type: ignore[union-attr]


async def test_cancelling_run_without_stop_leaves_nothing_running(tmp_path: Path) -> None:
    log = tmp_path / "syslog"
    log.write_text("x\n")
    r = Run(tmp_path, LogConfig(), [str(log)])
    await r.clock.advance(1.0)
    children = list(r.la._tasks)
    r.task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await r.task
    await asyncio.sleep(0)
    assert all(t.done() for t in children)
    assert (tmp_path / "data" / "files.state").exists()


async def test_the_ticker_wakes_every_10_s_when_idle_and_every_second_while_busy(
    tmp_path: Path,
) -> None:
    log = tmp_path / "syslog"
    log.write_text("")
    r = Run(tmp_path, LogConfig(burst_window_secs=5), [str(log)])
    ticks: List[float] = []
    tick = r.la.pipeline.tick

    def counted(**kw: bool) -> None:
        ticks.append(r.clock.monotonic())
        tick(**kw)

    r.la.pipeline.tick = counted  # type: ignore[method-assign]
    for _ in range(30):
        await r.clock.advance(1.0)
    assert ticks == [0.0, 10.0, 20.0, 30.0]  # the first at start
    ticks.clear()
    with log.open("a") as f:
        f.write(
            "Nov 27 00:00:00 h kernel: [1.0] app[9]: segfault at 0 ip 0 sp 0 error 4 in a[1+2]\n"
        )
    for _ in range(20):
        await r.clock.advance(1.0)
    # read at 31, then a tick every second until the 5 s burst window closed, then idle
    assert ticks == [32.0, 33.0, 34.0, 35.0, 36.0, 40.0, 50.0], ticks
    assert [a.metric for a in r.alerts] == ["log_segfault"]
    await r.stop()
