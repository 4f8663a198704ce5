"""Every procfs collector, one line each (SPEC §12: a new collector is one module plus one line).

:data:`COLLECTORS` is the only list of collectors: the ``[collector]`` table of
the configuration has one section per entry (``config.py`` derives it with
:func:`~sysops_agent.plugins.sections_class`), in this order, which is also the
order ``collect --once`` prints them in.

The log watcher (``[collector.log]``) is not a procfs collector: it streams
log records rather than sampling on an interval, so the daemon starts it
separately and it is not listed here.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from sysops_agent.collectors import (
    cgroup,
    cpu,
    disk_io,
    disk_usage,
    fd,
    gpu,
    hardware,
    load,
    memory,
    netstack,
    network,
    pressure,
    process,
    uptime,
)
from sysops_agent.collectors.base import Collector, CollectorFactory
from sysops_agent.model import Sample
from sysops_agent.plugins import Plugin, is_enabled
from sysops_agent.procfs import ProcFS

log = logging.getLogger(__name__)

COLLECTORS: Tuple[Plugin[CollectorFactory], ...] = (
    Plugin("cpu", cpu.CpuConfig, cpu.create),
    Plugin("memory", memory.MemoryConfig, memory.create),
    Plugin("disk_io", disk_io.DiskIOConfig, disk_io.create),
    Plugin("disk_usage", disk_usage.DiskUsageConfig, disk_usage.create),
    Plugin("network", network.NetworkConfig, network.create),
    Plugin("netstack", netstack.NetStackConfig, netstack.create),
    Plugin("process", process.ProcessConfig, process.create),
    Plugin("cgroup", cgroup.CgroupConfig, cgroup.create),
    Plugin("fd", fd.FdConfig, fd.create),
    Plugin("load", load.LoadConfig, load.create),
    Plugin("pressure", pressure.PressureConfig, pressure.create),
    Plugin("uptime", uptime.UptimeConfig, uptime.create),
    Plugin("hardware", hardware.HardwareConfig, hardware.create),
    Plugin("gpu", gpu.GpuConfig, gpu.create),
)


def build_collectors(
    procfs: ProcFS, sections: Any, factories: Optional[Mapping[str, CollectorFactory]] = None
) -> List[Collector]:
    """The enabled collectors of the ``[collector]`` ``sections``, in registry order.

    ``factories`` replaces the factories of some entries (tests).
    """
    replaced = factories or {}
    out: List[Collector] = []
    for plugin in COLLECTORS:
        cfg = getattr(sections, plugin.name)
        if is_enabled(cfg):
            out.append(replaced.get(plugin.name, plugin.create)(procfs, cfg))
    return out


def collect_once(
    procfs: ProcFS,
    sections: Any,
    clock_sleep: float = 1.0,
    *,
    time_fn: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
    between: Optional[Callable[[], None]] = None,
    factories: Optional[Mapping[str, CollectorFactory]] = None,
    outcome: Optional[Dict[str, Optional[str]]] = None,
) -> List[Sample]:
    """One reading of every enabled collector, rates included (``collect --once``).

    Rate collectors need two readings: the first call primes them and its
    samples are discarded; the samples returned come from the second call,
    ``clock_sleep`` seconds later. ``between`` runs between the readings
    (tests use it to switch a fixture tree to its next step). A collector that
    fails is logged and left out, as in the daemon. ``outcome``, when given, is
    filled with each collector's name -> None when it worked, else its error.
    """
    collectors = build_collectors(procfs, sections, factories)
    failed: Dict[str, Optional[str]] = {}
    _run_all(collectors, time_fn(), failed)
    if clock_sleep > 0:
        sleep(clock_sleep)
    if between is not None:
        between()
    samples = _run_all(collectors, time_fn(), failed)
    if outcome is not None:
        outcome.update((c.name, failed.get(c.name)) for c in collectors)
    return samples


def _run_all(
    collectors: List[Collector], now: float, failed: Dict[str, Optional[str]]
) -> List[Sample]:
    out: List[Sample] = []
    for c in collectors:
        if c.name in failed:
            continue
        try:
            out.extend(c.collect(now))
        except Exception as e:  # one broken collector must not hide the others
            failed[c.name] = str(e)
            log.warning(
                "collector %s failed: %s", c.name, e, extra={"collector": c.name, "error": str(e)}
            )
    return out
