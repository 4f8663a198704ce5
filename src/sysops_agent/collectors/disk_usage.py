"""Filesystem space and inodes: ``/proc/mounts`` for the list, ``statvfs()`` for the numbers.

Percentages follow ``df``: used = (blocks - free) and the base is used +
available-to-users, so the root-reserved blocks count as unavailable.
``disk_free_bytes`` is what an unprivileged user can still write.

Pseudo filesystems (proc, tmpfs, cgroup …) and some mount-point trees are
excluded by config. A device mounted several times (bind mounts, container
volumes) is reported once, at its first mount point. ``statvfs`` is a
constructor argument so that tests replay captured results.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable, ClassVar, Dict, List, NamedTuple, Protocol, Set, Tuple

from sysops_agent.collectors.base import CollectorStats, interval_opt
from sysops_agent.collectors.common import GlobFilter, ParseError
from sysops_agent.model import Labels, Sample, make_labels
from sysops_agent.procfs import ProcFS
from sysops_agent.schema import opt


class StatVfsResult(Protocol):
    """The fields of ``os.statvfs_result`` we use."""

    @property
    def f_frsize(self) -> int: ...
    @property
    def f_blocks(self) -> int: ...
    @property
    def f_bfree(self) -> int: ...
    @property
    def f_bavail(self) -> int: ...
    @property
    def f_files(self) -> int: ...
    @property
    def f_ffree(self) -> int: ...


StatVfs = Callable[[str], StatVfsResult]


class Mount(NamedTuple):
    device: str
    mountpoint: str
    fstype: str


def unescape_mount_field(field: str) -> str:
    """Decode the kernel's octal escapes in /proc/mounts (``\\040`` space, ``\\011`` tab, …)."""
    if "\\" not in field:
        return field
    out: List[str] = []
    i, n = 0, len(field)
    while i < n:
        c = field[i]
        if c == "\\":
            digits = field[i + 1 : i + 4]
            if len(digits) == 3 and all(d in "01234567" for d in digits):
                out.append(chr(int(digits, 8)))
                i += 4
                continue
        out.append(c)
        i += 1
    return "".join(out)


def parse_mounts(text: str) -> List[Mount]:
    out: List[Mount] = []
    for line in text.split("\n"):
        parts = line.split()
        if not parts:
            continue
        if len(parts) < 3:
            raise ParseError("/proc/mounts", f"expected device, mount point and type in {line!r}")
        out.append(Mount(unescape_mount_field(parts[0]), unescape_mount_field(parts[1]), parts[2]))
    return out


class DiskUsageCollector:
    name = "disk_usage"

    def __init__(
        self,
        procfs: ProcFS,
        interval: float = 60.0,
        exclude_fstypes: Tuple[str, ...] = (),
        exclude_mountpoints: Tuple[str, ...] = (),
        statvfs: StatVfs = os.statvfs,
    ) -> None:
        self.procfs = procfs
        self.interval = interval
        self.exclude_fstypes = frozenset(exclude_fstypes)
        self.exclude_mountpoint = GlobFilter(exclude_mountpoints)
        self.statvfs = statvfs
        self.stats = CollectorStats()
        self._labels: Dict[Mount, Labels] = {}

    def mounts(self) -> List[Mount]:
        """The mounts to report: real filesystems, each device once."""
        seen: Set[str] = set()
        out: List[Mount] = []
        for m in parse_mounts(self.procfs.read_text("mounts")):
            if m.fstype in self.exclude_fstypes or self.exclude_mountpoint(m.mountpoint):
                continue
            # a block device (or an NFS export) mounted twice is one filesystem; names like
            # "tmpfs" or "none" are not unique, so those are told apart by mount point
            key = m.device if m.device.startswith("/") or ":" in m.device else m.mountpoint
            if key in seen:
                continue
            seen.add(key)
            out.append(m)
        return out

    def collect(self, now: float) -> List[Sample]:
        out: List[Sample] = []
        for m in self.mounts():
            try:
                st = self.statvfs(m.mountpoint)
            except OSError as e:
                reason = f"statvfs {m.mountpoint}: {e.strerror or e}"
                self.stats.skipped[reason] = self.stats.skipped.get(reason, 0) + 1
                continue
            if st.f_blocks <= 0:
                continue  # a pseudo filesystem that slipped through the type filter
            labels = self._labels.get(m)
            if labels is None:
                if len(self._labels) > 4096:  # mounts churn (containers): stay bounded
                    self._labels.clear()
                labels = make_labels(mountpoint=m.mountpoint, device=m.device, fstype=m.fstype)
                self._labels[m] = labels
            used = st.f_blocks - st.f_bfree
            base = used + st.f_bavail
            pct = used * 100.0 / base if base > 0 else 0.0
            out.append(Sample(now, "disk_usage_percent", pct, labels))
            out.append(Sample(now, "disk_free_bytes", float(st.f_bavail * st.f_frsize), labels))
            if st.f_files > 0:  # btrfs and some network filesystems report no inode limit
                inodes = (st.f_files - st.f_ffree) * 100.0 / st.f_files
                out.append(Sample(now, "disk_inode_usage_percent", inodes, labels))
        return out


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
]


@dataclass(frozen=True)
class DiskUsageConfig:
    #: the metrics this collector emits (check-config warns about rules naming others)
    METRICS: ClassVar[Tuple[str, ...]] = (
        "disk_usage_percent",
        "disk_free_bytes",
        "disk_inode_usage_percent",
    )

    enabled: bool = opt(True)
    interval_secs: float = interval_opt(60)
    exclude_fstypes: List[str] = opt(factory=lambda: list(DEFAULT_EXCLUDED_FSTYPES))
    exclude_mountpoints: List[str] = opt(
        factory=lambda: ["/proc/*", "/sys/*", "/dev/*", "/run/*", "/snap/*", "/var/lib/docker/*"],
        help="glob patterns of mount points to ignore",
    )


def create(
    procfs: ProcFS, cfg: DiskUsageConfig, statvfs: StatVfs = os.statvfs
) -> DiskUsageCollector:
    c = cfg
    return DiskUsageCollector(
        procfs,
        interval=c.interval_secs,
        exclude_fstypes=tuple(c.exclude_fstypes),
        exclude_mountpoints=tuple(c.exclude_mountpoints),
        statvfs=statvfs,
    )
