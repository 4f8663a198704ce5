"""The agent with every ring buffer full, for ``bench/footprint.py`` (which starts it).

    .venv/bin/python bench/full_agent.py [--series 300] [--samples 8640]

Runs what ``sysops-agent run --config config/sysops-agent.toml`` runs, in a
process that imports nothing else (the measurement is this process's RSS):
the command line's modules, then the daemon. Before the collectors start, the
store is preloaded with ``--series`` series of ``--samples`` samples (24 h at
10 s) ending now, arriving in 10-minute chunks with an analyzer pass after
each, so the analyzers hold the state a day of running builds (not one pass
over 2.6 million "new" samples, which no running agent sees). Prints
``bench: store preloaded`` on stderr, then serves until SIGTERM.
"""

from __future__ import annotations

import math
import signal
import sys
import time
from pathlib import Path

from sysops_agent import cli, lazyssl

BUNDLED_CONFIG = Path(__file__).resolve().parent.parent / "config" / "sysops-agent.toml"


def main() -> int:
    lazyssl.import_asyncio()  # as cli.main does
    parser = cli.build_parser()  # imports every command module, as cli.main does
    parser.add_argument("--series", type=int, default=300)
    parser.add_argument("--samples", type=int, default=8640)
    args = parser.parse_args(sys.argv[1:])

    import asyncio

    from sysops_agent import daemon as daemon_mod
    from sysops_agent.analyzers.registry import build_analyzers
    from sysops_agent.config import load_config
    from sysops_agent.logsetup import setup_logging
    from sysops_agent.model import make_labels
    from sysops_agent.redact import Redactor

    loaded = load_config(BUNDLED_CONFIG)
    setup_logging("info", "", Redactor(()))

    async def serve() -> int:
        d = daemon_mod.Daemon(loaded, str(BUNDLED_CONFIG))
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, d.request_stop)
        analyzers = build_analyzers(loaded.config, d.hostname)
        keys = [(f"bench_series_{i % 30}", make_labels(series=str(i))) for i in range(args.series)]
        start = time.time() - args.samples * 10.0
        chunk = 60
        for first in range(0, args.samples, chunk):
            for i, (metric, labels) in enumerate(keys):
                for j in range(first, min(first + chunk, args.samples)):
                    value = 50.0 + 10.0 * math.sin(j / 60.0 + i)
                    d.store.add(start + j * 10.0, metric, value, labels)
            for a in analyzers:
                a.analyze(d.store, start + (first + chunk) * 10.0)
        await d.start()
        d.analyzers = analyzers  # before their first pass: keep the state built above
        if d.sqlite is not None:
            # A running agent wrote this history minute by minute; its first flush must not
            # aggregate 24 h at once (a transient no running agent sees): start it at now.
            d.sqlite._since = time.time()
        print(f"bench: store preloaded with {len(d.store)} series", file=sys.stderr, flush=True)
        try:
            await d.serve()
        finally:
            await d.shutdown()
        return 0

    return asyncio.run(serve())


if __name__ == "__main__":
    raise SystemExit(main())
