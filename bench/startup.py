"""CPU cost of the cheap commands over a bare interpreter (issue 17, item 8). Prints a table.

    .venv/bin/python bench/startup.py [--runs 20]

Each command runs ``--runs`` times in a fresh interpreter (``python -m
sysops_agent ...``, the entry point's path); its CPU time (user + system,
from the child's rusage) is compared with ``python -c pass`` run alternately
in the same loop: the median of each and the median difference. For scale,
``check-config --help`` is a command that imports asyncio and the config
machinery (what ``--version`` cost before).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
from typing import Dict, List

CASES: Dict[str, List[str]] = {
    "bare interpreter (-c pass)": ["-c", "pass"],
    "--version": ["-m", "sysops_agent", "--version"],
    "--help": ["-m", "sysops_agent", "--help"],
    "check-config --help": ["-m", "sysops_agent", "check-config", "--help"],
}


def cpu_of(args: List[str]) -> float:
    """CPU seconds (user + system) of one ``python args`` run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([sys.executable, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    spent: Dict[str, List[float]] = {name: [] for name in CASES}
    for _ in range(args.runs):
        for name, cmd in CASES.items():
            spent[name].append(cpu_of(cmd))
    bare = statistics.median(spent["bare interpreter (-c pass)"])
    print(f"python {sys.version.split()[0]}, {args.runs} runs each, median CPU (user + system)")
    for name, values in spent.items():
        median = statistics.median(values)
        print(
            f"  {name:<28} {median * 1000:6.0f} ms   over bare: {(median - bare) * 1000:+5.0f} ms"
        )


if __name__ == "__main__":
    main()
