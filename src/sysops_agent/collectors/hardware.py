"""Hardware health: hwmon temperatures, software RAID (md) state, EDAC memory errors.

* ``<sys_root>/class/hwmon/hwmon*/`` (Documentation/hwmon/sysfs-interface.rst):
  ``name`` is the chip, ``temp<N>_input`` millidegrees Celsius,
  ``temp<N>_label`` the sensor (``temp<N>`` without one), ``temp<N>_max`` and
  ``temp<N>_crit`` the device's own limits. ``hardware_temperature_celsius``
  ``{chip,sensor}``; ``hardware_temperature_max_percent`` and
  ``hardware_temperature_crit_percent`` are the reading as a share of those
  limits, so one threshold (100 %) means "at the device's limit" on every
  chip. A sensor that reads garbage or fails (EIO/ENXIO from a sleeping
  device) is skipped.
* ``/proc/mdstat`` (drivers/md/md.c ``md_seq_show``): for each array with a
  ``[n/m]`` status (raid1/4/5/6/10): ``md_disks`` (n), ``md_disks_active``
  (m), ``md_disks_failed`` (members marked ``(F)``) and ``md_degraded``
  (1 when fewer than n members are active) ``{device}``.
* ``<sys_root>/devices/system/edac/mc/mc*/{ce,ue}_count``
  (Documentation/admin-guide/ras.rst): ``edac_correctable_errors_per_second``
  and ``edac_uncorrectable_errors`` (new in the interval), plus both counts as
  ``*_total`` ``{controller}``.
"""

from __future__ import annotations

import errno
import os
import re
from dataclasses import dataclass
from typing import ClassVar, Dict, List, NamedTuple, Optional, Tuple

from sysops_agent.collectors.base import CollectorStats, interval_opt
from sysops_agent.model import Labels, Sample, make_labels
from sysops_agent.procfs import ProcFS
from sysops_agent.rates import RateTracker
from sysops_agent.schema import opt

_TEMP_INPUT = re.compile(r"^temp(\d+)_input$")
_MD_LINE = re.compile(r"^(md\S+)\s*:\s*(\S+)\s*(.*)$")
_MD_STATUS = re.compile(r"\[(\d+)/(\d+)\]\s*\[[U_]+\]")
#: errno of a sensor that exists but cannot be read now (device asleep, bus error)
_UNREADABLE = frozenset({errno.ENOENT, errno.EIO, errno.ENXIO, errno.ENODATA, errno.EAGAIN})


class MdArray(NamedTuple):
    name: str
    disks: int
    active: int
    failed: int


def parse_mdstat(text: str) -> List[MdArray]:
    """Arrays with an ``[n/m]`` status; the status is on the line after the array's."""
    out: List[MdArray] = []
    lines = text.split("\n")
    for i, line in enumerate(lines):
        m = _MD_LINE.match(line)
        if not m:
            continue
        failed = m.group(3).count("(F)")
        for follow in lines[i + 1 : i + 3]:
            s = _MD_STATUS.search(follow)
            if s:
                disks, active = int(s.group(1)), int(s.group(2))
                out.append(MdArray(m.group(1), disks, active, failed))
                break
    return out


def _read(path: str) -> Optional[str]:
    try:
        fd = os.open(path, os.O_RDONLY)
        try:
            return os.read(fd, 4096).decode("ascii", "replace").strip()
        finally:
            os.close(fd)
    except OSError as e:
        if e.errno in _UNREADABLE or e.errno == errno.ENOTDIR:
            return None
        raise


def _millideg(path: str) -> Optional[float]:
    text = _read(path)
    if text is None:
        return None
    try:
        return int(text) / 1000.0
    except ValueError:
        return None


class HardwareCollector:
    name = "hardware"

    def __init__(self, procfs: ProcFS, interval: float = 60.0) -> None:
        self.procfs = procfs
        self.interval = interval
        self.stats = CollectorStats()
        self.ce = RateTracker[str]()
        self.ue: Dict[str, int] = {}
        self._labels: Dict[Tuple[str, str], Labels] = {}

    def collect(self, now: float) -> List[Sample]:
        out = self._temperatures(now)
        out.extend(self._mdstat(now))
        out.extend(self._edac(now))
        return out

    def _temperatures(self, now: float) -> List[Sample]:
        base = os.path.join(self.procfs.sys_root, "class", "hwmon")
        try:
            chips = sorted(os.listdir(base))
        except OSError:
            return []
        out: List[Sample] = []
        for hw in chips:
            d = os.path.join(base, hw)
            try:
                files = os.listdir(d)
            except OSError:
                continue
            chip = _read(os.path.join(d, "name")) or hw
            for f in sorted(files):
                m = _TEMP_INPUT.match(f)
                if not m:
                    continue
                temp = _millideg(os.path.join(d, f))
                if temp is None or not -100.0 < temp < 300.0:
                    reason = f"unreadable {hw}/{f}"
                    self.stats.skipped[reason] = self.stats.skipped.get(reason, 0) + 1
                    continue
                n = m.group(1)
                sensor = _read(os.path.join(d, f"temp{n}_label")) or f"temp{n}"
                key = (f"{hw}/{chip}", sensor)
                labels = self._labels.get(key)
                if labels is None:
                    labels = self._labels[key] = make_labels(chip=chip, sensor=sensor, hwmon=hw)
                out.append(Sample(now, "hardware_temperature_celsius", temp, labels))
                for limit in ("max", "crit"):
                    if f"temp{n}_{limit}" not in files:
                        continue
                    level = _millideg(os.path.join(d, f"temp{n}_{limit}"))
                    if level is not None and level > 0:
                        metric = f"hardware_temperature_{limit}_percent"
                        out.append(Sample(now, metric, temp * 100.0 / level, labels))
        return out

    def _mdstat(self, now: float) -> List[Sample]:
        try:
            text = self.procfs.read_text("mdstat")
        except FileNotFoundError:
            return []  # md driver not loaded
        out: List[Sample] = []
        for a in parse_mdstat(text):
            labels = make_labels(device=a.name)
            out.append(Sample(now, "md_disks", float(a.disks), labels))
            out.append(Sample(now, "md_disks_active", float(a.active), labels))
            out.append(Sample(now, "md_disks_failed", float(a.failed), labels))
            out.append(Sample(now, "md_degraded", 1.0 if a.active < a.disks else 0.0, labels))
        return out

    def _edac(self, now: float) -> List[Sample]:
        base = os.path.join(self.procfs.sys_root, "devices", "system", "edac", "mc")
        try:
            mcs = sorted(n for n in os.listdir(base) if n.startswith("mc"))
        except OSError:
            return []  # no EDAC driver for this memory controller
        out: List[Sample] = []
        for mc in mcs:
            labels = make_labels(controller=mc)
            ce_text = _read(os.path.join(base, mc, "ce_count"))
            ue_text = _read(os.path.join(base, mc, "ue_count"))
            if ce_text is not None and ce_text.isdigit():
                ce = int(ce_text)
                out.append(Sample(now, "edac_correctable_errors_total", float(ce), labels))
                rate = self.ce.update(mc, float(ce), now)
                if rate is not None:
                    out.append(Sample(now, "edac_correctable_errors_per_second", rate, labels))
            if ue_text is not None and ue_text.isdigit():
                ue = int(ue_text)
                out.append(Sample(now, "edac_uncorrectable_errors_total", float(ue), labels))
                before = self.ue.get(mc)
                self.ue[mc] = ue
                if before is not None:
                    # reset_counters (or a reloaded driver) starts again from 0: count from there
                    new = ue - before if ue >= before else ue
                    out.append(Sample(now, "edac_uncorrectable_errors", float(new), labels))
        self.ce.prune()
        return out


@dataclass(frozen=True)
class HardwareConfig:
    #: the metrics this collector emits (check-config warns about rules naming others)
    METRICS: ClassVar[Tuple[str, ...]] = (
        "edac_correctable_errors_per_second",
        "edac_correctable_errors_total",
        "edac_uncorrectable_errors",
        "edac_uncorrectable_errors_total",
        "hardware_temperature_celsius",
        "hardware_temperature_crit_percent",
        "hardware_temperature_max_percent",
        "md_degraded",
        "md_disks",
        "md_disks_active",
        "md_disks_failed",
    )

    enabled: bool = opt(True)
    interval_secs: float = interval_opt(60)


def create(procfs: ProcFS, cfg: HardwareConfig) -> HardwareCollector:
    return HardwareCollector(procfs, interval=cfg.interval_secs)
