"""A log storm: 50,000 segfaults from distinct processes, the CPU it costs and what is queued.

    .venv/bin/python bench/logstorm.py [--lines 50000] [--runs 5]

The real log watcher (file source, matcher, event pipeline) follows a syslog file on
a virtual clock; the storm (``--lines`` segfault lines, each from a new process name
and pid, so each a new burst key) is appended at once, then the watcher is given one
simulated second to read it and the burst window to report it. Its alerts go into the
daemon's real alert queue (``queues.DropOldestQueue`` with ``ALERT_QUEUE_CAPACITY``).
Printed per run: CPU seconds of the watcher for the whole storm (reading, matching,
folding; writing the file is not counted), lines per CPU second, alerts queued,
alerts the queue dropped, and the storm summary's message. Best of ``--runs``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from typing import List, Tuple

from sysops_agent.clock import VirtualClock
from sysops_agent.logwatch.config import LogConfig
from sysops_agent.logwatch.watcher import LogWatcher
from sysops_agent.model import Alert
from sysops_agent.queues import ALERT_QUEUE_CAPACITY, DropOldestQueue

LINE = (
    b"Dec  1 06:00:00 web-01 kernel: [100.%06d] app%d[%d]: segfault at %x ip 00007f3a1c2b4e10 "
    b"sp 00007ffd5e8c1a40 error 4 in libc.so.6[7f3a1c200000+195000]\n"
)


async def one_run(workdir: str, lines: int) -> Tuple[float, List[Alert], int]:
    path = os.path.join(workdir, "syslog")
    open(path, "wb").close()
    clock = VirtualClock()
    queue: DropOldestQueue[Alert] = DropOldestQueue(
        ALERT_QUEUE_CAPACITY, monotonic=clock.monotonic, what="alerts"
    )
    cfg = LogConfig(kmsg=False, journal=False, files=[path], burst_window_secs=30)
    watcher = LogWatcher(
        cfg,
        hostname="bench",
        data_dir=os.path.join(workdir, "data"),
        clock=clock,
        syslog_paths=[],
        emit_alert=queue.put,
        emit_sample=lambda sample: None,
        kmsg_path=os.path.join(workdir, "no-kmsg"),
        journalctl="no-such-journalctl",
    )
    task = asyncio.ensure_future(watcher.run())
    await clock.advance(0)
    with open(path, "ab") as f:
        f.write(b"".join(LINE % (i % 1_000_000, i, i + 1, i) for i in range(lines)))
    cpu = time.process_time()
    await clock.advance(1)  # the file source polls once a second: the whole storm is read
    await clock.advance(30)  # the burst window closes: the summary
    cpu = time.process_time() - cpu
    await watcher.stop()
    await asyncio.wait_for(task, 5)
    return cpu, queue.drain(), queue.dropped


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lines", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    best = None
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="sysops-logstorm-") as workdir:
            result = asyncio.run(one_run(workdir, args.lines))
        if best is None or result[0] < best[0]:
            best = result
    assert best is not None
    cpu, alerts, dropped = best
    print(f"{args.lines:,} segfault lines from distinct processes, best of {args.runs}")
    print(f"CPU {cpu:.3f} s ({args.lines / max(cpu, 1e-9):,.0f} lines/s of CPU)")
    print(f"alerts queued {len(alerts):,}, dropped by the alert queue {dropped:,}")
    if alerts:
        print(f"first: {alerts[0].message[:120]}")
        print(f"last:  {alerts[-1].message[:240]}")


if __name__ == "__main__":
    main()
