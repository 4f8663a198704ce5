"""The real /dev/kmsg: records written into the kernel log reach the source and the daemon."""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from pathlib import Path
from typing import Dict, List, Optional

import pytest

from sysops_agent.clock import VirtualClock
from sysops_agent.logwatch.config import LogConfig
from sysops_agent.logwatch.events import EventPipeline
from sysops_agent.logwatch.kmsg import KmsgSource
from sysops_agent.logwatch.patterns import Hit
from sysops_agent.logwatch.watcher import LogWatcher
from sysops_agent.model import Alert, Sample
from tests.support.agentproc import AgentProcess, agent_config, minimal_procfs

KMSG = "/dev/kmsg"


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
async def test_real_kmsg_after_a_reboot_reads_the_whole_buffer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = f"reboot-{uuid.uuid4().hex[:8]}"
    write_kmsg(f"<3>sysops-test: {marker}[80]: segfault at 0 ip 0 sp 0 error 4")
    data = tmp_path / "data"
    data.mkdir()
    (data / "kmsg.state").write_text(json.dumps({"boot_id": "a-previous-boot", "seq": 10**9}))
    boot_id = tmp_path / "boot_id"
    boot_id.write_text("this-boot\n")
    delivered: List[str] = []
    deliver = EventPipeline.deliver

    def spy(self: EventPipeline, source: str, hit: Hit, meta: Dict[str, str]) -> None:
        delivered.append(hit.line)
        deliver(self, source, hit, meta)

    monkeypatch.setattr(EventPipeline, "deliver", spy)
    a = Analyzer(data, str(boot_id))
    await a.start()
    deadline = time.monotonic() + 10
    while not any(marker in line for line in delivered):
        assert time.monotonic() < deadline, "the record written before the start was not read"
        await asyncio.sleep(0.01)
    await a.stop()
    # its own alert; or, when the buffer already held segfaults of several other processes
    # (earlier test runs on this machine), one count of the storm it belongs to
    storms = [x for x in a.alerts if x.metric == "log_segfault" and ("storm", "true") in x.labels]
    assert a.seen(marker) or storms, [x.message for x in a.alerts]


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
        # the syslog file source runs in the same daemon (userland patterns: while kmsg
        # is reading, the file's kernel lines are left to kmsg)
        with open(tmp_path / "syslog", "a") as f:
            f.write(f"Nov 27 03:00:00 h myapp[7]: sysops-test-custom file{marker}\n")
        agent.wait_line("sysops_test", f"file{marker}")
    finally:
        code = agent.stop()
    assert code == 0, "".join(agent.stderr)
    assert (tmp_path / "data" / "kmsg.state").exists()
