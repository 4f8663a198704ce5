"""The journal source with a stand-in ``journalctl`` on PATH (the real one:
tests/integration/test_journal_real.py)."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import sys
from pathlib import Path
from typing import List, Optional

import pytest

from sysops_agent.clock import Clock, SystemClock, VirtualClock
from sysops_agent.logwatch.config import CustomPattern, LogConfig
from sysops_agent.logwatch.journal import JournalSource, entry_meta, message_text
from sysops_agent.logwatch.patterns import Matcher
from sysops_agent.logwatch.watcher import LogWatcher
from sysops_agent.model import Alert, Sample
from tests.support import paths

FIXTURES = paths.FIXTURES / "logs"

#: A journalctl stand-in. The "journal" is a file of JSON lines ($STANDIN_JOURNAL); like the
#: real one it honours --lines=0 (only new entries) and --after-cursor, follows the file, and
#: exits with an error after $STANDIN_EXIT_AFTER entries when that is set.
STANDIN = """#!{python}
import json, os, sys, time
args = sys.argv[1:]
journal = os.environ["STANDIN_JOURNAL"]
exit_after = int(os.environ.get("STANDIN_EXIT_AFTER", "0"))
after = next((a.split("=", 1)[1] for a in args if a.startswith("--after-cursor=")), None)
pos = 0
with open(journal) as f:
    lines = f.readlines()
if after is None:
    pos = len(lines)
else:
    for i, line in enumerate(lines):
        if json.loads(line)["__CURSOR"] == after:
            pos = i + 1
with open(os.environ["STANDIN_ARGV"], "a") as log:  # "started", once positioned
    log.write(json.dumps(args) + "\\n")
sent = 0
while True:
    with open(journal) as f:
        lines = f.readlines()
    while pos < len(lines):
        sys.stdout.write(lines[pos])
        sys.stdout.flush()
        pos += 1
        sent += 1
        if exit_after and sent >= exit_after:
            sys.stderr.write("Failed to iterate through journal: Bad message\\n")
            sys.exit(1)
    time.sleep(0.02)
"""


@pytest.fixture
def standin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A bin dir with the stand-in journalctl first on PATH; returns the journal file."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "journalctl"
    script.write_text(STANDIN.format(python=sys.executable))
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    journal = tmp_path / "journal.jsonl"
    journal.write_text((FIXTURES / "journal.jsonl").read_text().splitlines(keepends=True)[0])
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("STANDIN_JOURNAL", str(journal))
    monkeypatch.setenv("STANDIN_ARGV", str(tmp_path / "argv.jsonl"))
    return journal


def argv_log(tmp_path: Path) -> List[List[str]]:
    path = tmp_path / "argv.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def fixture_entries() -> List[str]:
    return (FIXTURES / "journal.jsonl").read_text().splitlines(keepends=True)


class Harness:
    def __init__(self, data: Path, real_clock: bool = False) -> None:
        self.clock = VirtualClock()
        clock: Clock = SystemClock() if real_clock else self.clock
        self.alerts: List[Alert] = []
        self.samples: List[Sample] = []
        self.changed = asyncio.Event()
        cfg = LogConfig(
            kmsg=False,
            custom_patterns=[
                CustomPattern(
                    name="nginx_upstream_timeout",
                    pattern=r"upstream timed out .* client: (?P<client>[\d.]+)",
                    severity="warn",
                )
            ],
        )
        self.la = LogWatcher(
            cfg,
            hostname="h",
            data_dir=data,
            clock=clock,
            syslog_paths=[],
            emit_alert=self._alert,
            emit_sample=self.samples.append,
            journald_socket=str(self.journald_socket(data)),
        )
        src = self.la.source("journal")
        assert isinstance(src, JournalSource)
        self.src = src
        self.task: Optional[asyncio.Task[None]] = None

    @staticmethod
    def journald_socket(data: Path) -> Path:
        """journald's socket: the source starts journalctl only while it exists."""
        path = data.parent / "journald.socket"
        path.touch()
        return path

    def _alert(self, alert: Alert) -> None:
        self.alerts.append(alert)
        self.changed.set()

    def start(self) -> None:
        self.task = asyncio.ensure_future(self.la.run())

    async def until(self, cond, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
        async def wait() -> None:
            while not cond():
                await asyncio.sleep(0.01)

        await asyncio.wait_for(wait(), timeout)

    def metrics(self) -> List[str]:
        return [a.metric for a in self.alerts]

    async def stop(self) -> None:
        await self.la.stop()
        assert self.task is not None
        await asyncio.wait_for(self.task, 5)


@pytest.mark.slow
async def test_standin_journal_entries_become_alerts_and_the_cursor_survives_a_restart(
    tmp_path: Path, standin: Path
) -> None:
    h = Harness(tmp_path / "data")
    h.start()
    await h.until(lambda: len(argv_log(tmp_path)) == 1)
    assert argv_log(tmp_path)[-1] == ["--follow", "--output=json", "--no-pager", "--lines=0"]
    entries = fixture_entries()
    with standin.open("a") as f:
        f.writelines(entries[1:5])
    await h.until(lambda: len(h.alerts) == 3)
    oom, nginx, net = h.alerts
    assert oom.metric == "log_oom_kill"
    assert dict(oom.labels)["unit"] == "tomcat9.service"
    assert dict(oom.labels)["source"] == "journal"
    assert nginx.metric == "log_nginx_upstream_timeout"
    labels = dict(nginx.labels)
    assert labels["client"] == "10.0.0.7"
    assert (labels["ident"], labels["systemd_unit"], labels["log_pid"]) == (
        "nginx",
        "nginx.service",
        "1234",
    )
    assert net.metric == "log_network_down" and dict(net.labels)["interface"] == "eno1"
    await h.stop()
    last_cursor = json.loads(entries[4])["__CURSOR"]
    assert json.loads((tmp_path / "data" / "journal.state").read_text()) == {"cursor": last_cursor}

    with standin.open("a") as f:
        f.writelines(entries[5:])  # written while the agent is down
    h2 = Harness(tmp_path / "data")
    h2.start()
    await h2.until(lambda: len(h2.alerts) == 2)
    assert argv_log(tmp_path)[-1][-1] == f"--after-cursor={last_cursor}"
    assert h2.metrics() == ["log_segfault", "log_io_error"]
    assert dict(h2.alerts[0].labels)["object"] == "libfoo\ufffd.so"  # MESSAGE as byte list
    assert h2.src.entries == 3  # including the entry whose MESSAGE is null
    await h2.stop()


@pytest.mark.slow
async def test_journalctl_that_dies_is_restarted_with_backoff(
    tmp_path: Path, standin: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STANDIN_EXIT_AFTER", "1")
    entries = fixture_entries()
    h = Harness(tmp_path / "data")
    h.start()
    await h.until(lambda: len(argv_log(tmp_path)) == 1)
    with standin.open("a") as f:
        f.writelines(entries[7:8])  # one I/O error, then journalctl dies
    await h.until(lambda: h.src.starts == 1 and h.src.proc is None)
    assert h.metrics() == ["log_io_error"]
    await h.clock.advance(0.5)
    assert h.src.starts == 1, "restarted before the backoff"
    await h.clock.advance(0.5)
    await h.until(lambda: len(argv_log(tmp_path)) == 2)
    cursor = json.loads(entries[7])["__CURSOR"]
    assert argv_log(tmp_path)[-1][-1] == f"--after-cursor={cursor}"
    with standin.open("a") as f:
        f.writelines(entries[5:6])  # a segfault; it dies again
    await h.until(lambda: h.src.proc is None and len(h.alerts) == 2)
    await h.clock.advance(1.0)
    assert h.src.starts == 2, "the second wait is 2 s"
    await h.clock.advance(1.0)
    await h.until(lambda: len(argv_log(tmp_path)) == 3)
    assert h.metrics() == ["log_io_error", "log_segfault"]
    await h.stop()


async def test_no_journalctl_means_the_source_is_off_with_one_info_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    caplog.set_level("INFO", logger="sysops_agent.logwatch")
    h = Harness(tmp_path / "data")
    h.start()
    await h.until(lambda: "journal source off" in caplog.text)
    await h.clock.advance(5)
    assert caplog.text.count("journal source off") == 1
    await h.stop()


def test_command_line(tmp_path: Path) -> None:
    src = JournalSource("journalctl", tmp_path / "j", Matcher(), lambda *a: None, VirtualClock())
    assert src.command("/bin/journalctl")[-1] == "--lines=0"
    src.first_start = 1700000000.5  # died before the first entry
    assert src.command("/bin/journalctl")[-1] == "--since=@1700000000"
    src.cursor = "s=1;i=2"
    assert src.command("/bin/journalctl") == [
        "/bin/journalctl",
        "--follow",
        "--output=json",
        "--no-pager",
        "--after-cursor=s=1;i=2",
    ]


def test_entry_helpers() -> None:
    assert message_text([104, 105, 255]) == "hi\ufffd"
    assert message_text(None) is None
    assert entry_meta({"SYSLOG_IDENTIFIER": "sshd", "_PID": "12", "_SYSTEMD_UNIT": ""}) == {
        "ident": "sshd",
        "log_pid": "12",
    }


async def test_no_journald_socket_means_no_journalctl_until_it_appears(
    tmp_path: Path, standin: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A host without journald gets no journalctl child (7 MiB); the socket is looked for hourly."""
    caplog.set_level("INFO", logger="sysops_agent.logwatch")
    h = Harness(tmp_path / "data")
    socket_path = tmp_path / "journald.socket"
    socket_path.unlink()
    h.start()
    await h.until(lambda: h.src.waiting_for_journald)
    await h.clock.advance(1800)
    assert h.src.starts == 0 and argv_log(tmp_path) == []
    socket_path.touch()
    await h.clock.advance(1799)
    assert h.src.starts == 0, "looked for once an hour, not more"
    await h.clock.advance(1)
    await h.until(lambda: len(argv_log(tmp_path)) == 1)
    assert caplog.text.count("journal source idle") == 1
    assert "appeared; following the journal" in caplog.text
    await h.stop()
