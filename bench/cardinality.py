"""Cost of a host with many devices: 500 interfaces + 200 disks + 200 mounts (issue 17, item 5).

    .venv/bin/python bench/cardinality.py [--cycles 100] [--samples 8640] [--busy 0.1]

A fixture procfs/sysfs tree in a temporary directory: ``net/dev`` with 500
interfaces, ``diskstats`` with 200 whole disks (plus a partition each, which
the collector skips), ``/sys/block`` for them, and ``mounts`` with 200
filesystems mounted on real directories (``statvfs`` works on them). The
network, disk_io and disk_usage collectors of the default configuration read
it, and their samples pass the scheduler's per-collector series cap
(``storage.max_series_per_collector``) into a :class:`Store`, as in the daemon.

Two hosts:

``container host``  20 real interfaces (``eth*``, ``ens*``, ``bond*``) and
                    480 virtual ones (``veth*``, ``cni*``, ``docker*``,
                    ``br-*``, ``flannel*``, ``virbr*``, ``tap*``), excluded by
                    default.
``500 real NICs``   500 ``ens*`` interfaces: nothing excluded, the cap
                    bounds the network collector's 4,000 series.

Each host runs in its own process. Printed per host: the series a cycle
yields before and after the cap, the CPU per cycle (median of ``--cycles``;
user + system, the kernel's reads included) of the three collectors with the
cap, then of appending the samples to the store, and the MiB the store takes
with every buffer full (``--samples`` a series; RSS growth of the process and
the buffers' own bytes). Between cycles the counters of a
``--busy`` share of the devices advance by random amounts (noisy rates); the
others stay idle (rates 0), as most of a big host's devices are at any time.
A busy series' rate is a random counter increase over the 10 s interval
divided by 10 (0.1 steps: what a rate from an integer counter can be).
The full buffers are filled with the series of a real cycle and values drawn
the same way (the collectors at 8,640 cycles would take minutes).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Tuple

from sysops_agent.cardinality import SeriesCap
from sysops_agent.collectors import disk_io, disk_usage, network
from sysops_agent.collectors.base import Collector
from sysops_agent.config import Config
from sysops_agent.model import Sample
from sysops_agent.procfs import ProcFS
from sysops_agent.storage.store import Store

MiB = 1024 * 1024
VIRTUAL_PREFIXES = ("veth", "cni", "docker", "br-", "flannel.", "virbr", "tap")
REAL_PREFIXES = ("eth", "ens", "bond")


def rss_bytes() -> int:
    with open("/proc/self/statm", "rb") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class Fixture:
    """The tree, and counters that advance for the busy devices at each :meth:`step`."""

    def __init__(self, root: str, interfaces: List[str], disks: int, mounts: int, busy: float):
        self.root = root
        self.proc = os.path.join(root, "proc")
        self.sys = os.path.join(root, "sys")
        os.makedirs(os.path.join(self.proc, "net"))
        self.interfaces = interfaces
        self.disks = [f"sd{chr(97 + i // 26)}{chr(97 + i % 26)}" for i in range(disks)]
        for d in self.disks:
            os.makedirs(os.path.join(self.sys, "block", d))
        lines = []
        for i in range(mounts):
            mnt = os.path.join(root, "mnt", f"data{i}")
            os.makedirs(mnt)
            lines.append(f"/dev/vd{i} {mnt} ext4 rw,relatime 0 0")
        with open(os.path.join(self.proc, "mounts"), "w") as f:
            f.write("\n".join(lines) + "\n")
        self.rng = random.Random(1)
        n_if, n_disk = len(interfaces), len(self.disks)
        self.busy_if = set(self.rng.sample(range(n_if), int(n_if * busy)))
        self.busy_disk = set(self.rng.sample(range(n_disk), int(n_disk * busy)))
        self.net = [[1_000_000 * (i + 1)] * 8 for i in range(n_if)]
        self.dsk = [[1000 * (i + 1)] * 5 for i in range(n_disk)]
        self.step()

    def step(self) -> None:
        rnd = self.rng.randrange
        for i in self.busy_if:
            c = self.net[i]
            for k in range(8):
                c[k] += rnd(1, 10_000_000) if k < 2 else rnd(0, 10_000) if k < 4 else rnd(0, 2)
        for i in self.busy_disk:
            c = self.dsk[i]
            for k in range(5):
                c[k] += rnd(0, 100_000) if k in (1, 3) else rnd(0, 1000)
        head = "Inter-|   Receive |  Transmit\n face |bytes packets errs drop|bytes packets errs drop\n"
        rows = [
            f"{name:>12}: {c[0]} {c[2]} {c[4]} {c[6]} 0 0 0 0 {c[1]} {c[3]} {c[5]} {c[7]} 0 0 0 0"
            for name, c in zip(self.interfaces, self.net)
        ]
        with open(os.path.join(self.proc, "net", "dev"), "w") as f:
            f.write(head + "\n".join(rows) + "\n")
        rows = []
        for i, (name, c) in enumerate(zip(self.disks, self.dsk)):
            rows.append(f"   8 {16 * i} {name} {c[0]} 0 {c[1]} 0 {c[2]} 0 {c[3]} 0 0 {c[4]} 0")
            rows.append(f"   8 {16 * i + 1} {name}1 {c[0]} 0 {c[1]} 0 {c[2]} 0 {c[3]} 0 0 {c[4]} 0")
        with open(os.path.join(self.proc, "diskstats"), "w") as f:
            f.write("\n".join(rows) + "\n")


def collectors_for(procfs: ProcFS) -> List[Collector]:
    sections = Config().collector
    return [
        network.create(procfs, sections.network),
        disk_io.create(procfs, sections.disk_io),
        disk_usage.create(procfs, sections.disk_usage),
    ]


def run_host(label: str, interfaces: List[str], args: argparse.Namespace) -> List[str]:
    limit = Config().storage.max_series_per_collector
    with tempfile.TemporaryDirectory(prefix="sysops-card-") as tmp:
        fx = Fixture(tmp, interfaces, args.disks, args.mounts, args.busy)
        collectors = collectors_for(ProcFS(fx.proc, fx.sys))
        caps = {c.name: SeriesCap(c.name, limit) for c in collectors}
        store = Store(max_samples=args.samples)
        now = 1_700_000_000.0
        for c in collectors:  # prime the rates
            c.collect(now)
        cpu: List[float] = []
        cpu_store: List[float] = []
        raw = kept = 0
        last: List[Sample] = []
        for _ in range(args.cycles):
            now += 10.0
            fx.step()
            t0 = time.process_time()
            cycle: List[Sample] = []
            raw = kept = 0
            for c in collectors:
                samples = c.collect(now)
                raw += len(samples)
                samples = caps[c.name](samples)
                kept += len(samples)
                cycle += samples
            t1 = time.process_time()
            for s in cycle:
                store.append(s)
            cpu.append(t1 - t0)
            cpu_store.append(time.process_time() - t1)
            last = cycle
        mib, payload = fill(last, fx, args)
    return [
        label,
        f"{raw:,} -> {kept:,}",
        f"{statistics.median(cpu) * 1000:.2f} ms",
        f"{statistics.median(cpu_store) * 1000:.2f} ms",
        f"{mib:.1f} MiB ({payload:.1f} MiB in buffers)",
    ]


def fill(series: List[Sample], fx: Fixture, args: argparse.Namespace) -> Tuple[float, float]:
    """RSS growth and buffer bytes of a store holding ``--samples`` of every series of ``series``."""
    rng = random.Random(2)
    busy_names = {fx.interfaces[i] for i in fx.busy_if} | {fx.disks[i] for i in fx.busy_disk}
    keys = []
    for s in series:
        labels = dict(s.labels)
        name = labels.get("interface") or labels.get("device")
        noisy = name in busy_names
        keys.append((s.metric, s.labels, noisy, s.value))
    before = rss_bytes()
    store = Store(max_samples=args.samples)
    ts = 1_700_000_000.0
    scale: Dict[str, int] = {}
    for _ in range(args.samples):
        ts += 10.0
        for metric, labels, noisy, value in keys:
            if noisy:  # a counter's random increase over the 10 s interval
                top = scale.setdefault(metric, 1000 if metric.endswith("_percent") else 10**7)
                value = rng.randrange(top) / 10.0
            store.add(ts, metric, value, labels)
    return (rss_bytes() - before) / MiB, store.memory_bytes() / MiB


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cycles", type=int, default=100)
    parser.add_argument("--samples", type=int, default=8640, help="samples a series, full")
    parser.add_argument("--interfaces", type=int, default=500)
    parser.add_argument("--disks", type=int, default=200)
    parser.add_argument("--mounts", type=int, default=200)
    parser.add_argument("--busy", type=float, default=0.1, help="share of busy devices")
    parser.add_argument("--host", choices=["container", "real"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    n = args.interfaces
    if args.host == "container":  # in a child process: its RSS is this host's alone
        real = [f"{REAL_PREFIXES[i % 3]}{i}" for i in range(20)]
        virtual = [f"{VIRTUAL_PREFIXES[i % 7]}{i:x}" for i in range(n - 20)]
        label = f"container host (20 real + {n - 20} virtual NICs)"
        print(json.dumps(run_host(label, real + virtual, args)))
        return
    if args.host == "real":
        print(json.dumps(run_host(f"{n} real NICs", [f"ens{i}" for i in range(n)], args)))
        return
    rows = [
        json.loads(
            subprocess.run(
                [sys.executable, __file__, *sys.argv[1:], f"--host={host}"],
                check=True,
                stdout=subprocess.PIPE,
                text=True,
            ).stdout
        )
        for host in ("container", "real")
    ]
    print(
        f"python {sys.version.split()[0]}: {n} interfaces, {args.disks} disks, "
        f"{args.mounts} mounts; {args.busy:.0%} of the devices busy; "
        f"cap {Config().storage.max_series_per_collector} series a collector"
    )
    header = ["host", "series a cycle (-> capped)", "CPU: collect", "CPU: store", "full buffers"]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)))


if __name__ == "__main__":
    main()
