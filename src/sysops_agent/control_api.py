"""What the control socket answers: ``status`` and the silence requests.

:class:`Operator` is created by the daemon before its alert manager: it owns
the :class:`~sysops_agent.alerting.silence.SilenceBook` (``silences.json`` in
the data directory) and the :class:`~sysops_agent.control.ControlServer`, and
:meth:`Operator.attach` gives every new alert manager's mute stages the clock
and the book. The requests:

- ``{"cmd": "status"}`` → :meth:`Operator.status` (see ``sysops-agent status``)
- ``{"cmd": "silence_add", "matchers": [...], "ends_at": T, "comment": "...", "by": "..."}``
- ``{"cmd": "silence_list"}`` / ``{"cmd": "silence_expire", "id": PREFIX}``
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional

from sysops_agent import __version__
from sysops_agent.alerting.carryover import carry_over
from sysops_agent.alerting.firing import FiringStage
from sysops_agent.alerting.flap import FlapStage
from sysops_agent.alerting.inhibit import InhibitStage
from sysops_agent.alerting.maintenance import MaintenanceStage, next_opening, occurrence
from sysops_agent.alerting.matchers import identity, parse_matchers
from sysops_agent.alerting.mute import MuteStage
from sysops_agent.alerting.repeat import RepeatStage
from sysops_agent.alerting.silence import FILENAME, SilenceBook, SilenceStage
from sysops_agent.control import ControlServer, socket_path
from sysops_agent.selfmetrics import own_rss_bytes
from sysops_agent.units import format_value

if TYPE_CHECKING:
    from sysops_agent.alerting.manager import AlertManager
    from sysops_agent.daemon import Daemon

#: a silence may last at most this long (a year); a longer one is a typo
MAX_SILENCE_SECS = 366 * 86400.0


class Operator:
    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        data_dir = daemon.config.agent.data_dir
        self.book = SilenceBook(os.path.join(data_dir, FILENAME))
        self.server = ControlServer(
            socket_path(data_dir),
            {
                "status": lambda req: self.status(),
                "silence_add": self.silence_add,
                "silence_list": lambda req: self.silence_list(),
                "silence_expire": self.silence_expire,
                "ack": self.ack,
            },
            daemon.clock,
        )
        self.started_mono = daemon.clock.monotonic()
        self._stages_before: List[Any] = []

    def attach(self, manager: AlertManager) -> None:
        """Give the manager's mute stages the daemon's clock and the silences, and the
        state of the previous manager's stages (a reload)."""
        carry_over(self._stages_before, manager.stages)
        self._stages_before = list(manager.stages)
        for stage in manager.stages:
            if isinstance(stage, MuteStage):
                stage.attach(self.daemon.clock)
            if isinstance(stage, SilenceStage):
                stage.book = self.book

    async def start(self) -> None:
        await self.server.start()

    async def close(self) -> None:
        await self.server.close()

    # -- helpers -------------------------------------------------------------------

    def _stages(self) -> List[Any]:
        manager = self.daemon.manager
        return list(manager.stages) if manager is not None else []

    def _firing(self) -> Dict[Any, Any]:
        for stage in self._stages():
            if isinstance(stage, FiringStage):
                return dict(stage.firing)
        return {}

    def _wall(self) -> float:
        return self.daemon.clock.time()

    # -- silences ------------------------------------------------------------------

    def silence_add(self, req: Dict[str, Any]) -> Dict[str, Any]:
        matchers = [str(m) for m in req.get("matchers") or []]
        if not matchers:
            raise ValueError("a silence needs at least one matcher")
        parsed = parse_matchers(matchers)
        now = self._wall()
        ends_at = float(req["ends_at"])
        if ends_at <= now:
            raise ValueError("the silence would end in the past")
        if ends_at - now > MAX_SILENCE_SECS:
            raise ValueError("a silence may last at most 366 days")
        silence = self.book.add(
            matchers, now, ends_at, str(req.get("comment", "")), str(req.get("by", ""))
        )
        matching = [a for _, a in self._firing().values() if all(m.matches(a) for m in parsed)]
        if self.daemon.manager is not None:
            self.daemon.manager.poke()
        return {
            "silence": silence.to_json_obj(),
            "matching_firing": len(matching),
            "saved": self.book.save_error is None,
        }

    def silence_list(self) -> Dict[str, Any]:
        now = self._wall()
        self.book.prune(now)
        return {
            "now": now,
            "silences": [dict(s.to_json_obj(), active=s.active(now)) for s in self.book.silences],
        }

    def silence_expire(self, req: Dict[str, Any]) -> Dict[str, Any]:
        silence = self.book.expire(str(req.get("id", "")), self._wall())
        if self.daemon.manager is not None:
            self.daemon.manager.poke()
        return {"silence": silence.to_json_obj()}

    def ack(self, req: Dict[str, Any]) -> Dict[str, Any]:
        stage = next((s for s in self._stages() if isinstance(s, RepeatStage)), None)
        if stage is None:
            raise ValueError("no alert manager is running")
        note = stage.ack(
            str(req.get("id", "")), str(req.get("by", "")), str(req.get("comment", ""))
        )
        if self.daemon.manager is not None:
            self.daemon.manager.poke()
        self.daemon.save_alert_state()  # the ack survives a restart from now on
        return {"alert": note.to_json_obj()}

    # -- saved with the firing-alert state (alerts.state) ----------------------------

    def pipeline_state(self) -> Dict[str, Any]:
        """What ``status``, the repeats and the mutes need after a restart: the firing
        table, the repeat stage's alerts with their acks, and what each mute stage holds."""
        offset = self.daemon.clock.time() - self.daemon.clock.monotonic()
        out: Dict[str, Any] = {}
        for stage in self._stages():
            if isinstance(stage, FiringStage):
                out["firing"] = stage.snapshot()
            elif isinstance(stage, RepeatStage):
                out["repeat"] = stage.snapshot(offset)
            elif isinstance(stage, MuteStage):
                out.setdefault("mute", {})[type(stage).__name__] = stage.snapshot()
        return out

    def restore_pipeline(self, state: Dict[str, Any], keep: Callable[[Any], bool]) -> int:
        """Put a saved :meth:`pipeline_state` back into the running manager's stages,
        for the alerts ``keep`` accepts (those the analyzers restored as firing)."""
        offset = self.daemon.clock.time() - self.daemon.clock.monotonic()
        n = 0
        for stage in self._stages():
            if isinstance(stage, FiringStage):
                n += stage.restore(list(state.get("firing") or []), keep)
            elif isinstance(stage, RepeatStage):
                stage.restore(list(state.get("repeat") or []), offset, keep)
            elif isinstance(stage, MuteStage):
                saved = (state.get("mute") or {}).get(type(stage).__name__) or {}
                stage.restore(saved, self._wall(), keep)
        if self.daemon.manager is not None:
            self.daemon.manager.poke()  # the repeats' next deadline
        return n

    # -- status --------------------------------------------------------------------

    def status(self) -> Dict[str, Any]:
        d = self.daemon
        now = self._wall()
        uptime = d.clock.monotonic() - self.started_mono
        times = os.times()
        cpu = times.user + times.system
        return {
            "version": __version__,
            "hostname": d.hostname,
            "pid": os.getpid(),
            "now": now,
            "uptime_secs": uptime,
            "rss_bytes": own_rss_bytes(),
            "cpu_secs": cpu,
            "cpu_percent": 100.0 * cpu / uptime if uptime > 0 else 0.0,
            "control_refused": self.server.refused,
            "alerts": self._alerts_status(now),
            "muted_total": self._muted_totals(),
            "channels": self._channels_status(),
            "collectors": self._collectors_status(),
            "log_sources": self._log_status(),
            "silences": [s.to_json_obj() for s in self.book.active(now)],
            "maintenance": self._maintenance_status(now),
        }

    def _muted_totals(self) -> Dict[str, int]:
        out: Dict[str, int] = {}
        for stage in self._stages():
            if isinstance(stage, MuteStage):
                out[_mute_kind(stage)] = stage.muted_total
        return out

    def _alerts_status(self, now: float) -> List[Dict[str, Any]]:
        mute_stages = [s for s in self._stages() if isinstance(s, MuteStage)]

        def muted_by(alert: Any) -> Optional[str]:
            """Held by a stage, or covered by a silence/window now (if it was sent before)."""
            for stage in mute_stages:
                if alert in stage.held or stage.is_muted(alert, now):
                    return _mute_kind(stage)
            return None

        acks: Dict[Any, Any] = {}
        flapping: set = set()  # type: ignore[type-arg]
        for stage in self._stages():
            if isinstance(stage, RepeatStage):
                acks = stage.acks()
            if isinstance(stage, FlapStage):
                flapping = {identity(a) for a in stage.flapping()}
        out = []
        for ident, (since, alert) in sorted(
            self._firing().items(), key=lambda kv: (-kv[1][1].severity, kv[1][0])
        ):
            out.append(
                {
                    "id": alert.id,
                    "severity": alert.severity.label,
                    "since": since,
                    "metric": alert.metric,
                    "labels": dict(alert.labels),
                    "analyzer": alert.analyzer,
                    "value": alert.value,
                    "value_text": format_value(alert.metric, alert.value),
                    "message": alert.message,
                    "muted": muted_by(alert),
                    "acked_by": acks[ident][0] if ident in acks else None,
                    "flapping": ident in flapping,
                }
            )
        return out

    def _channels_status(self) -> List[Dict[str, Any]]:
        manager = self.daemon.manager
        return [] if manager is None else [dict(c) for c in manager.lanes_status()]

    def _collectors_status(self) -> List[Dict[str, Any]]:
        sched = self.daemon.scheduler
        if sched is None:
            return []
        return [
            {
                "name": c.name,
                "interval_secs": c.interval,
                "last_run": sched.last_run.get(c.name),
                "duration_secs": sched.durations.get(c.name),
                "failures": sched.failures.get(c.name, 0),
                "last_error": sched.last_error.get(c.name),
            }
            for c in sched.collectors
        ]

    def _log_status(self) -> List[Dict[str, Any]]:
        watcher = self.daemon.log_watcher
        if watcher is None:
            return []
        out: List[Dict[str, Any]] = []
        for source in watcher.sources:
            followers = getattr(source, "followers", None)
            if followers is not None:
                for f in followers:
                    cur = getattr(f, "cur", None)
                    pos = None if cur is None else cur.committed
                    err = getattr(f, "open_error", None)
                    out.append(
                        {"source": source.name, "path": f.path, "position": pos, "error": err}
                    )
                continue
            cursor = getattr(source, "cursor", None)
            pos_text: Optional[str] = None if cursor is None else str(cursor)
            out.append(
                {
                    "source": source.name,
                    "path": getattr(source, "path", ""),
                    "position": pos_text,
                    "error": None,
                }
            )
        return out

    def _maintenance_status(self, now: float) -> List[Dict[str, Any]]:
        out = []
        for stage in self._stages():
            if not isinstance(stage, MaintenanceStage):
                continue
            for w in stage.windows:
                open_now = occurrence(w, now)
                nxt = next_opening(w, now)
                out.append(
                    {
                        "name": w.name,
                        "matchers": list(w.matchers),
                        "open": open_now is not None,
                        "ends_at": None if open_now is None else open_now[1],
                        "next_start": None if nxt is None else nxt[0],
                        "next_end": None if nxt is None else nxt[1],
                    }
                )
        return out


def _mute_kind(stage: MuteStage) -> str:
    if isinstance(stage, SilenceStage):
        return "silenced"
    if isinstance(stage, MaintenanceStage):
        return "maintenance"
    if isinstance(stage, InhibitStage):
        return "inhibited"
    return type(stage).__name__


def degraded(status: Dict[str, Any]) -> List[str]:
    """What is wrong, from a status answer: failing channels, erroring collectors (pure)."""
    problems = []
    for ch in status.get("channels", []):
        if ch.get("disabled"):
            problems.append(f"channel {ch['name']} is disabled: {ch['disabled']}")
            continue
        err = ch.get("last_error")
        if err and (ch.get("last_ok") is None or err[0] > ch["last_ok"]):
            problems.append(f"channel {ch['name']} is failing: {err[1]}")
    for c in status.get("collectors", []):
        if c.get("last_error"):
            problems.append(f"collector {c['name']}: {c['last_error']}")
    return problems
