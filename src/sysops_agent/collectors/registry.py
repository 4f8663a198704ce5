"""Every procfs collector by name (SPEC §12: a new collector is one module plus one line here).

The log collector (``[collector.log]``) is not a procfs collector: it streams
log records rather than sampling on an interval, so the daemon starts it
separately and it is not listed here.
"""

from __future__ import annotations

import logging
import time
from typing import Callable, Dict, List, Mapping, Optional

from sysops_agent.collectors import (
    cpu,
    disk_io,
    disk_usage,
    fd,
    load,
    memory,
    network,
    process,
    uptime,
)
from sysops_agent.collectors.base import Collector, CollectorFactory
from sysops_agent.config import Config
from sysops_agent.model import Sample
from sysops_agent.procfs import ProcFS

log = logging.getLogger(__name__)

COLLECTORS: Dict[str, CollectorFactory] = {
    "cpu": cpu.create,
    "memory": memory.create,
    "disk_io": disk_io.create,
    "disk_usage": disk_usage.create,
    "network": network.create,
    "process": process.create,
    "fd": fd.create,
    "load": load.create,
    "uptime": uptime.create,
}


def build_collectors(
    procfs: ProcFS, config: Config, factories: Optional[Mapping[str, CollectorFactory]] = None
) -> List[Collector]:
    """The enabled collectors, in registry order. ``factories`` replaces entries (tests)."""
    table = dict(COLLECTORS)
    if factories:
        table.update(factories)
    sections = config.collector
    return [
        factory(procfs, config)
        for name, factory in table.items()
        if getattr(sections, name).enabled
    ]


def collect_once(
    procfs: ProcFS,
    config: Config,
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
    collectors = build_collectors(procfs, config, factories)
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
