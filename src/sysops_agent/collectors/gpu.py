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
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import ClassVar, Dict, List, Optional, Tuple

from sysops_agent.collectors.base import CollectorStats, interval_opt
from sysops_agent.model import Labels, Sample, make_labels
from sysops_agent.procfs import ProcFS
from sysops_agent.schema import opt

log = logging.getLogger(__name__)

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
    ) -> None:
        self.procfs = procfs
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
        import subprocess  # only on hosts that have nvidia-smi

        argv = [
            self._executable,
            "--query-gpu=" + ",".join(FIELDS),
            "--format=csv,noheader,nounits",
        ]
        try:
            done = subprocess.run(
                argv,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=self.timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            self._skip("nvidia-smi timed out")
            self._say_once(f"{self.command} did not answer within {self.timeout:g} s: killed")
            return []
        except OSError as e:
            self._skip("nvidia-smi failed to start")
            self._say_once(f"{self.command} could not be started: {e}")
            return []
        stdout = done.stdout.decode("utf-8", "replace")
        gpus, other = parse_query_gpu(stdout)
        if done.returncode != 0 or other:
            detail = (other[0] if other else done.stderr.decode("utf-8", "replace").strip())[:200]
            self._skip(f"nvidia-smi exit {done.returncode}")
            self._say_once(f"{self.command} exited with {done.returncode}: {detail}")
        out: List[Sample] = []
        for labels, values in gpus:
            for metric, value in values.items():
                out.append(Sample(now, metric, value, labels))
        return out


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
    )

    enabled: bool = opt(True)
    interval_secs: float = interval_opt(30)
    command: str = opt("nvidia-smi", help="the nvidia-smi to run (a name on PATH or a path)")
    timeout_secs: float = opt(10.0, min=1, max=300, help="kill a hung nvidia-smi after this long")


def create(procfs: ProcFS, cfg: GpuConfig) -> GpuCollector:
    return GpuCollector(procfs, cfg.interval_secs, command=cfg.command, timeout=cfg.timeout_secs)
