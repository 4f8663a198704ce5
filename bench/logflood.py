"""A flood of distinct log events: the log watcher's memory and CPU, minute by minute.

    .venv/bin/python bench/logflood.py [--minutes 30] [--rate 10000] [--every 1000]
                                       [--burst-window 30] [--dedup-window 10]

The real log watcher (file source, matcher, event pipeline) follows a syslog file
on a virtual clock: each simulated second, ``--rate`` lines are appended, one in
``--every`` an event never seen before (a segfault of a new process name, so a new
burst key and a new dedup fingerprint); the file is rotated (renamed) every
simulated minute as logrotate would. Alerts go to a counter (the alert pipeline is
not measured here). Printed per simulated minute: RSS of the process, CPU seconds the
watcher used in that minute (writing the file is not counted), lines/s it sustained,
and the size of its burst and dedup state next to their caps
(``bursts.MAX_BURST_KEYS``, ``events.MAX_FINGERPRINTS``). With the largest windows
(``--burst-window 3600 --dedup-window 300``) the caps are what bounds the state.
One new segfaulting process after another is a log storm (``bursts.STORM_KEYS``):
by default the pattern goes into storm mode and is counted, no bursts are kept;
``--no-storms`` turns storm detection off to measure the burst cap.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import sys
import tempfile
import time

from sysops_agent.clock import VirtualClock
from sysops_agent.logwatch import bursts, events
from sysops_agent.logwatch.config import LogConfig
from sysops_agent.logwatch.watcher import LogWatcher
from sysops_agent.model import Alert, Sample

NOISE = (
    b"Nov 24 00:00:00 web-01 kernel: [100.000000] [UFW BLOCK] IN=eth0 OUT= MAC=52:54:00:12:34:56 "
    b"SRC=10.1.2.3 DST=10.0.0.5 LEN=60 TTL=64 PROTO=TCP SPT=4242 DPT=22 SYN URGP=0\n",
    b"Nov 24 00:00:00 web-01 sshd[4242]: Accepted publickey for deploy from 10.1.2.3 port 4242\n",
    b"Nov 24 00:00:00 web-01 kernel: [100.000000] EXT4-fs (vda1): mounted filesystem with "
    b"ordered data mode. Quota mode: none.\n",
    b"Nov 24 00:00:00 web-01 CRON[4242]: (root) CMD (command -v debian-sa1 > /dev/null)\n",
)


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


async def run(args: argparse.Namespace, workdir: str) -> None:
    path = os.path.join(workdir, "syslog")
    open(path, "wb").close()
    clock = VirtualClock()
    alerts = 0

    def on_alert(alert: Alert) -> None:
        nonlocal alerts
        alerts += 1

    def on_sample(sample: Sample) -> None:
        pass

    cfg = LogConfig(
        kmsg=False,
        journal=False,
        files=[path],
        burst_window_secs=args.burst_window,
        dedup_window_secs=args.dedup_window,
        state_save_interval_secs=60,
    )
    watcher = LogWatcher(
        cfg,
        hostname="bench",
        data_dir=os.path.join(workdir, "data"),
        clock=clock,
        syslog_paths=[],
        emit_alert=on_alert,
        emit_sample=on_sample,
    )
    if args.no_storms:
        watcher.pipeline.bursts.storm_keys = 0
    task = asyncio.ensure_future(watcher.run())
    await clock.advance(0)
    await clock.advance(1)
    noise = b"".join(NOISE[i % len(NOISE)] for i in range(args.every - 1))
    per_second = args.rate // args.every
    event_no = 0
    f = open(path, "ab", buffering=1 << 20)  # noqa: SIM115 - reopened at each rotation
    print(
        f"{args.rate:,} lines/s, one new event per {args.every:,} lines ({per_second}/s), "
        f"burst window {args.burst_window:g} s, dedup window {args.dedup_window:g} s; caps: "
        f"{bursts.MAX_BURST_KEYS:,} bursts, {events.MAX_FINGERPRINTS:,} fingerprints"
    )
    print(
        f"{'minute':>6}{'RSS MiB':>9}{'CPU s':>8}{'CPU %':>7}{'lines/s cpu':>13}"
        f"{'bursts':>8}{'fprints':>9}{'alerts':>8}"
    )
    rss0 = rss_mib()
    print(f"{0:>6}{rss0:>9.1f}")
    first_cpu = None
    for minute in range(1, args.minutes + 1):
        cpu = 0.0
        for _ in range(60):
            for _ in range(per_second):
                event_no += 1
                f.write(noise)
                f.write(
                    b"Nov 24 00:00:00 web-01 kernel: [100.000000] app%d[%d]: segfault at %x ip 0 "
                    b"sp 0 error 4 in libc.so.6[7f0000000000+195000]\n"
                    % (event_no, event_no, event_no)
                )
            f.flush()
            c = time.process_time()
            await clock.advance(1)
            cpu += time.process_time() - c
        # logrotate: rename, a new file; the watcher reads the old one to its end
        f.close()
        os.replace(path, path + ".1")
        f = open(path, "ab", buffering=1 << 20)  # noqa: SIM115
        first_cpu = first_cpu or cpu
        print(
            f"{minute:>6}{rss_mib():>9.1f}{cpu:>8.3f}{100 * cpu / 60:>7.2f}"
            f"{60 * args.rate / max(cpu, 1e-9):>13,.0f}"
            f"{len(watcher.pipeline.bursts):>8,}{len(watcher.pipeline.dedup):>9,}{alerts:>8,}"
        )
        sys.stdout.flush()
    f.close()
    await watcher.stop()
    await asyncio.wait_for(task, 5)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"RSS {rss0:.1f} -> {rss_mib():.1f} MiB (peak {peak:.1f}); {event_no:,} distinct events")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=int, default=30)
    parser.add_argument("--rate", type=int, default=10_000, help="lines per second")
    parser.add_argument("--every", type=int, default=1000, help="one new event per N lines")
    parser.add_argument("--burst-window", type=float, default=30.0)
    parser.add_argument("--dedup-window", type=float, default=10.0)
    parser.add_argument(
        "--no-storms", action="store_true", help="storm detection off (measures the burst cap)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sysops-logflood-") as workdir:
        asyncio.run(run(args, workdir))


if __name__ == "__main__":
    main()
