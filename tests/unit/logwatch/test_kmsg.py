"""/dev/kmsg: record parsing and lost records (the real kernel log: tests/integration/test_kmsg_real.py)."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import List

import pytest

from sysops_agent.clock import VirtualClock
from sysops_agent.logwatch.kmsg import KmsgSource, parse_record
from sysops_agent.logwatch.patterns import Hit, Matcher
from tests.support import paths

FIXTURES = paths.FIXTURES / "logs"
KMSG = "/dev/kmsg"


def fixture_records() -> List[bytes]:
    """Records as read() returns them: a line plus its continuation lines."""
    records: List[str] = []
    for line in (FIXTURES / "kmsg.records").read_text().splitlines():
        if line.startswith(" ") and records:
            records[-1] += line + "\n"
        else:
            records.append(line + "\n")
    return [r.encode() for r in records]


def test_parse_fixture_records() -> None:
    recs = [parse_record(r) for r in fixture_records()]
    assert all(r is not None for r in recs)
    link = recs[1]
    assert link is not None
    assert (link.facility, link.level, link.seq, link.usec) == (0, 6, 1234, 5678901234)
    assert link.message == "e1000e 0000:00:1f.6 eno1: NIC Link is Down"
    assert link.extra == {"SUBSYSTEM": "pci", "DEVICE": "+pci:0000:00:1f.6"}
    ext4 = recs[6]
    assert ext4 is not None and ext4.seq == 1250  # a record with a 5th prefix field (caller)
    assert ext4.message.startswith("EXT4-fs error (device sda1)")
    user = recs[-1]
    assert user is not None and (user.facility, user.level) == (1, 4)
    assert parse_record(b"garbage without semicolon\n") is None
    assert parse_record(b"x,1,2,-;msg\n") is None


class Recorder:
    def __init__(self) -> None:
        self.hits: List[str] = []

    def __call__(self, source: str, hit: Hit, meta: dict) -> None:  # type: ignore[type-arg]
        self.hits.append(hit.spec.name)


def test_fixture_records_through_the_source_and_a_seq_gap_counts_lost(tmp_path: Path) -> None:
    got = Recorder()
    src = KmsgSource("/nonexistent", tmp_path / "k", Matcher(), got, VirtualClock())
    for raw in fixture_records():
        src._handle(raw)
    assert got.hits == [
        "network_down",
        "io_error",
        "io_error",
        "oom_context",
        "oom_kill",
        "filesystem_error",
        "segfault",
        "oom_kill",
    ]
    # 1230 -> 1234, 1236 -> 1240, 1241 -> 1250 (what EPIPE leaves behind)
    assert src.lost == 3 + 3 + 8
    assert src.last_seq == 1252


def test_epipe_and_eagain_in_the_read_loop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    script: List[object] = [
        b"3,10,1,-;first I/O error, dev sda\n",
        BrokenPipeError(),  # records 11..14 were overwritten
        b"3,15,2,-;then I/O error, dev sdb\n",
        b"6,16,3,-;nothing to see\n",
        BlockingIOError(),
        b"3,17,4,-;next time I/O error, dev sdc\n",
        BlockingIOError(),
    ]

    def fake_read(fd: int, size: int) -> bytes:
        assert size >= 8192, "a read must fit any record"
        item = script.pop(0)
        if isinstance(item, BaseException):
            raise item
        assert isinstance(item, bytes)
        return item

    got: List[str] = []
    src = KmsgSource(
        "/dev/kmsg",
        tmp_path / "k",
        Matcher(),
        lambda source, hit, meta: got.append(hit.fields["device"]),
        VirtualClock(),
    )
    src.fd = -1
    monkeypatch.setattr("sysops_agent.logwatch.kmsg.os.read", fake_read)
    src.read_available()  # stops at EAGAIN
    assert got == ["sda", "sdb"] and src.lost == 4 and len(script) == 2
    src.read_available()
    assert got == ["sda", "sdb", "sdc"] and script == []
    src.save_state()
    assert json.loads((tmp_path / "k").read_text())["seq"] == 17


def test_a_read_error_stops_the_source_for_a_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_read(fd: int, size: int) -> bytes:
        raise OSError(5, "Input/output error")

    src = KmsgSource("/dev/kmsg", tmp_path / "k", Matcher(), Recorder(), VirtualClock())
    src.fd = os.open(os.devnull, os.O_RDONLY)
    monkeypatch.setattr("sysops_agent.logwatch.kmsg.os.read", broken_read)
    src.read_available()
    assert src.error == "read failed: Input/output error" and src.fd is None


def test_missing_kmsg_turns_the_source_off(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    src = KmsgSource(str(tmp_path / "nope"), tmp_path / "k", Matcher(), Recorder(), VirtualClock())
    asyncio.run(src.run())
    assert "kmsg source off" in caplog.text


def test_overwritten_records_are_said_once_per_10_minutes_with_the_count(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = VirtualClock()
    src = KmsgSource("/nonexistent", tmp_path / "k", Matcher(), Recorder(), clock)
    seq = 0
    for _ in range(1000):  # a kernel storm: every other record overwritten, for 1,000 s
        src._handle(b"6,%d,1,-;nothing to see\n" % seq)
        seq += 2
        clock.set(clock.time() + 1)
    assert src.lost == 999
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings == [
        "kmsg: 1 records were overwritten before they could be read "
        "(total 1; said at most every 10 minutes)",
        "kmsg: 600 records were overwritten before they could be read "
        "(total 601; said at most every 10 minutes)",
    ]
