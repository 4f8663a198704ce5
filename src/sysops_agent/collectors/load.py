"""Load averages from ``/proc/loadavg``: ``1m 5m 15m running/total last_pid``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, List, Tuple

from sysops_agent.collectors.base import CollectorStats, interval_opt
from sysops_agent.collectors.common import ParseError
from sysops_agent.model import Sample
from sysops_agent.procfs import ProcFS
from sysops_agent.schema import opt


def parse_loadavg(text: str) -> Tuple[float, float, float]:
    parts = text.split()
    try:
        return float(parts[0]), float(parts[1]), float(parts[2])
    except (IndexError, ValueError):
        raise ParseError("/proc/loadavg", f"expected three load averages, got {text!r}") from None


class LoadCollector:
    name = "load"
    may_block = False  # reads only the kernel's own counters: shares a worker job

    def __init__(self, procfs: ProcFS, interval: float = 10.0) -> None:
        self.procfs = procfs
        self.interval = interval
        self.stats = CollectorStats()

    def collect(self, now: float) -> List[Sample]:
        one, five, fifteen = parse_loadavg(self.procfs.read_text("loadavg"))
        return [
            Sample(now, "load_avg_1m", one),
            Sample(now, "load_avg_5m", five),
            Sample(now, "load_avg_15m", fifteen),
        ]


@dataclass(frozen=True)
class LoadConfig:
    #: the metrics this collector emits (check-config warns about rules naming others)
    METRICS: ClassVar[Tuple[str, ...]] = (
        "load_avg_1m",
        "load_avg_5m",
        "load_avg_15m",
    )

    enabled: bool = opt(True)
    interval_secs: float = interval_opt(10)


def create(procfs: ProcFS, cfg: LoadConfig) -> LoadCollector:
    return LoadCollector(procfs, interval=cfg.interval_secs)
