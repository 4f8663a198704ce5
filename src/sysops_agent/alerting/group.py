"""Stage 4 of the alert pipeline: gather alerts of the same host into one message.

The first alert for a host opens a group; the group is sent ``window_secs``
later with everything that arrived for that host in between (SPEC §6: 5 s).
A group that reaches ``max_size`` goes out at once. A channel without
``supports_batch`` gets window 0, so each alert leaves immediately.

:func:`group_key` and :func:`is_due` are the pure decisions; :class:`GroupStage`
holds the open groups of one channel. As a lane
:class:`~sysops_agent.alerting.stage.Stage` it returns the alerts of the groups
that are complete, in order; :func:`messages` cuts such a list back into one
message per group (consecutive alerts with the same :func:`group_key`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Dict, List, Optional

from sysops_agent.alerting.config import PipelineConfig
from sysops_agent.model import Alert

if TYPE_CHECKING:
    from sysops_agent.alerting.pipeline import Lane

#: a group this large is flushed without waiting for its window (the channel
#: still fits it into the platform's limits, summarising the overflow)
MAX_GROUP_SIZE = 50


def group_key(alert: Alert) -> str:
    return alert.hostname


def messages(alerts: List[Alert], batch: bool) -> List[List[Alert]]:
    """``alerts`` as messages: runs of one group key, or one alert each if not ``batch``."""
    if not batch:
        return [[a] for a in alerts]
    out: List[List[Alert]] = []
    for alert in alerts:
        if out and group_key(out[-1][-1]) == group_key(alert):
            out[-1].append(alert)
        else:
            out.append([alert])
    return out


def is_due(opened_at: float, now: float, window_secs: float) -> bool:
    # the same sum as next_due(), so a timer set for it always finds the group due
    return now >= opened_at + window_secs


@dataclass
class _Group:
    opened_at: float
    alerts: List[Alert] = field(default_factory=list)


class GroupStage:
    def __init__(self, window_secs: float, max_size: int = MAX_GROUP_SIZE) -> None:
        self.window_secs = max(0.0, float(window_secs))
        self.max_size = max(1, int(max_size))
        self._groups: Dict[str, _Group] = {}

    def __call__(self, alerts: List[Alert], now: float) -> List[Alert]:
        groups = [g for a in alerts for g in self.add(a, now)] if alerts else self.due(now)
        return [a for g in groups for a in g]

    def flush(self, now: float) -> List[Alert]:
        return [a for g in self.drain() for a in g]

    def add(self, alert: Alert, now: float) -> List[List[Alert]]:
        """Add ``alert``; return the groups that are complete right now."""
        key = group_key(alert)
        group = self._groups.get(key)
        if group is None:
            group = self._groups[key] = _Group(now)
        group.alerts.append(alert)
        if len(group.alerts) >= self.max_size:
            del self._groups[key]
            return [group.alerts]
        return self.due(now)

    def due(self, now: float) -> List[List[Alert]]:
        """Remove and return the groups whose window has passed, oldest first."""
        ready = [
            (g.opened_at, k)
            for k, g in self._groups.items()
            if is_due(g.opened_at, now, self.window_secs)
        ]
        ready.sort()
        return [self._groups.pop(k).alerts for _, k in ready]

    def next_due(self) -> Optional[float]:
        if not self._groups:
            return None
        return min(g.opened_at for g in self._groups.values()) + self.window_secs

    def drain(self) -> List[List[Alert]]:
        """Every open group, regardless of its window (shutdown)."""
        groups = sorted(self._groups.values(), key=lambda g: g.opened_at)
        self._groups.clear()
        return [g.alerts for g in groups]

    def holding(self) -> List[Alert]:
        """The alerts waiting in open groups (the manager keeps them in the outbox's
        ``held`` table, so a crash inside the window loses none)."""
        return [a for g in self._groups.values() for a in g.alerts]

    def __len__(self) -> int:
        return sum(len(g.alerts) for g in self._groups.values())


def create(cfg: PipelineConfig, lane: Lane) -> GroupStage:
    """Groups for a channel that batches; window 0 (each alert alone) for one that does not."""
    return GroupStage(cfg.group_window_secs if lane.supports_batch else 0.0)
