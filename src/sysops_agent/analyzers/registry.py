"""The analyzer registry: one line per analyzer (SPEC §12, STYLE point 1).

Adding an analyzer is one module plus one line in :data:`ANALYZERS`. The
factory reads its section of the configuration; :func:`build_analyzers`
creates only the enabled ones, so a disabled analyzer costs nothing.
"""

from __future__ import annotations

from typing import Callable, Dict, List

from sysops_agent.analyzers import anomaly, ema, leak, trend, zscore
from sysops_agent.analyzers.base import Analyzer, AnalyzerFactory
from sysops_agent.analyzers.feed import recent_secs
from sysops_agent.analyzers.threshold import ThresholdAnalyzer
from sysops_agent.config import Config


def _threshold(config: Config, hostname: str) -> Analyzer:
    return ThresholdAnalyzer(config.thresholds, hostname, recent_secs=recent_secs(config))


#: name -> factory; the order is the order analyzers run in
ANALYZERS: Dict[str, AnalyzerFactory] = {
    "threshold": _threshold,
    "anomaly": anomaly.build,
    "zscore": zscore.build,
    "ema": ema.build,
    "trend": trend.build,
    "leak": leak.build,
}

#: name -> is it enabled in this configuration
_ENABLED: Dict[str, Callable[[Config], bool]] = {
    "threshold": lambda c: c.analyzer.threshold.enabled,
    "anomaly": lambda c: c.analyzer.anomaly.enabled,
    "zscore": lambda c: c.analyzer.zscore.enabled,
    "ema": lambda c: c.analyzer.ema.enabled,
    "trend": lambda c: c.analyzer.trend.enabled,
    "leak": lambda c: c.analyzer.leak.enabled,
}


def is_enabled(config: Config, name: str) -> bool:
    check = _ENABLED.get(name)
    return True if check is None else check(config)


def build_analyzers(config: Config, hostname: str) -> List[Analyzer]:
    """The enabled analyzers, in registry order."""
    return [
        factory(config, hostname) for name, factory in ANALYZERS.items() if is_enabled(config, name)
    ]
