"""Which series a statistical analyzer looks at: built-in exclusions plus ``[[analyzer.rules]]``.

SPEC §5: statistical analyzers apply to every series unless disabled for it.
A rule has a ``metric`` glob, optional ``labels`` globs and, per analyzer,
``true`` (enable), ``false`` (disable) or nothing (no opinion). Rules are read
in order and the LAST matching rule with an opinion decides, so a broad rule
can be refined by a narrower one after it. The built-in defaults below come
before the user's rules, so a user can re-enable any series the defaults skip.
Rules may also set ``zscore_threshold`` / ``ema_deviation`` for the series they
match (same last-match-wins order).
"""

from __future__ import annotations

import fnmatch
from typing import Dict, List, Optional, Tuple

from sysops_agent.analyzers.config import AnalyzerRule
from sysops_agent.model import SeriesKey

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
    # the agent's own health metrics are watched by whoever watches the agent
    ("agent_*", "the agent's own health metrics"),
)

STATISTICAL = ("anomaly", "zscore", "ema")


def _opinion(rule: AnalyzerRule, analyzer: str) -> Optional[bool]:
    opinions: Dict[str, Optional[bool]] = {
        # ``zscore = false`` (the old name) also speaks for the analyzer replacing it
        "anomaly": rule.zscore if rule.anomaly is None else rule.anomaly,
        "zscore": rule.zscore,
        "ema": rule.ema,
        "trend": rule.trend,
        "leak": rule.leak,
    }
    return opinions.get(analyzer)


def label_globs_match(key: SeriesKey, patterns: Dict[str, str]) -> bool:
    """Every ``label = glob`` holds; a label the series lacks matches as the empty string."""
    return all(fnmatch.fnmatchcase(key.label(name), pat) for name, pat in patterns.items())


def matching(rules: List[AnalyzerRule], key: SeriesKey) -> List[AnalyzerRule]:
    """The rules that apply to ``key``, in file order."""
    return [
        r
        for r in rules
        if fnmatch.fnmatchcase(key.metric, r.metric) and label_globs_match(key, r.labels)
    ]


def zscore_threshold(rules: List[AnalyzerRule], key: SeriesKey, default: float) -> float:
    """The last matching rule's ``zscore_threshold``, else ``default``."""
    value = default
    for r in matching(rules, key):
        if r.zscore_threshold is not None:
            value = r.zscore_threshold
    return value


def ema_deviation(rules: List[AnalyzerRule], key: SeriesKey, default: float) -> float:
    """The last matching rule's ``ema_deviation``, else ``default``."""
    value = default
    for r in matching(rules, key):
        if r.ema_deviation is not None:
            value = r.ema_deviation
    return value


class Selector:
    """Decides whether ``analyzer`` looks at a series; ``default`` when no rule has an opinion."""

    def __init__(self, analyzer: str, rules: List[AnalyzerRule], default: bool = True) -> None:
        self.analyzer = analyzer
        self.default = default
        builtin: List[AnalyzerRule] = []
        if analyzer in STATISTICAL:
            builtin = [
                AnalyzerRule(metric=pattern, **{analyzer: False})  # type: ignore[arg-type]
                for pattern, _reason in STATISTICAL_EXCLUSIONS
            ]
        self._rules = [r for r in builtin + list(rules) if _opinion(r, analyzer) is not None]

    def __call__(self, key: SeriesKey) -> bool:
        decision = self.default
        for rule in self._rules:
            if fnmatch.fnmatchcase(key.metric, rule.metric) and label_globs_match(key, rule.labels):
                decision = bool(_opinion(rule, self.analyzer))
        return decision
