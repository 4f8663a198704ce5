"""Replay throughput: samples per second through parsing, the store, all five analyzers and dedup.

Writes a recording like ``collect --json`` would produce on a busy host — 200
series (CPU, per-core CPU, memory, disks, NICs, tracked processes) sampled
every 10 s — then replays it the way ``sysops-agent replay`` does, alerts
serialised to JSON and discarded. Not a timed test: it prints the number.

    .venv/bin/python bench/replay.py [--hours 6] [--series 200]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from typing import Dict, List, Optional, Tuple

from sysops_agent.config import load_config
from sysops_agent.replay import Replayer, merged, read_file

SeriesDef = Tuple[str, Dict[str, str], float, float]


def series_set(count: int) -> List[SeriesDef]:
    """(metric, labels, base level, noise) for ``count`` series resembling a real host."""
    out: List[SeriesDef] = [
        ("cpu_usage_percent", {}, 30.0, 8.0),
        ("cpu_iowait_percent", {}, 2.0, 1.0),
        ("memory_usage_percent", {}, 60.0, 0.5),
        ("memory_used_bytes", {}, 8e9, 5e7),
        ("load_avg_1m", {}, 1.5, 0.3),
        ("uptime_seconds", {}, 1e6, 0.0),
        ("disk_usage_percent", {"mountpoint": "/", "device": "sda1", "fstype": "ext4"}, 70, 0.01),
    ]
    i = 0
    while len(out) < count:
        kind = i % 4
        if kind == 0:
            out.append(("cpu_core_usage_percent", {"core": str(i)}, 30.0, 10.0))
        elif kind == 1:
            out.append(("net_rx_bytes_per_second", {"interface": f"eth{i}"}, 2e6, 4e5))
        elif kind == 2:
            out.append(("disk_write_bytes_per_second", {"device": f"sd{i}"}, 1e6, 3e5))
        else:
            labels = {"pid": str(1000 + i), "name": f"proc{i}"}
            out.append(("process_rss_bytes", labels, 2e8, 1e6))
        i += 1
    return out[:count]


def write_recording(path: str, hours: float, count: int) -> int:
    rng = random.Random(42)
    defs = series_set(count)
    start = 1_700_000_000
    n = 0
    with open(path, "w", encoding="utf-8") as fh:
        for step in range(int(hours * 3600 / 10)):
            ts = start + step * 10
            for metric, labels, base, noise in defs:
                value = max(0.0, base + rng.gauss(0.0, noise)) if noise else base + step * 10
                fh.write(json.dumps({"ts": ts, "metric": metric, "labels": labels, "value": value}))
                fh.write("\n")
                n += 1
    return n


#: the statistical analyzers before issue 14 (zscore + ema), for comparison in the same run
OLD = (
    "[analyzer.anomaly]\nenabled = false\n"
    "[analyzer.zscore]\nenabled = true\n[analyzer.ema]\nenabled = true\n"
)


def replay(path: str, metric: Optional[str] = None, text: str = "") -> Tuple[int, int, float]:
    config = load_config(text=text).config
    errors: List[str] = []
    replayer = Replayer(config, "bench", errors.append)
    t0 = time.perf_counter()
    alerts = 0
    with open(path, encoding="utf-8") as fh, open(os.devnull, "w") as sink:
        for alert in replayer.run(merged([(path, read_file(fh, path, metric, errors.append))])):
            sink.write(json.dumps(alert.to_json_obj()) + "\n")
            alerts += 1
    return replayer.samples, alerts, time.perf_counter() - t0


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description="replay throughput")
    ap.add_argument("--hours", type=float, default=6.0, help="length of the recording")
    ap.add_argument("--series", type=int, default=200, help="series in the recording")
    ap.add_argument("--csv", help="also time this CSV file (one series, e.g. a NAB file)")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "recording.jsonl")
        written = write_recording(path, args.hours, args.series)
        for label, text in (("defaults", ""), ("old zscore + ema", OLD)):
            samples, alerts, secs = replay(path, None, text)
            print(
                f"JSON lines, {args.series} series x {args.hours:g} h at 10 s, {label}: "
                f"{written:,} samples replayed in {secs:.2f} s = {samples / secs:,.0f} "
                f"samples/s ({alerts} alerts)"
            )
    if args.csv:
        samples, alerts, secs = replay(args.csv)
        print(
            f"CSV {os.path.basename(args.csv)}: {samples:,} samples in {secs:.3f} s = "
            f"{samples / secs:,.0f} samples/s ({alerts} alerts)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
