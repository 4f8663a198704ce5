"""Where the idle agent's CPU goes, by event-loop callback and by thread (issue 17, item 1).

    .venv/bin/python bench/idle.py [--secs 600] [--config config/sysops-agent.toml]

Runs ``sysops-agent run`` in this process (the same ``run_daemon`` on the
live host, in a scratch directory) for ``--secs`` seconds after a 15 s
warm-up, with the event loop instrumented:

- every callback the loop runs (``asyncio.Handle._run``) is timed with
  ``time.thread_time()`` and charged to its owner: for a task step, the
  task's coroutine (``Daemon._storage_loop``, ``CollectorScheduler._loop``
  ...); otherwise the callback itself;
- the loop's ``select`` (``epoll_wait``) is counted and timed the same way:
  each return is one wake-up of the main thread;
- each thread's CPU is read from ``/proc/self/task/<tid>/schedstat``
  (nanoseconds on a CPU) at both ends.

Prints, per owner, the wake-ups (calls) and CPU per minute, and the threads'
CPU; "loop overhead" is the main thread's CPU that no callback or select
accounts for (the loop's own bookkeeping, signal handling). The timing adds
about 1 µs a callback: compare runs of this script with each other, and take
the totals from ``bench/footprint.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable, Counter, Dict

ROOT = Path(__file__).resolve().parent.parent
WARMUP = 15.0


def owner(handle: asyncio.Handle) -> str:
    cb: Any = getattr(handle, "_callback", None)
    target = getattr(cb, "__self__", None)
    if isinstance(target, asyncio.Task):
        coro: Any = target.get_coro()
        return str(getattr(coro, "__qualname__", coro))
    if isinstance(target, asyncio.Future):
        return "future callback"
    name = getattr(cb, "__qualname__", None) or repr(cb)
    return str(name)


class Meter:
    def __init__(self) -> None:
        self.on = False
        self.calls: Counter[str] = collections.Counter()
        self.cpu: Dict[str, float] = collections.defaultdict(float)

    def add(self, key: str, spent: float) -> None:
        if self.on:
            self.calls[key] += 1
            self.cpu[key] += spent


def instrument(meter: Meter) -> None:
    run: Callable[[asyncio.Handle], None] = asyncio.Handle._run

    def timed_run(self: asyncio.Handle) -> None:
        t0 = time.thread_time()
        try:
            run(self)
        finally:
            meter.add(owner(self), time.thread_time() - t0)

    asyncio.Handle._run = timed_run  # type: ignore[method-assign]
    import selectors

    select = selectors.EpollSelector.select

    def timed_select(self: Any, timeout: Any = None) -> Any:
        t0 = time.thread_time()
        try:
            return select(self, timeout)
        finally:
            meter.add("(epoll_wait: one wake-up of the loop)", time.thread_time() - t0)

    selectors.EpollSelector.select = timed_select  # type: ignore[method-assign]


def thread_cpu() -> Dict[str, float]:
    names = {t.native_id: t.name for t in threading.enumerate()}
    out: Dict[str, float] = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/schedstat") as f:
                ns = int(f.read().split()[0])
        except (OSError, ValueError):
            continue
        name = names.get(int(tid), f"tid {tid}")
        out[name] = out.get(name, 0.0) + ns / 1e9
    return out


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--secs", type=float, default=600.0)
    parser.add_argument("--config", default=str(ROOT / "config" / "sysops-agent.toml"))
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()

    from sysops_agent import lazyssl

    lazyssl.import_asyncio()
    from sysops_agent.agent_logging import setup_logging
    from sysops_agent.config import load_config
    from sysops_agent.daemon import run_daemon
    from sysops_agent.redact import Redactor

    meter = Meter()
    instrument(meter)
    config = os.path.abspath(args.config)
    marks: Dict[str, Any] = {}

    async def measured() -> int:
        loop = asyncio.get_running_loop()

        def begin() -> None:
            meter.on = True
            marks["t0"], marks["threads0"] = time.monotonic(), thread_cpu()

        def end() -> None:
            meter.on = False
            marks["t1"], marks["threads1"] = time.monotonic(), thread_cpu()
            os.kill(os.getpid(), signal.SIGTERM)

        loop.call_later(WARMUP, begin)
        loop.call_later(WARMUP + args.secs, end)
        loaded = load_config(config)
        setup_logging("warning", "", Redactor(loaded.secrets.values()))
        return await run_daemon(loaded, config)

    with tempfile.TemporaryDirectory(prefix="sysops-idle-") as tmp:
        os.chdir(tmp)
        asyncio.run(measured())

    minutes = (marks["t1"] - marks["t0"]) / 60
    threads0, threads1 = marks["threads0"], marks["threads1"]
    spent = {n: threads1[n] - threads0.get(n, 0.0) for n in threads1}
    main_cpu = spent.get("MainThread", 0.0)
    accounted = sum(meter.cpu.values())
    print(
        f"python {sys.version.split()[0]}, {args.secs:.0f} s after {WARMUP:.0f} s of warm-up,"
        f" config {args.config}"
    )
    print()
    print(f"{'main thread: owner':<60} {'calls/min':>10} {'CPU ms/min':>11} {'share':>6}")
    rows = sorted(meter.cpu.items(), key=lambda kv: -kv[1])
    for name, cpu in rows[: args.top]:
        print(
            f"{name[:60]:<60} {meter.calls[name] / minutes:10.1f} {cpu * 1000 / minutes:11.2f}"
            f" {cpu / main_cpu * 100 if main_cpu else 0:5.1f}%"
        )
    rest = main_cpu - accounted
    print(
        f"{'loop overhead (not in a callback or select)':<60} {'':>10} {rest * 1000 / minutes:11.2f}"
    )
    print()
    print(f"{'thread':<60} {'':>10} {'CPU ms/min':>11}")
    for name, cpu in sorted(spent.items(), key=lambda kv: -kv[1]):
        print(f"{name:<60} {'':>10} {cpu * 1000 / minutes:11.2f}")
    total = sum(spent.values())
    print(
        f"{'all threads':<60} {'':>10} {total * 1000 / minutes:11.2f}"
        f"  = {total / (marks['t1'] - marks['t0']) * 100:.3f} % of one core"
    )
    print(
        f"main-thread wake-ups: {meter.calls['(epoll_wait: one wake-up of the loop)'] / minutes:.1f}/min"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
