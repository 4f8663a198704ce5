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
from typing import (
    AbstractSet,
    ClassVar,
    Dict,
    FrozenSet,
    Iterable,
    List,
    Mapping,
    Optional,
    Tuple,
)

from sysops_agent.collectors.base import CollectorStats, interval_opt
from sysops_agent.collectors.common import GlobFilter, ParseError
from sysops_agent.collectors.keptfiles import KeptFiles
from sysops_agent.model import Labels, Sample, make_labels
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


#: the fields read, by table; the other tables (Ip, Icmp, IpExt, MPTcpExt ...) are not split
#: and the other fields (about 120 in TcpExt) not converted
WANTED: Dict[str, FrozenSet[str]] = {
    "Tcp": frozenset({"RetransSegs", "OutSegs"}),
    "Udp": frozenset({"InErrors", "RcvbufErrors", "SndbufErrors"}),
    "TcpExt": frozenset({"ListenOverflows", "ListenDrops"}),
}


def parse_snmp(
    text: str, source: str, wanted: Optional[Mapping[str, AbstractSet[str]]] = None
) -> Tables:
    """``/proc/net/snmp`` or ``/proc/net/netstat``: ``{"Tcp": {"InSegs": 1, ...}, ...}``.

    With ``wanted`` only those tables are split and only those fields converted
    (a field the kernel does not have is simply absent); without it, everything.
    """
    out: Tables = {}
    lines = [line for line in text.split("\n") if line and not line.isspace()]
    if len(lines) % 2:
        raise ParseError(source, "names and values do not come in pairs")
    for i in range(0, len(lines), 2):
        names_line = lines[i]
        values_line = lines[i + 1]
        prefix, sep, names = names_line.partition(":")
        vprefix, vsep, values = values_line.partition(":")
        if not sep or not vsep or prefix != vprefix:
            raise ParseError(source, f"line {values_line!r} does not follow {names_line!r}")
        fields_wanted = None
        if wanted is not None:
            fields_wanted = wanted.get(prefix)
            if fields_wanted is None:
                continue
        keys = names.split()
        fields = values.split()
        if len(keys) != len(fields):
            raise ParseError(source, f"{len(keys)} names but {len(fields)} values for {prefix}")
        try:
            if fields_wanted is None:
                out[prefix] = {k: int(v) for k, v in zip(keys, fields)}
            else:
                out[prefix] = {k: int(v) for k, v in zip(keys, fields) if k in fields_wanted}
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


def _read_sys(files: KeptFiles, path: str) -> Optional[str]:
    """A sysfs attribute, stripped; None when absent or unreadable in this state (EINVAL)."""
    try:
        data = files.read(path)
    except OSError as e:
        if e.errno in (errno.ENOENT, errno.EINVAL, errno.ENOTDIR, errno.ENODEV):
            return None
        raise
    return None if data is None else data.decode("ascii", "replace").strip()


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
        #: the /proc/net files, conntrack sysctls and link attributes, kept open
        self.files = KeptFiles(limit=64)
        self._labels: Dict[str, Labels] = {}
        self._roots: Tuple[str, str] = ("", "")
        self._conntrack_paths: Tuple[str, str] = ("", "")
        self._snmp_paths: Tuple[Tuple[str, str], ...] = ()
        self._sockstat_path = ""
        self._net_dir = ""

    def _set_paths(self) -> None:
        """The paths read, built once per procfs/sysfs root (tests move the roots per step)."""
        proc = os.fspath(self.procfs.root)
        sys_root = os.fspath(self.procfs.sys_root)
        self._roots = (proc, sys_root)
        self._conntrack_paths = (
            f"{proc}/sys/net/netfilter/nf_conntrack_count",
            f"{proc}/sys/net/netfilter/nf_conntrack_max",
        )
        self._snmp_paths = ((f"{proc}/net/snmp", "snmp"), (f"{proc}/net/netstat", "netstat"))
        self._sockstat_path = f"{proc}/net/sockstat"
        self._net_dir = os.path.join(sys_root, "class", "net")

    def _skip(self, reason: str) -> None:
        self.stats.skipped[reason] = self.stats.skipped.get(reason, 0) + 1

    def _read(self, path: str) -> Optional[str]:
        data = self.files.read(path)
        return None if data is None else data.decode("utf-8", "replace")

    def _tables(self) -> Tables:
        tables: Tables = {}
        for path, rel in self._snmp_paths:
            text = self._read(path)
            if text is None:
                continue
            try:
                tables.update(parse_snmp(text, f"/proc/net/{rel}", WANTED))
            except ParseError:
                self._skip(f"unparsable /proc/net/{rel}")
        return tables

    def collect(self, now: float) -> List[Sample]:
        if self._roots != (self.procfs.root, self.procfs.sys_root):
            self._set_paths()
        out: List[Sample] = []
        out.extend(self._conntrack(now))
        out.extend(self._counters(now))
        out.extend(self._sockstat(now))
        out.extend(self._links(now))
        return out

    def _conntrack(self, now: float) -> List[Sample]:
        count_text = self._read(self._conntrack_paths[0])
        max_text = self._read(self._conntrack_paths[1]) if count_text is not None else None
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
        text = self._read(self._sockstat_path)
        if text is None:
            return []
        try:
            tcp = parse_sockstat(text)
        except ParseError:
            self._skip("unparsable /proc/net/sockstat")
            return []
        return [Sample(now, metric, float(tcp[key])) for metric, key in _SOCKSTAT if key in tcp]

    def _links(self, now: float) -> List[Sample]:
        base = self._net_dir
        try:
            names = os.listdir(base)
        except OSError:
            return []
        names.sort()
        files = self.files
        out: List[Sample] = []
        for name in names:
            if self.exclude(name):
                continue
            d = f"{base}/{name}/"
            operstate = _read_sys(files, d + "operstate")
            # carrier decides only for "unknown" (reading it on a link that is down fails: EINVAL)
            carrier = _read_sys(files, d + "carrier") if operstate in (_UNKNOWN, None) else None
            up = link_state(operstate, carrier)
            if up is None:
                continue
            labels = self._labels.get(name)
            if labels is None:
                labels = self._labels[name] = make_labels({"interface": name})
            out.append(Sample(now, "net_link_up", float(up), labels))
            if up:
                speed = _read_sys(files, d + "speed")
                try:
                    mbps = int(speed) if speed is not None else -1
                except ValueError:
                    mbps = -1
                if mbps > 0:  # -1 or 0: virtual device or not negotiated
                    out.append(Sample(now, "net_speed_bits_per_second", mbps * 1e6, labels))
        if len(self._labels) > len(names) + 64:  # interfaces churn (veth*): stay bounded
            self._labels = {n: lb for n, lb in self._labels.items() if n in set(names)}
        if len(files) >= files.limit // 2:  # descriptors of interfaces that went away
            alive = set(names)
            files.keep_only(
                p
                for p in files.paths()
                if not p.startswith(base + "/") or p[len(base) + 1 :].split("/", 1)[0] in alive
            )
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
