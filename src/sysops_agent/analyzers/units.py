"""What size of change matters, per unit of measure (from the metric name's suffix).

Statistical analyzers measure change relative to a series' own noise or level.
On an idle metric both are tiny, so a trivial change looks huge (iowait
0.05% -> 2% is "40σ"). Requiring a change of at least :func:`min_change`
keeps them quiet there. Series of unknown unit (recorded CSV files) get 0:
only the statistics decide.
"""

from __future__ import annotations

#: The smallest change that matters, per unit. The relative deviation divides
#: by ``max(|ema|, min_change / deviation)``, so near zero a change must be at
#: least ``min_change`` to count: 0.2% -> 0.9% iowait, load 0.01 -> 0.3 or
#: 2 -> 40 KB/s of traffic on an idle box are not "350%" jumps. Checked in
#: order; the first matching suffix wins.
MIN_CHANGES = (
    ("_percent", 5.0),  # percentage points
    ("_errors_per_second", 1.0),
    ("_drops_per_second", 1.0),
    ("_bytes_per_second", 1024.0 * 1024.0),  # 1 MiB/s
    ("_per_second", 50.0),  # operations, packets
    ("_bytes", 64.0 * 1024.0 * 1024.0),
    ("_count", 10.0),
    ("_seconds", 1.0),
)
#: metrics without a unit suffix
NAMED_MIN_CHANGES = {"load_avg_1m": 1.0, "load_avg_5m": 1.0, "load_avg_15m": 1.0}


def min_change(metric: str) -> float:
    """The smallest absolute change of ``metric`` worth an alert (0 when the unit is unknown)."""
    change = NAMED_MIN_CHANGES.get(metric)
    if change is not None:
        return change
    for suffix, value in MIN_CHANGES:
        if metric.endswith(suffix):
            return value
    return 0.0
