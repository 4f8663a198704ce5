"""Seconds since boot from ``/proc/uptime`` (first field; the second is summed idle time)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, List, Tuple

from sysops_agent.collectors.base import CollectorStats, interval_opt
from sysops_agent.collectors.common import ParseError
from sysops_agent.model import Sample
from sysops_agent.procfs import ProcFS
from sysops_agent.schema import opt


def parse_uptime(text: str) -> float:
    try:
        return float(text.split()[0])
    except (IndexError, ValueError):
        raise ParseError("/proc/uptime", f"expected seconds since boot, got {text!r}") from None


class UptimeCollector:
    name = "uptime"
    may_block = False  # reads only the kernel's own counters: shares a worker job

    def __init__(self, procfs: ProcFS, interval: float = 60.0) -> None:
        self.procfs = procfs
        self.interval = interval
        self.stats = CollectorStats()

    def collect(self, now: float) -> List[Sample]:
        return [Sample(now, "uptime_seconds", parse_uptime(self.procfs.read_text("uptime")))]


@dataclass(frozen=True)
class UptimeConfig:
    #: the metrics this collector emits (check-config warns about rules naming others)
    METRICS: ClassVar[Tuple[str, ...]] = ("uptime_seconds",)

    enabled: bool = opt(True)
    interval_secs: float = interval_opt(60)


def create(procfs: ProcFS, cfg: UptimeConfig) -> UptimeCollector:
    return UptimeCollector(procfs, interval=cfg.interval_secs)
