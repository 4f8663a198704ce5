"""Run the real agent as a subprocess and read its output line by line, with timeouts."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, List, Optional

MEMINFO = """MemTotal:        {total} kB
MemFree:          {free} kB
MemAvailable:     {avail} kB
Buffers:           10000 kB
Cached:           100000 kB
SwapCached:            0 kB
Active:           200000 kB
Inactive:         100000 kB
Shmem:              1000 kB
SwapTotal:             0 kB
SwapFree:              0 kB
"""


def write_meminfo(proc: Path, used_percent: float, total_kb: int = 4_000_000) -> None:
    """Rewrite ``meminfo`` atomically so that memory_usage_percent == used_percent."""
    avail = int(total_kb * (100.0 - used_percent) / 100.0)
    tmp = proc / ".meminfo.tmp"
    tmp.write_text(MEMINFO.format(total=total_kb, free=avail, avail=avail))
    os.replace(tmp, proc / "meminfo")


def minimal_procfs(root: Path, used_percent: float = 10.0) -> Path:
    proc = root / "proc"
    proc.mkdir(parents=True, exist_ok=True)
    write_meminfo(proc, used_percent)
    (proc / "uptime").write_text("12345.67 20000.00\n")
    (proc / "loadavg").write_text("0.10 0.20 0.30 1/100 4242\n")
    return proc


#: the collectors after the first release's nine: off unless a test's ``extra`` names them
LATER_COLLECTORS = ("pressure", "netstack", "cgroup", "hardware", "gpu")


def agent_config(tmp: Path, proc: Path, extra: str = "") -> Path:
    """A config that runs only the memory, load and uptime collectors every second.

    A collector section named in ``extra`` is left to it (``[collector.netstack]``
    there turns that collector on).
    """
    later = "".join(
        f"[collector.{name}]\nenabled = false\n"
        for name in LATER_COLLECTORS
        if f"[collector.{name}]" not in extra
    )
    text = f"""
[agent]
hostname = "test-host"
log_level = "info"
pid_file = "{tmp / "agent.pid"}"
data_dir = "{tmp / "data"}"
proc_root = "{proc}"
sys_root = "{tmp / "sys"}"

[collector.cpu]
enabled = false
[collector.disk_io]
enabled = false
[collector.disk_usage]
enabled = false
[collector.network]
enabled = false
[collector.process]
enabled = false
[collector.fd]
enabled = false
[collector.memory]
interval_secs = 1
[collector.load]
interval_secs = 1
[collector.uptime]
interval_secs = 1
{later}[collector.log]
enabled = false

[analyzer]
interval_secs = 1

[storage]
sqlite = false

[alerting]
group_window_secs = 0
{extra}
"""
    path = tmp / "agent.toml"
    path.write_text(text)
    return path


class AgentProcess:
    """``sysops-agent ARGS`` in a subprocess; stdout lines are collected by a thread.

    ``command`` replaces the whole command line (an installed agent started as
    the service user); ``cwd`` is its working directory.
    """

    def __init__(
        self,
        args: List[str] = [],  # noqa: B006 - never mutated
        env: Optional[dict[str, str]] = None,
        *,
        command: Optional[List[str]] = None,
        cwd: Optional[Path] = None,
    ) -> None:
        self.proc = subprocess.Popen(
            command or [sys.executable, "-m", "sysops_agent", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=cwd,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.stdout: List[str] = []
        self.stderr: List[str] = []
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self._threads = [
            threading.Thread(
                target=self._pump, args=(self.proc.stdout, self.stdout, True), daemon=True
            ),
            threading.Thread(
                target=self._pump, args=(self.proc.stderr, self.stderr, False), daemon=True
            ),
        ]
        for t in self._threads:
            t.start()

    def _pump(self, stream: IO[str], sink: List[str], notify: bool) -> None:
        for line in stream:
            sink.append(line)
            if notify:
                self.lines.put(line)

    def wait_line(self, *needles: str, timeout: float = 20.0) -> str:
        """The next stdout line containing every needle; fails with the output so far."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(
                    f"no stdout line with {needles!r} within {timeout}s\n"
                    f"stdout:\n{''.join(self.stdout)}\nstderr:\n{''.join(self.stderr)}"
                )
            try:
                line = self.lines.get(timeout=min(left, 0.5))
            except queue.Empty:
                if self.proc.poll() is not None:
                    raise AssertionError(
                        f"agent exited with {self.proc.returncode} while waiting for {needles!r}\n"
                        f"stderr:\n{''.join(self.stderr)}"
                    ) from None
                continue
            if all(n in line for n in needles):
                return line

    def wait_stderr(self, needle: str, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.stderr):
                if needle in line:
                    return line
            time.sleep(0.05)
        raise AssertionError(f"no stderr line with {needle!r}\nstderr:\n{''.join(self.stderr)}")

    def signal(self, sig: signal.Signals) -> None:
        self.proc.send_signal(sig)

    def stop(self, timeout: float = 15.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            for t in self._threads:
                t.join(2)
            for stream in (self.proc.stdout, self.proc.stderr):
                if stream is not None:
                    stream.close()
