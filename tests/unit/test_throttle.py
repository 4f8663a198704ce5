"""Repeated warnings are one line per kind per 10 minutes, with a count (issue 18 item 8):
storage faults, unreadable files, queue drops and refused samples."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from pathlib import Path
from typing import List

import pytest

from sysops_agent.clock import VirtualClock
from sysops_agent.model import Sample


def warnings_of(caplog: pytest.LogCaptureFixture) -> List[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_one_line_per_kind_per_ten_minutes_with_a_count(caplog: pytest.LogCaptureFixture) -> None:
    from sysops_agent.throttle import WARN_EVERY_SECS, ThrottledWarnings

    now = [0.0]
    warn = ThrottledWarnings(logging.getLogger("sysops_agent.t"), monotonic=lambda: now[0])
    caplog.set_level(logging.WARNING)
    for i in range(101):  # 0 .. 600 s
        now[0] = i * 6.0  # every ~6 s, like a full disk
        warn.warning("disk", "cannot write: %s", "No space left on device")
        warn.warning("other", "another kind")
    lines = warnings_of(caplog)
    assert lines[:2] == ["cannot write: No space left on device", "another kind"]
    assert (
        lines[2]
        == "cannot write: No space left on device (99 more like this in the last 600s, not logged)"
    )
    assert lines[3].startswith("another kind (99 more")
    assert len(lines) == 4 and WARN_EVERY_SECS == 600.0
    assert warn.recovered("disk") == 0 and not warn.failing("disk")
    now[0] += 1
    assert warn.warning("disk", "cannot write again")  # a new fault is told at once


def test_a_data_dir_that_cannot_be_written_is_one_warning_not_one_per_save(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from sysops_agent.logwatch.state import save_state

    blocker = tmp_path / "data"
    blocker.write_text("a file where the data directory should be")
    caplog.set_level(logging.INFO, logger="sysops_agent.logwatch")
    path = str(blocker / "files.state")
    for i in range(200):  # a day of state_save_interval_secs, in a moment
        assert not save_state(path, {"n": i})
    lines = warnings_of(caplog)
    assert len(lines) == 1 and lines[0].startswith(f"cannot save {path}: "), lines
    blocker.unlink()
    assert save_state(path, {"n": 1})
    assert any(r.getMessage() == f"{path} saved again" for r in caplog.records)


def test_a_log_file_that_flaps_unreadable_is_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from sysops_agent.logwatch.patterns import Matcher
    from sysops_agent.logwatch.tail import FileFollower

    path = tmp_path / "app.log"
    clock = VirtualClock()
    follower = FileFollower(str(path), Matcher(), lambda *a: None, clock)
    caplog.set_level(logging.WARNING, logger="sysops_agent.logwatch")
    for _ in range(20):
        # a socket at the path: stat works, open() fails (ENXIO), root included
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(str(path))
        follower.poll()
        sock.close()
        os.unlink(path)
        path.write_text("")  # readable again for a poll
        follower.poll()
        follower.cur = None  # as after the file vanished
        os.unlink(path)
        clock.set(clock.time() + 10)
    lines = [m for m in warnings_of(caplog) if m.startswith("cannot open")]
    assert len(lines) == 1, lines


async def test_queue_drops_are_one_line_per_ten_minutes(caplog: pytest.LogCaptureFixture) -> None:
    from sysops_agent.queues import DropOldestQueue

    now = [0.0]
    q: DropOldestQueue[int] = DropOldestQueue(2, monotonic=lambda: now[0], what="samples")
    caplog.set_level(logging.WARNING)
    for t in range(0, 600, 60):
        now[0] = float(t)
        q.put_many(range(5))  # 3 dropped each time
        q.drain()
    assert warnings_of(caplog) == ["Dropped 3 samples due to backpressure"]
    now[0] = 600.0
    q.put_many(range(5))
    assert warnings_of(caplog)[-1] == "Dropped 30 samples due to backpressure"


async def test_refused_samples_are_counted_in_a_self_metric_and_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from sysops_agent.config import load_config
    from sysops_agent.daemon import Daemon

    daemon = Daemon(load_config(None, env={}), None, clock=VirtualClock(1_780_000_000.0))
    caplog.set_level(logging.WARNING)
    daemon.samples.put_many(
        Sample(1_780_000_000.0 + i, "fd_usage_percent", 500.0) for i in range(50)
    )
    task = asyncio.ensure_future(daemon._storage_loop())
    for _ in range(3):
        await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert daemon.store.rejected == 50
    lines = [m for m in warnings_of(caplog) if "refused an impossible sample" in m]
    assert len(lines) == 1 and "fd_usage_percent" in lines[0], lines
    daemon.record_self_metrics()
    got = {s.metric: s.value for s in daemon.samples.drain()}
    assert got["agent_samples_rejected_total"] == 50.0
