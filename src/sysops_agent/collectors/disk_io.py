"""Block device throughput and utilisation from ``/proc/diskstats`` (counters -> rates).

Each line: major minor name, then (Documentation/admin-guide/iostats.rst)
1 reads completed, 2 reads merged, 3 sectors read, 4 ms reading,
5 writes completed, 6 writes merged, 7 sectors written, 8 ms writing,
9 I/Os in progress, 10 ms doing I/O (``io_ticks``), 11 weighted ms, and on
newer kernels discard and flush fields that we do not use.

Sectors are always 512 bytes here, whatever the device's real sector size.
``disk_io_util_percent`` is the share of wall time the device had I/O in
flight: the ``io_ticks`` delta (ms) over the interval.

Latency, as ``iostat -x`` computes it: ``disk_read_await_seconds`` is the
``ms reading`` delta over the reads completed in the interval (the mean time
a read spent queued and being served), ``disk_write_await_seconds`` the same
for writes; an interval with no completed read (write) has no await sample
rather than a 0 that would read as "fast". ``disk_queue_depth`` is the
weighted-ms delta over the interval's ms (``aqu-sz``: the mean number of
requests in flight or queued).

Only whole disks are reported by default: a name with a ``<sys_root>/block/<name>``
entry is a disk (partitions live below their disk there); without sysfs a
name heuristic decides.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Callable, ClassVar, Dict, FrozenSet, List, NamedTuple, Optional, Tuple

from sysops_agent.collectors.base import CollectorStats, interval_opt
from sysops_agent.collectors.common import GlobFilter, ParseError
from sysops_agent.model import Labels, Sample, make_labels
from sysops_agent.procfs import ProcFS
from sysops_agent.rates import GroupRateTracker
from sysops_agent.schema import opt

#: diskstats counts in 512-byte sectors regardless of the hardware sector size
SECTOR_BYTES = 512
#: above these a rate is not physical (a device swapped under the same name): no sample
MAX_BYTES_PER_SEC = 1e12
MAX_OPS_PER_SEC = 1e9
#: io_ticks can run slightly ahead of the wall clock between our two readings;
#: up to this many ms per second we clamp to 100 %, beyond it we drop the step
MAX_TICKS_PER_SEC = 1500.0
#: ms spent per second summed over requests in flight: a queue of a million is not physical
MAX_MS_PER_SEC = 1e9

#: the metrics of the four counters, in the order ``collect`` computes them
RATE_METRICS = (
    "disk_read_bytes_per_second",
    "disk_write_bytes_per_second",
    "disk_read_ops_per_second",
    "disk_write_ops_per_second",
)

#: the physical bound of each counter's rate: bytes read/written, reads, writes, io_ticks
_MAX_RATES = (
    MAX_BYTES_PER_SEC,
    MAX_BYTES_PER_SEC,
    MAX_OPS_PER_SEC,
    MAX_OPS_PER_SEC,
    MAX_TICKS_PER_SEC,
    MAX_MS_PER_SEC,
    MAX_MS_PER_SEC,
    MAX_MS_PER_SEC,
)

#: partition names: sda1, vdb2, xvda1, hdc3 / nvme0n1p1, mmcblk0p2, loop0p1, md127p1
_PARTITION = re.compile(r"^(?:(?:[shv]|xv)d[a-z]+\d+|.+\dp\d+)$")


class DiskStat(NamedTuple):
    name: str
    reads: int
    sectors_read: int
    writes: int
    sectors_written: int
    io_ticks: int
    read_ms: int
    write_ms: int
    weighted_ms: int


def parse_diskstats(text: str, skip: Optional[Callable[[str], bool]] = None) -> List[DiskStat]:
    """The devices of ``/proc/diskstats``; those for which ``skip(name)`` is true are not parsed."""
    out: List[DiskStat] = []
    for line in text.split("\n"):
        parts = line.split()
        if not parts:
            continue
        if skip is not None and len(parts) > 2 and skip(parts[2]):
            continue
        if len(parts) < 14:
            raise ParseError("/proc/diskstats", f"expected at least 14 fields in line {line!r}")
        try:
            out.append(
                DiskStat(
                    parts[2],
                    int(parts[3]),
                    int(parts[5]),
                    int(parts[7]),
                    int(parts[9]),
                    int(parts[12]),
                    int(parts[6]),
                    int(parts[10]),
                    int(parts[13]),
                )
            )
        except ValueError:
            raise ParseError("/proc/diskstats", f"non-numeric counter in line {line!r}") from None
    return out


def looks_like_partition(name: str) -> bool:
    """Name heuristic used when sysfs is not available."""
    return bool(_PARTITION.match(name))


class DiskIOCollector:
    name = "disk_io"
    may_block = False  # reads only the kernel's own counters: shares a worker job

    def __init__(
        self,
        procfs: ProcFS,
        interval: float = 10.0,
        exclude_devices: Tuple[str, ...] = (),
        include_partitions: bool = False,
    ) -> None:
        self.procfs = procfs
        self.interval = interval
        self.exclude = GlobFilter(exclude_devices)
        self.include_partitions = include_partitions
        self.stats = CollectorStats()
        #: per disk: sectors read/written (as bytes), reads, writes, io_ticks, ms reading,
        #: ms writing, weighted ms (one group per disk: rates.GroupRateTracker)
        self.rates = GroupRateTracker[str](_MAX_RATES)
        self._labels: Dict[str, Labels] = {}

    def _whole_disks(self) -> Optional[FrozenSet[str]]:
        """Names under <sys_root>/block (``/`` in a name is ``!`` there), or None without sysfs."""
        try:
            return frozenset(os.listdir(os.path.join(self.procfs.sys_root, "block")))
        except OSError:
            return None

    def selected(self, disks: List[DiskStat]) -> List[DiskStat]:
        """The disks this collector reports on (also the exporter's raw counters)."""
        whole = None if self.include_partitions else self._whole_disks()
        out: List[DiskStat] = []
        for d in disks:
            if self.exclude(d.name):
                continue
            if not self.include_partitions:
                if whole is not None:
                    if d.name.replace("/", "!") not in whole:
                        continue
                elif looks_like_partition(d.name):
                    continue
            out.append(d)
        return out

    def collect(self, now: float) -> List[Sample]:
        text = self.procfs.read_text("diskstats")
        disks = self.selected(parse_diskstats(text, skip=self.exclude))
        out: List[Sample] = []
        for d in disks:
            name = d.name
            labels = self._labels.get(name)
            if labels is None:
                labels = self._labels[name] = make_labels(device=name)
            values = (
                d.sectors_read * SECTOR_BYTES,
                d.sectors_written * SECTOR_BYTES,
                d.reads,
                d.writes,
                d.io_ticks,
                d.read_ms,
                d.write_ms,
                d.weighted_ms,
            )
            rates = self.rates.update(name, values, now)
            if rates is None:
                continue
            for metric, rate in zip(RATE_METRICS, rates):
                if rate is not None:
                    out.append(Sample(now, metric, rate, labels))
            busy = rates[4]
            if busy is not None:
                out.append(Sample(now, "disk_io_util_percent", min(100.0, busy / 10.0), labels))
            for metric, ms, ops in (
                ("disk_read_await_seconds", rates[5], rates[2]),
                ("disk_write_await_seconds", rates[6], rates[3]),
            ):
                if ms is not None and ops:  # ops None (reset) or 0 (no I/O): no honest mean
                    out.append(Sample(now, metric, ms / ops / 1000.0, labels))
            weighted = rates[7]
            if weighted is not None:
                out.append(Sample(now, "disk_queue_depth", weighted / 1000.0, labels))
        self.rates.prune()
        if len(self._labels) > 4 * (len(self.rates) + 16):
            self._labels.clear()
        return out


@dataclass(frozen=True)
class DiskIOConfig:
    #: the metrics this collector emits (check-config warns about rules naming others)
    METRICS: ClassVar[Tuple[str, ...]] = (
        "disk_read_bytes_per_second",
        "disk_write_bytes_per_second",
        "disk_read_ops_per_second",
        "disk_write_ops_per_second",
        "disk_io_util_percent",
        "disk_read_await_seconds",
        "disk_write_await_seconds",
        "disk_queue_depth",
    )

    enabled: bool = opt(True)
    interval_secs: float = interval_opt(10)
    exclude_devices: List[str] = opt(
        factory=lambda: ["loop*", "ram*", "zram*", "fd*", "sr*"],
        help="glob patterns of block devices to ignore",
    )
    include_partitions: bool = opt(
        False, help="also report partitions (sda1), not only whole disks"
    )


def create(procfs: ProcFS, cfg: DiskIOConfig) -> DiskIOCollector:
    c = cfg
    return DiskIOCollector(
        procfs,
        interval=c.interval_secs,
        exclude_devices=tuple(c.exclude_devices),
        include_partitions=c.include_partitions,
    )
