"""Log storms (issue 12 item 5): folded by pattern before the alert queue, counted exactly.

The reproduction: 50,000 segfault lines from distinct processes and pids, read by the
real file source on a virtual clock, alerts into the daemon's real alert queue. Before,
the queue (1,000 slots, drop oldest) kept the *end* of the storm and dropped 49,000.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import List

import pytest

from sysops_agent.clock import VirtualClock
from sysops_agent.logwatch import bursts, state
from sysops_agent.logwatch.config import LogConfig
from sysops_agent.logwatch.state import save_state
from sysops_agent.logwatch.watcher import LogWatcher
from sysops_agent.model import Alert, Sample
from sysops_agent.queues import ALERT_QUEUE_CAPACITY, DropOldestQueue

SEGV = (
    "Dec  1 06:00:00 web01 kernel: [100.{n:06d}] app{n}[{pid}]: segfault at 0 "
    "ip 00007f3a1c2b4e10 sp 00007ffd5e8c1a40 error 4 in libc.so.6[7f3a1c200000+195000]\n"
)


class Agent:
    """The log watcher as the daemon wires it: alerts into a real DropOldestQueue."""

    def __init__(self, tmp_path: Path, log: Path) -> None:
        self.clock = VirtualClock()
        self.queue: DropOldestQueue[Alert] = DropOldestQueue(
            ALERT_QUEUE_CAPACITY, monotonic=self.clock.monotonic, what="alerts"
        )
        self.samples: List[Sample] = []
        self.watcher = LogWatcher(
            LogConfig(kmsg=False, journal=False, files=[str(log)], burst_window_secs=30),
            hostname="web01",
            data_dir=tmp_path / "data",
            clock=self.clock,
            syslog_paths=[],
            emit_alert=self.queue.put,
            emit_sample=self.samples.append,
            kmsg_path=str(tmp_path / "no-kmsg"),
            journalctl="no-such-journalctl-binary",
        )
        self.task = asyncio.ensure_future(self.watcher.run())
        self.alerts: List[Alert] = []

    def take(self) -> List[Alert]:
        """What reached the alert manager since the last call (the daemon's alert loop)."""
        new = self.queue.drain()
        self.alerts += new
        return new

    def counter(self, name: str) -> float:
        return [s.value for s in self.samples if s.metric == name][-1]

    async def stop(self) -> None:
        await self.watcher.stop()
        await asyncio.wait_for(self.task, 5)


@pytest.mark.slow
async def test_a_50000_line_storm_delivers_its_first_event_at_once_and_an_exact_count(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    log = tmp_path / "syslog"
    log.write_text("")
    a = Agent(tmp_path, log)
    await a.clock.advance(0)
    n = 0
    for _second in range(4):  # 12,500 lines a second for 4 s, each a new process and pid
        with log.open("a") as f:
            f.write("".join(SEGV.format(n=n + i, pid=n + i + 1) for i in range(12_500)))
        n += 12_500
        await a.clock.advance(1.0)  # the file source polls once a second
        if n == 12_500:
            # the first event of the storm went out at once, before anything was counted
            first = a.take()
            assert first[0].message.startswith("Segfault in app0 (pid 1) [")
            assert dict(first[0].labels)["pid"] == "1"
            assert len(first) == bursts.STORM_KEYS  # the first few keys, then storm mode
    assert a.take() == []  # the rest is counted, not queued
    await a.clock.advance(27.0)  # the window (30 s from the storm's start) closes
    (summary,) = a.take()
    assert summary.value == 50_000, "exact: the prompt ones and the 49,997 folded"
    labels = dict(summary.labels)
    assert labels["count"] == "50000" and labels["storm"] == "true"
    assert labels["pattern"] == "segfault" and labels["line"] == SEGV.format(
        n=49_999, pid=50_000
    ).rstrip("\n")
    assert summary.message.startswith("50,000 segfaults from over 1,024 processes in 3s (storm),")
    assert ", first in app0 (pid 1) at " in summary.message
    assert ", last in app49999 (pid 50000) at " in summary.message
    assert summary.metric == "log_segfault" and summary.duration == 3.0
    # nothing was dropped on the way: no backpressure, no warning about it
    assert a.queue.dropped == 0
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert a.counter("kernel_segfaults_total") == 50_000
    # a quiet window ends the storm; the next segfault alerts at once again
    await a.clock.advance(30.0)
    assert a.take() == [] and a.watcher.pipeline.bursts.storms == 0
    with log.open("a") as f:
        f.write(SEGV.format(n=77, pid=99_999))
    await a.clock.advance(1.0)
    (again,) = a.take()
    assert again.message.startswith("Segfault in app77 (pid 99999) [")
    await a.stop()
    assert a.take() == []


async def test_a_storm_still_running_at_shutdown_is_reported_with_its_count(
    tmp_path: Path,
) -> None:
    log = tmp_path / "syslog"
    log.write_text("")
    a = Agent(tmp_path, log)
    await a.clock.advance(0)
    with log.open("a") as f:
        f.write("".join(SEGV.format(n=i, pid=i + 1) for i in range(500)))
    await a.clock.advance(1.0)
    assert len(a.take()) == bursts.STORM_KEYS
    await a.stop()
    (summary,) = a.take()
    assert summary.value == 500
    assert summary.message.startswith("500 segfaults from 500 processes in 0s (storm),")


def test_cannot_save_a_position_is_said_once_per_10_minutes_with_the_count(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "a-file").write_text("")
    path = str(tmp_path / "a-file" / "files.state")  # fails even as root: not a directory
    for _ in range(60):  # every 10 s for 10 minutes on a full or read-only disk
        assert save_state(path, {"offset": 1}) is False
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert warnings[0].startswith(f"cannot save {path}: ")
    # the other 59 are counted, and said with the next line of this kind
    assert state._save_warnings.suppressed(f"save {path}") == 59
