"""Cost of the GPU collector's one nvidia-smi child per interval.

    .venv/bin/python bench/gpu_child.py [--calls 50] [--command nvidia-smi]

Runs ``GpuCollector.collect`` ``--calls`` times and prints, per call, the wall
time, this process's CPU time and the children's CPU time (``RUSAGE_CHILDREN``),
once with ``process_top_n = 0`` (the ``--query-gpu`` child alone) and once with
the default (a second, ``--query-compute-apps``, child for the processes' GPU
memory). Without an ``nvidia-smi`` on PATH (or ``--command``) it uses a fake
one, a shell script printing the recorded two-GPU outputs of both queries:
that measures only our side (fork/exec, reading the pipe, parsing), not
NVIDIA's tool, which talks to the driver and costs far more.
"""

from __future__ import annotations

import argparse
import resource
import stat
import sys
import tempfile
import time
from pathlib import Path

from sysops_agent.collectors.gpu import GpuCollector, find_executable
from sysops_agent.procfs import ProcFS

RECORDED = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "nvidia_smi"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--command", default="nvidia-smi")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        command = find_executable(args.command)
        what = f"real {command}"
        if command is None:
            fake = Path(tmp) / "nvidia-smi"
            fake.write_text(
                "#!/bin/sh\n"
                'case "$1" in\n'
                f'--query-compute-apps=*) cat "{RECORDED / "a100_x2.apps.out"}";;\n'
                f'*) cat "{RECORDED / "a100_x2.out"}";;\n'
                "esac\n"
            )
            fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
            command, what = str(fake), "fake nvidia-smi (sh + cat of a recorded output)"
        print(f"{what}, {args.calls} calls")
        for top_n, label in ((0, "--query-gpu only"), (10, "with --query-compute-apps")):
            collector = GpuCollector(ProcFS(), command=command, process_top_n=top_n)
            collector.collect(0.0)  # warm-up
            wall0, cpu0 = time.perf_counter(), time.process_time()
            child0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            for i in range(args.calls):
                samples = collector.collect(float(i))
            child1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            wall = (time.perf_counter() - wall0) / args.calls
            cpu = (time.process_time() - cpu0) / args.calls
            child = child1.ru_utime + child1.ru_stime - child0.ru_utime - child0.ru_stime
            child /= args.calls
            print(
                f"  {label:<26} {len(samples):2d} samples: wall {wall * 1000:.2f} ms,"
                f" agent CPU {cpu * 1000:.2f} ms, child CPU {child * 1000:.2f} ms a call"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
