"""Log sources are plugins: the watcher builds whatever the registry lists (issue 11)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import List

import pytest

from sysops_agent.clock import VirtualClock
from sysops_agent.config import load_config
from sysops_agent.logwatch import registry, watcher
from sysops_agent.logwatch.config import LogConfig
from sysops_agent.logwatch.journal import JournalSource
from sysops_agent.logwatch.kmsg import KmsgSource
from sysops_agent.logwatch.source import LogSource, SourceContext
from sysops_agent.logwatch.tail import TailSource
from sysops_agent.model import Alert, Severity
from sysops_agent.plugins import Plugin


class Echo:
    """A source in one class, as a new source module would hold it."""

    name = "echo"

    def __init__(self, ctx: SourceContext) -> None:
        self.ctx = ctx
        self.saves = 0
        self.closed = False

    async def run(self) -> None:
        for hit in self.ctx.matcher.scan_text("Kernel panic - not syncing: echo"):
            self.ctx.deliver(self.name, hit, {})
        await asyncio.Event().wait()  # until cancelled

    def save_state(self) -> None:
        self.saves += 1

    def close(self) -> None:
        self.closed = True


def make(tmp_path: Path, cfg: LogConfig, alerts: List[Alert]) -> watcher.LogWatcher:
    return watcher.LogWatcher(
        cfg,
        hostname="h",
        data_dir=tmp_path / "data",
        clock=VirtualClock(),
        syslog_paths=[str(tmp_path / "syslog")],
        emit_alert=alerts.append,
        emit_sample=lambda s: None,
        kmsg_path=str(tmp_path / "no-kmsg"),
        journalctl="no-such-journalctl-binary",
    )


def test_the_built_in_sources_come_from_the_registry(tmp_path: Path) -> None:
    assert [p.name for p in registry.SOURCES] == ["kmsg", "journal", "files"]
    w = make(tmp_path, LogConfig(), [])
    assert [type(s) for s in w.sources] == [KmsgSource, JournalSource, TailSource]
    w = make(tmp_path, LogConfig(kmsg=False, journal=False), [])
    assert [s.name for s in w.sources] == ["files"]


async def test_a_new_source_is_one_registry_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    echo: List[Echo] = []

    def create(config: LogConfig, ctx: SourceContext) -> LogSource:
        echo.append(Echo(ctx))
        return echo[-1]

    monkeypatch.setattr(watcher, "SOURCES", (Plugin("echo", LogConfig, create),))
    alerts: List[Alert] = []
    w = make(tmp_path, LogConfig(), alerts)
    assert [s.name for s in w.sources] == ["echo"]
    task = asyncio.ensure_future(w.run())
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    # a source that proves nothing: its emergency is sent as critical
    assert [(a.metric, a.severity) for a in alerts] == [("log_kernel_panic", Severity.CRITICAL)]
    await w.stop()
    await asyncio.wait_for(task, 5)
    assert echo[0].saves >= 1 and echo[0].closed


def test_the_collector_log_keys_load_unchanged() -> None:
    loaded = load_config(
        text='[collector.log]\nkmsg = false\njournal = true\nfiles = ["/var/log/a", "/var/log/b"]\n',
        env={},
    )
    assert loaded.problems == []
    log = loaded.config.collector.log
    assert (log.kmsg, log.journal, log.files) == (False, True, ["/var/log/a", "/var/log/b"])
