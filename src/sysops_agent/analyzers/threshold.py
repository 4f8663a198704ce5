"""Threshold analyzer: absolute danger levels per metric (SPEC §5).

``[thresholds]`` maps a metric name or a glob (``disk_*_percent``) to a
:class:`ThresholdRule` with warn / critical / emergency levels, an optional
``for_secs`` the level must hold before firing, a ``hysteresis`` fraction the
value must fall below a level before leaving it, and ``labels`` globs that
restrict the rule to some series (``{mountpoint = "/data*"}``). An exact
metric name beats a glob; among globs the first in the file wins; a rule whose
labels do not match a series lets the next candidate apply.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Dict, List, Optional, Set, Tuple

from sysops_agent.analyzers.base import AnalyzerContext
from sysops_agent.analyzers.common import transition_alert
from sysops_agent.analyzers.describe import gone_phrase, subject, value_phrase
from sysops_agent.analyzers.feed import Feed
from sysops_agent.analyzers.lifecycle import (
    Lifecycle,
    Transition,
    level_severity,
    make_levels,
    resolve_level,
)
from sysops_agent.analyzers.rules import label_globs_match
from sysops_agent.model import Alert, SeriesKey, Severity
from sysops_agent.schema import opt
from sysops_agent.storage.store import Store
from sysops_agent.units import format_level, format_value

NAME = "threshold"
#: said by a resolved notice that a reload (not the value) ended
RELOAD_NOTE = "rule changed by reload"


@dataclass(frozen=True)
class ThresholdRule:
    """Levels for one metric (or a glob of metrics). A value above a level fires at that severity."""

    warn: Optional[float] = opt(None)
    critical: Optional[float] = opt(None)
    emergency: Optional[float] = opt(None)
    for_secs: float = opt(0.0, min=0, help="the level must hold this long before firing")
    hysteresis: float = opt(
        0.03,
        min=0,
        max=0.5,
        help="fraction below a level the value must fall before the alert resolves",
    )
    labels: Dict[str, str] = opt(factory=dict, help="only series whose labels match these globs")
    below: bool = opt(
        False,
        help="fire when the value is at or below a level (levels then descend: warn >= critical)",
    )
    after_healthy: bool = opt(
        False,
        help="fire only for a series seen healthy since the agent started "
        "(a link that was never up is not a link that went down)",
    )


def default_thresholds() -> Dict[str, ThresholdRule]:
    """SPEC §5 defaults: CPU 80/95, memory 80/90, disk 80/90, FD 80/95, emergency 99.

    The others are levels that mean the same on every host (README, "Metrics").
    """
    return {
        "cpu_usage_percent": ThresholdRule(warn=80, critical=95, emergency=99, for_secs=60),
        "memory_usage_percent": ThresholdRule(warn=80, critical=90, emergency=99),
        "disk_usage_percent": ThresholdRule(warn=80, critical=90, emergency=99),
        "disk_inode_usage_percent": ThresholdRule(warn=80, critical=90, emergency=99),
        "fd_usage_percent": ThresholdRule(warn=80, critical=95, emergency=99),
        # systemd-oomd's DefaultMemoryPressureLimit=60% over DefaultMemoryPressureDurationSec=30s
        "pressure_memory_full_percent": ThresholdRule(critical=60, for_secs=30),
        # the same limit per cgroup, where systemd-oomd applies it (ManagedOOMMemoryPressure=kill)
        "cgroup_pressure_memory_full_percent": ThresholdRule(critical=60, for_secs=30),
        # a full table drops new connections
        "conntrack_usage_percent": ThresholdRule(warn=80, critical=90, emergency=95),
        # a link that was up and went down (one never up, e.g. an unplugged spare port, is quiet)
        "net_link_up": ThresholdRule(critical=0, below=True, after_healthy=True),
        # the kernel killed a process of this service/container for exceeding its memory limit
        "cgroup_memory_oom_kills": ThresholdRule(critical=1),
        # the device's own limits (the metrics are the reading as a share of them)
        "hardware_temperature_max_percent": ThresholdRule(warn=100),
        "hardware_temperature_crit_percent": ThresholdRule(critical=100),
        "md_degraded": ThresholdRule(critical=1),
        "edac_uncorrectable_errors": ThresholdRule(critical=1),
        # any correctable error (one in a 60 s interval is 0.017/s): a DIMM starting to fail
        "edac_correctable_errors_per_second": ThresholdRule(warn=0.0001),
        # nvidia-smi's hw_thermal_slowdown: the GPU reached its own temperature limit
        "gpu_thermal_slowdown": ThresholdRule(critical=1),
    }


@dataclass(frozen=True)
class ThresholdAnalyzerConfig:
    enabled: bool = opt(True)


_GLOB_CHARS = frozenset("*?[")


def is_glob(pattern: str) -> bool:
    return any(c in _GLOB_CHARS for c in pattern)


class _Compiled:
    """A rule's levels, ascending; a ``below`` rule is judged on the negated value and levels."""

    __slots__ = ("for_secs", "hysteresis", "levels", "rule", "sign")

    def __init__(self, rule: ThresholdRule) -> None:
        self.rule = rule
        self.sign = -1.0 if rule.below else 1.0
        self.levels = make_levels(
            [
                (None if lv is None else lv * self.sign, sev)
                for lv, sev in (
                    (rule.warn, Severity.WARN),
                    (rule.critical, Severity.CRITICAL),
                    (rule.emergency, Severity.EMERGENCY),
                )
            ]
        )
        self.for_secs = rule.for_secs
        self.hysteresis = rule.hysteresis


class ThresholdAnalyzer:
    """Fires when a series crosses a configured level; resolves below it (with hysteresis)."""

    name = NAME

    def __init__(
        self, thresholds: Dict[str, ThresholdRule], hostname: str, recent_secs: float = 60.0
    ) -> None:
        self.hostname = hostname
        self._exact: Dict[str, _Compiled] = {}
        self._globs: List[Tuple[str, _Compiled]] = []
        for pattern, rule in thresholds.items():
            compiled = _Compiled(rule)
            if not compiled.levels:
                continue  # a rule with no level set alerts on nothing
            if is_glob(pattern):
                self._globs.append((pattern, compiled))
            else:
                self._exact[pattern] = compiled
        self._rules: Dict[SeriesKey, _Compiled] = {}
        #: series of ``after_healthy`` rules that have been healthy at least once
        self._armed: Set[SeriesKey] = set()
        self._feed = Feed(self._select, backlog=64, recent_secs=recent_secs)
        self._lifecycle = Lifecycle()
        #: series whose rule a reload changed: their next resolved notice says so
        self._reloaded: Set[SeriesKey] = set()

    def adopt(self, old: ThresholdAnalyzer, now: float) -> List[Alert]:
        """Take over the firing alerts of ``old`` (the analyzer a reload replaces).

        A series that still has a rule keeps its lifecycle: its next sample,
        judged by the new rule, decides (nothing if it still fires at the same
        severity; a de-escalation, an escalation or a resolved notice saying
        "rule changed by reload" otherwise). A series that no rule covers any
        more is resolved now.
        """
        alerts: List[Alert] = []
        for firing in old.lifecycle.snapshot():
            key = firing.key
            rule = self._match(key)
            if rule is None:
                t = old.lifecycle.drop(key, now)
                old_rule = old._match(key)
                if t is not None and old_rule is not None:
                    alert = self._alert(key, old_rule, t)
                    alerts.append(alert.evolve(message=f"{alert.message}; {RELOAD_NOTE}"))
                continue
            self._lifecycle.restore(firing)
            self._rules[key] = rule
            previous = old._match(key)
            if previous is None or previous.rule != rule.rule:
                self._reloaded.add(key)
        return alerts

    def rule_for(self, key: SeriesKey) -> Optional[ThresholdRule]:
        compiled = self._match(key)
        return None if compiled is None else compiled.rule

    def _match(self, key: SeriesKey) -> Optional[_Compiled]:
        exact = self._exact.get(key.metric)
        if exact is not None and label_globs_match(key, exact.rule.labels):
            return exact
        for pattern, compiled in self._globs:
            if fnmatch.fnmatchcase(key.metric, pattern) and label_globs_match(
                key, compiled.rule.labels
            ):
                return compiled
        return None

    def _select(self, key: SeriesKey) -> bool:
        compiled = self._match(key)
        if compiled is None:
            return False
        self._rules[key] = compiled
        return True

    @property
    def lifecycle(self) -> Lifecycle:
        """The firing/resolved state of this analyzer's series (handed over on reload)."""
        return self._lifecycle

    def analyze(self, store: Store, now: float) -> List[Alert]:
        alerts: List[Alert] = []
        lifecycle = self._lifecycle
        batches, gone = self._feed.pull(store, now)
        for key in gone:
            gone_rule = self._rules.pop(key, None)
            self._armed.discard(key)
            t = lifecycle.drop(key, now)
            if t is not None and gone_rule is not None:
                alerts.append(self._gone_alert(key, gone_rule, t))
        for key, points, _fresh, history in batches:
            if history:  # stored before this analyzer existed: the next sample decides
                continue
            rule = self._rules[key]
            levels, hysteresis, for_secs, sign = (
                rule.levels,
                rule.hysteresis,
                rule.for_secs,
                rule.sign,
            )
            wait_healthy = rule.rule.after_healthy and key not in self._armed
            reloaded = key in self._reloaded  # the first samples judged by a changed rule
            self._reloaded.discard(key)
            for ts, value in points:
                current = lifecycle.active(key)
                severity = level_severity(value * sign, levels, current, hysteresis)
                if wait_healthy:
                    if severity is not None:
                        continue  # never healthy yet: nothing has been lost
                    self._armed.add(key)
                    wait_healthy = False
                if severity is None and current is None and lifecycle.started(key) is None:
                    continue  # healthy and nothing pending: the common case, no work
                t = lifecycle.step(key, severity, ts, value, for_secs)
                if t is not None:
                    alert = self._alert(key, rule, t)
                    if reloaded and t.resolved:
                        alert = alert.evolve(message=f"{alert.message}; {RELOAD_NOTE}")
                    alerts.append(alert)
        return alerts

    def _level(self, rule: _Compiled, severity: Severity) -> float:
        """The level of ``severity`` as the user wrote it."""
        for level, sev in rule.levels:
            if sev == severity:
                return level * rule.sign
        return rule.levels[0][0] * rule.sign  # pragma: no cover - severities come from the levels

    def _alert(self, key: SeriesKey, rule: _Compiled, t: Transition) -> Alert:
        """Long on purpose: the wording table of threshold messages (levels, below-rules,
        disks, links, OOM kills, md, temperatures, GPUs), one case each.
        """
        metric, value = key.metric, t.value
        if metric == "cgroup_memory_oom_kills":
            name = key.label("name", key.label("cgroup", "?"))
            if t.resolved:
                message, threshold = f"no new OOM kill in {name}", 1.0
            else:
                n = int(value)
                threshold = 1.0
                message = (
                    f"OOM kill in {name}: {n} process{'' if n == 1 else 'es'} killed "
                    f"for exceeding the cgroup's memory limit"
                )
        elif metric == "md_degraded" and not t.resolved:
            threshold = 1.0
            message = f"RAID array {key.label('device', '?')} is degraded"
        elif metric in ("hardware_temperature_max_percent", "hardware_temperature_crit_percent"):
            limit = "maximum" if metric == "hardware_temperature_max_percent" else "critical"
            where = f"{key.label('chip', '?')} {key.label('sensor', '?')}"
            threshold = self._level(rule, t.severity)
            if t.resolved:
                message = f"temperature {where} back below its {limit} limit ({value:.0f}% of it)"
            else:
                message = f"temperature {where} at {value:.0f}% of its {limit} limit"
        elif metric == "gpu_thermal_slowdown":
            gpu = f"GPU {key.label('gpu', '?')} ({key.label('name', '?')})"
            threshold = 1.0
            if t.resolved:
                message = f"{gpu} no longer slowed down by heat"
            else:
                message = (
                    f"{gpu} reached its temperature limit: clocks slowed down (thermal slowdown)"
                )
        elif metric == "net_link_up":
            name = key.label("interface", "?")
            if t.resolved:
                message, threshold = f"link {name} is up again", 1.0
            else:
                message, threshold = f"link {name} is down (it was up)", 0.0
        elif t.resolved:
            below = resolve_level(rule.levels[0][0], rule.hysteresis) * rule.sign
            message = (
                f"{subject(key)} back to {value_phrase(key, value)} "
                f"({'above' if rule.rule.below else 'below'} {format_level(metric, round(below, 2))})"
            )
            threshold = below
        elif rule.rule.below:
            threshold = self._level(rule, t.severity)
            message = (
                f"{subject(key)} {format_value(metric, value)} is at or below the "
                f"{t.severity.label} level {format_level(metric, threshold)}"
            )
        else:
            level = self._level(rule, t.severity)
            threshold = level
            if metric in ("disk_usage_percent", "disk_inode_usage_percent"):
                message = (
                    f"{subject(key)} {value_phrase(key, value)} "
                    f"({t.severity.label} level {format_level(metric, level)})"
                )
            else:
                message = (
                    f"{subject(key)} {format_value(metric, value)} exceeds the "
                    f"{t.severity.label} level {format_level(metric, level)}"
                )
            if t.previous is not None and t.previous > t.severity:
                if value < level:  # kept at this level by the hysteresis: it exceeds nothing
                    clears = resolve_level(level, rule.hysteresis)
                    message = (
                        f"{subject(key)} {format_value(metric, value)}, down from "
                        f"{t.previous.label}: still {t.severity.label} until below "
                        f"{format_level(metric, round(clears, 2))} "
                        f"({t.severity.label} level {format_level(metric, level)})"
                    )
                else:
                    message += f", down from {t.previous.label}"
        return transition_alert(NAME, self.hostname, key, t, message, threshold)

    def _gone_alert(self, key: SeriesKey, rule: _Compiled, t: Transition) -> Alert:
        message = f"{gone_phrase(key)}: alert closed (no longer reported)"
        return transition_alert(NAME, self.hostname, key, t, message, self._level(rule, t.severity))


def create(cfg: ThresholdAnalyzerConfig, ctx: AnalyzerContext) -> ThresholdAnalyzer:
    return ThresholdAnalyzer(ctx.thresholds, ctx.hostname, recent_secs=ctx.recent_secs)
