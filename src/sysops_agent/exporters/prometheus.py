"""The Prometheus ``/metrics`` endpoint (SPEC §8): the latest value of every series.

Nothing is copied or kept here: at each scrape :class:`StoreCollector` walks
the in-memory :class:`~sysops_agent.storage.store.Store` and turns the newest
point of every fresh series into a Prometheus sample, and :func:`exposition`
writes the text format (HELP/TYPE lines, label escaping) — the agent's own
twenty lines rather than ``prometheus_client``, which costs 9 MiB of RSS for it
(issue 17; numbers in ``bench/footprint.py``).

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

A few names are exported under another name (:data:`RENAMED`): gauges named
``*_count`` (``_count`` belongs to histograms and summaries for
``promtool check metrics``).

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

The HTTP server (:mod:`sysops_agent.exporters.http`: one asyncio loop in one
thread, bounded connections and timeouts) is imported only in
:meth:`PrometheusExporter.start`: a daemon with the exporter off does not pay
for it.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Dict, Iterable, List, Mapping, Optional, Set, Tuple

from sysops_agent import __version__
from sysops_agent.clock import Clock, SystemClock
from sysops_agent.exporters.config import PrometheusConfig, is_loopback_address
from sysops_agent.model import Labels, SeriesKey
from sysops_agent.storage.ringbuffer import RingBuffer
from sysops_agent.storage.store import Store
from sysops_agent.units import COUNTER, GAUGE, unit_of

if TYPE_CHECKING:
    from sysops_agent.exporters.http import ExporterServer

log = logging.getLogger(__name__)

PREFIX = "sysops_"
#: a series is stale after this many of its collection intervals without a sample
STALE_INTERVALS = 3.0

_INVALID_NAME_CHARS = re.compile(r"[^a-zA-Z0-9_]")

#: our metric -> its exported name, where the unit catalog's naming would break
#: a Prometheus convention (a gauge ending in ``_count``)
RENAMED: Dict[str, str] = {
    "process_count": PREFIX + "processes",
    "process_fd_count": PREFIX + "process_open_fds",
}


@dataclass(frozen=True)
class ExportedName:
    """How one of our metric names appears in the exposition."""

    #: full sample name, e.g. ``sysops_cpu_usage_ratio`` or ``sysops_agent_alerts_sent_total``
    name: str
    kind: str
    #: multiply the stored value by this
    scale: float
    help: str


#: our label -> node_exporter's name for the same thing
RENAMED_LABELS: Dict[str, str] = {"interface": "device", "core": "cpu"}


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
    renamed = RENAMED.get(metric)
    if renamed is not None:
        return ExportedName(renamed, unit.prom_type, unit.prom_scale, help_text)
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


class Family:
    """One metric family of the exposition: its HELP, TYPE and samples."""

    __slots__ = ("help", "kind", "name", "samples")

    def __init__(self, name: str, help_text: str, kind: str) -> None:
        self.name = name
        self.help = help_text
        self.kind = kind
        self.samples: List[Tuple[str, Labels, float]] = []


def format_float(value: float) -> str:
    """A sample value as the text format wants it: ``+Inf``, ``NaN``, ``42``, ``0.44``."""
    if value != value:
        return "NaN"
    if value in (math.inf, -math.inf):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def exposition(families: Iterable[Family]) -> bytes:
    """The Prometheus text format 0.0.4 of ``families`` (a pure function).

    Written here rather than by ``prometheus_client``: the library pulls in 143
    modules (ssl, http.server, email) for what is these few lines; the tests
    parse our output with its parser and with ``promtool check metrics``.
    """
    out: List[str] = []
    for fam in families:
        out.append(f"# HELP {fam.name} {_escape_help(fam.help)}\n")
        out.append(f"# TYPE {fam.name} {fam.kind}\n")
        for name, labels, value in fam.samples:
            if labels:
                inner = ",".join(f'{k}="{_escape_label(v)}"' for k, v in labels)
                out.append(f"{name}{{{inner}}} {format_float(value)}\n")
            else:
                out.append(f"{name} {format_float(value)}\n")
    return "".join(out).encode("utf-8")


class StoreCollector:
    """The exposition of the store's latest values: one pass per scrape."""

    def __init__(
        self,
        store: Store,
        *,
        hostname: str,
        clock: Optional[Clock] = None,
        stale_after_secs: float = 300.0,
        max_processes: int = 50,
        labels: Optional[Mapping[str, str]] = None,
    ) -> None:
        self.store = store
        self.hostname = hostname
        #: ``[agent] labels``: on every series (a series' own label of the same name wins)
        self.labels: Tuple[Tuple[str, str], ...] = tuple(
            sorted((label_name(k), v) for k, v in (labels or {}).items())
        )
        self.clock: Clock = clock or SystemClock()
        self.stale_after_secs = stale_after_secs
        self.max_processes = max_processes

    def collect(self) -> List[Family]:
        now = self.clock.time()
        fresh = [
            (key, buf)
            for key, buf in self.store.series()
            if len(buf) and not is_stale(buf, now, self.stale_after_secs)
        ]
        keep_pids = top_pids(fresh, self.max_processes)
        families: Dict[str, Family] = {}
        for key, buf in fresh:
            pid = key.label("pid")
            if pid and pid not in keep_pids:
                continue
            exported = export_name(key.metric)
            family = families.get(exported.name)
            if family is None:
                family = families[exported.name] = Family(
                    exported.name, exported.help, exported.kind
                )
            elif family.kind != exported.kind:
                continue  # two of our names collide on one exported name of another type
            own = {label_name(RENAMED_LABELS.get(k, k)): v for k, v in key.labels}
            if self.labels:
                own = {**dict(self.labels), **own}
            labels = tuple(sorted(own.items()))
            family.samples.append((exported.name, labels, buf.last_value * exported.scale))
        info = Family(PREFIX + "agent_info", "SysOps Agent version and hostname", GAUGE)
        info_labels = {**dict(self.labels), "hostname": self.hostname, "version": __version__}
        info.samples.append((info.name, tuple(sorted(info_labels.items())), 1.0))
        return [info, *families.values()]


class PrometheusExporter:
    """Serves ``/`` and ``/metrics`` from a background thread; :meth:`start` / :meth:`stop`."""

    def __init__(
        self,
        config: PrometheusConfig,
        store: Store,
        *,
        hostname: str,
        clock: Optional[Clock] = None,
        counters: Optional[Callable[[], List[Family]]] = None,
        labels: Optional[Mapping[str, str]] = None,
    ) -> None:
        self.config = config
        #: more families at each scrape (the raw kernel counters, :mod:`.counters`)
        self.counters = counters
        self.collector = StoreCollector(
            store,
            hostname=hostname,
            clock=clock,
            stale_after_secs=config.stale_after_secs,
            max_processes=config.max_processes,
            labels=labels,
        )
        self.server: Optional[ExporterServer] = None

    @property
    def port(self) -> Optional[int]:
        """The bound port once started (useful with ``port = 0``)."""
        if self.server is None:
            return None
        return self.server.bound_port

    def start(self) -> None:
        """Bind and serve.

        ``ValueError`` for a non-loopback address without ``allow_remote`` and
        for a web config file that cannot be honoured; ``OSError`` naming the
        address and the config keys when it cannot be bound (e.g. in use).
        """
        if self.server is not None:
            return
        address = self.config.listen_address
        if not self.config.allow_remote and not is_loopback_address(address):
            raise ValueError(
                f"prometheus.listen_address {address!r} is not a loopback address: refusing to "
                "expose /metrics beyond this host. Set prometheus.allow_remote = true to allow it"
            )
        from sysops_agent.exporters.http import ExporterServer

        web = None
        if self.config.web_config_file:
            from sysops_agent.exporters.webconfig import load_web_config

            web = load_web_config(self.config.web_config_file)
        server = ExporterServer(
            self.render,
            address,
            self.config.port,
            max_connections=self.config.max_connections,
            read_timeout=self.config.read_timeout_secs,
            web=web,
        )
        try:
            server.start()
        except OSError as e:
            where = f"[{address}]" if ":" in address else address
            raise OSError(
                e.errno,
                f"cannot listen on {where}:{self.config.port}: {e.strerror or e} "
                "(set prometheus.port or prometheus.listen_address to a free address)",
            ) from None
        self.server = server
        scheme = "https" if web is not None and web.tls else "http"
        log.info("Prometheus exporter listening on %s://%s:%d/metrics", scheme, address, self.port)

    def server_families(self) -> List[Family]:
        """The HTTP server's own counters: a flood or a slowloris shows on the dashboard."""
        server = self.server
        if server is None:
            return []
        out = []
        for name, what, value in (
            (
                "agent_exporter_connections_refused_total",
                "connections reset: cap reached",
                server.refused,
            ),
            (
                "agent_exporter_connections_timed_out_total",
                "connections dropped: too slow",
                server.timed_out,
            ),
        ):
            fam = Family(PREFIX + name, f"SysOps Agent: /metrics {what}", COUNTER)
            fam.samples.append((fam.name, self.collector.labels, float(value)))
            out.append(fam)
        return out

    def render(self) -> bytes:
        """One scrape's exposition: the store's latest values, the server's counters, the raw counters."""
        families = self.collector.collect()
        families.extend(self.server_families())
        if self.counters is not None:
            static = self.collector.labels
            for fam in self.counters():
                if static:
                    fam.samples = [
                        (n, tuple(sorted({**dict(static), **dict(lb)}.items())), v)
                        for n, lb, v in fam.samples
                    ]
                families.append(fam)
        return exposition(families)

    def stop(self) -> None:
        """Stop serving and close the socket (idempotent)."""
        server, self.server = self.server, None
        if server is not None:
            server.stop()


def render(collector: StoreCollector) -> bytes:
    """The exposition text a scrape would return (for tests and ``collect``-style commands)."""
    return exposition(collector.collect())


__all__ = [
    "ExportedName",
    "Family",
    "PrometheusExporter",
    "StoreCollector",
    "export_name",
    "exposition",
    "label_name",
    "render",
]
