"""What a spike of short-lived processes leaves in the agent's memory (issue 12).

    .venv/bin/python bench/spike.py [--procs 1000] [--hold 90] [--settle 60] [--before SRC]

Starts the agent (bundled config, live host, loaded from bytecode as pip
installs it) and, with ``--before``, a second one from another source tree
(its ``src``) beside it, so both see the same host. After ``--warmup``
seconds, each agent's RSS is read every 5 s for ``--read`` seconds (the
baseline: the median); then ``--procs`` ``sleep`` processes run for
``--hold`` seconds (three process-collector cycles at the default 30 s),
are killed, and after ``--settle`` seconds the RSS is read the same way
again. Prints each agent's baseline, peak during the spike, and the RSS
after: the step a spike leaves for good is after - baseline.

Run it on a quiet host: every process started meanwhile is part of the spike.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional

from footprint import BUNDLED_CONFIG, MiB, Sleepers, package_copy, process_count, rss, stop
from peerbench import start_agent


def read_rss(agents: Dict[str, subprocess.Popen[bytes]], secs: float) -> Dict[str, List[int]]:
    """Each agent's RSS every 5 s for ``secs``."""
    out: Dict[str, List[int]] = {name: [] for name in agents}
    deadline = time.monotonic() + secs
    while True:
        for name, proc in agents.items():
            out[name].append(rss(proc.pid))
        if time.monotonic() >= deadline:
            return out
        time.sleep(5.0)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--procs", type=int, default=1000, help="sleep processes in the spike")
    parser.add_argument("--hold", type=float, default=90.0, help="seconds the spike lasts")
    parser.add_argument("--warmup", type=float, default=120.0)
    parser.add_argument("--read", type=float, default=60.0, help="seconds of RSS readings")
    parser.add_argument("--settle", type=float, default=60.0, help="seconds after the spike")
    parser.add_argument("--before", type=Path, help="another version's src, run beside")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="sysops-spike-") as tmp:
        scratch = Path(tmp)
        srcs = {"us": package_copy(scratch, "bytecode", name="us")}
        if args.before is not None:
            srcs["before"] = package_copy(scratch, "bytecode", args.before, "before")
        agents: Dict[str, subprocess.Popen[bytes]] = {}
        try:
            for name, lib in srcs.items():
                agents[name] = start_agent(BUNDLED_CONFIG, scratch / f"agent-{name}", lib)
            time.sleep(args.warmup)
            base = read_rss(agents, args.read)
            hosts = process_count()
            with Sleepers(hosts + args.procs):
                during = read_rss(agents, args.hold)
                spiked = process_count()
            time.sleep(args.settle)
            after = read_rss(agents, args.read)
        finally:
            for proc in agents.values():
                stop(proc)

    print(f"python {sys.version.split()[0]}; {hosts} processes, {spiked} during the spike")
    print(f"{'agent':8} {'baseline':>9} {'peak':>7} {'after':>7} {'step':>7}  (MiB)")
    for name in agents:
        b = statistics.median(base[name]) / MiB
        peak = max(during[name]) / MiB
        a = statistics.median(after[name]) / MiB
        print(f"{name:8} {b:9.2f} {peak:7.2f} {a:7.2f} {a - b:+7.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
