"""Host text never reaches a console line, a log line, a message, a label or a subject
with its control characters (issue 18 item 7): one function, ``model.clean_text``."""

from __future__ import annotations

import ctypes
import io
import logging
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sysops_agent.alerting.text import format_line
from sysops_agent.clock import VirtualClock
from sysops_agent.collectors.registry import COLLECTORS
from sysops_agent.logwatch.events import EventPipeline
from sysops_agent.logwatch.patterns import Matcher
from sysops_agent.model import Alert, Severity, make_labels

EVIL = "evil\nFAKE"  # 9 bytes: fits comm's 15


def test_a_process_named_with_a_newline_stays_on_its_line_in_collect(tmp_path: Path) -> None:
    if not Path("/proc/self/comm").exists() or not hasattr(ctypes, "CDLL"):
        pytest.skip("needs Linux procfs")
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import ctypes, sys, time\n"
            "ctypes.CDLL(None).prctl(15, sys.argv[1].encode(), 0, 0, 0)  # PR_SET_NAME\n"
            "print('ok', flush=True)\n"
            "time.sleep(60)\n",
            EVIL,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None and child.stdout.readline() == "ok\n"
        assert Path(f"/proc/{child.pid}/comm").read_text() == EVIL + "\n"
        config = tmp_path / "agent.toml"
        off = "".join(
            f"[collector.{name}]\nenabled = false\n"
            for name in (p.name for p in COLLECTORS if p.name != "process")
        )
        config.write_text(
            off + '[collector.process]\ntop_n = 0\ntrack_patterns = ["evil*"]\n'
            "[collector.log]\nenabled = false\n"
        )
        out = subprocess.run(
            [sys.executable, "-m", "sysops_agent", "collect", "--once", "--config", str(config)],
            capture_output=True,
            text=True,
            timeout=60,
        ).stdout
    finally:
        child.kill()
        child.communicate()
    mine = [line for line in out.splitlines() if f"pid={child.pid}" in line]
    assert mine, out
    assert all(line.startswith("process_") for line in out.splitlines()), out
    assert all("name=evil\\nFAKE" in line for line in mine)


def test_labels_alerts_and_the_console_line_escape_control_characters() -> None:
    labels = make_labels(name=EVIL, pid=1)
    assert labels == (("name", "evil\\nFAKE"), ("pid", "1"))
    alert = Alert(
        timestamp=1_780_000_000.0,
        hostname="web\x1b[2J01",
        severity=Severity.WARN,
        metric="log_custom",
        value=1.0,
        threshold=1.0,
        message="line one\nline\x00two\r",
        analyzer="log",
        labels=(("name", EVIL),),
    )
    assert alert.hostname == "web\\x1b[2J01"
    assert alert.message == "line one\nline\\x00two\\r"  # a message may span lines
    assert alert.labels == (("name", "evil\\nFAKE"),)
    line = format_line(alert)
    assert "\n" not in line and "\x00" not in line and "\x1b" not in line
    assert "line one\\nline\\x00two" in line


def test_nul_bytes_from_a_log_line_never_reach_the_console() -> None:
    alerts: list[Alert] = []
    p = EventPipeline(
        hostname="web01",
        clock=VirtualClock(),
        emit_alert=alerts.append,
        emit_sample=lambda s: None,
        burst_window=30.0,
        dedup_window=10.0,
        max_line=512,
        own_pid=999,
    )
    line = (
        "EXT4-fs error (device sda1): ext4_lookup:1855: inode #2: comm l\x00s\x1b]0;pwned\x07: bad"
    )
    for hit in Matcher().scan_text(line):
        p.deliver("kmsg", hit, {})
    assert alerts
    for alert in alerts:
        text = format_line(alert) + alert.message + "".join(v for _, v in alert.labels)
        assert "\x00" not in text and "\x1b" not in text and "\x07" not in text


def test_a_log_record_with_host_text_is_one_line() -> None:
    from sysops_agent.agent_logging import CleanTextFilter

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(CleanTextFilter())
    log = logging.getLogger("sysops_agent.test_hygiene")
    log.addHandler(handler)
    try:
        log.warning("cannot read %s", "/var/log/x\n2026-12-01 ERROR forged")
    finally:
        log.removeHandler(handler)
    assert stream.getvalue() == "cannot read /var/log/x\\n2026-12-01 ERROR forged\n"


def test_clean_text_is_cheap_for_clean_text() -> None:
    from sysops_agent.model import clean_text

    text = "postgres: checkpointer"
    assert clean_text(text) is text  # no copy when nothing is wrong
    start = time.perf_counter()
    assert clean_text("a\u202eb") == "a\\u202eb"  # bidi override (Trojan Source)
    assert time.perf_counter() - start < 1.0
