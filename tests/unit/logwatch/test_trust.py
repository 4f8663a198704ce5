"""Log sources are trusted only for what they can prove (issue 18, item 2).

Kernel patterns match kernel records only: every kmsg record, journal entries with
``_TRANSPORT=kernel``, syslog-file lines tagged ``kernel`` while kmsg is not reading.
An emergency from anything but kmsg / the journal's kernel transport is sent as
critical (``downgraded=emergency``), so it cannot bypass the rate limiter.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import socket
import subprocess
from pathlib import Path
from typing import List, Optional

import pytest

from sysops_agent.clock import VirtualClock
from sysops_agent.logwatch.config import CustomPattern, LogConfig
from sysops_agent.logwatch.events import EventPipeline
from sysops_agent.logwatch.journal import JournalSource
from sysops_agent.logwatch.patterns import Matcher, compile_custom
from sysops_agent.logwatch.watcher import LogWatcher
from sysops_agent.model import Alert, Sample, Severity

needs_logger = pytest.mark.skipif(shutil.which("logger") is None, reason="no logger command")


def logger_line(tmp_path: Path, *args: str) -> str:
    """What rsyslog writes to /var/log/syslog for ``logger ARGS``: the real logger's datagram.

    logger sends ``<PRI>TIMESTAMP TAG: MSG`` to the socket; rsyslog's file format is the
    same line without the priority and with the host name after the timestamp.
    """
    path = str(tmp_path / "devlog")
    if os.path.exists(path):
        os.unlink(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        sock.bind(path)
        sock.settimeout(5)
        subprocess.run(["logger", "-u", path, *args], check=True, timeout=10)
        data = sock.recv(65536).decode()
    finally:
        sock.close()
    m = re.match(r"<\d+>([A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d) (.*)", data)
    assert m is not None, data
    return f"{m.group(1)} testhost {m.group(2)}\n"


class Run:
    """A LogWatcher with the real file source on ``syslog`` (and kmsg when a path is given)."""

    def __init__(self, tmp_path: Path, cfg: LogConfig, kmsg_path: Optional[Path] = None) -> None:
        self.clock = VirtualClock()
        self.alerts: List[Alert] = []
        self.samples: List[Sample] = []
        self.syslog = tmp_path / "syslog"
        self.syslog.write_text("")
        self.watcher = LogWatcher(
            cfg,
            hostname="h",
            data_dir=tmp_path / "data",
            clock=self.clock,
            syslog_paths=[str(self.syslog)],
            emit_alert=self.alerts.append,
            emit_sample=self.samples.append,
            kmsg_path=str(kmsg_path or tmp_path / "no-kmsg"),
            journalctl="no-such-journalctl-binary",
        )

    async def start(self) -> None:
        self.task = asyncio.ensure_future(self.watcher.run())
        await self.clock.advance(0)
        await self.clock.advance(1.0)

    async def write(self, line: str) -> None:
        with self.syslog.open("a") as f:
            f.write(line)
        await self.clock.advance(1.0)

    async def stop(self) -> None:
        await self.watcher.stop()
        await asyncio.wait_for(self.task, 5)


@needs_logger
async def test_logger_kernel_panic_from_a_user_raises_nothing(tmp_path: Path) -> None:
    """The reproduction: ``logger "Kernel panic? no"`` paged everyone with an EMERGENCY."""
    r = Run(tmp_path, LogConfig(journal=False))
    await r.start()
    await r.write(logger_line(tmp_path, "Kernel panic? no"))
    await r.write(logger_line(tmp_path, "-t", "myapp", "Kernel panic - not syncing: no"))
    assert r.alerts == []
    await r.stop()


@needs_logger
async def test_a_forged_kernel_tag_is_critical_at_most_when_kmsg_is_off(tmp_path: Path) -> None:
    r = Run(tmp_path, LogConfig(journal=False))  # kmsg path missing: the file's kernel lines serve
    await r.start()
    await r.write(logger_line(tmp_path, "-t", "kernel", "Kernel panic - not syncing: forged"))
    assert [a.metric for a in r.alerts] == ["log_kernel_panic"]
    alert = r.alerts[0]
    assert alert.severity is Severity.CRITICAL
    assert dict(alert.labels)["downgraded"] == "emergency"
    assert "sent as critical" in alert.message
    await r.stop()


@needs_logger
async def test_kernel_lines_of_a_file_are_ignored_while_kmsg_reads(tmp_path: Path) -> None:
    kmsg = tmp_path / "kmsg"
    kmsg.write_bytes(b"")  # readable, empty: the kmsg source is open and reading
    cfg = LogConfig(
        journal=False,
        custom_patterns=[CustomPattern(name="deploy", pattern=r"deployed (?P<app>\w+)")],
    )
    r = Run(tmp_path, cfg, kmsg_path=kmsg)
    await r.start()
    assert r.watcher.kmsg is not None and r.watcher.kmsg.reading
    await r.write(logger_line(tmp_path, "-t", "kernel", "Kernel panic - not syncing: forged"))
    await r.write(logger_line(tmp_path, "-t", "kernel", "EXT4-fs error (device sda1): forged"))
    assert r.alerts == []
    # userland patterns still match the file
    await r.write(logger_line(tmp_path, "-t", "ci", "deployed shop"))
    assert [a.metric for a in r.alerts] == ["log_deploy"]
    await r.stop()


async def test_userland_daemons_named_by_a_kernel_pattern_still_match(tmp_path: Path) -> None:
    r = Run(tmp_path, LogConfig(journal=False))
    await r.start()
    await r.write("Nov 27 03:00:00 h mcelog[812]: Corrected ECC error on DIMM_A1, count 3\n")
    await r.write("Nov 27 03:00:01 h systemd-networkd[512]: eno1: Lost carrier\n")
    await r.write("Nov 27 03:00:02 h myapp[9]: eno2: Lost carrier\n")
    assert [a.metric for a in r.alerts] == ["log_hardware_error", "log_network_down"]
    await r.stop()


def pipeline(clock: VirtualClock, alerts: List[Alert]) -> EventPipeline:
    return EventPipeline(
        hostname="h",
        clock=clock,
        emit_alert=alerts.append,
        emit_sample=lambda s: None,
        burst_window=30.0,
        dedup_window=0.0,
        max_line=512,
        own_pid=1,
    )


def journal_entry(transport: str, ident: str, message: str) -> bytes:
    return json.dumps(
        {"__CURSOR": "c", "_TRANSPORT": transport, "SYSLOG_IDENTIFIER": ident, "MESSAGE": message}
    ).encode()


def test_journal_kernel_patterns_need_the_kernel_transport(tmp_path: Path) -> None:
    clock, alerts = VirtualClock(), []  # type: ignore[var-annotated]
    p = pipeline(clock, alerts)
    src = JournalSource("journalctl", tmp_path / "j.state", Matcher(), p.deliver, clock)
    # a userland client can set SYSLOG_IDENTIFIER=kernel, never _TRANSPORT
    src.handle_line(journal_entry("syslog", "kernel", "Kernel panic - not syncing: forged"))
    src.handle_line(journal_entry("journal", "myapp", "Kernel panic - not syncing: forged"))
    assert alerts == []
    src.handle_line(journal_entry("kernel", "kernel", "Kernel panic - not syncing: real"))
    assert [(a.metric, a.severity) for a in alerts] == [("log_kernel_panic", Severity.EMERGENCY)]
    assert dict(alerts[0].labels)["transport"] == "kernel"


def test_a_custom_emergency_is_critical_unless_the_kernel_wrote_it(tmp_path: Path) -> None:
    clock, alerts = VirtualClock(), []  # type: ignore[var-annotated]
    p = pipeline(clock, alerts)
    spec = compile_custom(
        CustomPattern(name="x", pattern=r"db corrupt (?P<db>\w+)", severity="emergency")
    )
    m = Matcher((), [spec])
    for source, meta, db in (
        ("/var/log/syslog", {"ident": "postgres"}, "a"),
        ("journal", {"ident": "postgres"}, "b"),
        ("kmsg", {}, "c"),
    ):
        for hit in m.scan_text(f"db corrupt {db}"):
            p.deliver(source, hit, meta)
    assert [a.severity for a in alerts] == [
        Severity.CRITICAL,
        Severity.CRITICAL,
        Severity.EMERGENCY,
    ]


async def test_custom_patterns_can_be_scoped_by_source_and_ident(tmp_path: Path) -> None:
    cfg = LogConfig(
        journal=False,
        custom_patterns=[
            CustomPattern(name="only_journal", pattern=r"alpha (?P<w>\w+)", sources=["journal"]),
            CustomPattern(name="only_files", pattern=r"beta (?P<w>\w+)", sources=["files"]),
            CustomPattern(name="only_nginx", pattern=r"gamma (?P<w>\w+)", idents=["nginx"]),
        ],
    )
    r = Run(tmp_path, cfg)
    await r.start()
    await r.write("Nov 27 03:00:00 h app[1]: alpha one\n")
    await r.write("Nov 27 03:00:00 h app[1]: beta two\n")
    await r.write("Nov 27 03:00:00 h app[1]: gamma three\n")
    await r.write("Nov 27 03:00:00 h nginx[2]: gamma four\n")
    assert [(a.metric, dict(a.labels)["w"]) for a in r.alerts] == [
        ("log_only_files", "two"),
        ("log_only_nginx", "four"),
    ]
    await r.stop()


def test_an_unknown_source_name_is_a_config_problem() -> None:
    cfg = LogConfig(
        custom_patterns=[CustomPattern(name="x", pattern="y", sources=["kmesg", "/var/log/a"])]
    )
    assert [(p.path, p.message) for p in cfg.check()] == [
        (
            "collector.log.custom_patterns[0].sources[0]",
            "'kmesg' is not a source: kmsg, journal, files or an absolute path",
        )
    ]
