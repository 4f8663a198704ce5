"""Issue 12 item 5 end to end: the real agent follows a file that receives a 50,000-line storm.

Before: the 1,000-slot alert queue kept the end of the storm, the console showed the
segfaults of the last processes and "…and N more alerts suppressed", and the drops were
logged. After: the first event is on the console at once, then one line with the exact
count, and nothing is dropped.
"""

from __future__ import annotations

import time
from pathlib import Path

from tests.support.agentproc import AgentProcess, agent_config, minimal_procfs

SEGV = (
    "Dec  1 06:00:00 web01 kernel: [100.{n:06d}] app{n}[{pid}]: segfault at 0 "
    "ip 00007f3a1c2b4e10 sp 00007ffd5e8c1a40 error 4 in libc.so.6[7f3a1c200000+195000]\n"
)
LINES = 50_000


def test_a_50000_line_storm_prints_its_first_event_and_an_exact_count(tmp_path: Path) -> None:
    syslog = tmp_path / "syslog"
    syslog.write_text("")
    config = agent_config(tmp_path, minimal_procfs(tmp_path))
    text = config.read_text()
    assert "[collector.log]\nenabled = false\n" in text
    config.write_text(
        text.replace(
            "[collector.log]\nenabled = false\n",
            "[collector.log]\nkmsg = false\njournal = false\n"
            f'files = ["{syslog}"]\nburst_window_secs = 2\n',
        )
    )
    agent = AgentProcess(["run", "--config", str(config)])
    try:
        agent.wait_stderr("log watcher: sources files")
        storm = "".join(SEGV.format(n=i, pid=i + 1) for i in range(LINES))
        with syslog.open("a") as f:
            f.write(storm)
        started = time.monotonic()
        first = agent.wait_line("log_segfault")
        assert "Segfault in app0 (pid 1)" in first, first
        summary = agent.wait_line("log_segfault", "(storm)")
        waited = time.monotonic() - started
        assert "50,000 segfaults from over 1,024 processes" in summary, summary
        assert "first in app0 (pid 1) at " in summary
        assert "last in app49999 (pid 50000) at " in summary
    finally:
        code = agent.stop()
    assert code == 0, "".join(agent.stderr)
    segfault_lines = [line for line in agent.stdout if "log_segfault" in line]
    # the first three processes one by one, then the storm: four lines, not 50,000
    assert len(segfault_lines) == 4, "".join(segfault_lines)
    assert [("app0" in x, "app1" in x, "app2" in x) for x in segfault_lines[:3]] == [
        (True, False, False),
        (False, True, False),
        (False, False, True),
    ]
    assert not [line for line in agent.stdout if "suppressed" in line]
    stderr = "".join(agent.stderr)
    assert "Dropped" not in stderr and "queue full" not in stderr, stderr
    assert len(agent.stderr) < 30, stderr
    assert waited < 15, f"the summary came {waited:.1f} s after the storm"
