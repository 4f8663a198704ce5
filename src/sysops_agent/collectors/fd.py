"""System-wide file handles from ``/proc/sys/fs/file-nr`` (gauges).

The file holds three numbers: allocated handles, allocated-but-unused
handles (always 0 since Linux 2.6 frees them at once) and the maximum
(``fs.file-max``). Per-process descriptor counts are the process
collector's ``process_fd_count``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, List, NamedTuple, Tuple

from sysops_agent.collectors.base import CollectorStats, interval_opt
from sysops_agent.collectors.common import ParseError
from sysops_agent.model import Sample
from sysops_agent.procfs import ProcFS
from sysops_agent.schema import opt


class FileNr(NamedTuple):
    allocated: int
    unused: int
    max: int


def parse_file_nr(text: str) -> FileNr:
    parts = text.split()
    if len(parts) < 3:
        raise ParseError("/proc/sys/fs/file-nr", f"expected 3 numbers, got {text.strip()!r}")
    try:
        return FileNr(int(parts[0]), int(parts[1]), int(parts[2]))
    except ValueError:
        raise ParseError("/proc/sys/fs/file-nr", f"non-numeric value in {text.strip()!r}") from None


class FdCollector:
    name = "fd"
    may_block = False  # reads only the kernel's own counters: shares a worker job

    def __init__(self, procfs: ProcFS, interval: float = 30.0) -> None:
        self.procfs = procfs
        self.interval = interval
        self.stats = CollectorStats()

    def collect(self, now: float) -> List[Sample]:
        nr = parse_file_nr(self.procfs.read_text("sys", "fs", "file-nr"))
        out = [
            Sample(now, "fd_allocated", float(nr.allocated)),
            Sample(now, "fd_max", float(nr.max)),
        ]
        if nr.max > 0:
            in_use = max(0, nr.allocated - nr.unused)
            out.append(Sample(now, "fd_usage_percent", in_use * 100.0 / nr.max))
        return out


@dataclass(frozen=True)
class FdConfig:
    #: the metrics this collector emits (check-config warns about rules naming others)
    METRICS: ClassVar[Tuple[str, ...]] = (
        "fd_allocated",
        "fd_max",
        "fd_usage_percent",
    )

    enabled: bool = opt(True)
    interval_secs: float = interval_opt(30)


def create(procfs: ProcFS, cfg: FdConfig) -> FdCollector:
    return FdCollector(procfs, interval=cfg.interval_secs)
