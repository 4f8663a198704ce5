"""The agent's own health metrics (SPEC §3): what it dropped, sent, failed and weighs.

:func:`self_samples` turns counters the daemon's parts keep into samples at
``now``; the daemon records them every :data:`SELF_METRICS_INTERVAL` seconds
through the ordinary sample queue, so they are stored, analyzed (the
statistical analyzers skip ``agent_*``) and exported like any other series.
"""

from __future__ import annotations

import resource
from typing import TYPE_CHECKING, List, Optional

from sysops_agent.model import Sample, make_labels

if TYPE_CHECKING:  # the daemon's parts, only for their types
    from sysops_agent.alerting.manager import AlertManager
    from sysops_agent.storage.sqlite_history import SqliteHistory
    from sysops_agent.storage.store import Store

#: how often the agent records its own health metrics
SELF_METRICS_INTERVAL = 10.0


def own_rss_bytes() -> Optional[int]:
    """Our resident set size, from /proc/self/statm (not the tests' fixture root)."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * resource.getpagesize()
    except (OSError, ValueError, IndexError):
        return None


def self_samples(
    now: float,
    *,
    samples_dropped: int,
    alerts_dropped: int,
    samples_rejected: int = 0,
    manager: Optional[AlertManager] = None,
    sqlite: Optional[SqliteHistory] = None,
    store: Optional[Store] = None,
) -> List[Sample]:
    out = [
        Sample(now, "agent_samples_dropped_total", float(samples_dropped)),
        # impossible values (units.sample_problem) refused by Store.append
        Sample(now, "agent_samples_rejected_total", float(samples_rejected)),
    ]
    rss = own_rss_bytes()
    if rss is not None:
        out.append(Sample(now, "agent_rss_bytes", float(rss)))
    if store is not None:
        # what the 24 h in memory weigh: with agent_rss_bytes, tells data from a leak
        out.append(Sample(now, "agent_store_series", float(len(store))))
        out.append(Sample(now, "agent_store_bytes", float(store.memory_bytes())))
    if manager is not None:
        for channel, (sent, failed) in manager.counters().items():
            labels = make_labels(channel=channel)
            out.append(Sample(now, "agent_alerts_sent_total", float(sent), labels))
            out.append(Sample(now, "agent_alerts_failed_total", float(failed), labels))
    if sqlite is not None:
        stats = sqlite.stats
        out.append(Sample(now, "agent_sqlite_write_failures_total", float(stats.writes_failed)))
        out.append(Sample(now, "agent_sqlite_pending_rows", float(stats.pending_rows)))
    out.append(Sample(now, "agent_alerts_dropped_total", float(alerts_dropped)))
    return out
