"""Per service, container and user slice resource use from ``<sys_root>/fs/cgroup``.

Both layouts are read, for the same metric names
(Documentation/admin-guide/cgroup-v2.rst, Documentation/admin-guide/cgroup-v1/):

============================  ==================================  ===========================================
metric                        cgroup v2                           cgroup v1
============================  ==================================  ===========================================
cgroup_memory_bytes           memory.current                      memory.usage_in_bytes
cgroup_memory_limit_bytes     memory.max (not ``max``)            memory.limit_in_bytes (below 2^62)
cgroup_memory_usage_percent   current / max, when limited         usage / limit, when limited
cgroup_memory_oom_kills_total memory.events ``oom_kill``          memory.oom_control ``oom_kill`` (4.13+)
cgroup_memory_oom_kills       its increase since the last reading (alerted on: an OOM kill in the cgroup)
cgroup_cpu_usage_percent      cpu.stat ``usage_usec``             cpuacct.usage (ns)      — % of one core
cgroup_cpu_throttled_percent  cpu.stat nr_throttled / nr_periods  cpu.stat nr_throttled / nr_periods
cgroup_io_{read,write}_...    io.stat ``rbytes``/``wbytes``       blkio.throttle.io_service_bytes Read/Write
cgroup_pids, cgroup_pids_max  pids.current, pids.max              pids.current, pids.max
cgroup_pressure_memory_...    memory.pressure some/full avg10     (none)
============================  ==================================  ===========================================

A v2 host has ``cgroup.controllers`` at the root of ``/sys/fs/cgroup``; a
v1 or hybrid host (CentOS 7, RHEL 8, Ubuntu 20.04) has one directory per
controller (``memory``, ``cpuacct`` or ``cpu,cpuacct``, ``blkio``, ``pids``)
and the memory hierarchy decides which cgroups exist. A controller that is
not mounted, or not enabled for a cgroup, gives no series; what v1 cannot
give (the OOM kill count before 4.13) is said once in the log.

Which cgroups: every ``*.service`` and ``*.scope`` (systemd services,
sessions, and containers: ``docker-<id>.scope``, ``libpod-<id>.scope``,
``cri-containerd-<id>.scope``, ``crio-<id>.scope``), every
``user-<uid>.slice``, and every other cgroup without children (cgroupfs
layouts: ``/docker/<id>``, ``/lxc/<name>``); their sub-cgroups are part of
them and are not walked. The ``name`` label is the unit, or
``<runtime> <first 12 characters of the id>`` for a container: the container
names of docker, podman, containerd and CRI-O live in files only root can read
or behind their sockets, so they are not shown (``docker ps`` lists the same
short id). The ``top_n`` largest by memory plus those whose name matches
``track_patterns`` are reported, so 500 containers stay 500 memory reads and
``top_n`` full readings a cycle.

Size: cgroup v2 and v1/hybrid hierarchies give the same metrics from different
files; both readers and the cached tree walk share the naming (units,
containers) and the top-N choice.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from typing import ClassVar, Dict, FrozenSet, Iterable, List, Optional, Tuple

from sysops_agent.collectors.base import CollectorStats, interval_opt
from sysops_agent.collectors.common import GlobFilter
from sysops_agent.collectors.keptfiles import KeptFiles
from sysops_agent.model import Labels, Sample, make_labels
from sysops_agent.procfs import ProcFS
from sysops_agent.rates import RateTracker
from sysops_agent.schema import opt

log = logging.getLogger(__name__)

#: v1 reports "no limit" as PAGE_COUNTER_MAX pages in bytes (9223372036854771712 on 4 KiB pages)
_V1_UNLIMITED = 1 << 62
#: bytes per second above this are not physical: no sample for that step
_MAX_BYTES_PER_SEC = 1e12

_CONTAINER_SCOPE = re.compile(
    r"^(docker|libpod|cri-containerd|crio|containerd)-([0-9a-f]{12,})\.scope$"
)
#: how often (in collections) the tree is walked again and the v1 controllers of each
#: cgroup looked up again, whatever the link counts say (30 s x 20 = every 10 minutes)
RESCAN_CYCLES = 20
#: control files kept open (keptfiles.py): the memory file of every cgroup and the others
#: of the top N fit; beyond that files are opened on each read
_KEPT_FILES = 128

_CONTAINER_DIR = re.compile(r"^[0-9a-f]{64}$")
_USER_SLICE = re.compile(r"^user-\d+\.slice$")

#: cgroup v1 controller directories, by what we read from them (first that exists wins)
_V1_DIRS: Dict[str, Tuple[str, ...]] = {
    "memory": ("memory",),
    "cpuacct": ("cpuacct", "cpu,cpuacct", "cpuacct,cpu"),
    "cpu": ("cpu", "cpu,cpuacct", "cpuacct,cpu"),
    "blkio": ("blkio",),
    "pids": ("pids",),
}


def cgroup_name(path: str) -> str:
    """The readable name of a cgroup path: ``nginx.service``, ``docker 4f1c2a9d8e7b``."""
    base = path.rsplit("/", 1)[-1] or "/"
    m = _CONTAINER_SCOPE.match(base)
    if m:
        runtime = "podman" if m.group(1) == "libpod" else m.group(1)
        return f"{runtime} {m.group(2)[:12]}"
    if _CONTAINER_DIR.match(base):
        parent = path.rsplit("/", 2)[-2] if path.count("/") >= 2 else ""
        return f"{parent or 'container'} {base[:12]}"
    return base


def _is_unit(name: str) -> bool:
    return name.endswith((".service", ".scope")) or bool(_USER_SLICE.match(name))


def _int(text: Optional[str]) -> Optional[int]:
    if text is None:
        return None
    try:
        return int(text.strip())
    except ValueError:
        return None


def parse_keyed(text: Optional[str]) -> Dict[str, int]:
    """``key value`` lines (cpu.stat, memory.events, memory.oom_control); garbage lines skipped."""
    out: Dict[str, int] = {}
    if text is None:
        return out
    for line in text.split("\n"):
        parts = line.split()
        if len(parts) == 2:
            try:
                out[parts[0]] = int(parts[1])
            except ValueError:
                continue
    return out


def parse_io_stat(text: Optional[str]) -> Optional[Tuple[int, int]]:
    """v2 ``io.stat``: (read bytes, write bytes) summed over devices; None without the file."""
    if text is None:
        return None
    rbytes = wbytes = 0
    for line in text.split("\n"):
        for field in line.split()[1:]:
            key, _, value = field.partition("=")
            if key == "rbytes" and value.isdigit():
                rbytes += int(value)
            elif key == "wbytes" and value.isdigit():
                wbytes += int(value)
    return rbytes, wbytes


def parse_blkio_bytes(text: Optional[str]) -> Optional[Tuple[int, int]]:
    """v1 ``blkio.throttle.io_service_bytes``: (Read, Write) summed over devices."""
    if text is None:
        return None
    rbytes = wbytes = 0
    for line in text.split("\n"):
        parts = line.split()
        if len(parts) == 3 and parts[2].isdigit():
            if parts[1] == "Read":
                rbytes += int(parts[2])
            elif parts[1] == "Write":
                wbytes += int(parts[2])
    return rbytes, wbytes


def parse_pressure_avg10(text: Optional[str]) -> Dict[str, float]:
    """``some``/``full`` avg10 of a cgroup's ``*.pressure`` file; {} without it or PSI."""
    out: Dict[str, float] = {}
    if text is None:
        return out
    for line in text.split("\n"):
        parts = line.split()
        if len(parts) >= 2 and parts[0] in ("some", "full") and parts[1].startswith("avg10="):
            try:
                value = float(parts[1][6:])
            except ValueError:
                continue
            if 0.0 <= value <= 100.0:
                out[parts[0]] = value
    return out


class _Reading:
    """What one cgroup gave this cycle (None: the file is not there)."""

    __slots__ = (
        "cpu_usec",
        "io",
        "limit",
        "memory",
        "oom_kills",
        "periods",
        "pids",
        "pids_max",
        "pressure",
    )

    def __init__(self) -> None:
        self.memory: Optional[int] = None
        self.limit: Optional[int] = None
        self.oom_kills: Optional[int] = None
        self.cpu_usec: Optional[float] = None
        self.periods: Optional[Tuple[int, int]] = None
        self.io: Optional[Tuple[int, int]] = None
        self.pids: Optional[int] = None
        self.pids_max: Optional[int] = None
        #: memory.pressure avg10 (v2 with PSI): kind -> percent
        self.pressure: Dict[str, float] = {}


class CgroupCollector:
    name = "cgroup"

    def __init__(
        self,
        procfs: ProcFS,
        interval: float = 30.0,
        top_n: int = 10,
        track_patterns: Iterable[str] = (),
        max_depth: int = 8,
    ) -> None:
        self.procfs = procfs
        self.interval = interval
        self.top_n = top_n
        self.track = GlobFilter(track_patterns)
        self.max_depth = max_depth
        self.stats = CollectorStats()
        self.cpu: RateTracker[str] = RateTracker()
        self.io: RateTracker[Tuple[str, int]] = RateTracker(_MAX_BYTES_PER_SEC)
        self.periods: Dict[str, Tuple[int, int]] = {}
        self.oom: Dict[str, int] = {}
        self._labels: Dict[str, Labels] = {}
        self._said: set[str] = set()
        #: v1: controllers per cgroup, looked up again every _PRESENT_CYCLES collections
        self._present: Dict[str, FrozenSet[str]] = {}
        self._cycles = 0
        self.files = KeptFiles(limit=_KEPT_FILES)
        #: the layout and the walk, kept between cycles (see _layout_changed)
        self._root_seen = ""
        self._layout: Optional[Tuple[str, str, Optional[Dict[str, str]]]] = None
        self._found: List[str] = []
        #: link count of every directory the walk listed: a cgroup created or removed
        #: below one of them changes it (kernfs: 2 + the number of subdirectories)
        self._nlinks: List[Tuple[str, int]] = []
        self._stale = True
        #: full walks done (a test and bench/collect.py look at it)
        self.walks = 0

    def _say_once(self, what: str, message: str) -> None:
        if what not in self._said:
            self._said.add(what)
            log.info("%s", message)

    # --- layout -------------------------------------------------------------------------

    def _v1_dirs(self) -> Dict[str, str]:
        out: Dict[str, str] = {}
        for what, candidates in _V1_DIRS.items():
            for c in candidates:
                d = os.path.join(self.root, c)
                if os.path.isdir(d):
                    out[what] = d
                    break
        return out

    def _walk(self, top: str) -> Tuple[List[str], List[Tuple[str, int]]]:
        """Relative paths (``/system.slice/nginx.service``) of the cgroups we report on,
        and the link count of each directory listed.

        A directory's link count is 2 + its subdirectories on kernfs (cgroup v1 and
        v2) and on ordinary file systems, so a leaf is recognised with one ``stat``
        instead of listing its thirty-odd control files.
        """
        found: List[str] = []
        nlinks: List[Tuple[str, int]] = []
        try:
            nlinks.append((top, os.stat(top).st_nlink))
        except OSError:
            return found, nlinks
        stack: List[Tuple[str, int]] = [("", 0)]
        while stack:
            rel, depth = stack.pop()
            try:
                with os.scandir(top + rel) as it:
                    subdirs = [e for e in it if e.is_dir(follow_symlinks=False)]
            except OSError:
                continue  # removed while walking
            if not subdirs and rel and not rel.endswith(".slice"):
                found.append(rel)  # a cgroupfs leaf: /docker/<id>, /lxc/<name>
            for e in subdirs:
                name = e.name
                child = f"{rel}/{name}"
                if _is_unit(name) or depth + 1 >= self.max_depth:
                    found.append(child)
                    continue
                try:
                    nlink = e.stat(follow_symlinks=False).st_nlink
                except OSError:
                    continue
                if nlink == 2:  # no subdirectories
                    if not name.endswith(".slice"):
                        found.append(child)
                    continue
                nlinks.append((top + child, nlink))
                stack.append((child, depth + 1))
        return found, nlinks

    # --- reading ------------------------------------------------------------------------

    @property
    def root(self) -> str:
        return os.path.join(self.procfs.sys_root, "fs", "cgroup")

    def _read(self, path: str) -> Optional[str]:
        """A cgroup file's text, or None when it does not exist (controller not enabled here)."""
        try:
            data = self.files.read(path)
        except OSError:  # removed while reading, or not readable
            return None
        return None if data is None else data.decode("ascii", "replace")

    def _layout_changed(self) -> bool:
        """Whether the cgroups must be walked again: every RESCAN_CYCLES collections, after a
        cgroup went away, or when a directory listed by the last walk has another link
        count (a cgroup was created or removed below it: one ``stat`` per inner directory,
        a handful on a systemd host, instead of listing the tree every cycle).

        The directories' mtimes cannot tell: kernfs updates a parent's mtime on mkdir only
        when its attributes were ever set (here /sys/fs/cgroup/memory/process_api is older
        than its children), and ``cgroup.procs`` changes with the processes, not the tree.
        """
        root = os.fspath(self.root)
        if self._stale or self._layout is None or root != self._root_seen:
            return True
        if self._cycles % RESCAN_CYCLES == 0:
            return True
        for path, nlink in self._nlinks:
            try:
                if os.stat(path).st_nlink != nlink:
                    return True
            except OSError:
                return True
        return False

    def _rescan(self) -> None:
        root = self._root_seen = os.fspath(self.root)
        self.walks += 1
        self._stale = False
        self._present.clear()  # a controller attached to an existing cgroup later
        self.files.close()  # descriptors of cgroups gone or out of the top N
        v1: Optional[Dict[str, str]]
        if os.path.exists(os.path.join(root, "cgroup.controllers")):
            top, memory_file, v1 = root, "memory.current", None
        else:
            v1 = self._v1_dirs()
            if "memory" not in v1:
                self._layout = ("", "", v1)
                self._found, self._nlinks = [], []
                return
            top, memory_file = v1["memory"], "memory.usage_in_bytes"
        self._layout = (top, memory_file, v1)
        self._found, self._nlinks = self._walk(top)

    def collect(self, now: float) -> List[Sample]:
        self._cycles += 1
        if self._layout_changed():
            self._rescan()
        assert self._layout is not None
        top, memory_file, v1 = self._layout
        if not top:
            self._say_once(
                "none", f"no cgroup memory controller under {self.root}: no cgroup metrics"
            )
            return []
        ranked: List[Tuple[int, str]] = []
        read = self._read
        for rel in self._found:
            mem = _int(read(f"{top}{rel}/{memory_file}"))
            if mem is not None:
                ranked.append((mem, rel))
            else:
                self._stale = True  # gone (or its controller detached): walk again next cycle
        ranked.sort(reverse=True)
        chosen = [rel for _, rel in ranked[: self.top_n]]
        chosen += [rel for _, rel in ranked[self.top_n :] if self.track(cgroup_name(rel))]
        memory = {rel: mem for mem, rel in ranked}
        out: List[Sample] = []
        for rel in chosen:
            r = self._read_v2(top, rel) if v1 is None else self._read_v1(v1, rel)
            r.memory = memory[rel]
            out.extend(self._samples(rel, r, now))
        self.cpu.prune()
        self.io.prune()
        keep = set(chosen)
        for state in (self.periods, self.oom, self._present):
            for rel in [k for k in state if k not in keep]:
                del state[rel]
        if len(self._labels) > 4 * (len(chosen) + 16):
            self._labels.clear()
        return out

    def _read_v2(self, top: str, rel: str) -> _Reading:
        d = top + rel
        r = _Reading()
        limit = self._read(f"{d}/memory.max")
        r.limit = None if limit is None or limit.strip() == "max" else _int(limit)
        events = parse_keyed(self._read(f"{d}/memory.events"))
        r.oom_kills = events.get("oom_kill")
        cpu = parse_keyed(self._read(f"{d}/cpu.stat"))
        if "usage_usec" in cpu:
            r.cpu_usec = float(cpu["usage_usec"])
        if "nr_periods" in cpu and "nr_throttled" in cpu:
            r.periods = (cpu["nr_periods"], cpu["nr_throttled"])
        r.io = parse_io_stat(self._read(f"{d}/io.stat"))
        r.pids = _int(self._read(f"{d}/pids.current"))
        r.pids_max = _int(self._read(f"{d}/pids.max"))  # "max": None
        r.pressure = parse_pressure_avg10(self._read(f"{d}/memory.pressure"))
        return r

    def _v1_present(self, dirs: Dict[str, str], rel: str) -> Dict[str, str]:
        """The v1 controllers that have this cgroup (others would only cost failed opens)."""
        present = self._present.get(rel)
        if present is None:
            present = self._present[rel] = frozenset(
                what for what, d in dirs.items() if os.path.isdir(d + rel)
            )
        return {what: d for what, d in dirs.items() if what in present}

    def _read_v1(self, all_dirs: Dict[str, str], rel: str) -> _Reading:
        r = _Reading()
        dirs = self._v1_present(all_dirs, rel)
        mem = dirs["memory"] + rel
        limit = _int(self._read(f"{mem}/memory.limit_in_bytes"))
        r.limit = limit if limit is not None and limit < _V1_UNLIMITED else None
        oom = self._read(f"{mem}/memory.oom_control")
        if oom is not None:
            r.oom_kills = parse_keyed(oom).get("oom_kill")
            if r.oom_kills is None:
                self._say_once(
                    "v1 oom_kill",
                    "cgroup v1 memory.oom_control has no oom_kill count (kernel before 4.13): "
                    "OOM kills inside cgroups are not counted",
                )
        if "cpuacct" in dirs:
            usage = _int(self._read(f"{dirs['cpuacct']}{rel}/cpuacct.usage"))
            if usage is not None:
                r.cpu_usec = usage / 1000.0
        if "cpu" in dirs:
            cpu = parse_keyed(self._read(f"{dirs['cpu']}{rel}/cpu.stat"))
            if "nr_periods" in cpu and "nr_throttled" in cpu:
                r.periods = (cpu["nr_periods"], cpu["nr_throttled"])
        if "blkio" in dirs:
            r.io = parse_blkio_bytes(
                self._read(f"{dirs['blkio']}{rel}/blkio.throttle.io_service_bytes")
            )
        if "pids" in dirs:
            r.pids = _int(self._read(f"{dirs['pids']}{rel}/pids.current"))
            r.pids_max = _int(self._read(f"{dirs['pids']}{rel}/pids.max"))
        return r

    def _samples(self, rel: str, r: _Reading, now: float) -> List[Sample]:
        labels = self._labels.get(rel)
        if labels is None:
            labels = self._labels[rel] = make_labels(cgroup=rel, name=cgroup_name(rel))
        out: List[Sample] = []
        if r.memory is not None:
            out.append(Sample(now, "cgroup_memory_bytes", float(r.memory), labels))
            if r.limit is not None and r.limit > 0:
                out.append(Sample(now, "cgroup_memory_limit_bytes", float(r.limit), labels))
                pct = min(100.0, r.memory * 100.0 / r.limit)
                out.append(Sample(now, "cgroup_memory_usage_percent", pct, labels))
        if r.oom_kills is not None:
            out.append(Sample(now, "cgroup_memory_oom_kills_total", float(r.oom_kills), labels))
            before = self.oom.get(rel)
            self.oom[rel] = r.oom_kills
            if before is not None:
                # a cgroup recreated under the same path starts again from 0: count from there
                new = r.oom_kills - before if r.oom_kills >= before else r.oom_kills
                out.append(Sample(now, "cgroup_memory_oom_kills", float(new), labels))
        if r.cpu_usec is not None:
            rate = self.cpu.update(rel, r.cpu_usec, now)
            if rate is not None:
                out.append(Sample(now, "cgroup_cpu_usage_percent", rate / 1e4, labels))
        if r.periods is not None:
            before_p = self.periods.get(rel)
            self.periods[rel] = r.periods
            if before_p is not None:
                periods = r.periods[0] - before_p[0]
                throttled = r.periods[1] - before_p[1]
                if periods > 0 and 0 <= throttled <= periods:
                    pct = throttled * 100.0 / periods
                    out.append(Sample(now, "cgroup_cpu_throttled_percent", pct, labels))
        if r.io is not None:
            for i, metric in enumerate(
                ("cgroup_io_read_bytes_per_second", "cgroup_io_write_bytes_per_second")
            ):
                rate = self.io.update((rel, i), float(r.io[i]), now)
                if rate is not None:
                    out.append(Sample(now, metric, rate, labels))
        for kind, avg10 in r.pressure.items():
            out.append(Sample(now, f"cgroup_pressure_memory_{kind}_percent", avg10, labels))
        if r.pids is not None:
            out.append(Sample(now, "cgroup_pids", float(r.pids), labels))
            if r.pids_max is not None:
                out.append(Sample(now, "cgroup_pids_max", float(r.pids_max), labels))
        return out


@dataclass(frozen=True)
class CgroupConfig:
    #: the metrics this collector emits (check-config warns about rules naming others)
    METRICS: ClassVar[Tuple[str, ...]] = (
        "cgroup_cpu_throttled_percent",
        "cgroup_cpu_usage_percent",
        "cgroup_io_read_bytes_per_second",
        "cgroup_io_write_bytes_per_second",
        "cgroup_memory_bytes",
        "cgroup_memory_limit_bytes",
        "cgroup_memory_oom_kills",
        "cgroup_memory_oom_kills_total",
        "cgroup_memory_usage_percent",
        "cgroup_pids",
        "cgroup_pids_max",
        "cgroup_pressure_memory_full_percent",
        "cgroup_pressure_memory_some_percent",
    )

    enabled: bool = opt(True)
    interval_secs: float = interval_opt(30)
    top_n: int = opt(10, min=0, max=1000, help="report the N cgroups using the most memory...")
    track_patterns: List[str] = opt(
        factory=list, help="...plus those whose name matches one of these globs"
    )


def create(procfs: ProcFS, cfg: CgroupConfig) -> CgroupCollector:
    return CgroupCollector(
        procfs, cfg.interval_secs, top_n=cfg.top_n, track_patterns=tuple(cfg.track_patterns)
    )
