"""Memory and swap from ``/proc/meminfo`` (gauges).

``memory_available_bytes`` is the kernel's ``MemAvailable`` estimate. Kernels
before 3.14 that did not backport it (the CentOS 6/7 era) lack it; there we
fall back to ``MemFree + Buffers + Cached - Shmem`` — page cache that is
not shared memory can be dropped. ``memory_used_bytes`` is total minus
available, so "used" means "not available to a new program".

/proc/vmstat is not read: every required metric comes from meminfo, and
reading a second file each cycle would cost without adding a metric.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Dict, List, NamedTuple, Tuple

from sysops_agent.collectors.base import CollectorStats, interval_opt
from sysops_agent.collectors.common import ParseError
from sysops_agent.model import Sample
from sysops_agent.procfs import ProcFS
from sysops_agent.schema import opt


class MemInfo(NamedTuple):
    """The meminfo figures we use, in bytes."""

    total: int
    available: int
    swap_total: int
    swap_free: int
    #: True when MemAvailable was missing and ``available`` is the fallback estimate
    estimated: bool


def parse_meminfo_fields(text: str) -> Dict[str, int]:
    """Every ``Key:  value [kB]`` line, in bytes (HugePages_* counts are kept as counts)."""
    fields: Dict[str, int] = {}
    for line in text.split("\n"):
        key, sep, rest = line.partition(":")
        if not sep:
            continue
        parts = rest.split()
        if not parts:
            continue
        try:
            value = int(parts[0])
        except ValueError:
            raise ParseError("/proc/meminfo", f"non-numeric value in line {line!r}") from None
        fields[key] = value * 1024 if len(parts) > 1 and parts[1] == "kB" else value
    return fields


def parse_meminfo(text: str) -> MemInfo:
    f = parse_meminfo_fields(text)
    try:
        total = f["MemTotal"]
        available = f.get("MemAvailable")
        estimated = available is None
        if available is None:
            available = f["MemFree"] + f.get("Buffers", 0) + f.get("Cached", 0) - f.get("Shmem", 0)
    except KeyError as e:
        raise ParseError("/proc/meminfo", f"missing field {e.args[0]}") from None
    available = max(0, min(available, total))
    return MemInfo(total, available, f.get("SwapTotal", 0), f.get("SwapFree", 0), estimated)


class MemoryCollector:
    name = "memory"
    may_block = False  # reads only the kernel's own counters: shares a worker job

    def __init__(self, procfs: ProcFS, interval: float = 10.0) -> None:
        self.procfs = procfs
        self.interval = interval
        self.stats = CollectorStats()

    def collect(self, now: float) -> List[Sample]:
        m = parse_meminfo(self.procfs.read_text("meminfo"))
        used = m.total - m.available
        out = [
            Sample(now, "memory_total_bytes", float(m.total)),
            Sample(now, "memory_available_bytes", float(m.available)),
            Sample(now, "memory_used_bytes", float(used)),
        ]
        if m.total > 0:
            out.append(Sample(now, "memory_usage_percent", used * 100.0 / m.total))
        swap_used = max(0, m.swap_total - m.swap_free)
        # no swap configured: nothing is in use, report 0 rather than leaving a gap
        swap_pct = swap_used * 100.0 / m.swap_total if m.swap_total > 0 else 0.0
        out.append(Sample(now, "swap_usage_percent", swap_pct))
        return out


@dataclass(frozen=True)
class MemoryConfig:
    #: the metrics this collector emits (check-config warns about rules naming others)
    METRICS: ClassVar[Tuple[str, ...]] = (
        "memory_usage_percent",
        "memory_used_bytes",
        "memory_available_bytes",
        "memory_total_bytes",
        "swap_usage_percent",
    )

    enabled: bool = opt(True)
    interval_secs: float = interval_opt(10)


def create(procfs: ProcFS, cfg: MemoryConfig) -> MemoryCollector:
    return MemoryCollector(procfs, interval=cfg.interval_secs)
