"""Maintenance windows: ``[[alerting.maintenance]]`` mutes matching alerts on a weekly schedule.

A window has matchers (as a silence), the ``days`` of the week it opens,
its local ``start`` time (``"02:00"``), a ``duration_mins`` and a
``timezone`` (an IANA name through :mod:`zoneinfo`; empty = the host's local
time). An alert muted by a window is held and sent when the window closes if
it still fires; an emergency goes through unless a matcher names its severity
(the rule silences follow).

:func:`occurrence` (the window open at a time, if any) and :func:`next_opening`
are pure functions of the window and a wall-clock time; the stage only asks them.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, tzinfo
from typing import List, Optional, Tuple

from sysops_agent.alerting.config import DAYS, HHMM, MaintenanceWindow, PipelineConfig, zone
from sysops_agent.alerting.matchers import mutes, parse_matchers
from sysops_agent.alerting.mute import MuteStage
from sysops_agent.model import Alert, Severity


def _opening(window: MaintenanceWindow, day: date, tz: Optional[tzinfo]) -> float:
    m = HHMM.fullmatch(window.start)
    hour, minute = (int(m.group(1)), int(m.group(2))) if m else (0, 0)
    local = datetime(day.year, day.month, day.day, hour, minute, tzinfo=tz)
    return local.timestamp()  # a naive datetime (tz None) is the host's local time


def _openings(window: MaintenanceWindow, wall: float) -> List[float]:
    """Openings from 8 days before to 8 days after ``wall``, in order."""
    tz = zone(window.timezone)
    today = datetime.fromtimestamp(wall, tz).date()
    days = {d.lower()[:3] for d in window.days}
    out = []
    for delta in range(-8, 9):
        day = today + timedelta(days=delta)
        if DAYS[day.weekday()] in days:
            out.append(_opening(window, day, tz))
    return out


def occurrence(window: MaintenanceWindow, wall: float) -> Optional[Tuple[float, float]]:
    """(start, end) of the occurrence of ``window`` open at ``wall``, or None."""
    length = window.duration_mins * 60.0
    for start in _openings(window, wall):
        if start <= wall < start + length:
            return start, start + length
    return None


def next_opening(window: MaintenanceWindow, wall: float) -> Optional[Tuple[float, float]]:
    """(start, end) of the first occurrence that opens after ``wall``; None without days."""
    later = [s for s in _openings(window, wall) if s > wall]
    return (later[0], later[0] + window.duration_mins * 60.0) if later else None


class MaintenanceStage(MuteStage):
    """Holds alerts muted by an open window; sends the ones still firing when it closes."""

    note = "the maintenance window closed"

    def __init__(self, windows: List[MaintenanceWindow]) -> None:
        super().__init__()
        self.windows = list(windows)
        self._matchers = [parse_matchers(w.matchers) for w in self.windows]

    def is_muted(self, alert: Alert, wall: float) -> bool:
        for window, matchers in zip(self.windows, self._matchers):
            if occurrence(window, wall) is not None and (
                mutes(matchers, alert) if matchers else mutes_everything(alert)
            ):
                return True
        return False

    def changes_at(self, wall: float) -> Optional[float]:
        ends = [o[1] for o in (occurrence(w, wall) for w in self.windows) if o is not None]
        return min(ends) if ends else None


def mutes_everything(alert: Alert) -> bool:
    """A window without matchers mutes every alert but an emergency."""
    return alert.severity is not Severity.EMERGENCY


def create(cfg: PipelineConfig) -> Optional[MaintenanceStage]:
    return MaintenanceStage(cfg.maintenance) if cfg.maintenance else None
