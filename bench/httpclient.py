"""The agent's HTTP client against httpx: memory to load and use, and time per request.

    .venv/bin/python bench/httpclient.py [--requests 300] [--rounds 3]

Memory: in a fresh interpreter each (asyncio already imported, as in the
daemon, with ``lazyssl``'s deferral), VmRSS before the import, after it, and
after a client sent one plain-http POST to a loopback server (``+ssl``: then
one https request, so OpenSSL is loaded too).

Time: ``--requests`` POSTs of a small JSON body (an Alertmanager batch) to a
loopback HTTP/1.1 server in another process, sequentially, by httpx, by ours
with keep-alive, and by ours with a new connection per request
(``max_idle_per_origin=0``), alternating over ``--rounds``; the median wall
time per request and the connections each opened. Compare ratios within a
run: the machine is shared.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Dict, List

ROOT = Path(__file__).resolve().parent.parent

SERVER = """
import http.server, sys, threading
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        # one write: split writes meet Nagle and delayed ACKs (40 ms per keep-alive request)
        self.wfile.write(b"HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\n\\r\\nok")
    def log_message(self, *a): pass
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
"""

MEMORY = """
import sys
sys.path.insert(0, {src!r})
from sysops_agent import lazyssl
lazyssl.import_asyncio()
import asyncio
def rss():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
base = rss()
if {which!r} == "httpx":
    import httpx
    make = lambda: httpx.AsyncClient()
else:
    from sysops_agent import httpclient
    make = lambda: httpclient.AsyncClient(trust_env=False)
imported = rss()
async def main():
    async with make() as client:
        await client.post("http://127.0.0.1:{port}/", json=[{{"labels": {{"a": "b"}}}}])
asyncio.run(main())
used = rss()
import ssl
ssl.create_default_context()
print(f"{{imported - base:.1f}} {{used - base:.1f}} {{rss() - base:.1f}}")
"""

TIMING = """
import asyncio, sys, time
sys.path.insert(0, {src!r})
import httpx
from sysops_agent import httpclient
url = "http://127.0.0.1:{port}/"
body = [{{"labels": {{"alertname": "X", "instance": "web-1"}}, "annotations": {{}}}}] * 5
async def run(which):
    if which == "httpx":
        client = httpx.AsyncClient()
    else:
        client = httpclient.AsyncClient(
            trust_env=False, max_idle_per_origin=2 if which == "ours" else 0
        )
    async with client:
        await client.post(url, json=body)
        start = time.perf_counter()
        for _ in range({n}):
            r = await client.post(url, json=body)
            assert r.status_code == 200
        per = (time.perf_counter() - start) / {n}
    opened = getattr(client, "connections_opened", "-")
    print(which, f"{{per * 1e3:.3f}}", opened)
for which in sys.argv[1:]:
    asyncio.run(run(which))
"""


def main(argv: List[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    src = str(ROOT / "src")
    server = subprocess.Popen([sys.executable, "-c", SERVER], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        print(f"python {sys.version.split()[0]}; RSS growth in MiB (median of {args.rounds})")
        print(f"{'client':<10} {'import':>8} {'+1 POST':>8} {'+ssl':>8}")
        for which in ("httpx", "ours"):
            runs = []
            for _ in range(args.rounds):
                code = MEMORY.format(src=src, which=which, port=port)
                out = subprocess.run(
                    [sys.executable, "-c", textwrap.dedent(code)],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                runs.append([float(x) for x in out.stdout.split()])
            cols = [statistics.median(r[i] for r in runs) for i in range(3)]
            print(f"{which:<10} {cols[0]:>8.1f} {cols[1]:>8.1f} {cols[2]:>8.1f}")
        times: Dict[str, List[float]] = {}
        opened: Dict[str, str] = {}
        order = ["httpx", "ours", "ours-no-keepalive"]
        for i in range(args.rounds):
            rotated = order[i % 3 :] + order[: i % 3]
            code = TIMING.format(src=src, port=port, n=args.requests)
            out = subprocess.run(
                [sys.executable, "-c", textwrap.dedent(code), *rotated],
                capture_output=True,
                text=True,
                check=True,
            )
            for line in out.stdout.splitlines():
                which, ms, conns = line.split()
                times.setdefault(which, []).append(float(ms))
                opened[which] = conns
        print(f"\n{args.requests} sequential POSTs to a loopback server, median of {args.rounds}")
        print(f"{'client':<20} {'ms/request':>10} {'connections':>12}")
        for which in order:
            print(f"{which:<20} {statistics.median(times[which]):>10.3f} {opened[which]:>12}")
    finally:
        server.kill()
        server.wait()
        if server.stdout is not None:
            server.stdout.close()


if __name__ == "__main__":
    main(sys.argv[1:])
