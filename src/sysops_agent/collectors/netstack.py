"""The network stack's hidden limits: conntrack, listen queues, retransmits, UDP drops, links.

Files (each optional: a missing one gives no series, a garbled one is skipped
for the cycle and counted in ``stats.skipped``):

* ``/proc/sys/net/netfilter/nf_conntrack_{count,max}`` (only while the
  ``nf_conntrack`` module is loaded): ``conntrack_entries``,
  ``conntrack_max``, ``conntrack_usage_percent``. A full table makes the
  kernel drop new connections ("nf_conntrack: table full, dropping packet").
* ``/proc/net/snmp`` (pairs of ``Prefix: names`` / ``Prefix: values`` lines):
  Tcp ``RetransSegs`` -> ``tcp_retransmits_per_second``, and its share of
  ``OutSegs`` in the interval -> ``tcp_retransmit_percent``; Udp
  ``InErrors`` -> ``udp_receive_errors_per_second`` (includes the buffer
  drops), ``RcvbufErrors + SndbufErrors`` -> ``udp_buffer_errors_per_second``
  (2.6.18 and later; older kernels have no such fields and no series).
* ``/proc/net/netstat`` (same format): TcpExt ``ListenOverflows`` and
  ``ListenDrops`` -> ``tcp_listen_{overflows,drops}_per_second`` (a full
  accept queue: clients see timeouts while the service looks idle).
* ``/proc/net/sockstat``: ``tcp_sockets_{inuse,orphan,time_wait}``.
* ``/sys/class/net/<if>/{operstate,carrier,speed}``: ``net_link_up`` (1/0)
  and ``net_speed_bits_per_second`` (``speed`` is in Mb/s; virtual devices
  and links that are down have none). ``operstate`` ``up`` is up; ``unknown``
  (drivers that do not report it, e.g. tun) falls back to ``carrier``;
  every other state (down, lowerlayerdown, dormant, notpresent, testing) is
  down.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass
from typing import ClassVar, Dict, FrozenSet, Iterable, List, Optional, Tuple

from sysops_agent.collectors.base import CollectorStats, interval_opt
from sysops_agent.collectors.common import GlobFilter, ParseError
from sysops_agent.model import Sample, make_labels
from sysops_agent.procfs import ProcFS
from sysops_agent.rates import RateTracker
from sysops_agent.schema import opt

#: above this many events per second a counter delta is not physical (a reset, garbage)
MAX_EVENTS_PER_SEC = 1e10

#: ``(metric, table, fields summed)`` for the counters turned into rates
_RATES = (
    ("tcp_listen_overflows_per_second", "TcpExt", ("ListenOverflows",)),
    ("tcp_listen_drops_per_second", "TcpExt", ("ListenDrops",)),
    ("tcp_retransmits_per_second", "Tcp", ("RetransSegs",)),
    ("udp_receive_errors_per_second", "Udp", ("InErrors",)),
    ("udp_buffer_errors_per_second", "Udp", ("RcvbufErrors", "SndbufErrors")),
)

_SOCKSTAT = (
    ("tcp_sockets_inuse", "inuse"),
    ("tcp_sockets_orphan", "orphan"),
    ("tcp_sockets_time_wait", "tw"),
)

#: the operstate values (RFC 2863, Documentation/networking/operstates.rst) meaning "up"
_UP = "up"
_UNKNOWN = "unknown"

Tables = Dict[str, Dict[str, int]]


#: the tables read; the others (Ip, Icmp, IpExt, MPTcpExt ...) are not even split
WANTED = frozenset({"Tcp", "Udp", "TcpExt"})


def parse_snmp(text: str, source: str, wanted: Optional[FrozenSet[str]] = None) -> Tables:
    """``/proc/net/snmp`` or ``/proc/net/netstat``: ``{"Tcp": {"InSegs": 1, ...}, ...}``.

    Only the tables in ``wanted`` (all when None) are parsed.
    """
    out: Tables = {}
    lines = [line for line in text.split("\n") if line.strip()]
    if len(lines) % 2:
        raise ParseError(source, "names and values do not come in pairs")
    for names_line, values_line in zip(lines[::2], lines[1::2]):
        prefix, sep, names = names_line.partition(":")
        vprefix, vsep, values = values_line.partition(":")
        if not sep or not vsep or prefix != vprefix:
            raise ParseError(source, f"line {values_line!r} does not follow {names_line!r}")
        if wanted is not None and prefix not in wanted:
            continue
        keys = names.split()
        fields = values.split()
        if len(keys) != len(fields):
            raise ParseError(source, f"{len(keys)} names but {len(fields)} values for {prefix}")
        try:
            out[prefix] = {k: int(v) for k, v in zip(keys, fields)}
        except ValueError:
            raise ParseError(source, f"non-numeric value in {values_line!r}") from None
    return out


def parse_sockstat(text: str) -> Dict[str, int]:
    """The ``TCP:`` line of ``/proc/net/sockstat``: ``{"inuse": 3, "orphan": 0, "tw": 363, ...}``."""
    for line in text.split("\n"):
        if line.startswith("TCP:"):
            parts = line[4:].split()
            try:
                return {k: int(v) for k, v in zip(parts[::2], parts[1::2])}
            except ValueError:
                raise ParseError("/proc/net/sockstat", f"non-numeric value in {line!r}") from None
    raise ParseError("/proc/net/sockstat", "no TCP line")


def _read_sys(path: str) -> Optional[str]:
    """A sysfs attribute, stripped; None when absent or unreadable in this state (EINVAL)."""
    try:
        fd = os.open(path, os.O_RDONLY)
        try:
            return os.read(fd, 256).decode("ascii", "replace").strip()
        finally:
            os.close(fd)
    except OSError as e:
        if e.errno in (errno.ENOENT, errno.EINVAL, errno.ENOTDIR, errno.ENODEV):
            return None
        raise


def link_state(operstate: Optional[str], carrier: Optional[str]) -> Optional[int]:
    """1 (up), 0 (down) or None (cannot tell) from ``operstate`` and, when unknown, ``carrier``."""
    if operstate == _UP:
        return 1
    if operstate == _UNKNOWN or operstate is None:
        if carrier == "1":
            return 1
        if carrier == "0":
            return 0
        return None
    return 0


class NetStackCollector:
    name = "netstack"

    def __init__(
        self, procfs: ProcFS, interval: float = 10.0, exclude_interfaces: Iterable[str] = ()
    ) -> None:
        self.procfs = procfs
        self.interval = interval
        self.stats = CollectorStats()
        self.exclude = GlobFilter(exclude_interfaces)
        self.counters: RateTracker[str] = RateTracker(MAX_EVENTS_PER_SEC)

    def _skip(self, reason: str) -> None:
        self.stats.skipped[reason] = self.stats.skipped.get(reason, 0) + 1

    def _read(self, *parts: str) -> Optional[str]:
        try:
            return self.procfs.read_text(*parts)
        except FileNotFoundError:
            return None

    def _tables(self) -> Tables:
        tables: Tables = {}
        for rel in ("snmp", "netstat"):
            text = self._read("net", rel)
            if text is None:
                continue
            try:
                tables.update(parse_snmp(text, f"/proc/net/{rel}", WANTED))
            except ParseError:
                self._skip(f"unparsable /proc/net/{rel}")
        return tables

    def collect(self, now: float) -> List[Sample]:
        out: List[Sample] = []
        out.extend(self._conntrack(now))
        out.extend(self._counters(now))
        out.extend(self._sockstat(now))
        out.extend(self._links(now))
        return out

    def _conntrack(self, now: float) -> List[Sample]:
        count_text = self._read("sys", "net", "netfilter", "nf_conntrack_count")
        max_text = self._read("sys", "net", "netfilter", "nf_conntrack_max")
        if count_text is None or max_text is None:
            return []
        try:
            count, limit = int(count_text), int(max_text)
        except ValueError:
            self._skip("unparsable nf_conntrack_count/max")
            return []
        out = [
            Sample(now, "conntrack_entries", float(count)),
            Sample(now, "conntrack_max", float(limit)),
        ]
        if limit > 0:
            out.append(Sample(now, "conntrack_usage_percent", count * 100.0 / limit))
        return out

    def _counters(self, now: float) -> List[Sample]:
        tables = self._tables()
        out: List[Sample] = []
        rates: Dict[str, float] = {}
        tracker = self.counters
        for metric, table, fields in _RATES:
            row = tables.get(table)
            if row is None:
                continue
            present = [row[f] for f in fields if f in row]
            if not present:
                continue  # an older kernel without this counter
            rate = tracker.update(metric, float(sum(present)), now)
            if rate is not None:
                rates[metric] = rate
                out.append(Sample(now, metric, rate))
        tcp = tables.get("Tcp", {})
        if "RetransSegs" in tcp and "OutSegs" in tcp:
            sent = tracker.update("OutSegs", float(tcp["OutSegs"]), now)
            retrans = rates.get("tcp_retransmits_per_second")
            if retrans is not None and sent is not None and sent > 0:
                share = min(100.0, retrans * 100.0 / sent)
                out.append(Sample(now, "tcp_retransmit_percent", share))
        tracker.prune()
        return out

    def _sockstat(self, now: float) -> List[Sample]:
        text = self._read("net", "sockstat")
        if text is None:
            return []
        try:
            tcp = parse_sockstat(text)
        except ParseError:
            self._skip("unparsable /proc/net/sockstat")
            return []
        return [Sample(now, metric, float(tcp[key])) for metric, key in _SOCKSTAT if key in tcp]

    def _links(self, now: float) -> List[Sample]:
        base = os.path.join(self.procfs.sys_root, "class", "net")
        try:
            names = sorted(os.listdir(base))
        except OSError:
            return []
        out: List[Sample] = []
        for name in names:
            if self.exclude(name):
                continue
            d = os.path.join(base, name)
            operstate = _read_sys(os.path.join(d, "operstate"))
            carrier = _read_sys(os.path.join(d, "carrier")) if operstate != _UP else None
            up = link_state(operstate, carrier)
            if up is None:
                continue
            labels = make_labels({"interface": name})
            out.append(Sample(now, "net_link_up", float(up), labels))
            if up:
                speed = _read_sys(os.path.join(d, "speed"))
                try:
                    mbps = int(speed) if speed is not None else -1
                except ValueError:
                    mbps = -1
                if mbps > 0:  # -1 or 0: virtual device or not negotiated
                    out.append(Sample(now, "net_speed_bits_per_second", mbps * 1e6, labels))
        return out


@dataclass(frozen=True)
class NetStackConfig:
    #: the metrics this collector emits (check-config warns about rules naming others)
    METRICS: ClassVar[Tuple[str, ...]] = (
        "conntrack_entries",
        "conntrack_max",
        "conntrack_usage_percent",
        "net_link_up",
        "net_speed_bits_per_second",
        "tcp_listen_drops_per_second",
        "tcp_listen_overflows_per_second",
        "tcp_retransmit_percent",
        "tcp_retransmits_per_second",
        "tcp_sockets_inuse",
        "tcp_sockets_orphan",
        "tcp_sockets_time_wait",
        "udp_buffer_errors_per_second",
        "udp_receive_errors_per_second",
    )

    enabled: bool = opt(True)
    interval_secs: float = interval_opt(10)
    exclude_interfaces: List[str] = opt(
        factory=lambda: ["lo"], help="interfaces whose link state is not reported (globs)"
    )


def create(procfs: ProcFS, cfg: NetStackConfig) -> NetStackCollector:
    return NetStackCollector(procfs, cfg.interval_secs, tuple(cfg.exclude_interfaces))
