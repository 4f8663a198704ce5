"""/dev/kmsg: record parsing, lost records, and real records written into the kernel log."""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from pathlib import Path
from typing import List, Optional

import pytest

from sysops_agent.clock import VirtualClock
from sysops_agent.logwatch.config import LogConfig
from sysops_agent.logwatch.kmsg import KmsgSource, parse_record
from sysops_agent.logwatch.patterns import Hit, Matcher
from sysops_agent.logwatch.watcher import LogWatcher
from sysops_agent.model import Alert, Sample
from tests.support import paths
from tests.support.agentproc import AgentProcess, agent_config, minimal_procfs

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


def kmsg_access() -> Optional[str]:
    """Why the real /dev/kmsg cannot be used here, or None when it can."""
    try:
        fd = os.open(KMSG, os.O_RDONLY | os.O_NONBLOCK)
        os.close(fd)
    except OSError as e:
        return f"cannot read {KMSG}: {e.strerror} (needs CAP_SYSLOG)"
    try:
        with open(KMSG, "w"):
            pass
    except OSError as e:
        return f"cannot write {KMSG}: {e.strerror}"
    return None


def write_kmsg(text: str) -> None:
    with open(KMSG, "w") as f:
        f.write(text + "\n")


needs_kmsg = pytest.mark.skipif(kmsg_access() is not None, reason=str(kmsg_access()))


class Analyzer:
    """A LogWatcher with only the kmsg source, collecting its alerts."""

    def __init__(self, data: Path, boot_id_path: str = "/proc/sys/kernel/random/boot_id") -> None:
        self.alerts: List[Alert] = []
        self.samples: List[Sample] = []
        self.arrived = asyncio.Event()
        cfg = LogConfig(journal=False, dedup_window_secs=0)
        self.la = LogWatcher(
            cfg,
            hostname="h",
            data_dir=data,
            clock=VirtualClock(),
            syslog_paths=[],
            emit_alert=self._alert,
            emit_sample=self.samples.append,
            boot_id_path=boot_id_path,
        )
        self.task: Optional[asyncio.Task[None]] = None

    def _alert(self, alert: Alert) -> None:
        self.alerts.append(alert)
        self.arrived.set()

    async def start(self) -> KmsgSource:
        self.task = asyncio.ensure_future(self.la.run())
        src = self.la.source("kmsg")
        assert isinstance(src, KmsgSource)
        # Generous: on a busy machine reading past the existing records takes a while.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if src.fd is not None and not src.skipping_existing:
                return src
            await asyncio.sleep(0.01)
        raise AssertionError(
            "kmsg source did not start within 30 s: "
            f"fd={src.fd} skipping_existing={src.skipping_existing} error={src.error!r} "
            f"last_seq={src.last_seq} task_done={self.task.done()}"
        )

    async def wait_for(self, marker: str, timeout: float = 5.0) -> Alert:
        async def find() -> Alert:
            while True:
                for a in self.alerts:
                    if marker in a.message:
                        return a
                self.arrived.clear()
                await self.arrived.wait()

        return await asyncio.wait_for(find(), timeout)

    def seen(self, marker: str) -> bool:
        return any(marker in a.message for a in self.alerts)

    async def stop(self) -> None:
        await self.la.stop()
        assert self.task is not None
        await asyncio.wait_for(self.task, 5)


@needs_kmsg
async def test_real_kmsg_record_becomes_an_alert(tmp_path: Path) -> None:
    marker = f"testproc-{uuid.uuid4().hex[:8]}"
    write_kmsg(f"<3>sysops-test: Out of memory: Killed process 4242 ({marker}-old)")
    a = Analyzer(tmp_path / "data")
    await a.start()
    write_kmsg(f"<3>sysops-test: Out of memory: Killed process 4242 ({marker})")
    alert = await a.wait_for(marker)
    labels = dict(alert.labels)
    assert labels["source"] == "kmsg" and labels["pid"] == "4242" and labels["process"] == marker
    assert labels["level"] == "err"
    assert not a.seen(f"{marker}-old"), "records already in the buffer at first start are history"
    await a.stop()
    state = json.loads((tmp_path / "data" / "kmsg.state").read_text())
    assert state["seq"] > 0 and state["boot_id"]
    assert {s.metric for s in a.samples} >= {"kernel_oom_kills_total"}
    assert max(s.value for s in a.samples if s.metric == "kernel_oom_kills_total") >= 1


@needs_kmsg
async def test_real_kmsg_restart_neither_replays_nor_loses(tmp_path: Path) -> None:
    marker = f"restart-{uuid.uuid4().hex[:8]}"
    data = tmp_path / "data"
    first = Analyzer(data)
    await first.start()
    write_kmsg(f"<3>sysops-test: segfault at 0 in {marker}-a[1]: x")
    write_kmsg(f"<3>sysops-test: {marker}-a[77]: segfault at 0 ip 0 sp 0 error 4")
    await first.wait_for(f"{marker}-a")
    await first.stop()
    write_kmsg(f"<3>sysops-test: {marker}-b[78]: segfault at 0 ip 0 sp 0 error 4")  # while stopped
    second = Analyzer(data)
    await second.start()
    await second.wait_for(f"{marker}-b")
    write_kmsg(f"<3>sysops-test: {marker}-c[79]: segfault at 0 ip 0 sp 0 error 4")
    await second.wait_for(f"{marker}-c")
    assert not second.seen(f"{marker}-a"), "replayed a record handled before the restart"
    await second.stop()


@needs_kmsg
async def test_real_kmsg_after_a_reboot_reads_the_whole_buffer(tmp_path: Path) -> None:
    marker = f"reboot-{uuid.uuid4().hex[:8]}"
    write_kmsg(f"<3>sysops-test: {marker}[80]: segfault at 0 ip 0 sp 0 error 4")
    data = tmp_path / "data"
    data.mkdir()
    (data / "kmsg.state").write_text(json.dumps({"boot_id": "a-previous-boot", "seq": 10**9}))
    boot_id = tmp_path / "boot_id"
    boot_id.write_text("this-boot\n")
    a = Analyzer(data, str(boot_id))
    await a.start()
    await a.wait_for(marker)
    await a.stop()


@needs_kmsg
def test_real_kmsg_alert_comes_out_of_the_running_daemon(tmp_path: Path) -> None:
    proc = minimal_procfs(tmp_path)
    config = agent_config(tmp_path, proc)
    text = config.read_text()
    log_section = (
        "[collector.log]\njournal = false\n"
        f'files = ["{tmp_path / "syslog"}"]\n'
        "[[collector.log.custom_patterns]]\n"
        'name = "sysops_test"\npattern = "sysops-test-custom (?P<word>\\\\w+)"\nseverity = "critical"\n'
    )
    assert "[collector.log]\nenabled = false\n" in text
    config.write_text(text.replace("[collector.log]\nenabled = false\n", log_section))
    marker = f"daemonproc-{uuid.uuid4().hex[:8]}"
    agent = AgentProcess(["run", "--config", str(config)])
    try:
        agent.wait_stderr("kmsg: skipped the records already there")
        write_kmsg(f"<3>sysops-test: Out of memory: Killed process 4242 ({marker})")
        line = agent.wait_line("log_oom_kill", marker)
        assert "test-host" in line
        write_kmsg(f"<4>sysops-test-custom {marker}")
        agent.wait_line("sysops_test", marker)
        # the syslog file source runs in the same daemon
        with open(tmp_path / "syslog", "a") as f:
            f.write(f"Nov 27 03:00:00 h kernel: [1.0] EXT4-fs error (device {marker}): x\n")
        agent.wait_line("log_filesystem_error", marker)
    finally:
        code = agent.stop()
    assert code == 0, "".join(agent.stderr)
    assert (tmp_path / "data" / "kmsg.state").exists()
