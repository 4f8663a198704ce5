"""Processes from ``/proc/[pid]/stat``, ``/proc/[pid]/fd`` and ``/proc/[pid]/io``.

Every cycle lists the pids and reads each ``/proc/[pid]/stat`` once: that one
file holds everything we rank and report (state, flags, utime, stime,
threads, start time, RSS in pages), so ``status`` is not read at all. Only
the tracked processes — the ``top_n`` largest by RSS plus those whose name
matches ``track_patterns`` — cost an extra ``listdir`` of ``fd/`` and a read
of ``io``. Most of the scan's cost is the kernel's: opening, generating and
closing 1,100 ``stat`` files takes 7.4 ms on the development machine, of
which 3 ms are the open and close alone. So every process's ``stat`` stays
open between cycles and is re-read with ``pread`` (:class:`~sysops_agent.
procfs.KeptPidFiles`: at most 1,024 descriptors, and a quarter of the soft
RLIMIT_NOFILE; a descriptor of an exited process fails with ESRCH, also when
its pid was reused, and the new process is opened by path). The collector
alone at 1,100 processes (``bench/footprint.py --parts process``): 10.3–11.5
ms a cycle kept open, 13.9–16.1 ms opened each time, psutil 56–61 ms. The
agent's own fd count therefore follows the host's process count up to that
cap. The Python side does the least it can
per process: one ``split`` stopping after RSS, five ints, one small tuple.

``/proc/[pid]/stat`` is ``pid (comm) state ppid …``; ``comm`` may contain
spaces and parentheses (``my (weird) proc) x``), so it spans from the first
``(`` to the LAST ``)``. Fields are numbered as in proc(5): state is field 3.

- A process that vanishes while we read it is skipped (``stats.vanished``).
- One we may not read is skipped and counted in ``stats.permission_denied``
  (it still counts in ``process_count``); if only its ``fd/`` is closed to us
  its other metrics are still reported.
- Kernel threads (PF_KTHREAD) and zombies have no memory of their own: they
  count in ``process_count`` but are never tracked.
- ``process_cpu_percent`` is the utime+stime delta over the interval, in
  percent of one CPU (a process busy on 4 cores shows 400). It needs a
  previous reading of the same process (same pid AND start time, so a reused
  pid starts afresh): the first sighting yields no sample. The previous
  reading is kept for every process, so one that enters the top N already
  has one.
- ``process_io_read_bytes_per_second`` / ``process_io_write_bytes_per_second``
  are the rates of ``read_bytes`` / ``write_bytes`` in ``/proc/[pid]/io``
  (bytes the process made the block layer fetch or write: page-cache hits and
  network I/O are not in them), keyed by pid and start time like the CPU.
  ``io`` is read for the tracked processes only, so a process that becomes
  tracked has its first rate one cycle later. It is readable only for our own
  uid or with CAP_SYS_PTRACE: a refusal is counted in
  ``stats.skipped["/proc/[pid]/io: permission denied"]`` and said once; a
  kernel without task I/O accounting (no ``io`` file) gives no I/O samples.
"""

from __future__ import annotations

import heapq
import logging
import os
from dataclasses import dataclass
from typing import ClassVar, Dict, List, NamedTuple, Optional, Tuple

from sysops_agent.collectors.base import CollectorStats, interval_opt
from sysops_agent.collectors.common import GlobFilter, ParseError
from sysops_agent.model import Labels, Sample, make_labels
from sysops_agent.procfs import AccessDenied, KeptPidFiles, ProcessGone, ProcFS
from sysops_agent.rates import counter_rate
from sysops_agent.schema import opt

log = logging.getLogger("sysops_agent.collectors.process")

#: task flag of kernel threads (include/linux/sched.h)
PF_KTHREAD = 0x00200000
#: more CPU ticks per second than this many cores could give is not physical
MAX_CPUS = 4096
#: more bytes per second than this from one process is not physical (as ``disk_io``)
MAX_IO_BYTES_PER_SEC = 1e12
IO_DENIED = "/proc/[pid]/io: permission denied"


class ProcStat(NamedTuple):
    pid: int
    comm: str
    state: str
    flags: int
    #: utime + stime, in clock ticks
    cpu_ticks: int
    threads: int
    #: start time after boot in clock ticks: with the pid, identifies a process
    starttime: int
    rss_pages: int

    @property
    def is_kernel_thread(self) -> bool:
        return bool(self.flags & PF_KTHREAD)


def parse_pid_stat(text: str) -> ProcStat:
    """Parse one ``/proc/[pid]/stat`` line."""
    start = text.find("(")
    end = text.rfind(")")
    if start < 0 or end < start:
        raise ParseError("/proc/[pid]/stat", f"no '(comm)' in {text[:80]!r}")
    f = text[end + 2 :].split()
    if len(f) < 22:
        raise ParseError("/proc/[pid]/stat", f"expected at least 24 fields in {text[:80]!r}")
    try:
        # proc(5) field N is f[N - 3]: 3 state, 9 flags, 14 utime, 15 stime,
        # 20 num_threads, 22 starttime, 24 rss
        return ProcStat(
            int(text[:start]),
            text[start + 1 : end],
            f[0],
            int(f[6]),
            int(f[11]) + int(f[12]),
            int(f[17]),
            int(f[19]),
            int(f[21]),
        )
    except ValueError:
        raise ParseError("/proc/[pid]/stat", f"non-numeric field in {text[:80]!r}") from None


def parse_pid_io(data: bytes) -> Tuple[int, int]:
    """``(read_bytes, write_bytes)`` of one ``/proc/[pid]/io``."""
    read = write = -1
    for line in data.splitlines():
        key, _, value = line.partition(b":")
        try:
            if key == b"read_bytes":
                read = int(value)
            elif key == b"write_bytes":
                write = int(value)
        except ValueError:
            raise ParseError("/proc/[pid]/io", f"non-numeric {line[:80]!r}") from None
    if read < 0 or write < 0:
        raise ParseError("/proc/[pid]/io", f"no read_bytes/write_bytes in {data[:120]!r}")
    return read, write


#: (starttime, utime + stime), read at the cycle's time
_CpuReading = Tuple[int, int]
#: (starttime, read_bytes, write_bytes), read at the cycle's time
_IoReading = Tuple[int, int, int]


def _comm(stat: bytes) -> str:
    """The ``(comm)`` of a raw ``stat`` line, from the first ``(`` to the last ``)``."""
    return stat[stat.find(b"(") + 1 : stat.rfind(b")")].decode("utf-8", "replace")


class ProcessCollector:
    name = "process"

    def __init__(
        self,
        procfs: ProcFS,
        interval: float = 30.0,
        top_n: int = 20,
        track_patterns: Tuple[str, ...] = (),
        clk_tck: Optional[int] = None,
        page_size: Optional[int] = None,
    ) -> None:
        self.procfs = procfs
        self.interval = interval
        self.top_n = top_n
        self.track = GlobFilter(track_patterns)
        self.clk_tck = clk_tck or os.sysconf("SC_CLK_TCK")
        self.page_size = page_size or os.sysconf("SC_PAGE_SIZE")
        self.stats = CollectorStats()
        #: pid -> (starttime, cpu ticks) for every user process, read at ``_cpu_time``
        self._cpu: Dict[int, _CpuReading] = {}
        self._cpu_time = 0.0
        #: pid -> (starttime, read_bytes, write_bytes) for the tracked ones, read at ``_cpu_time``
        self._io: Dict[int, _IoReading] = {}
        #: every process's ``stat`` kept open between cycles (on a live /proc)
        self._kept = KeptPidFiles()
        #: whether the one line about unreadable processes (their io) was logged
        self._said_denied = False
        self._said_io_denied = False

    def _scan(self) -> Tuple[int, List[bytes], Dict[int, _CpuReading]]:
        """One read of every ``/proc/<pid>/stat``: (processes counted, the raw ``stat`` of
        the processes to track, every trackable one's CPU reading).

        This is the part that grows with the process count, so it does the least
        it can per process: the raw bytes, one split stopping after RSS (field
        24; the 28 fields after it are never cut up), the five numbers that
        rank and rate it. The ``top_n`` largest are kept in a heap of ``top_n``
        while scanning, so a scan of 1,100 processes holds 20 ``stat`` lines,
        not 1,100 (a spike of processes raised the worker threads' memory for
        good). The full :func:`parse_pid_stat` is left for the few tracked.
        """
        stats = self.stats
        top_n = self.top_n
        track = self.track if self.track.patterns else None
        count = 0
        #: (RSS, -scan order, pid, stat): the smallest of the top N at [0]; among equal
        #: RSS the process seen first ranks higher (as a stable sort would have it)
        top: List[Tuple[int, int, int, bytes]] = []
        matched: List[Tuple[int, bytes]] = []  # (pid, stat) whose name matches, in scan order
        push, replace = heapq.heappush, heapq.heapreplace
        cpu: Dict[int, _CpuReading] = {}
        for pid, data in self.procfs.read_every_pid("stat", self._kept):
            if not isinstance(data, bytes):
                if isinstance(data, ProcessGone):
                    stats.vanished += 1
                    continue
                if isinstance(data, AccessDenied):
                    stats.permission_denied += 1
                    count += 1
                    continue
                raise data  # not a process coming or going: the collector fails, as before
            count += 1
            # proc(5) field N is f[N - 3]: 3 state, 9 flags, 14 utime, 15 stime,
            # 22 starttime, 24 rss (in pages)
            f = data[data.rfind(b")") + 2 :].split(None, 22)
            try:
                rss = int(f[21])
                if rss <= 0 or int(f[6]) & PF_KTHREAD or f[0] in (b"Z", b"X"):
                    continue  # kernel threads, zombies: counted, never tracked
                cpu[pid] = (int(f[19]), int(f[11]) + int(f[12]))
            except (IndexError, ValueError):
                _skip(stats, "unparsable /proc/[pid]/stat")
                continue
            if len(top) < top_n:
                push(top, (rss, -count, pid, data))
            elif top_n and rss > top[0][0]:
                replace(top, (rss, -count, pid, data))
            if track is not None and track(_comm(data)):
                matched.append((pid, data))
        chosen = [data for _, _, _, data in sorted(top, reverse=True)]
        if matched:
            pids = {pid for _, _, pid, _ in top}
            chosen.extend(data for pid, data in matched if pid not in pids)
        return count, chosen, cpu

    def _tracked(self, chosen: List[bytes]) -> List[ProcStat]:
        """The processes to track (the ``top_n`` largest by RSS, then the others whose name
        matches), fully parsed."""
        out: List[ProcStat] = []
        for data in chosen:
            try:
                out.append(parse_pid_stat(data.decode("utf-8", "replace")))
            except ParseError:
                _skip(self.stats, "unparsable /proc/[pid]/stat")
        return out

    def collect(self, now: float) -> List[Sample]:
        procfs, stats = self.procfs, self.stats
        denied_before = stats.permission_denied
        count, chosen, cur_cpu = self._scan()
        tracked = self._tracked(chosen)

        prev_cpu, self._cpu = self._cpu, cur_cpu
        dt, self._cpu_time = now - self._cpu_time, now
        prev_io, self._io = self._io, {}
        max_ticks = float(self.clk_tck * MAX_CPUS)
        out = [Sample(now, "process_count", float(count))]
        for st in tracked:
            try:
                fds: Optional[int] = procfs.count_fds(st.pid)
            except ProcessGone:
                stats.vanished += 1
                continue  # it exited after we read its stat: report nothing for it
            except AccessDenied:
                stats.permission_denied += 1
                fds = None
            labels = make_labels(pid=st.pid, name=st.comm)
            out.append(
                Sample(now, "process_rss_bytes", float(st.rss_pages * self.page_size), labels)
            )
            out.append(Sample(now, "process_threads", float(st.threads), labels))
            if fds is not None:
                out.append(Sample(now, "process_fd_count", float(fds), labels))
            prev = prev_cpu.get(st.pid)
            if prev is not None and prev[0] == st.starttime:
                rate = counter_rate(prev[1], st.cpu_ticks, dt, max_ticks)
                if rate is not None:
                    out.append(
                        Sample(now, "process_cpu_percent", rate * 100.0 / self.clk_tck, labels)
                    )
            self._io_rates(st, prev_io.get(st.pid), now, dt, labels, out)
        denied = stats.permission_denied - denied_before
        if denied and not self._said_denied:
            self._said_denied = True
            log.warning(
                "process: %d processes not readable without CAP_DAC_READ_SEARCH; their "
                "unreadable parts (usually the fd count) are skipped (said once)",
                denied,
            )
        return out

    def _io_rates(
        self,
        st: ProcStat,
        prev: Optional[_IoReading],
        now: float,
        dt: float,
        labels: Labels,
        out: List[Sample],
    ) -> None:
        """Read ``/proc/<pid>/io`` of a tracked process; append its rates when it has a previous
        reading (same pid and start time)."""
        try:
            read, write = parse_pid_io(self.procfs.read_pid_bytes(st.pid, "io"))
        except ProcessGone:
            return  # exited just now, or a kernel without task I/O accounting
        except AccessDenied:
            _skip(self.stats, IO_DENIED)
            if not self._said_io_denied:
                self._said_io_denied = True
                log.warning(
                    "process: /proc/%d/io (%s) not readable: other users' processes need "
                    "CAP_SYS_PTRACE; their I/O rates are skipped (said once)",
                    st.pid,
                    st.comm,
                )
            return
        except ParseError:
            _skip(self.stats, "unparsable /proc/[pid]/io")
            return
        self._io[st.pid] = (st.starttime, read, write)
        if prev is None or prev[0] != st.starttime:
            return
        for metric, before, after in (
            ("process_io_read_bytes_per_second", prev[1], read),
            ("process_io_write_bytes_per_second", prev[2], write),
        ):
            rate = counter_rate(before, after, dt, MAX_IO_BYTES_PER_SEC)
            if rate is not None:
                out.append(Sample(now, metric, rate, labels))


def _skip(stats: CollectorStats, reason: str) -> None:
    stats.skipped[reason] = stats.skipped.get(reason, 0) + 1


@dataclass(frozen=True)
class ProcessConfig:
    #: the metrics this collector emits (check-config warns about rules naming others)
    METRICS: ClassVar[Tuple[str, ...]] = (
        "process_count",
        "process_rss_bytes",
        "process_cpu_percent",
        "process_fd_count",
        "process_threads",
        "process_io_read_bytes_per_second",
        "process_io_write_bytes_per_second",
    )

    enabled: bool = opt(True)
    interval_secs: float = interval_opt(30)
    top_n: int = opt(20, min=0, max=1000, help="track the N largest processes by RSS")
    track_patterns: List[str] = opt(
        factory=list, help="also track processes whose name matches these globs, e.g. postgres*"
    )


def create(
    procfs: ProcFS,
    cfg: ProcessConfig,
    clk_tck: Optional[int] = None,
    page_size: Optional[int] = None,
) -> ProcessCollector:
    """``clk_tck`` and ``page_size`` default to this host's (tests replay other hosts' trees)."""
    c = cfg
    return ProcessCollector(
        procfs,
        interval=c.interval_secs,
        top_n=c.top_n,
        track_patterns=tuple(c.track_patterns),
        clk_tck=clk_tck,
        page_size=page_size,
    )
