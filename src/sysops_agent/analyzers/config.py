"""``[thresholds]`` and ``[analyzer]``: what counts as trouble (SPEC §5)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional

from sysops_agent.analyzers.anomaly import AnomalyConfig
from sysops_agent.schema import opt


@dataclass
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


def default_thresholds() -> Dict[str, ThresholdRule]:
    """SPEC §5 defaults: CPU 80/95, memory 80/90, disk 80/90, FD 80/95, emergency 99."""
    return {
        "cpu_usage_percent": ThresholdRule(warn=80, critical=95, emergency=99, for_secs=60),
        "memory_usage_percent": ThresholdRule(warn=80, critical=90, emergency=99),
        "disk_usage_percent": ThresholdRule(warn=80, critical=90, emergency=99),
        "disk_inode_usage_percent": ThresholdRule(warn=80, critical=90, emergency=99),
        "fd_usage_percent": ThresholdRule(warn=80, critical=95, emergency=99),
    }


@dataclass
class ThresholdAnalyzerConfig:
    enabled: bool = opt(True)


@dataclass
class ZScoreConfig:
    """Deprecated (issue 14): the ``anomaly`` analyzer replaces it; off unless enabled."""

    enabled: bool = opt(False)
    window: int = opt(360, min=10, max=100_000, help="samples in the rolling window")
    min_samples: int = opt(30, min=2, help="no alert before the window holds this many")
    threshold: float = opt(3.0, min=0.5, help="alert when |z| exceeds this")
    hysteresis: float = opt(
        0.33, min=0, max=0.9, help="resolve once |z| < threshold * (1 - hysteresis)"
    )
    sustain_secs: float = opt(
        30.0, min=0, help="the deviation must last this long (one sample if samples are sparser)"
    )
    cooldown_secs: float = opt(
        3600.0, min=0, help="after an alert resolves, the series may not fire again for this long"
    )
    extreme_window_secs: float = opt(
        7 * 86400.0,
        min=0,
        help="also require the highest/lowest value of this period (0 = off)",
    )


@dataclass
class EmaConfig:
    """Deprecated (issue 14): the ``anomaly`` analyzer replaces it; off unless enabled."""

    enabled: bool = opt(False)
    alpha: float = opt(0.2, min=0.01, max=1.0, help="weight of the newest sample")
    deviation: float = opt(0.2, min=0.01, help="alert when |x-ema|/|ema| exceeds this")
    noise_factor: float = opt(
        6.0, min=0, help="... and |x-ema| exceeds this many times the usual |x-ema|"
    )
    noise_rate: float = opt(
        0.25, min=0.01, max=1.0, help="the usual |x-ema| adapts at alpha * noise_rate"
    )
    min_samples: int = opt(30, min=2, help="no alert before this many samples")
    hysteresis: float = opt(0.3, min=0, max=0.9, help="resolve below deviation * (1 - this)")
    sustain_secs: float = opt(
        30.0, min=0, help="the change must last this long (one sample if samples are sparser)"
    )
    cooldown_secs: float = opt(
        3600.0, min=0, help="after an alert resolves, the series may not fire again for this long"
    )
    extreme_window_secs: float = opt(
        3 * 86400.0,
        min=0,
        help="also require the highest/lowest value of this period (0 = off)",
    )


@dataclass
class TrendConfig:
    enabled: bool = opt(True)
    window_secs: float = opt(21600.0, min=600, help="regression window")
    min_span_secs: float = opt(
        3600.0, min=60, help="the window must cover at least this much time before forecasting"
    )
    min_r2: float = opt(0.8, min=0, max=1, help="fit quality required to trust a forecast")
    disk_horizon_hours: float = opt(24.0, min=0.1, help="alert when a disk is full within this")
    memory_horizon_hours: float = opt(6.0, min=0.1, help="alert when memory runs out within this")
    min_level_percent: float = opt(
        50.0, min=0, max=100, help="no forecast alert while usage is below this (headroom left)"
    )
    critical_fraction: float = opt(
        0.25, min=0, max=1, help="critical when exhaustion is within this fraction of the horizon"
    )
    boot_grace_secs: float = opt(
        900.0, min=0, help="samples from the first seconds after boot are not extrapolated"
    )
    hysteresis: float = opt(
        0.25, min=0, max=0.9, help="resolve when the ETA exceeds horizon * (1 + this)"
    )


@dataclass
class LeakConfig:
    enabled: bool = opt(True)
    window_secs: float = opt(21600.0, min=600, help="regression window per process")
    min_period_secs: float = opt(
        3600.0, min=60, help="a process must be watched this long before a leak is called"
    )
    min_r2: float = opt(0.8, min=0, max=1, help="how steady the growth must be")
    rss_slope_bytes_per_hour: float = opt(
        50 * 1024 * 1024, min=0, help="RSS growth that counts as a leak"
    )
    fd_slope_per_hour: float = opt(50.0, min=0, help="open-file growth that counts as a leak")
    hysteresis: float = opt(
        0.3, min=0, max=0.9, help="resolve when the slope falls below slope * (1 - this)"
    )


@dataclass
class AnalyzerRule:
    """Per-metric overrides: ``metric`` and ``labels`` are globs; ``false`` disables an analyzer.

    Unset keys have no opinion; for each key the last matching rule that sets it wins.
    """

    metric: str = opt("*")
    labels: Dict[str, str] = opt(factory=dict)
    anomaly: Optional[bool] = opt(None)
    zscore: Optional[bool] = opt(None)
    ema: Optional[bool] = opt(None)
    trend: Optional[bool] = opt(None)
    leak: Optional[bool] = opt(None)
    zscore_threshold: Optional[float] = opt(None, min=0.5, help="|z| level for these series")
    ema_deviation: Optional[float] = opt(None, min=0.01, help="EMA deviation for these series")


@dataclass
class AnalyzerConfig:
    interval_secs: float = opt(10.0, min=1, max=600, help="how often the analyzer loop runs")
    threshold: ThresholdAnalyzerConfig = opt(factory=ThresholdAnalyzerConfig)
    anomaly: AnomalyConfig = opt(factory=AnomalyConfig)
    zscore: ZScoreConfig = opt(factory=ZScoreConfig)
    ema: EmaConfig = opt(factory=EmaConfig)
    trend: TrendConfig = opt(factory=TrendConfig)
    leak: LeakConfig = opt(factory=LeakConfig)
    rules: List[AnalyzerRule] = opt(factory=list)
