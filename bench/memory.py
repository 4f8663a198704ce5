"""Fill 300 series x 8,640 samples (24 h at 10 s) and print the process RSS.

    .venv/bin/python bench/memory.py [--series 300] [--samples 8640] [--values wave|noise]
                                     [--unit _percent]

Prints the RSS before and after filling, the bytes held by the ring buffers
themselves (all of it, and the sealed blocks alone: the open hour of each
series is 8 bytes a sample until it is sealed), and bytes per sample. The design's budget is < 50 MB for the
whole agent.
"""

from __future__ import annotations

import argparse
import math
import random
import resource
import time


def rss_bytes() -> int:
    with open("/proc/self/statm", "rb") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--series", type=int, default=300)
    parser.add_argument("--samples", type=int, default=8640)
    parser.add_argument("--values", choices=["wave", "noise"], default="wave")
    parser.add_argument(
        "--unit",
        default="_percent",
        help="metric-name suffix, hence unit and stored resolution ('' : unknown, exact)",
    )
    args = parser.parse_args()

    # Import what the daemon imports, so the baseline is the daemon's, not a bare interpreter's.
    import sysops_agent.daemon  # noqa: F401
    from sysops_agent.model import make_labels
    from sysops_agent.storage.store import Store

    before = rss_bytes()
    store = Store(max_samples=args.samples)
    keys = [
        (f"metric_{i % 40}{args.unit}", make_labels(device=f"dev{i}")) for i in range(args.series)
    ]
    rng = random.Random(1)
    start = 1_700_000_000.0
    t0 = time.perf_counter()
    for step in range(args.samples):
        ts = start + step * 10
        for n, (metric, labels) in enumerate(keys):
            if args.values == "noise":
                value = rng.uniform(0.0, 100.0)
            else:
                value = 50.0 + 10.0 * math.sin(step / 100.0 + n)
            store.add(ts, metric, value, labels)
    fill_secs = time.perf_counter() - t0
    after = rss_bytes()
    total = args.series * args.samples
    print(f"series:                 {args.series} ({args.values}, unit suffix {args.unit!r})")
    print(f"samples per series:     {args.samples}")
    print(f"RSS before fill:        {before / 2**20:8.1f} MiB")
    print(f"RSS with full buffers:  {after / 2**20:8.1f} MiB")
    print(
        f"ring buffer payload:    {store.memory_bytes() / 2**20:8.1f} MiB "
        f"({store.memory_bytes() / total:.2f} bytes/sample, the open hours included)"
    )
    sealed_bytes = sealed_samples = 0
    for _, buf in store.series():
        sealed_bytes += buf.sealed_bytes()
        sealed_samples += buf._blocks_n  # (expired samples of the oldest block included)
    if sealed_samples:
        print(
            f"sealed blocks:          {sealed_bytes / 2**20:8.1f} MiB "
            f"({sealed_bytes / sealed_samples:.2f} bytes/sample)"
        )
    print(f"RSS growth per sample:  {(after - before) / total:8.1f} bytes")
    print(f"append throughput:      {total / fill_secs:,.0f} samples/s")


if __name__ == "__main__":
    main()
