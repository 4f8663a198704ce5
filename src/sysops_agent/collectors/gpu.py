"""NVIDIA GPUs through ``nvidia-smi`` (one child process per interval, killed after a timeout).

``nvidia-smi --query-gpu=<FIELDS> --format=csv,noheader,nounits`` prints one
line per GPU (``nvidia-smi --help-query-gpu`` documents the fields)::

    0, GPU-8d2a..., NVIDIA A100-SXM4-40GB, 87, 30512, 40960, 71, 312.45, 0, Not Active

Metrics ``{gpu,uuid,name}``: ``gpu_utilization_percent``,
``gpu_memory_used_bytes`` (MiB in the output), ``gpu_memory_usage_percent``,
``gpu_temperature_celsius``, ``gpu_power_watts``, ``gpu_ecc_errors_total``
(uncorrected, since the driver loaded) and ``gpu_thermal_slowdown`` (1 while
the GPU slows its clocks because it reached its own temperature limit).
Fields a GPU does not have print as ``[N/A]`` or ``[Not Supported]``
(consumer cards have no ECC, a GPU in MIG mode reports no utilization):
those series are skipped. No ``nvidia-smi`` on PATH: said once, nothing
else. A failing or hung ``nvidia-smi`` (a lost GPU, a driver that no longer
answers) is reported once per distinct error, and a hung one is killed after
``timeout_secs``.

GPU processes' memory: when the GPU query answered, a second child,
``nvidia-smi --query-compute-apps=gpu_uuid,pid,process_name,used_memory
--format=csv,noheader,nounits``, lists the compute processes (CUDA contexts;
graphics-only processes are not listed by this query)::

    GPU-8d2a..., 48213, /usr/bin/python3, 30208

``gpu_process_memory_bytes{gpu,pid,name}`` (``used_memory`` in MiB; ``gpu`` is
the index the GPU query gave that uuid, ``name`` the program's base name, or
its ``comm`` from /proc when nvidia-smi prints none) for the
``process_top_n`` largest across all GPUs, so a host running hundreds of
workers stays bounded. ``used_memory`` is ``[N/A]`` where the driver cannot
attribute memory to a process (Windows WDDM, processes on MIG instances of
some drivers): those processes are skipped. nvidia-smi's documentation
(``nvidia-smi -h``, the "SELECTIVE QUERY OPTIONS") lists ``--query-gpu`` and
``--query-compute-apps`` as separate queries with separate field lists and
no way to ask both in one run, hence two children; the second has the same
timeout and is not started after the first failed to answer (a hung driver
must not cost two timeouts).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Callable, ClassVar, Dict, List, Optional, Tuple, TypeVar

from sysops_agent.collectors.base import CollectorStats, interval_opt
from sysops_agent.model import Labels, Sample, make_labels
from sysops_agent.procfs import AccessDenied, ProcessGone, ProcFS
from sysops_agent.schema import opt

log = logging.getLogger(__name__)

_T = TypeVar("_T")

FIELDS: Tuple[str, ...] = (
    "index",
    "uuid",
    "name",
    "utilization.gpu",
    "memory.used",
    "memory.total",
    "temperature.gpu",
    "power.draw",
    "ecc.errors.uncorrected.volatile.total",
    "clocks_throttle_reasons.hw_thermal_slowdown",
)
#: the ``--query-compute-apps`` fields, in this order
APP_FIELDS: Tuple[str, ...] = ("gpu_uuid", "pid", "process_name", "used_memory")
_MIB = 1024.0 * 1024.0
_MISSING = frozenset({"[N/A]", "[Not Supported]", "N/A", "[Unknown Error]", "[GPU requires reset]"})


#: one GPU: its labels and its values by metric name
GpuReading = Tuple[Labels, Dict[str, float]]


def _number(text: str) -> Optional[float]:
    if text in _MISSING:
        return None
    try:
        return float(text)
    except ValueError:
        return None


def parse_query_gpu(text: str) -> Tuple[List[GpuReading], List[str]]:
    """The GPUs of a ``--query-gpu`` output with :data:`FIELDS`, and the lines that were not."""
    gpus: List[GpuReading] = []
    other: List[str] = []
    for line in text.split("\n"):
        if not line.strip():
            continue
        f = [p.strip() for p in line.split(", ")]
        if len(f) != len(FIELDS) or not f[0].isdigit():
            other.append(line.strip())
            continue
        g: Dict[str, float] = {}
        util, used, total, temp, power, ecc = (_number(x) for x in f[3:9])
        if util is not None:
            g["gpu_utilization_percent"] = util
        if used is not None:
            g["gpu_memory_used_bytes"] = used * _MIB
            if total:
                g["gpu_memory_usage_percent"] = used * 100.0 / total
        if temp is not None:
            g["gpu_temperature_celsius"] = temp
        if power is not None:
            g["gpu_power_watts"] = power
        if ecc is not None:
            g["gpu_ecc_errors_total"] = ecc
        if f[9] in ("Active", "Not Active"):
            g["gpu_thermal_slowdown"] = 1.0 if f[9] == "Active" else 0.0
        gpus.append((make_labels(gpu=f[0], uuid=f[1], name=f[2]), g))
    return gpus, other


#: one compute process: (gpu uuid, pid, program name or "", used memory in bytes)
GpuApp = Tuple[str, int, str, float]


def parse_compute_apps(text: str) -> Tuple[List[GpuApp], List[str]]:
    """The processes of a ``--query-compute-apps`` output with :data:`APP_FIELDS`, and the
    lines that were not (a process whose memory is ``[N/A]`` is neither: it is skipped).

    A process using several GPUs (or MIG instances of one) has a line for each.
    """
    apps: List[GpuApp] = []
    other: List[str] = []
    for line in text.split("\n"):
        if not line.strip():
            continue
        f = [p.strip() for p in line.split(", ")]
        if len(f) > len(APP_FIELDS):  # a ", " inside the process name (rare): rejoin it
            f = [f[0], f[1], ", ".join(f[2:-1]), f[-1]]
        if len(f) != len(APP_FIELDS) or not f[1].isdigit():
            other.append(line.strip())
            continue
        if f[3] in _MISSING:
            continue
        used = _number(f[3])
        if used is None or used < 0:
            other.append(line.strip())
            continue
        name = "" if f[2] in _MISSING else os.path.basename(f[2]) or f[2]
        apps.append((f[0], int(f[1]), name, used * _MIB))
    return apps, other


def find_executable(name: str, path: Optional[str] = None) -> Optional[str]:
    """``name`` itself when it holds a ``/``, else the first executable of that name on PATH."""
    if "/" in name:
        return name if os.access(name, os.X_OK) else None
    for d in (path if path is not None else os.environ.get("PATH", "")).split(os.pathsep):
        candidate = os.path.join(d or ".", name)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


class GpuCollector:
    name = "gpu"

    def __init__(
        self,
        procfs: ProcFS,
        interval: float = 30.0,
        command: str = "nvidia-smi",
        timeout: float = 10.0,
        process_top_n: int = 10,
    ) -> None:
        self.procfs = procfs
        self.process_top_n = process_top_n
        self.interval = interval
        self.command = command
        self.timeout = timeout
        self.stats = CollectorStats()
        self._said: set[str] = set()
        self._executable: Optional[str] = None
        self._looked_up = False

    def _say_once(self, message: str) -> None:
        if message not in self._said:
            self._said.add(message)
            log.warning("%s", message)

    def _skip(self, reason: str) -> None:
        self.stats.skipped[reason] = self.stats.skipped.get(reason, 0) + 1

    def collect(self, now: float) -> List[Sample]:
        if not self._looked_up:
            self._looked_up = True
            self._executable = find_executable(self.command)
            if self._executable is None:
                log.info("no %s on PATH: no GPU metrics", self.command)
        if self._executable is None:
            return []
        gpus = self._query(
            ["--query-gpu=" + ",".join(FIELDS), "--format=csv,noheader,nounits"],
            parse_query_gpu,
            "nvidia-smi",
        )
        if gpus is None:
            return []
        out: List[Sample] = []
        for labels, values in gpus:
            for metric, value in values.items():
                out.append(Sample(now, metric, value, labels))
        if gpus and self.process_top_n > 0:
            out.extend(self._processes(now, gpus))
        return out

    def _query(
        self,
        args: List[str],
        parse: Callable[[str], Tuple[List[_T], List[str]]],
        what: str,
    ) -> Optional[List[_T]]:
        """Run nvidia-smi with ``args`` and parse its output; None when it did not answer."""
        import subprocess  # only on hosts that have nvidia-smi

        assert self._executable is not None
        try:
            done = subprocess.run(
                [self._executable, *args],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=self.timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            self._skip(f"{what} timed out")
            self._say_once(f"{self.command} did not answer within {self.timeout:g} s: killed")
            return None
        except OSError as e:
            self._skip(f"{what} failed to start")
            self._say_once(f"{self.command} could not be started: {e}")
            return None
        stdout = done.stdout.decode("utf-8", "replace")
        parsed, other = parse(stdout)
        if done.returncode != 0 or other:
            detail = (other[0] if other else done.stderr.decode("utf-8", "replace").strip())[:200]
            self._skip(f"{what} exit {done.returncode}")
            query = "" if what == "nvidia-smi" else " " + args[0].split("=")[0]
            self._say_once(f"{self.command}{query} exited with {done.returncode}: {detail}")
        return parsed

    def _processes(self, now: float, gpus: List[GpuReading]) -> List[Sample]:
        apps = self._query(
            ["--query-compute-apps=" + ",".join(APP_FIELDS), "--format=csv,noheader,nounits"],
            parse_compute_apps,
            "nvidia-smi compute-apps",
        )
        if not apps:
            return []
        index: Dict[str, str] = {}
        for labels, _ in gpus:
            d = dict(labels)
            index[d["uuid"]] = d["gpu"]
        used: Dict[Tuple[str, int], float] = {}
        names: Dict[int, str] = {}
        for uuid, pid, name, nbytes in apps:
            key = (index.get(uuid, uuid), pid)
            used[key] = used.get(key, 0.0) + nbytes  # MIG: one line per instance
            if name:
                names[pid] = name
        top = sorted(used.items(), key=lambda kv: kv[1], reverse=True)[: self.process_top_n]
        out: List[Sample] = []
        for (gpu, pid), nbytes in top:
            name = names.get(pid) or self._comm(pid)
            labels = make_labels(gpu=gpu, pid=str(pid), name=name)
            out.append(Sample(now, "gpu_process_memory_bytes", nbytes, labels))
        return out

    def _comm(self, pid: int) -> str:
        """The process's ``comm`` when nvidia-smi printed no name (another pid namespace)."""
        try:
            return self.procfs.read_pid(pid, "comm").strip() or "unknown"
        except (ProcessGone, AccessDenied, OSError):  # gone, forbidden, another pid namespace
            return "unknown"


@dataclass(frozen=True)
class GpuConfig:
    #: the metrics this collector emits (check-config warns about rules naming others)
    METRICS: ClassVar[Tuple[str, ...]] = (
        "gpu_utilization_percent",
        "gpu_memory_used_bytes",
        "gpu_memory_usage_percent",
        "gpu_temperature_celsius",
        "gpu_power_watts",
        "gpu_ecc_errors_total",
        "gpu_thermal_slowdown",
        "gpu_process_memory_bytes",
        "gpu_process_memory_bytes",
    )

    enabled: bool = opt(True)
    interval_secs: float = interval_opt(30)
    command: str = opt("nvidia-smi", help="the nvidia-smi to run (a name on PATH or a path)")
    timeout_secs: float = opt(10.0, min=1, max=300, help="kill a hung nvidia-smi after this long")
    process_top_n: int = opt(
        10, min=0, max=1000, help="GPU memory of the N processes using the most (0: none)"
    )


def create(procfs: ProcFS, cfg: GpuConfig) -> GpuCollector:
    return GpuCollector(
        procfs,
        cfg.interval_secs,
        command=cfg.command,
        timeout=cfg.timeout_secs,
        process_top_n=cfg.process_top_n,
    )
