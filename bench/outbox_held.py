"""What keeping group windows in the outbox costs: one fsynced transaction per change.

Run: ``.venv/bin/python bench/outbox_held.py [N]``. On a temporary directory of the
same disk as ``/tmp``, times N of each (median of 3 rounds, wall time, per operation):

- ``put``: one message queued (the existing per-message write, the peer);
- ``hold``: one alert entering a group window (what a batching channel now writes);
- ``release``: a window closing: its message queued and its alerts released, one
  transaction.

A group of k alerts costs k ``hold`` + one ``release``, against one ``put`` before.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, List

from sysops_agent.alerting.outbox import Outbox
from sysops_agent.model import Alert, Severity, make_labels


def alert(i: int) -> Alert:
    return Alert(
        timestamp=1_700_000_000.0 + i,
        hostname="web1",
        severity=Severity.WARN,
        metric="disk_usage_percent",
        value=91.0,
        threshold=90.0,
        message="disk usage 91.0% exceeds the warn level 90%",
        analyzer="threshold",
        labels=make_labels(mountpoint=f"/srv/{i}", device=f"/dev/sd{i}"),
    )


def timed(n: int, op: Callable[[int], None]) -> float:
    rounds: List[float] = []
    for _ in range(3):
        start = time.perf_counter()
        for i in range(n):
            op(i)
        rounds.append((time.perf_counter() - start) / n)
    return statistics.median(rounds)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    with tempfile.TemporaryDirectory(dir="/tmp") as tmp:
        box = Outbox(str(Path(tmp) / "outbox.db"), max_count=10**9, max_bytes=10**12)
        alerts = [alert(i) for i in range(n)]
        put = timed(n, lambda i: box.put("slack", [alerts[i]], float(i)))
        hold = timed(n, lambda i: box.commit("slack", [], float(i), hold=[alerts[i]]))
        release = timed(
            n,
            lambda i: box.commit("slack", [[alerts[i]]], float(i), release=[alerts[i].id]),
        )
        box.close()
    print(f"outbox in a temporary directory under /tmp, {n} operations x 3 rounds (median):")
    print(f"  put (peer)  {put * 1e3:8.3f} ms")
    print(f"  hold        {hold * 1e3:8.3f} ms  ({hold / put:.2f} x put)")
    print(f"  release     {release * 1e3:8.3f} ms  ({release / put:.2f} x put)")
    print(f"  a group of 5 alerts: {(5 * hold + release) / put:.1f} x one put before")


if __name__ == "__main__":
    main()
