"""Process churn in the top N: does the agent's memory level off? (issue 12)

    .venv/bin/python bench/churn.py [--cycles 20000]

One process, no threads: the process collector (top 20) over a made-up
``/proc`` of 60 steady processes plus 4 large jobs that start every cycle
and live 6 cycles (3 minutes at the default 30 s), so every cycle new
processes enter the top N and others leave it. The store drops their series
after 3 intervals, as the daemon does, and the bundled config's analyzers
run after each cycle. Prints the series count and the RSS every
``cycles / 20`` cycles: anything kept per process seen would show as a slope.
"""

from __future__ import annotations

import argparse
import gc
import sys
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from sysops_agent.analysis import AnalysisTick  # noqa: E402
from sysops_agent.analyzers.registry import build_analyzers  # noqa: E402
from sysops_agent.collectors.process import ProcessCollector  # noqa: E402
from sysops_agent.config import load_config  # noqa: E402
from sysops_agent.procfs import KeptPidFiles, ProcessGone, ProcFS  # noqa: E402
from sysops_agent.storage.store import Store  # noqa: E402

METRICS = (
    "process_rss_bytes",
    "process_threads",
    "process_fd_count",
    "process_cpu_percent",
    "process_io_read_bytes_per_second",
    "process_io_write_bytes_per_second",
)


def stat_line(pid: int, comm: str, rss: int, ticks: int) -> bytes:
    f = [str(pid), f"({comm})", "S", "1", str(pid), str(pid), "0", "-1", "4194560"]
    f += ["100", "0", "0", "0", str(ticks), "5", "0", "0", "20", "0", "4", "0"]
    f += [str(5000 + pid), str(rss * 4096), str(rss)] + ["0"] * 28
    return (" ".join(f) + "\n").encode()


class Churning(ProcFS):
    """A ``/proc`` held in a dict: pid -> (comm, RSS in pages)."""

    def __init__(self) -> None:
        super().__init__("/nonexistent", "/nonexistent")
        self.procs: Dict[int, Tuple[str, int]] = {}
        self.tick = 0

    def read_every_pid(
        self, name: str, kept: Optional[KeptPidFiles] = None
    ) -> Iterator[Tuple[int, bytes]]:
        for pid, (comm, rss) in list(self.procs.items()):
            yield pid, stat_line(pid, comm, rss + self.tick % 13, self.tick * 3)

    def count_fds(self, pid: int) -> int:
        if pid not in self.procs:
            raise ProcessGone(pid)
        return 12

    def read_pid_bytes(self, pid: int, name: str) -> bytes:
        if pid not in self.procs:
            raise ProcessGone(pid)
        io = (self.tick * 4096, self.tick * 8192)
        return b"rchar: 1\nwchar: 1\nread_bytes: %d\nwrite_bytes: %d\n" % io


def rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cycles", type=int, default=20000)
    cycles = parser.parse_args().cycles
    proc = Churning()
    for i in range(60):  # the steady host
        proc.procs[100 + i] = (f"daemon{i}", 500 + i)
    cfg = load_config(str(ROOT / "config" / "sysops-agent.toml")).config
    store = Store()
    for metric in METRICS:
        store.note_interval(metric, 30.0)
    collector = ProcessCollector(proc, interval=30.0, top_n=20)
    tick = AnalysisTick(build_analyzers(cfg, "bench"))
    ending: List[Tuple[int, int]] = []  # (cycle it exits at, pid), oldest first
    next_pid = 10000
    t0 = 1_780_000_000.0
    print(f"python {sys.version.split()[0]}; {cycles} cycles of 30 s")
    for c in range(cycles):
        proc.tick = c
        for _ in range(4):  # four large jobs start, each lives 6 cycles
            proc.procs[next_pid] = (f"job-{next_pid % 97}", 20000 + (next_pid * 7919) % 5000)
            ending.append((c + 6, next_pid))
            next_pid += 1
        while ending and ending[0][0] <= c:
            proc.procs.pop(ending.pop(0)[1], None)
        now = t0 + 30 * c
        for sample in collector.collect(now):
            store.append(sample)
        store.drop_stale(now, 3600.0, 3)
        tick(store, now)
        if c % max(1, cycles // 20) == 0:
            gc.collect()
            days = c * 30 / 86400
            print(f"cycle {c:6d} ({days:5.2f} d): {len(store):4d} series, RSS {rss_mib():7.2f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
