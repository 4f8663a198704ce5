"""The RSS a Python daemon starts from, beside node_exporter's (issue 17, item 2).

    .venv/bin/python bench/rss_floor.py [--node-exporter-secs 20]

Each row is a fresh interpreter (this one, ``-I`` with the agent's
``src`` on the path) that imports a set of modules, then reports its own
``VmRSS``, ``RssAnon`` and ``RssFile`` from ``/proc/self/status``:

- the bare interpreter;
- the standard library any daemon with this one's duties needs, without
  asyncio: logging, re, json, sqlite3 (the history), threading, selectors,
  socket, struct, signal, typing (everything else the agent uses on top is
  left out, so this is a lower bound);
- that set with asyncio, OpenSSL left out as the agent does
  (``sysops_agent.lazyssl``);
- asyncio as a plain ``import asyncio`` loads it (OpenSSL mapped);
- the agent's daemon path: ``lazyssl.import_asyncio()`` then
  ``sysops_agent.commands.run`` and ``sysops_agent.daemon`` imported, no
  state built (the running agent adds its buffers and threads on top).

Then, if ``prometheus-node-exporter`` (or ``node_exporter``) is installed, it
is started on a loopback port with its default collectors, left unscraped for
``--node-exporter-secs`` and its RSS read, then scraped once and read again.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import List, Optional, Tuple

from footprint import MiB, rss
from peerbench import free_port

ROOT = Path(__file__).resolve().parent.parent

DAEMON_STDLIB = "logging re json sqlite3 threading selectors socket struct signal typing"

CASES: List[Tuple[str, str]] = [
    ("bare interpreter", ""),
    (
        "+ a daemon's stdlib, no asyncio",
        "".join(f"import {m}\n" for m in DAEMON_STDLIB.split()),
    ),
    (
        "+ asyncio, OpenSSL left out",
        "".join(f"import {m}\n" for m in DAEMON_STDLIB.split())
        + "sys.modules['ssl'] = None\nimport asyncio\ndel sys.modules['ssl']\n",
    ),
    ("plain import asyncio (OpenSSL mapped)", "import asyncio\n"),
    (
        "the agent's daemon path, no state",
        "from sysops_agent import lazyssl\nlazyssl.import_asyncio()\n"
        "import sysops_agent.commands.run\nimport sysops_agent.daemon\n",
    ),
]

REPORT = (
    "print(' '.join(l.split()[1] for l in open('/proc/self/status')"
    " if l.startswith(('VmRSS', 'RssAnon', 'RssFile'))))\n"
)


def measure(code: str) -> Tuple[float, float, float]:
    """(VmRSS, RssAnon, RssFile) in MiB of a fresh interpreter that ran ``code``."""
    prelude = f"import sys\nsys.path.insert(0, {str(ROOT / 'src')!r})\n"
    out = subprocess.run(
        [sys.executable, "-I", "-c", prelude + code + REPORT],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    vm, anon, file_ = (int(v) / 1024 for v in out)
    return vm, anon, file_


def node_exporter(secs: float) -> Optional[Tuple[float, float]]:
    """node_exporter's RSS (MiB) unscraped after ``secs``, then after one scrape."""
    binary = shutil.which("prometheus-node-exporter") or shutil.which("node_exporter")
    if binary is None:
        return None
    port = free_port()
    proc = subprocess.Popen(
        [binary, f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(secs)
        idle = rss(proc.pid) / MiB
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
            r.read()
        time.sleep(1.0)
        return idle, rss(proc.pid) / MiB
    finally:
        proc.terminate()
        proc.wait(10)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--node-exporter-secs", type=float, default=20.0)
    args = parser.parse_args(argv)
    print(f"python {sys.version.split()[0]}; MiB of RSS (anonymous + file-backed)")
    print(f"{'':42} {'RSS':>6} {'anon':>6} {'file':>6}")
    for label, code in CASES:
        vm, anon, file_ = measure(code)
        print(f"{label:42} {vm:6.1f} {anon:6.1f} {file_:6.1f}")
    ne = node_exporter(args.node_exporter_secs)
    if ne is None:
        print("node_exporter: not installed (make bench-deps)")
    else:
        print(f"{'node_exporter, unscraped':42} {ne[0]:6.1f}")
        print(f"{'node_exporter, after one scrape':42} {ne[1]:6.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
