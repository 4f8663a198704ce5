"""Inhibition: ``[[alerting.inhibit]]`` — a firing alert mutes related ones (Alertmanager's rules).

A rule has ``source_matchers``, ``target_matchers`` and ``equal``: an alert
matching the target matchers is muted while some *other* firing alert matches
the source matchers and has the same value for every name in ``equal`` (a name
missing on both counts as equal, as in Alertmanager). Names are labels plus
``metric``, ``severity`` and ``analyzer``. The default config mutes the warn
of a series while its critical or emergency fires (from another analyzer: one
analyzer's series has one severity at a time) and a process's alerts while the
log watcher reports that pid OOM-killed.

:func:`inhibited` is the pure decision; the stage tracks the firing source
alerts and, being a :class:`~sysops_agent.alerting.mute.MuteStage`, sends a
muted alert that still fires once its source resolved.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from sysops_agent.alerting.config import InhibitRule, PipelineConfig
from sysops_agent.alerting.matchers import (
    Identity,
    Matcher,
    alert_fields,
    identity,
    matches_all,
    parse_matchers,
)
from sysops_agent.alerting.mute import MuteStage
from sysops_agent.alerting.outbox import alert_from_obj, alert_to_obj
from sysops_agent.model import Alert, AlertState

#: (source matchers, target matchers, equal) of one rule, parsed
Compiled = Tuple[List[Matcher], List[Matcher], List[str]]


def compile_rules(rules: Sequence[InhibitRule]) -> List[Compiled]:
    return [
        (parse_matchers(r.source_matchers), parse_matchers(r.target_matchers), list(r.equal))
        for r in rules
    ]


def inhibited(
    target: Alert, firing: Mapping[Identity, Alert], rules: Sequence[Compiled]
) -> Optional[Alert]:
    """The firing alert that inhibits ``target`` under ``rules``, or None (pure)."""
    own = identity(target)
    tfields = alert_fields(target)
    for source_m, target_m, equal in rules:
        if not matches_all(target_m, target):
            continue
        for ident, source in firing.items():
            if ident == own or not matches_all(source_m, source):
                continue
            sfields = alert_fields(source)
            if all(sfields.get(n, "") == tfields.get(n, "") for n in equal):
                return source
    return None


class InhibitStage(MuteStage):
    """Tracks firing alerts that match a rule's source; holds the targets they inhibit."""

    note = "the alert that inhibited it resolved"

    def __init__(self, rules: Sequence[InhibitRule]) -> None:
        super().__init__()
        self.rules = compile_rules(rules)
        self.sources: Dict[Identity, Alert] = {}

    def observe(self, alert: Alert, wall: float) -> None:
        ident = identity(alert)
        if alert.state is AlertState.RESOLVED:
            self.sources.pop(ident, None)
        elif any(matches_all(src, alert) for src, _, _ in self.rules):
            self.sources[ident] = alert
        else:
            self.sources.pop(ident, None)  # de-escalated below every source rule

    def is_muted(self, alert: Alert, wall: float) -> bool:
        return inhibited(alert, self.sources, self.rules) is not None

    def snapshot(self) -> Dict[str, Any]:
        out = super().snapshot()
        out["sources"] = [alert_to_obj(a) for a in self.sources.values()]
        return out

    def restore(self, saved: Dict[str, Any], wall: float, keep: Callable[[Identity], bool]) -> int:
        """The sources too: a target held by a source that still fires stays held."""
        for obj in saved.get("sources") or []:
            alert = alert_from_obj(obj)
            if keep(identity(alert)):
                self.sources.setdefault(identity(alert), alert)
        return super().restore(saved, wall, keep)


def create(cfg: PipelineConfig) -> Optional[InhibitStage]:
    return InhibitStage(cfg.inhibit) if cfg.inhibit else None
