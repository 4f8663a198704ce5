"""Repeat and acknowledge: a critical or emergency alert that keeps firing is sent again.

Every ``repeat_interval_secs`` (Alertmanager's 4 h by default; 0 = never)
after it was last sent, a firing critical or emergency alert goes out again
with "still firing for 6 h". ``sysops-agent ack ID`` stops the repeats of
that alert until it resolves; the ack is announced once (an alert of the same
severity, so it reaches the channels that got the alert) and shown in
``status``. An alert that changes severity or resolves starts afresh.

The tracked alerts and their acks are saved with the firing-alert state
(``alerts.state``; :meth:`RepeatStage.snapshot` / :meth:`RepeatStage.restore`,
monotonic times turned into wall time and back): after a restart an acked
alert that still fires stays acked, and the others repeat on their schedule.
The ack goes when the alert resolves, like the rest of its entry.

:func:`repeat_due` is the pure decision; :class:`RepeatStage` keeps, per
alert :func:`~sysops_agent.alerting.matchers.identity`, the alert, when it
started and when it was last sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple

from sysops_agent.alerting.config import PipelineConfig
from sysops_agent.alerting.matchers import Identity, identity
from sysops_agent.alerting.outbox import alert_from_obj, alert_to_obj
from sysops_agent.model import Alert, AlertState, Severity


@dataclass(frozen=True)
class Tracked:
    alert: Alert
    #: monotonic time it started firing and it was last sent
    since: float
    last_sent: float
    #: (who, comment) once acknowledged
    ack: Optional[Tuple[str, str]] = None


def repeats(alert: Alert) -> bool:
    return alert.state is AlertState.FIRING and alert.severity >= Severity.CRITICAL


def repeat_due(t: Tracked, now: float, interval: float) -> bool:
    """Whether ``t`` is sent again at ``now`` (pure)."""
    return interval > 0 and t.ack is None and now - t.last_sent >= interval


def still_firing_for(secs: float) -> str:
    """``still firing for 6 h``, ``... 45 min``, ``... 2 d 3 h``."""
    m = int(secs // 60)
    if m < 60:
        return f"still firing for {m} min"
    h = m // 60
    if h < 48:
        return f"still firing for {h} h" + (f" {m % 60} min" if h < 6 and m % 60 else "")
    return f"still firing for {h // 24} d {h % 24} h"


class RepeatStage:
    def __init__(self, interval_secs: float) -> None:
        self.interval = float(interval_secs)
        self.tracked: Dict[Identity, Tracked] = {}
        self._pending: List[Alert] = []
        #: repeats sent so far
        self.repeated = 0

    def __call__(self, alerts: List[Alert], now: float) -> List[Alert]:
        out: List[Alert] = []
        for alert in alerts:
            ident = identity(alert)
            old = self.tracked.get(ident)
            if not repeats(alert):
                self.tracked.pop(ident, None)
            elif old is not None and old.alert.severity == alert.severity:
                self.tracked[ident] = Tracked(alert, old.since, now, old.ack)
            else:
                self.tracked[ident] = Tracked(alert, now, now)
            out.append(alert)
        out.extend(self._pending)
        self._pending = []
        for ident, t in list(self.tracked.items()):
            if repeat_due(t, now, self.interval):
                self.tracked[ident] = Tracked(t.alert, t.since, now, t.ack)
                first = t.alert.message.split(" (still firing for")[0]
                out.append(
                    t.alert.evolve(
                        message=f"{first} ({still_firing_for(now - t.since)})",
                        timestamp=t.alert.timestamp + (now - t.since),
                    )
                )
                self.repeated += 1
        return out

    def next_due(self) -> Optional[float]:
        if self._pending:
            return 0.0
        due = [
            t.last_sent + self.interval
            for t in self.tracked.values()
            if self.interval > 0 and t.ack is None
        ]
        return min(due) if due else None

    def flush(self, now: float) -> List[Alert]:
        out, self._pending = self._pending, []
        return out

    def find(self, prefix: str) -> Identity:
        """The identity of the tracked alert whose id starts with ``prefix``; KeyError if none/many."""
        hits = [i for i, t in self.tracked.items() if prefix and t.alert.id.startswith(prefix)]
        if len(hits) != 1:
            what = "no repeating (critical or emergency) alert" if not hits else "several alerts"
            raise KeyError(f"{what} with id {prefix!r}")
        return hits[0]

    def ack(self, prefix: str, by: str, comment: str) -> Alert:
        """Acknowledge; the announcement goes out at the next call. KeyError for a bad id."""
        ident = self.find(prefix)
        t = self.tracked[ident]
        if t.ack is not None:
            raise KeyError(f"alert {prefix!r} is already acknowledged by {t.ack[0]}")
        self.tracked[ident] = Tracked(t.alert, t.since, t.last_sent, (by, comment))
        why = f": {comment}" if comment else ""
        note = t.alert.evolve(
            message=f"acknowledged by {by or 'an operator'}{why} (no more repeats) — "
            f"{t.alert.message}"
        )
        self._pending.append(note)
        return note

    def acks(self) -> Dict[Identity, Tuple[str, str]]:
        return {i: t.ack for i, t in self.tracked.items() if t.ack is not None}

    def snapshot(self, wall_offset: float) -> List[Dict[str, Any]]:
        """The tracked alerts as JSON objects; ``wall_offset`` = wall time − monotonic time."""
        return [
            {
                "alert": alert_to_obj(t.alert),
                "since": t.since + wall_offset,
                "last_sent": t.last_sent + wall_offset,
                "ack": None if t.ack is None else list(t.ack),
            }
            for t in self.tracked.values()
        ]

    def restore(
        self, items: List[Dict[str, Any]], wall_offset: float, keep: Callable[[Identity], bool]
    ) -> int:
        """Put saved entries back (those ``keep`` accepts and that are not tracked already)."""
        n = 0
        for item in items:
            alert = alert_from_obj(item["alert"])
            ident = identity(alert)
            if not keep(ident) or ident in self.tracked or not repeats(alert):
                continue
            ack = item.get("ack")
            self.tracked[ident] = Tracked(
                alert,
                float(item["since"]) - wall_offset,
                float(item["last_sent"]) - wall_offset,
                None if ack is None else (str(ack[0]), str(ack[1])),
            )
            n += 1
        return n


def create(cfg: PipelineConfig) -> RepeatStage:
    return RepeatStage(cfg.repeat_interval_secs)
