"""Following syslog files like ``tail -F``: rotation, truncation, restarts — every line once."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
from pathlib import Path
from typing import Dict, List

import pytest

from sysops_agent.clock import VirtualClock
from sysops_agent.logwatch import tail
from sysops_agent.logwatch.config import CustomPattern
from sysops_agent.logwatch.patterns import Hit, Matcher, compile_custom
from sysops_agent.logwatch.tail import ABSENT_POLL_SECS, FileFollower, TailSource

LINE = compile_custom(CustomPattern(name="line", pattern=r"^.*\bline-(?P<n>\d+)\b"))
MATCHER = Matcher((), [LINE])


class Collector:
    def __init__(self) -> None:
        self.numbers: List[int] = []
        self.lines: List[str] = []
        self.meta: List[Dict[str, str]] = []

    def __call__(self, source: str, hit: Hit, meta: Dict[str, str]) -> None:
        self.numbers.append(int(hit.fields["n"]))
        self.lines.append(hit.line)
        self.meta.append(meta)


class Writer:
    """Appends numbered syslog lines through one open fd, like rsyslog between HUPs."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.n = 0
        self.f = open(path, "ab", buffering=0)  # noqa: SIM115 - closed by reopen()/close()

    def write(self, count: int = 1) -> None:
        data = b"".join(
            b"Nov 27 03:00:00 host app[42]: line-%06d payload\n" % (self.n + i)
            for i in range(count)
        )
        self.f.write(data)
        self.n += count

    def raw(self, data: bytes) -> None:
        self.f.write(data)

    def reopen(self) -> None:
        self.f.close()
        self.f = open(self.path, "ab", buffering=0)  # noqa: SIM115

    def close(self) -> None:
        self.f.close()


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


def follower(path: Path, clock: VirtualClock, got: Collector, saved: object = None) -> FileFollower:
    return FileFollower(str(path), MATCHER, got, clock, saved, grace=5.0)  # type: ignore[arg-type]


def settle(f: FileFollower, clock: VirtualClock, polls: int = 8) -> None:
    """Poll across the rotation grace period (virtual time, no sleeping)."""
    for _ in range(polls):
        while f.poll():
            pass
        clock.set(clock.time() + 1.0)


def exactly_once(got: Collector, first: int, end: int) -> None:
    assert len(got.numbers) == len(set(got.numbers)), "a line was delivered twice"
    assert sorted(got.numbers) == list(range(first, end)), "a line is missing"


def test_starts_at_the_end_then_follows_and_keeps_a_partial_line(
    tmp_path: Path, clock: VirtualClock
) -> None:
    path = tmp_path / "syslog"
    w = Writer(path)
    w.write(10)  # history before the agent starts: not news
    got = Collector()
    f = follower(path, clock, got)
    f.poll()
    assert got.numbers == []
    w.write(3)
    w.raw(b"Nov 27 03:00:00 host app[42]: li")
    f.poll()
    assert got.numbers == [10, 11, 12]
    w.raw(b"ne-000013 payload\n")
    f.poll()
    assert got.numbers == [10, 11, 12, 13]
    assert got.meta[-1] == {"ident": "app", "log_pid": "42"}
    w.close()
    f.close()


def test_rename_rotation_reads_the_old_file_to_its_end(tmp_path: Path, clock: VirtualClock) -> None:
    path = tmp_path / "syslog"
    w = Writer(path)
    got = Collector()
    f = follower(path, clock, got)
    f.poll()
    w.write(100)
    f.poll()
    os.rename(path, tmp_path / "syslog.1")
    w.write(50)  # the daemon still writes to the renamed file until it reopens
    f.poll()
    w.write(25)
    w.raw(b"Nov 27 03:00:00 host app[42]: line-000175 unterminated")  # never completed
    w.reopen()  # HUP: a new file at the path
    w.n += 1
    w.write(60)
    settle(f, clock)
    exactly_once(got, 0, w.n)
    assert got.numbers[:175] == list(range(175)), "the old file is finished before the new one"
    # its unterminated last line is delivered when the old file is given up
    assert got.lines[got.numbers.index(175)].endswith("line-000175 unterminated")
    assert f.rotations == 1 and not f.draining
    w.close()
    f.close()


def test_copytruncate(tmp_path: Path, clock: VirtualClock) -> None:
    path = tmp_path / "syslog"
    w = Writer(path)
    got = Collector()
    f = follower(path, clock, got)
    f.poll()
    w.write(40)
    f.poll()
    shutil.copyfile(path, tmp_path / "syslog.1")
    os.truncate(path, 0)
    w.write(5)  # O_APPEND: continues at the new end
    f.poll()
    exactly_once(got, 0, 45)
    assert f.truncations == 1
    w.close()
    f.close()


def test_truncated_and_refilled_past_the_old_offset(tmp_path: Path, clock: VirtualClock) -> None:
    path = tmp_path / "syslog"
    w = Writer(path)
    got = Collector()
    f = follower(path, clock, got)
    f.poll()
    w.write(3)
    f.poll()
    os.truncate(path, 0)
    w.write(20)  # longer than before: the size alone would not show the truncation
    f.poll()
    exactly_once(got, 0, 23)
    w.close()
    f.close()


def test_delete_then_recreate_later(tmp_path: Path, clock: VirtualClock) -> None:
    path = tmp_path / "syslog"
    w = Writer(path)
    got = Collector()
    f = follower(path, clock, got)
    f.poll()
    w.write(10)
    f.poll()
    os.unlink(path)
    w.write(5)  # still written to the deleted inode
    settle(f, clock, 3)
    assert f.cur is not None
    w.close()
    settle(f, clock, 10)
    w2 = Writer(path)
    w2.n = w.n
    w2.write(7)
    settle(f, clock)
    exactly_once(got, 0, 22)
    w2.close()
    f.close()


def test_file_created_after_start_is_read_from_its_beginning(
    tmp_path: Path, clock: VirtualClock
) -> None:
    path = tmp_path / "later.log"
    got = Collector()
    f = follower(path, clock, got)
    settle(f, clock, 2)
    w = Writer(path)
    w.write(4)
    settle(f, clock, 2)
    exactly_once(got, 0, 4)
    w.close()
    f.close()


def test_burst_written_during_rotation_small_chunks(
    tmp_path: Path, clock: VirtualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tail, "CHUNK", 97)  # lines straddle every read
    path = tmp_path / "syslog"
    w = Writer(path)
    got = Collector()
    f = follower(path, clock, got)
    f.poll()
    w.write(3000)
    os.rename(path, tmp_path / "syslog.1")
    w.write(1000)
    w.reopen()
    w.write(2000)
    f.poll()
    w.write(500)
    os.rename(path, tmp_path / "syslog.2")
    w.reopen()
    w.write(500)
    settle(f, clock)
    exactly_once(got, 0, 7000)
    w.close()
    f.close()


def test_invalid_utf8_is_replaced_not_fatal(tmp_path: Path, clock: VirtualClock) -> None:
    path = tmp_path / "syslog"
    w = Writer(path)
    got = Collector()
    f = follower(path, clock, got)
    f.poll()
    w.raw(b"Nov 27 03:00:00 host app[1]: \xff\xfe bad bytes line-000000\n")
    w.n = 1
    w.write(1)
    f.poll()
    assert got.numbers == [0, 1]
    assert "\ufffd\ufffd bad bytes" in got.lines[0]
    w.close()
    f.close()


async def test_restart_continues_where_it_stopped(tmp_path: Path, clock: VirtualClock) -> None:
    path = tmp_path / "syslog"
    state = tmp_path / "data" / "files.state"
    w = Writer(path)
    w.write(5)
    got = Collector()
    src = TailSource([str(path)], state, MATCHER, got, clock)
    src.poll_all()
    w.write(10)
    w.raw(b"Nov 27 03:00:00 host app[42]: line-000015 half")  # partial at stop: re-read later
    src.poll_all()
    src.save_state()
    src.close()
    assert got.numbers == list(range(5, 15))

    w.raw(b" done\n")
    w.n = 16
    w.write(4)  # written while the agent is down
    got2 = Collector()
    src2 = TailSource([str(path)], state, MATCHER, got2, clock)
    src2.poll_all()
    assert got2.numbers == list(range(15, 20))

    # rotated while the agent is down: finish the rotated file, then the new one
    w.write(3)
    src2.poll_all()
    src2.save_state()
    src2.close()
    w.write(2)
    os.rename(path, tmp_path / "syslog.1")
    w.reopen()
    w.write(4)
    got3 = Collector()
    src3 = TailSource([str(path)], state, MATCHER, got3, clock)
    src3.poll_all()
    assert got3.numbers == list(range(23, 29))
    w.close()
    src3.close()


async def test_restart_during_the_rotation_grace_period(
    tmp_path: Path, clock: VirtualClock
) -> None:
    path = tmp_path / "syslog"
    state = tmp_path / "files.state"
    w = Writer(path)
    got = Collector()
    src = TailSource([str(path)], state, MATCHER, got, clock)
    src.poll_all()
    w.write(10)
    os.rename(path, tmp_path / "syslog.1")
    w.reopen()
    w.write(10)
    src.poll_all()  # old file finished but still draining, new file read
    src.save_state()
    src.close()
    w.write(5)
    got2 = Collector()
    src2 = TailSource([str(path)], state, MATCHER, got2, clock)
    src2.poll_all()
    assert got.numbers == list(range(20))
    assert got2.numbers == list(range(20, 25))
    w.close()
    src2.close()


async def test_source_polls_on_the_clock(tmp_path: Path, clock: VirtualClock) -> None:
    a, b = tmp_path / "a.log", tmp_path / "b.log"
    wa = Writer(a)
    got = Collector()
    src = TailSource([str(a), str(b)], tmp_path / "s", MATCHER, got, clock, poll_interval=1.0)
    task = asyncio.ensure_future(src.run())
    await clock.advance(0)
    wa.write(2)
    wb = Writer(b)
    wb.n = 2
    wb.write(2)
    assert got.numbers == []
    await clock.advance(1.0)
    assert sorted(got.numbers) == [0, 1, 2, 3]
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    src.close()
    wa.close()
    wb.close()


def test_a_path_that_cannot_be_read_does_not_stop_the_others(
    tmp_path: Path, clock: VirtualClock
) -> None:
    bad = tmp_path / "a-directory.log"
    bad.mkdir()
    good = tmp_path / "good.log"
    got = Collector()
    src = TailSource([str(bad), str(good), str(good)], tmp_path / "s", MATCHER, got, clock)
    assert len(src.followers) == 2  # a path given twice is followed once
    src.poll_all()
    w = Writer(good)
    w.write(1)
    src.poll_all()
    src.poll_all()
    assert got.numbers == [0]
    w.close()
    src.close()


def test_a_damaged_saved_position_starts_at_the_end(tmp_path: Path, clock: VirtualClock) -> None:
    path = tmp_path / "syslog"
    w = Writer(path)
    w.write(3)
    got = Collector()
    f = follower(path, clock, got, {"files": [{"dev": "x", "ino": None}, "junk"]})
    f.poll()
    w.write(2)
    f.poll()
    assert got.numbers == [3, 4]
    w.close()
    f.close()


needs_logrotate = pytest.mark.skipif(
    shutil.which("logrotate") is None, reason="logrotate is not installed (make system-deps)"
)


def logrotate(tmp_path: Path, path: Path, mode: str) -> None:
    """The real logrotate, forced: ``copytruncate`` or ``create`` (rename), delaycompress."""
    conf = tmp_path / f"logrotate-{mode}.conf"
    conf.write_text(
        f"{path} {{\n  rotate 50\n  missingok\n  compress\n  delaycompress\n  {mode}\n}}\n"
    )
    conf.chmod(0o644)
    subprocess.run(
        ["logrotate", "--force", "--state", str(tmp_path / "logrotate.state"), str(conf)],
        check=True,
        capture_output=True,
        timeout=30,
    )


def test_copytruncate_reads_the_unread_tail_of_the_copy(
    tmp_path: Path, clock: VirtualClock
) -> None:
    """Issue 18 item 6: the lines written since the last poll are only in syslog.1."""
    path = tmp_path / "syslog"
    w = Writer(path)
    got = Collector()
    f = follower(path, clock, got)
    f.poll()
    w.write(40)
    f.poll()
    w.write(7)  # not polled yet
    w.raw(b"Nov 27 03:00:00 host app[42]: li")  # and half a line
    shutil.copyfile(path, tmp_path / "syslog.1")
    os.truncate(path, 0)
    w.raw(b"ne-000047 payload\n")  # the writer finishes its line in the emptied file
    w.n += 1
    w.write(5)
    f.poll()
    assert f.truncations == 1 and f.copies_read == 1
    # the half line in the copy is delivered as it is; its rest in the new file has no number
    assert sorted(set(got.numbers)) == [*range(0, 47), *range(48, 53)]
    assert len(got.numbers) == len(set(got.numbers))
    w.close()
    f.close()


@needs_logrotate
def test_10000_lines_through_20_mixed_logrotate_rotations_lose_nothing(
    tmp_path: Path, clock: VirtualClock
) -> None:
    """Rename (create) and copytruncate rotations by the real logrotate, polled every second.

    Each simulated second: 50 lines, maybe a rotation, 50 more lines, one poll; so every
    rotation happens with unread lines behind it. Every line must arrive exactly once.
    """
    path = tmp_path / "syslog"
    w = Writer(path)
    got = Collector()
    f = follower(path, clock, got)
    f.poll()
    rotations = {"copytruncate": 0, "create": 0}
    for second in range(100):
        w.write(50)
        if second % 5 == 2:
            mode = "copytruncate" if (second // 5) % 2 == 0 else "create"
            logrotate(tmp_path, path, mode)
            rotations[mode] += 1
            if mode == "create":
                w.write(3)  # into the renamed file, before the writer's HUP
                w.reopen()
        w.write(47 if second % 5 == 2 and mode == "create" else 50)
        f.poll()
        clock.set(clock.time() + 1.0)
    settle(f, clock)
    assert w.n == 10_000
    assert rotations == {"copytruncate": 10, "create": 10}
    assert f.truncations == 10 and f.copies_read == 10 and f.rotations == 10
    exactly_once(got, 0, 10_000)
    w.close()
    f.close()


def test_copytruncate_while_stopped_reads_the_copy_first(
    tmp_path: Path, clock: VirtualClock
) -> None:
    path = tmp_path / "syslog"
    w = Writer(path)
    got = Collector()
    f = follower(path, clock, got)
    f.poll()
    w.write(10)
    f.poll()
    saved = f.state()
    f.close()
    w.write(4)  # written while the agent is stopped: only in the copy after the truncation
    shutil.copyfile(path, tmp_path / "syslog.1")
    os.truncate(path, 0)
    w.write(3)
    again = follower(path, clock, got, saved)
    again.poll()
    assert again.copies_read == 1
    exactly_once(got, 0, 17)
    w.close()
    again.close()


async def test_a_missing_file_is_looked_for_every_10_s_and_read_whole_once_there(
    tmp_path: Path, clock: VirtualClock
) -> None:
    path = tmp_path / "syslog"
    got = Collector()
    src = TailSource([str(path)], tmp_path / "files.state", MATCHER, got, clock)
    polls: List[float] = []
    poll_all = src.poll_all

    def counted() -> bool:
        polls.append(clock.monotonic())
        return poll_all()

    src.poll_all = counted  # type: ignore[method-assign]
    task = asyncio.ensure_future(src.run())
    try:
        for _ in range(25):
            await clock.advance(1.0)
        assert polls == [0.0, ABSENT_POLL_SECS, 2 * ABSENT_POLL_SECS]  # not every second
        w = Writer(path)
        w.write(3)
        for _ in range(5):
            await clock.advance(1.0)
        assert got.numbers == [0, 1, 2]  # created later: read from its beginning
        del polls[:]
        for _ in range(3):
            await clock.advance(1.0)
        assert polls == [31.0, 32.0, 33.0]  # a file to follow: every poll_interval again
        w.close()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        src.close()
