"""The agent with every ring buffer full, for ``bench/footprint.py`` (which starts it).

    .venv/bin/python bench/full_agent.py [--series 300] [--samples 8640] [--values wave|noise]
                                         [--agent-config PATH]

Runs what ``sysops-agent run --config config/sysops-agent.toml`` runs, in a
process that imports nothing else (the measurement is this process's RSS):
the command line's modules, then the daemon. Before the collectors start, the
store is preloaded with ``--series`` series of at least ``--samples`` samples
(24 h at 10 s) ending now, the way a running agent receives them: one 10 s
step at a time with an analyzer pass after each (the default
``analyzer.interval_secs``), so the analyzers hold the state a day of running
builds and the heap has seen a day's allocation pattern (not a few big bursts,
which leave the allocator fragmented as no running agent is). Series ``i``
gets ``i * BLOCK / series`` samples more than a full buffer: full buffers all,
with their open hour-blocks spread evenly from empty to nearly full, as on a
host that has run for a while (not all sealed at the same instant). Takes
about 20 s. Prints ``bench: store preloaded`` on stderr, then serves until
SIGTERM.

``--values wave`` (the default) gives every series a smooth wave, 50 + 10 sin,
a period of about an hour: a gauge that never stands still. ``--values noise``
gives uniform white noise in [0, 100): the worst case for the ring buffers
(real series lie between: counters and totals that barely move, noisy rates
and percentages). The series are percentages, stored at their unit's
resolution (0.05 points) like every collector's: the noise then holds
log2(2,001) bits a sample, no longer float32's 24 random mantissa bits.
"""

from __future__ import annotations

import math
import os
import signal
import sys
import time

from sysops_agent import cli, lazyssl

# (os.path, not pathlib: this process must import only what the agent imports)
BUNDLED_CONFIG = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "config", "sysops-agent.toml"
)


def main() -> int:
    lazyssl.import_asyncio()  # as cli.main does
    parser = cli.build_parser(["run"])  # imports what cli.main imports for `run`
    parser.add_argument("--series", type=int, default=300)
    parser.add_argument("--samples", type=int, default=8640)
    parser.add_argument("--values", choices=["wave", "noise"], default="wave")
    parser.add_argument("--agent-config", default=BUNDLED_CONFIG, help="instead of the bundled")
    args = parser.parse_args(sys.argv[1:])

    import asyncio

    from sysops_agent import daemon as daemon_mod
    from sysops_agent.agent_logging import setup_logging
    from sysops_agent.analysis import AnalysisTick
    from sysops_agent.analyzers.registry import build_analyzers
    from sysops_agent.config import load_config
    from sysops_agent.model import make_labels
    from sysops_agent.redact import Redactor
    from sysops_agent.storage.ringbuffer import BLOCK

    config_path = args.agent_config  # bench/footprint.py's fleet-full part sets it
    loaded = load_config(config_path)
    setup_logging("info", "", Redactor(()))

    async def serve() -> int:
        d = daemon_mod.Daemon(loaded, config_path)
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, d.request_stop)
        analyzers = build_analyzers(loaded.config, d.hostname)
        # percentages (stored at 0.05, their unit's resolution, as every collector's series are)
        keys = [
            (f"bench_series_{i % 30}_percent", make_labels(series=str(i)))
            for i in range(args.series)
        ]
        steps = args.samples + BLOCK
        first_step = [BLOCK - (i * BLOCK) // args.series for i in range(args.series)]
        start = time.time() - steps * 10.0
        noise = args.values == "noise"
        for j in range(steps):
            ts = start + j * 10.0
            # (os.urandom, not random: this process imports only what the agent does)
            rand = memoryview(os.urandom(4 * args.series)).cast("I") if noise else None
            for i, (metric, labels) in enumerate(keys):
                if j >= first_step[i]:
                    if rand is not None:
                        value = rand[i] / 2**32 * 100.0
                    else:
                        value = 50.0 + 10.0 * math.sin(j / 60.0 + i)
                    d.store.add(ts, metric, value, labels)
            for a in analyzers:
                a.analyze(d.store, ts + 10.0)
        await d.start()
        d.analysis = AnalysisTick(analyzers)  # before their first pass: keep the state built above
        if d.sqlite is not None:
            # A running agent wrote this history minute by minute; its first flush must not
            # aggregate 24 h at once (a transient no running agent sees): start it at now.
            d.sqlite._since = time.time()
        if d.remote_writer is not None:
            # A running agent pushed these points as they came: its next push holds only
            # the points that arrive from now on (not 24 h at once, which no agent sends).
            d.remote_writer._cursors = {key: buf.total for key, buf in d.store.series()}
        print(f"bench: store preloaded with {len(d.store)} series", file=sys.stderr, flush=True)
        try:
            await d.serve()
        finally:
            await d.shutdown()
        return 0

    return asyncio.run(serve())


if __name__ == "__main__":
    raise SystemExit(main())
