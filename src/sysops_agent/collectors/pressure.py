"""Pressure stall information from ``/proc/pressure/{cpu,memory,io}`` (Linux >= 4.20).

Each file has a ``some`` line and (memory, io; cpu since 5.13) a ``full`` line
(Documentation/accounting/psi.rst)::

    some avg10=0.31 avg60=0.12 avg300=0.05 total=4096112
    full avg10=0.00 avg60=0.00 avg300=0.00 total=1203310

``some`` is the share of wall-clock time in which at least one task was
stalled on the resource, ``full`` the share in which all non-idle tasks were.
``pressure_<resource>_<some|full>_percent`` is ``avg10``: the kernel's
running average over the last 10 s, the same window as the collection
interval, so each sample describes the interval it closes (avg60 would lag a
stall by a minute and smear two samples' worth of history into each one, and
``for_secs`` on a threshold already asks for persistence). It is also the
figure systemd-oomd compares with its ``MemoryPressureLimit``.
``pressure_<resource>_<kind>_stall_seconds_per_second`` is the ``total``
counter (microseconds stalled) as a rate: the exact stalled share of the
interval between two readings, 0-1, with no averaging.

A kernel without PSI (before 4.20, ``CONFIG_PSI`` off, or booted with
``psi=0``, where the files exist but reading them fails with EOPNOTSUPP) is
reported once in the log and the collector returns nothing from then on.
A file that does not parse is skipped for that cycle and counted in
``stats.skipped``; a missing ``full`` line (cpu before 5.13) just gives no
``full`` series.
"""

from __future__ import annotations

import errno
import logging
from dataclasses import dataclass
from typing import ClassVar, Dict, List, Optional, Tuple

from sysops_agent.collectors.base import CollectorStats, interval_opt
from sysops_agent.collectors.common import ParseError
from sysops_agent.collectors.keptfiles import KeptFiles
from sysops_agent.model import Sample
from sysops_agent.procfs import ProcFS
from sysops_agent.rates import RateTracker
from sysops_agent.schema import opt

log = logging.getLogger(__name__)

RESOURCES: Tuple[str, ...] = ("cpu", "memory", "io")
KINDS: Tuple[str, ...] = ("some", "full")

#: the stalled share cannot exceed 1 s per second; our timestamps and the kernel's
#: clock differ by a little jitter, so a rate up to this is clamped to 1 and above it
#: (a counter from another boot, garbage) there is no sample
_MAX_STALL_RATE = 1.5

#: (avg10 in percent, total stalled microseconds) per kind
Pressure = Dict[str, Tuple[float, int]]

#: errno of reading a PSI file on a kernel booted with psi=0
_NO_PSI = frozenset({errno.EOPNOTSUPP, errno.ENOTSUP})


def parse_pressure(text: str, source: str) -> Pressure:
    """``kind -> (avg10, total)`` of one pressure file; ParseError on a malformed line."""
    out: Pressure = {}
    for line in text.split("\n"):
        parts = line.split()
        if not parts:
            continue
        kind = parts[0]
        fields: Dict[str, str] = {}
        for p in parts[1:]:
            key, sep, value = p.partition("=")
            if sep:
                fields[key] = value
        try:
            avg10 = float(fields["avg10"])
            total = int(fields["total"])
        except (KeyError, ValueError):
            raise ParseError(source, f"expected avg10=... total=... in line {line!r}") from None
        if kind not in KINDS or not 0.0 <= avg10 <= 100.0 or total < 0:
            raise ParseError(source, f"unexpected line {line!r}")
        out[kind] = (avg10, total)
    if "some" not in out:
        raise ParseError(source, "no 'some' line")
    return out


class PressureCollector:
    name = "pressure"
    may_block = False  # reads only the kernel's own counters: shares a worker job

    def __init__(self, procfs: ProcFS, interval: float = 10.0) -> None:
        self.procfs = procfs
        self.interval = interval
        self.stats = CollectorStats()
        self.totals: RateTracker[Tuple[str, str]] = RateTracker()
        #: False once the kernel has been found to have no PSI (said once, then silent)
        self.available: Optional[bool] = None
        #: the three files, kept open (keptfiles.py)
        self.files = KeptFiles(limit=8)

    def _read(self, resource: str) -> Optional[str]:
        try:
            data = self.files.read(f"{self.procfs.root}/pressure/{resource}")
        except OSError as e:
            if e.errno in _NO_PSI:
                return None
            raise
        return None if data is None else data.decode("ascii", "replace")

    def collect(self, now: float) -> List[Sample]:
        if self.available is False:
            return []
        texts = [(r, self._read(r)) for r in RESOURCES]
        if all(t is None for _, t in texts):
            if self.available is None:
                log.info(
                    "no pressure stall information at %s (kernel before 4.20, CONFIG_PSI off "
                    "or booted with psi=0): the pressure collector reports nothing",
                    self.procfs.path("pressure"),
                )
            self.available = False
            self.files.close()
            return []
        self.available = True
        out: List[Sample] = []
        rates: List[Sample] = []
        for resource, text in texts:
            if text is None:
                continue
            source = f"/proc/pressure/{resource}"
            try:
                parsed = parse_pressure(text, source)
            except ParseError as e:
                reason = f"unparsable {source}"
                self.stats.skipped[reason] = self.stats.skipped.get(reason, 0) + 1
                log.debug("%s", e)
                continue
            for kind in KINDS:
                got = parsed.get(kind)
                if got is None:
                    continue
                avg10, total = got
                out.append(Sample(now, f"pressure_{resource}_{kind}_percent", avg10))
                rate = self.totals.update((resource, kind), total / 1e6, now)
                if rate is not None and rate <= _MAX_STALL_RATE:
                    rates.append(
                        Sample(
                            now,
                            f"pressure_{resource}_{kind}_stall_seconds_per_second",
                            min(rate, 1.0),
                        )
                    )
        self.totals.prune()
        return out + rates


@dataclass(frozen=True)
class PressureConfig:
    #: the metrics this collector emits (check-config warns about rules naming others)
    METRICS: ClassVar[Tuple[str, ...]] = (
        "pressure_cpu_some_percent",
        "pressure_cpu_full_percent",
        "pressure_memory_some_percent",
        "pressure_memory_full_percent",
        "pressure_io_some_percent",
        "pressure_io_full_percent",
        "pressure_cpu_some_stall_seconds_per_second",
        "pressure_cpu_full_stall_seconds_per_second",
        "pressure_memory_some_stall_seconds_per_second",
        "pressure_memory_full_stall_seconds_per_second",
        "pressure_io_some_stall_seconds_per_second",
        "pressure_io_full_stall_seconds_per_second",
    )

    enabled: bool = opt(True)
    interval_secs: float = interval_opt(10)


def create(procfs: ProcFS, cfg: PressureConfig) -> PressureCollector:
    return PressureCollector(procfs, interval=cfg.interval_secs)
