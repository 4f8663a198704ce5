"""``[collector.<name>]`` sections: one dataclass per collector, each with its own defaults."""

from __future__ import annotations

from dataclasses import dataclass
from typing import List

from sysops_agent.logwatch.config import LogConfig
from sysops_agent.schema import opt

#: Pseudo and virtual filesystems that have no "disk" to fill up.
DEFAULT_EXCLUDED_FSTYPES = [
    "proc",
    "sysfs",
    "tmpfs",
    "devtmpfs",
    "devpts",
    "cgroup",
    "cgroup2",
    "securityfs",
    "pstore",
    "bpf",
    "debugfs",
    "tracefs",
    "configfs",
    "fusectl",
    "mqueue",
    "hugetlbfs",
    "autofs",
    "binfmt_misc",
    "rpc_pipefs",
    "nsfs",
    "overlay",
    "squashfs",
    "ramfs",
    "efivarfs",
    "selinuxfs",
    "fuse.lxcfs",
    "fuse.gvfsd-fuse",
    "nfsd",
    "tracefs",
]


def _interval(default: float) -> float:
    return opt(default, min=1, max=3600, help="seconds between collections")  # type: ignore[no-any-return]


@dataclass
class CpuConfig:
    enabled: bool = opt(True)
    interval_secs: float = _interval(10)
    per_core: bool = opt(True, help="emit cpu_core_usage_percent{core}")


@dataclass
class MemoryConfig:
    enabled: bool = opt(True)
    interval_secs: float = _interval(10)


@dataclass
class DiskIOConfig:
    enabled: bool = opt(True)
    interval_secs: float = _interval(10)
    exclude_devices: List[str] = opt(
        factory=lambda: ["loop*", "ram*", "zram*", "fd*", "sr*"],
        help="glob patterns of block devices to ignore",
    )
    include_partitions: bool = opt(
        False, help="also report partitions (sda1), not only whole disks"
    )


@dataclass
class DiskUsageConfig:
    enabled: bool = opt(True)
    interval_secs: float = _interval(60)
    exclude_fstypes: List[str] = opt(factory=lambda: list(DEFAULT_EXCLUDED_FSTYPES))
    exclude_mountpoints: List[str] = opt(
        factory=lambda: ["/proc/*", "/sys/*", "/dev/*", "/run/*", "/snap/*", "/var/lib/docker/*"],
        help="glob patterns of mount points to ignore",
    )


@dataclass
class NetworkConfig:
    enabled: bool = opt(True)
    interval_secs: float = _interval(10)
    exclude_interfaces: List[str] = opt(
        factory=lambda: ["lo"], help="glob patterns, e.g. veth* for container hosts"
    )


@dataclass
class ProcessConfig:
    enabled: bool = opt(True)
    interval_secs: float = _interval(30)
    top_n: int = opt(20, min=0, max=1000, help="track the N largest processes by RSS")
    track_patterns: List[str] = opt(
        factory=list, help="also track processes whose name matches these globs, e.g. postgres*"
    )


@dataclass
class FdConfig:
    enabled: bool = opt(True)
    interval_secs: float = _interval(30)


@dataclass
class LoadConfig:
    enabled: bool = opt(True)
    interval_secs: float = _interval(10)


@dataclass
class UptimeConfig:
    enabled: bool = opt(True)
    interval_secs: float = _interval(60)


@dataclass
class CollectorsConfig:
    cpu: CpuConfig = opt(factory=CpuConfig)
    memory: MemoryConfig = opt(factory=MemoryConfig)
    disk_io: DiskIOConfig = opt(factory=DiskIOConfig)
    disk_usage: DiskUsageConfig = opt(factory=DiskUsageConfig)
    network: NetworkConfig = opt(factory=NetworkConfig)
    process: ProcessConfig = opt(factory=ProcessConfig)
    fd: FdConfig = opt(factory=FdConfig)
    load: LoadConfig = opt(factory=LoadConfig)
    uptime: UptimeConfig = opt(factory=UptimeConfig)
    log: LogConfig = opt(factory=LogConfig)
