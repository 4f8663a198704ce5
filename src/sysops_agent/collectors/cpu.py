"""CPU time split from ``/proc/stat``: deltas of the jiffy counters -> percentages.

Each ``cpu``/``cpuN`` line holds cumulative times since boot, in USER_HZ
ticks: user nice system idle iowait irq softirq steal guest guest_nice.
``guest`` and ``guest_nice`` are already included in ``user`` and ``nice``,
so only the first eight fields make up the total (adding the guest fields
would count that time twice). Kernels older than 2.6.11 lack ``steal``;
missing fields count as zero.

Metrics (percent of all CPU time in the interval):

- ``cpu_usage_percent``: everything but idle and iowait;
- ``cpu_user_percent``: user + nice (all user-space time);
- ``cpu_system_percent``: system + irq + softirq (all kernel time);
- ``cpu_iowait_percent``, ``cpu_steal_percent``;
- ``cpu_core_usage_percent{core}``: the usage of each CPU.

A CPU whose counters went backwards (or that is new, or came back from
offline) gives no sample for that step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Dict, List, Optional, Tuple

from sysops_agent.collectors.base import CollectorStats, interval_opt
from sysops_agent.collectors.common import ParseError
from sysops_agent.model import Labels, Sample, make_labels
from sysops_agent.procfs import ProcFS
from sysops_agent.rates import counter_deltas
from sysops_agent.schema import opt

#: user nice system idle iowait irq softirq steal — the fields that add up to the total
N_FIELDS = 8
USER, NICE, SYSTEM, IDLE, IOWAIT, IRQ, SOFTIRQ, STEAL = range(N_FIELDS)

CpuTimes = Tuple[int, ...]


def parse_stat(text: str) -> Dict[str, CpuTimes]:
    """The ``cpu`` (all CPUs) and ``cpuN`` lines of /proc/stat, as tuples of 8 tick counts."""
    out: Dict[str, CpuTimes] = {}
    for line in text.split("\n"):
        if not line.startswith("cpu"):
            if out:
                break  # the cpu lines come first; skip the long intr/softirq lines
            continue
        parts = line.split()
        try:
            values = [int(v) for v in parts[1 : N_FIELDS + 1]]
        except ValueError:
            raise ParseError("/proc/stat", f"non-numeric CPU time in line {line!r}") from None
        if len(values) < 4:
            raise ParseError("/proc/stat", f"expected at least 4 CPU times in line {line!r}")
        values.extend([0] * (N_FIELDS - len(values)))
        out[parts[0]] = tuple(values)
    if "cpu" not in out:
        raise ParseError("/proc/stat", "no aggregate 'cpu' line")
    return out


def _percentages(prev: Optional[CpuTimes], cur: CpuTimes) -> Optional[List[float]]:
    """[usage, user, system, iowait, steal] percent between two readings, or None."""
    if prev is None:
        return None
    d = counter_deltas(prev, cur)
    if d is None:
        return None
    total = sum(d)
    if total <= 0:
        return None
    scale = 100.0 / total
    return [
        (total - d[IDLE] - d[IOWAIT]) * scale,
        (d[USER] + d[NICE]) * scale,
        (d[SYSTEM] + d[IRQ] + d[SOFTIRQ]) * scale,
        d[IOWAIT] * scale,
        d[STEAL] * scale,
    ]


class CpuCollector:
    name = "cpu"
    may_block = False  # reads only the kernel's own counters: shares a worker job

    def __init__(self, procfs: ProcFS, interval: float = 10.0, per_core: bool = True) -> None:
        self.procfs = procfs
        self.interval = interval
        self.per_core = per_core
        self.stats = CollectorStats()
        self._prev: Dict[str, CpuTimes] = {}
        self._core_labels: Dict[str, Labels] = {}

    def collect(self, now: float) -> List[Sample]:
        cur = parse_stat(self.procfs.read_text("stat"))
        prev, self._prev = self._prev, cur  # vanished CPUs are forgotten here
        out: List[Sample] = []
        pct = _percentages(prev.get("cpu"), cur["cpu"])
        if pct is not None:
            out.append(Sample(now, "cpu_usage_percent", pct[0]))
            out.append(Sample(now, "cpu_user_percent", pct[1]))
            out.append(Sample(now, "cpu_system_percent", pct[2]))
            out.append(Sample(now, "cpu_iowait_percent", pct[3]))
            out.append(Sample(now, "cpu_steal_percent", pct[4]))
        if self.per_core:
            for name, times in cur.items():
                if name == "cpu":
                    continue
                core = _percentages(prev.get(name), times)
                if core is not None:
                    out.append(Sample(now, "cpu_core_usage_percent", core[0], self._labels(name)))
        return out

    def _labels(self, name: str) -> Labels:
        labels = self._core_labels.get(name)
        if labels is None:
            labels = self._core_labels[name] = make_labels(core=name[3:])
        return labels


@dataclass(frozen=True)
class CpuConfig:
    #: the metrics this collector emits (check-config warns about rules naming others)
    METRICS: ClassVar[Tuple[str, ...]] = (
        "cpu_usage_percent",
        "cpu_user_percent",
        "cpu_system_percent",
        "cpu_iowait_percent",
        "cpu_steal_percent",
        "cpu_core_usage_percent",
    )

    enabled: bool = opt(True)
    interval_secs: float = interval_opt(10)
    per_core: bool = opt(True, help="emit cpu_core_usage_percent{core}")


def create(procfs: ProcFS, cfg: CpuConfig) -> CpuCollector:
    c = cfg
    return CpuCollector(procfs, interval=c.interval_secs, per_core=c.per_core)
