"""The analyzer registry: one line per analyzer (SPEC §12, STYLE point 1).

Adding an analyzer is one module plus one line in :data:`ANALYZERS`. The
module holds its frozen config class (``[analyzer.<name>]``, with the keys it
adds to ``[[analyzer.rules]]`` in ``RULE_KEYS``) and ``create(cfg, ctx)``.
The ``[analyzer]`` table and its rule entries are derived from this tuple
(:data:`AnalyzerConfig`, :data:`AnalyzerRule`); :func:`build_analyzers`
creates only the enabled analyzers, so a disabled one costs nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Protocol, Sequence, Tuple

from sysops_agent.analyzers import anomaly, ema, leak, threshold, trend, zscore
from sysops_agent.analyzers.base import Analyzer, AnalyzerContext, AnalyzerFactory, Stateful
from sysops_agent.analyzers.common import transition_alert
from sysops_agent.analyzers.describe import subject
from sysops_agent.analyzers.rules import RuleKey, rule_class
from sysops_agent.model import Alert
from sysops_agent.plugins import Plugin, fields_of, is_enabled, sections_class
from sysops_agent.schema import opt

#: name -> config class and factory; the order is the order analyzers run in
ANALYZERS: Tuple[Plugin[AnalyzerFactory], ...] = (
    Plugin("threshold", threshold.ThresholdAnalyzerConfig, threshold.create),
    Plugin("anomaly", anomaly.AnomalyConfig, anomaly.create),
    Plugin("zscore", zscore.ZScoreConfig, zscore.create),
    Plugin("ema", ema.EmaConfig, ema.create),
    Plugin("trend", trend.TrendConfig, trend.create),
    Plugin("leak", leak.LeakConfig, leak.create),
)


def _rule_keys() -> List[RuleKey]:
    keys: List[RuleKey] = []
    for plugin in ANALYZERS:
        keys.extend(getattr(plugin.config_cls, "RULE_KEYS", ()))
    return keys


#: one ``[[analyzer.rules]]`` entry: ``metric``, ``labels`` and every analyzer's keys
AnalyzerRule: Any = rule_class(_rule_keys())


@dataclass(frozen=True)
class _AnalyzerTable:
    """The ``[analyzer]`` keys that belong to no single analyzer."""

    interval_secs: float = opt(10.0, min=1, max=600, help="how often the analyzer loop runs")
    rules: List[AnalyzerRule] = opt(factory=list)


#: ``[analyzer]``: the shared keys, then one section per registered analyzer
AnalyzerConfig: Any = sections_class(
    "AnalyzerConfig", ANALYZERS, extra=fields_of(_AnalyzerTable), module=__name__
)


class AnalysisSettings(Protocol):
    """What the analyzers are built from: the ``[analyzer]`` table and ``[thresholds]``."""

    @property
    def analyzer(self) -> Any: ...

    @property
    def thresholds(self) -> Dict[str, threshold.ThresholdRule]: ...


def recent_secs(interval_secs: float) -> float:
    """How old a stored sample may be at an analyzer's first look and still count as new.

    Two analyzer intervals (at least a minute): older samples were stored before
    the analyzer existed (a reload rebuilt it) and are history, not news.
    """
    return max(60.0, 2.0 * interval_secs)


def context(settings: AnalysisSettings, hostname: str) -> AnalyzerContext:
    table = settings.analyzer
    return AnalyzerContext(
        hostname=hostname,
        rules=tuple(table.rules),
        thresholds=dict(settings.thresholds),
        recent_secs=recent_secs(table.interval_secs),
    )


def build_analyzers(settings: AnalysisSettings, hostname: str) -> List[Analyzer]:
    """The enabled analyzers, in registry order."""
    ctx = context(settings, hostname)
    table = settings.analyzer
    out: List[Analyzer] = []
    for plugin in ANALYZERS:
        cfg = getattr(table, plugin.name)
        if is_enabled(cfg):
            out.append(plugin.create(cfg, ctx))
    return out


def build_analyzer(name: str, settings: AnalysisSettings, hostname: str) -> Analyzer:
    """The analyzer ``name``, enabled or not (tests and tools build one at a time)."""
    for plugin in ANALYZERS:
        if plugin.name == name:
            return plugin.create(getattr(settings.analyzer, name), context(settings, hostname))
    raise ValueError(f"unknown analyzer {name!r} (known: {', '.join(p.name for p in ANALYZERS)})")


def _signature(settings: AnalysisSettings, name: str) -> Tuple[Any, ...]:
    """Everything analyzer ``name`` is built from: equal signatures build equal analyzers."""
    table = settings.analyzer
    deps = dict(settings.thresholds) if name == threshold.NAME else tuple(table.rules)
    return (getattr(table, name), recent_secs(table.interval_secs), deps)


def rebuild_analyzers(
    old: AnalysisSettings,
    new: AnalysisSettings,
    hostname: str,
    current: Sequence[Analyzer],
    now: float,
) -> Tuple[List[Analyzer], List[Alert]]:
    """The analyzers for ``new`` after a reload, and the notifications the change causes.

    An analyzer whose configuration did not change is kept as it is (its
    lifecycles and statistics go on). A changed one is built anew: the
    threshold analyzer takes over the lifecycles of the series its new rules
    still cover (:meth:`ThresholdAnalyzer.adopt`); every other firing alert of
    a changed or removed analyzer is resolved with "rule changed by reload".
    """
    by_name = {a.name: a for a in current}
    ctx = context(new, hostname)
    out: List[Analyzer] = []
    alerts: List[Alert] = []
    for plugin in ANALYZERS:
        previous = by_name.pop(plugin.name, None)
        cfg = getattr(new.analyzer, plugin.name)
        if not is_enabled(cfg):
            if previous is not None:
                alerts.extend(_resolve_all(previous, hostname, now))
            continue
        if previous is not None and _signature(old, plugin.name) == _signature(new, plugin.name):
            out.append(previous)
            continue
        fresh = plugin.create(cfg, ctx)
        if isinstance(fresh, threshold.ThresholdAnalyzer) and isinstance(
            previous, threshold.ThresholdAnalyzer
        ):
            alerts.extend(fresh.adopt(previous, now))
        elif previous is not None:
            alerts.extend(_resolve_all(previous, hostname, now))
        out.append(fresh)
    for gone in by_name.values():
        alerts.extend(_resolve_all(gone, hostname, now))
    return out, alerts


def _resolve_all(analyzer: Analyzer, hostname: str, now: float) -> List[Alert]:
    """Resolved notices for every firing alert of ``analyzer`` (replaced by a reload)."""
    if not isinstance(analyzer, Stateful):
        return []
    out: List[Alert] = []
    for firing in analyzer.lifecycle.snapshot():
        t = analyzer.lifecycle.drop(firing.key, now)
        if t is not None:
            message = f"{subject(firing.key)}: {threshold.RELOAD_NOTE}; alert closed"
            out.append(transition_alert(analyzer.name, hostname, firing.key, t, message, 0.0))
    return out
