"""Per-interface traffic from ``/proc/net/dev`` (counters -> rates).

After the two header lines, each line is ``name: `` followed by 8 receive
fields (bytes packets errs drop fifo frame compressed multicast) and 8
transmit fields (bytes packets errs drop fifo colls carrier compressed).
Old kernels print no space after the colon (``eth0:123``), so the name is
split off at the colon, not by whitespace.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, ClassVar, Dict, List, NamedTuple, Optional, Tuple

from sysops_agent.collectors.base import CollectorStats, interval_opt
from sysops_agent.collectors.common import GlobFilter, ParseError
from sysops_agent.model import Labels, Sample, make_labels
from sysops_agent.procfs import ProcFS
from sysops_agent.rates import GroupRateTracker
from sysops_agent.schema import opt

#: a rate above this is not physical (1 TB/s; 10^10 packets/s): no sample for that step
MAX_BYTES_PER_SEC = 1e12
MAX_PACKETS_PER_SEC = 1e10


class NetDev(NamedTuple):
    name: str
    rx_bytes: int
    rx_packets: int
    rx_errors: int
    rx_drops: int
    tx_bytes: int
    tx_packets: int
    tx_errors: int
    tx_drops: int


#: loopback and the virtual interfaces of containers and VMs, excluded by default:
#: a container host has one ``veth*`` (and ``cni*``/``flannel*`` ...) per container,
#: churning with them, while the traffic they carry also crosses the host's
#: real interfaces (or its bridge, which ``docker0``/``br-*``/``virbr*`` are)
DEFAULT_EXCLUDED_INTERFACES: Tuple[str, ...] = (
    "lo",
    "veth*",
    "docker*",
    "br-*",
    "cni*",
    "flannel*",
    "virbr*",
    "tap*",
)

#: output order; the first two are byte counters, the rest packet counts
METRICS: Tuple[str, ...] = (
    "net_rx_bytes_per_second",
    "net_tx_bytes_per_second",
    "net_rx_packets_per_second",
    "net_tx_packets_per_second",
    "net_rx_errors_per_second",
    "net_tx_errors_per_second",
    "net_rx_drops_per_second",
    "net_tx_drops_per_second",
)
#: the physical bound of each counter's rate, in :data:`METRICS` order
_MAX_RATES = (MAX_BYTES_PER_SEC,) * 2 + (MAX_PACKETS_PER_SEC,) * 6


def parse_net_dev(text: str, skip: Optional[Callable[[str], bool]] = None) -> List[NetDev]:
    """The interfaces of ``/proc/net/dev``; those for which ``skip(name)`` is true are not parsed."""
    out: List[NetDev] = []
    for line in text.split("\n"):
        name, sep, rest = line.partition(":")
        if not sep or "|" in line:
            continue  # the two header lines
        name = name.strip()
        if skip is not None and skip(name):
            continue
        f = rest.split()
        if len(f) < 16:
            raise ParseError("/proc/net/dev", f"expected 16 counters in line {line!r}")
        try:
            out.append(
                NetDev(
                    name,
                    int(f[0]),
                    int(f[1]),
                    int(f[2]),
                    int(f[3]),
                    int(f[8]),
                    int(f[9]),
                    int(f[10]),
                    int(f[11]),
                )
            )
        except ValueError:
            raise ParseError("/proc/net/dev", f"non-numeric counter in line {line!r}") from None
    return out


class NetworkCollector:
    name = "network"
    may_block = False  # reads only the kernel's own counters: shares a worker job

    def __init__(
        self, procfs: ProcFS, interval: float = 10.0, exclude_interfaces: Tuple[str, ...] = ()
    ) -> None:
        self.procfs = procfs
        self.interval = interval
        self.exclude = GlobFilter(exclude_interfaces)
        self.stats = CollectorStats()
        #: one group of 8 counters per interface, in :data:`METRICS` order
        self.rates = GroupRateTracker[str](_MAX_RATES)
        self._labels: Dict[str, Labels] = {}

    def collect(self, now: float) -> List[Sample]:
        out: List[Sample] = []
        for dev in parse_net_dev(self.procfs.read_text("net", "dev"), skip=self.exclude):
            name = dev.name
            labels = self._labels.get(name)
            if labels is None:
                labels = self._labels[name] = make_labels(interface=name)
            values = (
                dev.rx_bytes,
                dev.tx_bytes,
                dev.rx_packets,
                dev.tx_packets,
                dev.rx_errors,
                dev.tx_errors,
                dev.rx_drops,
                dev.tx_drops,
            )
            rates = self.rates.update(name, values, now)
            if rates is not None:
                for metric, rate in zip(METRICS, rates):
                    if rate is not None:
                        out.append(Sample(now, metric, rate, labels))
        self.rates.prune()
        if len(self._labels) > 4 * (len(self.rates) + 16):
            self._labels.clear()  # interfaces churn on container hosts (veth*): stay bounded
        return out


@dataclass(frozen=True)
class NetworkConfig:
    #: the metrics this collector emits (check-config warns about rules naming others)
    METRICS: ClassVar[Tuple[str, ...]] = METRICS

    enabled: bool = opt(True)
    interval_secs: float = interval_opt(10)
    exclude_interfaces: List[str] = opt(
        factory=lambda: list(DEFAULT_EXCLUDED_INTERFACES),
        help="glob patterns; [] keeps every interface",
    )


def create(procfs: ProcFS, cfg: NetworkConfig) -> NetworkCollector:
    c = cfg
    return NetworkCollector(
        procfs, interval=c.interval_secs, exclude_interfaces=tuple(c.exclude_interfaces)
    )
