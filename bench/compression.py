"""What the ring buffers' sealed blocks cost per sample, on real data. Prints a table.

    .venv/bin/python bench/compression.py [--minutes 65] [--nab-only]

The memory of a full ring buffer depends on what is in it: a constant costs
almost nothing, white noise ~3.7 bytes a sample. Two real sources:

1. **This host**: every collector of the bundled config at its own interval
   (10 s for most) for ``--minutes`` (at least an hour, so that every 10 s
   series seals a block), into the agent's own store; then the sealed bytes
   per sample, per metric and over all series. An idle machine's series are
   flatter than a busy one's: read it as a lower bound.
2. **NAB realAWSCloudwatch** (``../shared/data/nab/``): 17 real server
   metrics (EC2 CPU, disk, network; ELB, RDS) at 5-minute sampling, each
   through one ring buffer.

For scale: 300 series x 8,640 samples at 1 byte a sample is 2.5 MiB.
"""

from __future__ import annotations

import argparse
import csv
import glob
import os
import time
from collections import defaultdict
from typing import Dict, List, Tuple

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NAB = os.path.join(ROOT, "..", "shared", "data", "nab", "data", "realAWSCloudwatch")


def sealed_cost(buffer: object) -> Tuple[int, int]:
    """(bytes, samples) in a buffer's sealed blocks."""
    from sysops_agent.storage.ringbuffer import RingBuffer

    assert isinstance(buffer, RingBuffer)
    return buffer.sealed_bytes(), buffer._blocks_n


def this_host(minutes: float) -> None:
    from sysops_agent.collectors.registry import build_collectors
    from sysops_agent.config import load_config
    from sysops_agent.procfs import ProcFS
    from sysops_agent.storage.store import Store

    config = load_config(os.path.join(ROOT, "config", "sysops-agent.toml")).config
    collectors = build_collectors(ProcFS("/proc", "/sys"), config.collector)
    store = Store(max_samples=config.storage.ring_buffer_samples)
    start = time.time()
    due = {c.name: start for c in collectors}
    end = start + minutes * 60
    while time.time() < end:
        now = time.time()
        for c in collectors:
            if now >= due[c.name]:
                for s in c.collect(now):
                    store.append(s)
                due[c.name] += c.interval
        time.sleep(max(0.0, min(due.values()) - time.time()))
    per_metric: Dict[str, List[int]] = defaultdict(lambda: [0, 0, 0])
    for key, buf in store.series():
        b, n = sealed_cost(buf)
        row = per_metric[key.metric]
        row[0] += b
        row[1] += n
        row[2] += 1
    total_b = sum(r[0] for r in per_metric.values())
    total_n = sum(r[1] for r in per_metric.values())
    print(f"this host, {minutes:g} minutes, {len(list(store.series()))} series:")
    for metric, (b, n, k) in sorted(per_metric.items(), key=lambda kv: -kv[1][0]):
        if n:
            print(f"  {b / n:5.2f} B/sample  {metric} ({k} series)")
    if total_n:
        print(f"  all sealed samples: {total_b / total_n:.2f} bytes/sample ({total_n:,} samples)")


def nab() -> None:
    from sysops_agent.storage.ringbuffer import RingBuffer

    files = sorted(glob.glob(os.path.join(NAB, "*.csv")))
    if not files:
        print(f"NAB data not found under {NAB}")
        return
    total_b = total_n = 0
    print(f"NAB realAWSCloudwatch, {len(files)} series at 5-minute sampling:")
    for path in files:
        with open(path, newline="") as f:
            values = [float(row["value"]) for row in csv.DictReader(f)]
        buf = RingBuffer(len(values))
        for i, v in enumerate(values):
            buf.append(1_600_000_000.0 + 300 * i, v)
        b, n = sealed_cost(buf)
        total_b += b
        total_n += n
        print(f"  {b / n:5.2f} B/sample  {os.path.basename(path)}")
    print(f"  all: {total_b / total_n:.2f} bytes/sample ({total_n:,} samples)")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=65.0)
    parser.add_argument("--nab-only", action="store_true")
    args = parser.parse_args()
    nab()
    if not args.nab_only:
        print()
        this_host(args.minutes)


if __name__ == "__main__":
    main()
