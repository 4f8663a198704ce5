"""The Prometheus ``/metrics`` endpoint (SPEC §8): the latest value of every series.

Nothing is copied or kept here: at each scrape :class:`StoreCollector` walks
the in-memory :class:`~sysops_agent.storage.store.Store` and turns the newest
point of every fresh series into a Prometheus sample. ``prometheus_client``
writes the exposition text (HELP/TYPE lines, label escaping).

Naming comes from the unit catalog (:func:`sysops_agent.units.unit_of`:
``prom_suffix``, ``prom_type``, ``prom_scale``, ``prom_help``), applied by
:func:`export_name`:

============================  ===================================  =======  ===========
our metric                    exported as                          type     value
============================  ===================================  =======  ===========
``*_total``                   ``sysops_*_total``                   counter  as is
``*_percent``                 ``sysops_*_ratio``                   gauge    value / 100
``*_bytes_per_second``        ``sysops_*_bytes_per_second``        gauge    as is
``*_per_second``              ``sysops_*_per_second``              gauge    as is
``*_bytes``                   ``sysops_*_bytes``                   gauge    as is
``*_seconds``                 ``sysops_*_seconds``                 gauge    as is
anything else                 ``sysops_*``                         gauge    as is
============================  ===================================  =======  ===========

Percentages become 0–1 ratios, the Prometheus convention, so that
``sysops_memory_usage_ratio > 0.9`` reads like every other exporter. Our
rates stay gauges in base units per second (the agent keeps rates, not the raw
kernel counters, so ``rate()`` is neither needed nor possible on them).

Bounds: a series with no sample for 3 of its collection intervals (estimated
from its last two timestamps; ``stale_after_secs`` when it has a single
sample) is not exported, so vanished processes, disks and interfaces
disappear from ``/metrics``. Series with a ``pid`` label are exported for at
most ``max_processes`` pids, the largest by ``process_rss_bytes``, so a churn
of short-lived processes cannot blow up Prometheus' series count.

The HTTP server (a small threaded WSGI server) and ``prometheus_client`` are
imported only in :meth:`PrometheusExporter.start`: a daemon with the exporter
off does not pay for them.
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Dict, Iterator, List, Optional, Set, Tuple

from sysops_agent import __version__
from sysops_agent.clock import Clock, SystemClock
from sysops_agent.exporters.config import PrometheusConfig, is_loopback_address
from sysops_agent.model import SeriesKey
from sysops_agent.storage.ringbuffer import RingBuffer
from sysops_agent.storage.store import Store
from sysops_agent.units import COUNTER, GAUGE, unit_of

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric
    from prometheus_client.registry import CollectorRegistry

log = logging.getLogger(__name__)

PREFIX = "sysops_"
#: a series is stale after this many of its collection intervals without a sample
STALE_INTERVALS = 3.0

_INVALID_NAME_CHARS = re.compile(r"[^a-zA-Z0-9_]")


@dataclass(frozen=True)
class ExportedName:
    """How one of our metric names appears in the exposition."""

    #: full sample name, e.g. ``sysops_cpu_usage_ratio`` or ``sysops_agent_alerts_sent_total``
    name: str
    kind: str
    #: multiply the stored value by this
    scale: float
    help: str

    @property
    def family(self) -> str:
        """The family name prometheus_client wants (counters without ``_total``)."""
        if self.kind == COUNTER and self.name.endswith("_total"):
            return self.name[: -len("_total")]
        return self.name


def _sanitize(name: str) -> str:
    name = _INVALID_NAME_CHARS.sub("_", name)
    if not name or name[0].isdigit():
        name = "_" + name
    return name


def export_name(metric: str) -> ExportedName:
    """Map one of our metric names to its Prometheus name, type and scale (see the module doc)."""
    base = _sanitize(metric)
    unit = unit_of(base)
    help_text = f"SysOps Agent {metric}"
    if unit.prom_help:
        help_text += f": {unit.prom_help}"
    if unit.suffix and base.endswith(unit.suffix):
        base = base[: -len(unit.suffix)] + unit.prom_suffix
    return ExportedName(PREFIX + base, unit.prom_type, unit.prom_scale, help_text)


def label_name(name: str) -> str:
    """A valid Prometheus label name (names starting with ``__`` are reserved)."""
    name = _sanitize(name)
    return "exported" + name if name.startswith("__") else name


def _interval_of(buf: RingBuffer) -> Optional[float]:
    points = buf.last_n(2)
    if len(points) < 2:
        return None
    dt = points[1][0] - points[0][0]
    return dt if dt > 0 else None


def is_stale(buf: RingBuffer, now: float, single_sample_max_age: float) -> bool:
    """No sample for 3 collection intervals (or ``single_sample_max_age`` if the interval is unknown)."""
    interval = _interval_of(buf)
    max_age = STALE_INTERVALS * interval if interval else single_sample_max_age
    return now - buf.last_ts > max_age


def top_pids(series: List[Tuple[SeriesKey, RingBuffer]], limit: int) -> Set[str]:
    """The ``limit`` pids with the largest latest ``process_rss_bytes`` (others rank last)."""
    rss: Dict[str, float] = {}
    for key, buf in series:
        pid = key.label("pid")
        if not pid:
            continue
        value = buf.last_value if key.metric == "process_rss_bytes" else -1.0
        rss[pid] = max(rss.get(pid, -1.0), value)
    ranked = sorted(rss, key=lambda p: (-rss[p], p))
    return set(ranked[:limit])


class StoreCollector:
    """A ``prometheus_client`` collector over the store: one pass per scrape."""

    def __init__(
        self,
        store: Store,
        *,
        hostname: str,
        clock: Optional[Clock] = None,
        stale_after_secs: float = 300.0,
        max_processes: int = 50,
    ) -> None:
        self.store = store
        self.hostname = hostname
        self.clock: Clock = clock or SystemClock()
        self.stale_after_secs = stale_after_secs
        self.max_processes = max_processes

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.metrics_core import Metric

        now = self.clock.time()
        fresh = [
            (key, buf)
            for key, buf in self.store.series()
            if len(buf) and not is_stale(buf, now, self.stale_after_secs)
        ]
        keep_pids = top_pids(fresh, self.max_processes)
        families: Dict[str, Metric] = {}
        kinds: Dict[str, str] = {}
        for key, buf in fresh:
            pid = key.label("pid")
            if pid and pid not in keep_pids:
                continue
            exported = export_name(key.metric)
            family = families.get(exported.family)
            if family is None:
                family = Metric(exported.family, exported.help, exported.kind)
                families[exported.family] = family
                kinds[exported.family] = exported.kind
            elif kinds[exported.family] != exported.kind:
                continue  # two of our names collide on one exported name of another type
            labels = {label_name(k): v for k, v in key.labels}
            family.add_sample(exported.name, labels, buf.last_value * exported.scale)
        info = Metric(PREFIX + "agent_info", "SysOps Agent version and hostname", GAUGE)
        info.add_sample(
            PREFIX + "agent_info", {"hostname": self.hostname, "version": __version__}, 1.0
        )
        yield info
        yield from families.values()


def make_registry(collector: StoreCollector) -> CollectorRegistry:
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return registry


class PrometheusExporter:
    """Serves ``/metrics`` from a background thread; :meth:`start` / :meth:`stop`."""

    def __init__(
        self,
        config: PrometheusConfig,
        store: Store,
        *,
        hostname: str,
        clock: Optional[Clock] = None,
    ) -> None:
        self.config = config
        self.collector = StoreCollector(
            store,
            hostname=hostname,
            clock=clock,
            stale_after_secs=config.stale_after_secs,
            max_processes=config.max_processes,
        )
        self._server: Any = None
        self._thread: Optional[threading.Thread] = None

    @property
    def port(self) -> Optional[int]:
        """The bound port once started (useful with ``port = 0``)."""
        if self._server is None:
            return None
        return int(self._server.server_address[1])

    def start(self) -> None:
        """Bind and serve. ``ValueError`` for a non-loopback address without ``allow_remote``;
        ``OSError`` when the address cannot be bound (e.g. port in use)."""
        if self._server is not None:
            return
        address = self.config.listen_address
        if not self.config.allow_remote and not is_loopback_address(address):
            raise ValueError(
                f"prometheus.listen_address {address!r} is not a loopback address: refusing to "
                "expose /metrics beyond this host. Set prometheus.allow_remote = true to allow it"
            )
        from prometheus_client import make_wsgi_app

        from sysops_agent.exporters.http import serve_wsgi

        app = make_wsgi_app(make_registry(self.collector))
        self._server, self._thread = serve_wsgi(app, address, self.config.port)
        log.info("Prometheus exporter listening on %s:%d/metrics", address, self.port)

    def stop(self) -> None:
        """Stop serving and close the socket (idempotent)."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)


def render(collector: StoreCollector) -> bytes:
    """The exposition text a scrape would return (for tests and ``collect``-style commands)."""
    from prometheus_client import generate_latest

    return generate_latest(make_registry(collector))


__all__ = [
    "ExportedName",
    "PrometheusExporter",
    "StoreCollector",
    "export_name",
    "label_name",
    "render",
]
