"""Which series a statistical analyzer looks at: built-in exclusions plus ``[[analyzer.rules]]``.

SPEC §5: statistical analyzers apply to every series unless disabled for it.
A rule has a ``metric`` glob, optional ``labels`` globs and, per analyzer,
``true`` (enable), ``false`` (disable) or nothing (no opinion). Rules are read
in order and the LAST matching rule with an opinion decides, so a broad rule
can be refined by a narrower one after it. The built-in defaults below come
before the user's rules, so a user can re-enable any series the defaults skip.
Rules may also set ``zscore_threshold`` / ``ema_deviation`` for the series they
match (same last-match-wins order).

The keys a rule may hold come from the analyzers themselves: each analyzer's
config class lists its ``RULE_KEYS`` (its on/off toggle and any per-series
override), and :func:`rule_class` derives the ``[[analyzer.rules]]`` entry
from the registry, so a new analyzer adds its keys without editing this file.
"""

from __future__ import annotations

import dataclasses
import fnmatch
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple, Type

from sysops_agent.model import SeriesKey
from sysops_agent.schema import opt

#: Series where a z-score or EMA alert is meaningless noise, with the reason.
#: These are statistical defaults only; the threshold analyzer is unaffected.
STATISTICAL_EXCLUSIONS: Tuple[Tuple[str, str], ...] = (
    # cumulative counters grow forever: every new value is "unusual"
    ("*_total", "counters only grow; their rates are the signal"),
    ("uptime_seconds", "grows by definition"),
    # constants of the host: a change is a reconfiguration, not an anomaly
    ("memory_total_bytes", "constant"),
    ("fd_max", "constant (a sysctl)"),
    # per-process series come and go with top-N membership and pids; per-process
    # CPU is bursty by nature. RSS/FD growth is the leak analyzer's job.
    ("process_*", "per-pid, churns with top-N membership; leaks have their own analyzer"),
    # per-core CPU: on a 64-core host, 64 noisy series saying what
    # cpu_usage_percent already says
    ("cpu_core_usage_percent", "one alert per core would repeat cpu_usage_percent"),
    # filesystem fill levels move in steps (log rotation, package installs):
    # threshold and trend (time to full) are the right tools there
    ("disk_usage_percent", "steps are normal; threshold and trend cover it"),
    ("disk_inode_usage_percent", "steps are normal; threshold and trend cover it"),
    ("disk_free_bytes", "steps are normal; threshold and trend cover it"),
    # per-cgroup series come and go with top-N membership like processes; memory
    # growth is the leak analyzer's, OOM kills the threshold's
    ("cgroup_*", "per-cgroup, churns with top-N membership; leaks have their own analyzer"),
    # states and constants: a change is an event the threshold rules cover
    ("net_link_up", "a 0/1 state; the threshold rule alerts on a lost link"),
    ("net_speed_bits_per_second", "constant until renegotiated"),
    ("conntrack_max", "constant (a sysctl)"),
    ("md_*", "array states: the md_degraded threshold covers them"),
    ("gpu_thermal_slowdown", "a 0/1 state; the threshold rule alerts on it"),
    # the agent's own health metrics are watched by whoever watches the agent
    ("agent_*", "the agent's own health metrics"),
)


#: one ``[[analyzer.rules]]`` key an analyzer contributes: (name, type, ``opt(...)``)
RuleKey = Tuple[str, Any, Any]


def toggle_key(analyzer: str) -> RuleKey:
    """The ``<analyzer> = true/false`` key of a rule (no opinion when unset)."""
    return (analyzer, Optional[bool], opt(None, help=f"switch the {analyzer} analyzer on or off"))


@dataclass(frozen=True)
class RuleBase:
    """Per-metric overrides: ``metric`` and ``labels`` are globs; ``false`` disables an analyzer.

    Unset keys have no opinion; for each key the last matching rule that sets it wins.
    The analyzers' own keys are added by :func:`rule_class`.
    """

    metric: str = opt("*")
    labels: Dict[str, str] = opt(factory=dict)


def rule_class(keys: Sequence[RuleKey]) -> Type[RuleBase]:
    """The ``[[analyzer.rules]]`` entry class: :class:`RuleBase` plus every analyzer's keys."""
    cls = dataclasses.make_dataclass("AnalyzerRule", list(keys), bases=(RuleBase,), frozen=True)
    cls.__module__ = __name__
    cls.__doc__ = RuleBase.__doc__
    return cls


def _opinion(rule: RuleBase, analyzer: str, aliases: Sequence[str] = ()) -> Optional[bool]:
    """The rule's ``<analyzer> = true/false``, else the first of the ``aliases`` it sets."""
    for name in (analyzer, *aliases):
        value = getattr(rule, name, None)
        if isinstance(value, bool):
            return value
    return None


def label_globs_match(key: SeriesKey, patterns: Dict[str, str]) -> bool:
    """Every ``label = glob`` holds; a label the series lacks matches as the empty string."""
    return all(fnmatch.fnmatchcase(key.label(name), pat) for name, pat in patterns.items())


def _matches(rule: RuleBase, key: SeriesKey) -> bool:
    return fnmatch.fnmatchcase(key.metric, rule.metric) and label_globs_match(key, rule.labels)


def matching(rules: Sequence[RuleBase], key: SeriesKey) -> List[RuleBase]:
    """The rules that apply to ``key``, in file order."""
    return [r for r in rules if _matches(r, key)]


def rule_value(rules: Sequence[RuleBase], key: SeriesKey, name: str, default: float) -> float:
    """The last matching rule's value of the override ``name``, else ``default``."""
    value = default
    for r in matching(rules, key):
        v = getattr(r, name, None)
        if v is not None:
            value = float(v)
    return value


class Selector:
    """Decides whether ``analyzer`` looks at a series; ``default`` when no rule has an opinion.

    A ``statistical`` analyzer also skips :data:`STATISTICAL_EXCLUSIONS`
    (before the user's rules, so a rule can switch a series back on).
    """

    def __init__(
        self,
        analyzer: str,
        rules: Sequence[RuleBase],
        default: bool = True,
        *,
        statistical: bool = False,
        aliases: Sequence[str] = (),
    ) -> None:
        self.analyzer = analyzer
        self.default = default
        self.aliases = tuple(aliases)
        self._excluded = (
            tuple(pattern for pattern, _reason in STATISTICAL_EXCLUSIONS) if statistical else ()
        )
        self._rules = [r for r in rules if _opinion(r, analyzer, self.aliases) is not None]

    def __call__(self, key: SeriesKey) -> bool:
        decision = self.default
        if any(fnmatch.fnmatchcase(key.metric, pattern) for pattern in self._excluded):
            decision = False
        for rule in self._rules:
            if _matches(rule, key):
                decision = bool(_opinion(rule, self.analyzer, self.aliases))
        return decision
