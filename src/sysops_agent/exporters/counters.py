"""Raw kernel counters, filesystem and swap sizes for ``/metrics``, read at scrape time (issue 15).

The collectors keep per-second rates, which is what the analyzers need; but
``rate()``/``increase()`` over a window the user chooses need the raw,
monotonic counters. Storing them too would cost a ring buffer per series in
every agent, scraped or not; re-reading ``/proc/stat``, ``/proc/diskstats``
and ``/proc/net/dev`` when Prometheus asks costs about 0.2 ms per scrape and
nothing otherwise — node_exporter's own design. The files are parsed by the
collectors' own parsers, and the same devices are reported as by the disk_io
and network collectors (their exclusions and ``include_partitions``); a
disabled collector exports no counters.

Names and labels are node_exporter's with our prefix, so its rules and
dashboards port by renaming ``node_`` to ``sysops_``:

===================================================  ==============================
exported                                             node_exporter
===================================================  ==============================
``sysops_cpu_seconds_total{cpu,mode}``               ``node_cpu_seconds_total``
``sysops_disk_read_bytes_total{device}``             ``node_disk_read_bytes_total``
``sysops_disk_written_bytes_total{device}``          ``node_disk_written_bytes_total``
``sysops_disk_reads_completed_total{device}``        ``node_disk_reads_completed_total``
``sysops_disk_writes_completed_total{device}``       ``node_disk_writes_completed_total``
``sysops_disk_io_time_seconds_total{device}``        ``node_disk_io_time_seconds_total``
``sysops_network_{receive,transmit}_bytes_total``    ``node_network_…_bytes_total``
``sysops_network_{receive,transmit}_packets_total``  ``node_network_…_packets_total``
``sysops_network_{receive,transmit}_errs_total``     ``node_network_…_errs_total``
``sysops_network_{receive,transmit}_drop_total``     ``node_network_…_drop_total``
``sysops_filesystem_size_bytes{device,mountpoint,fstype}``  ``node_filesystem_size_bytes``
``sysops_filesystem_free_bytes{…}`` (f_bfree)        ``node_filesystem_free_bytes``
``sysops_filesystem_avail_bytes{…}`` (f_bavail)      ``node_filesystem_avail_bytes``
``sysops_memory_swap_total_bytes``                   ``node_memory_SwapTotal_bytes``
``sysops_memory_swap_free_bytes``                    ``node_memory_SwapFree_bytes``
===================================================  ==============================

The filesystems are the disk_usage collector's (same exclusions, each device
once); a ``statvfs`` that fails leaves that mount out of this scrape.
"""

from __future__ import annotations

import logging
import os
from typing import Any, List, Optional, Tuple

from sysops_agent.collectors import cpu, disk_io, disk_usage, memory, network
from sysops_agent.exporters.prometheus import PREFIX, Family
from sysops_agent.plugins import is_enabled
from sysops_agent.procfs import ProcFS
from sysops_agent.units import COUNTER, GAUGE

log = logging.getLogger(__name__)

#: /proc/stat's fields in node_exporter's ``mode`` names
CPU_MODES = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")
#: /proc/diskstats counts 512-byte sectors whatever the device's sector size
SECTOR_BYTES = 512

#: (exported name, HELP, DiskStat field, scale)
_DISK = (
    ("disk_read_bytes_total", "bytes read", "sectors_read", SECTOR_BYTES),
    ("disk_written_bytes_total", "bytes written", "sectors_written", SECTOR_BYTES),
    ("disk_reads_completed_total", "reads completed", "reads", 1),
    ("disk_writes_completed_total", "writes completed", "writes", 1),
    ("disk_io_time_seconds_total", "seconds spent doing I/O", "io_ticks", 0.001),  # ms
)
_NET = (
    ("network_receive_bytes_total", "bytes received", "rx_bytes"),
    ("network_transmit_bytes_total", "bytes sent", "tx_bytes"),
    ("network_receive_packets_total", "packets received", "rx_packets"),
    ("network_transmit_packets_total", "packets sent", "tx_packets"),
    ("network_receive_errs_total", "receive errors", "rx_errors"),
    ("network_transmit_errs_total", "transmit errors", "tx_errors"),
    ("network_receive_drop_total", "received packets dropped", "rx_drops"),
    ("network_transmit_drop_total", "transmitted packets dropped", "tx_drops"),
)


def _family(name: str, what: str) -> Family:
    return Family(PREFIX + name, f"SysOps Agent: {what} (raw kernel counter)", COUNTER)


class KernelCounters:
    """The raw CPU, disk and network counters of ``procfs``, as families, at each call."""

    def __init__(self, procfs: ProcFS, sections: Any, clk_tck: Optional[int] = None) -> None:
        self.procfs = procfs
        self.clk_tck = clk_tck or os.sysconf("SC_CLK_TCK")
        self.cpu = is_enabled(sections.cpu)
        self.disks = (
            disk_io.create(procfs, sections.disk_io) if is_enabled(sections.disk_io) else None
        )
        self.net = (
            network.create(procfs, sections.network) if is_enabled(sections.network) else None
        )
        self.fs = (
            disk_usage.create(procfs, sections.disk_usage)
            if is_enabled(sections.disk_usage)
            else None
        )
        self.swap = is_enabled(sections.memory)

    def families(self) -> List[Family]:
        out: List[Family] = []
        for read in (self._cpu, self._disk, self._network, self._filesystems, self._swap):
            try:
                out.extend(read())
            except (OSError, ValueError) as e:  # ParseError is a ValueError
                log.debug("raw counters: %s", e)
        return out

    def _cpu(self) -> List[Family]:
        if not self.cpu:
            return []
        fam = _family("cpu_seconds_total", "seconds the CPUs spent in each mode")
        hz = float(self.clk_tck)
        for name, times in cpu.parse_stat(self.procfs.read_text("stat")).items():
            if name == "cpu":
                continue  # node_exporter exports the CPUs, not their sum
            labels_cpu = ("cpu", name[3:])
            for mode, ticks in zip(CPU_MODES, times):
                fam.samples.append((fam.name, (labels_cpu, ("mode", mode)), ticks / hz))
        return [fam]

    def _disk(self) -> List[Family]:
        if self.disks is None:
            return []
        disks = self.disks.selected(disk_io.parse_diskstats(self.procfs.read_text("diskstats")))
        fams: List[Family] = []
        for name, what, field, scale in _DISK:
            fam = _family(name, what)
            fam.samples.extend(
                (fam.name, (("device", d.name),), float(getattr(d, field) * scale)) for d in disks
            )
            fams.append(fam)
        return fams

    def _network(self) -> List[Family]:
        if self.net is None:
            return []
        devs: List[Tuple[str, network.NetDev]] = [
            (d.name, d)
            for d in network.parse_net_dev(self.procfs.read_text("net", "dev"))
            if not self.net.exclude(d.name)
        ]
        fams: List[Family] = []
        for name, what, field in _NET:
            fam = _family(name, what)
            fam.samples.extend(
                (fam.name, (("device", dev),), float(getattr(d, field))) for dev, d in devs
            )
            fams.append(fam)
        return fams

    def _filesystems(self) -> List[Family]:
        if self.fs is None:
            return []
        fams = [
            Family(PREFIX + "filesystem_size_bytes", "SysOps Agent: filesystem size", GAUGE),
            Family(
                PREFIX + "filesystem_free_bytes",
                "SysOps Agent: filesystem free space, root's reserve included (f_bfree)",
                GAUGE,
            ),
            Family(
                PREFIX + "filesystem_avail_bytes",
                "SysOps Agent: filesystem space available to non-root users (f_bavail)",
                GAUGE,
            ),
        ]
        for m in self.fs.mounts():
            try:
                st = self.fs.statvfs(m.mountpoint)
            except OSError:
                continue
            if st.f_blocks <= 0:
                continue
            labels = (("device", m.device), ("fstype", m.fstype), ("mountpoint", m.mountpoint))
            for fam, blocks in zip(fams, (st.f_blocks, st.f_bfree, st.f_bavail)):
                fam.samples.append((fam.name, labels, float(blocks * st.f_frsize)))
        return fams

    def _swap(self) -> List[Family]:
        if not self.swap:
            return []
        m = memory.parse_meminfo(self.procfs.read_text("meminfo"))
        total = Family(PREFIX + "memory_swap_total_bytes", "SysOps Agent: swap size", GAUGE)
        free = Family(PREFIX + "memory_swap_free_bytes", "SysOps Agent: unused swap", GAUGE)
        total.samples.append((total.name, (), float(m.swap_total)))
        free.samples.append((free.name, (), float(m.swap_free)))
        return [total, free]
