"""Soak test: the whole agent for hours, every channel busy; prints the RSS slope.

    .venv/bin/python bench/soak.py [--duration 7200] [--warmup 600] [--sighup-every 60]
                                   [--burst-every 30] [--burst-lines 2000] [--sample-every 10]
                                   [--ring-samples 120] [--tracemalloc]

Runs ``sysops-agent run`` as a subprocess on the real ``/proc`` with 1 s
collector and analyzer intervals, SQLite history and the Prometheus exporter
on (scraped every 10 s), and every channel enabled, each pointed at a
receiver on loopback started here: one threaded HTTP server for Discord,
Slack, Telegram (``api_base_url``), the webhook and Alertmanager (all answer
200), an SMTP server (``aiosmtpd``) for e-mail and a UDP socket for syslog.
The heartbeat pings the same HTTP server every 5 s.

To keep the alert pipeline busy, every ``--sighup-every`` seconds the config
is rewritten with the memory warn level flipped between 1 % and 99 % and the
agent gets SIGHUP (so alerts fire, are handed over and resolve with "rule
changed by reload" on every reload), and every ``--burst-every`` seconds
``--burst-lines`` segfault lines with distinct pids are appended to a log
file the agent follows.

The agent's RSS (``VmRSS``) is read every ``--sample-every`` seconds; after
``--warmup`` the least-squares slope is printed in MiB per hour, per day of
soak and per simulated day (``SPEED_UP``: the soak does ten days' work of the
bundled config in a day; the target is flat: at most 1 MiB per simulated
day), with the RSS at the end of the
warm-up and at the end, then the slope over the second half of that time
and over each 10 minutes (a cache filling up slows down and stops; creep
keeps its pace). A short run gives a noisy slope: say how long it ran.

The in-memory history grows by design until every ring buffer is full (24 h
of samples, at most ``ring_buffer_samples`` per series): with 1 s intervals
and the default 8,640 samples that takes 2.4 h, and 12 h for the 5 s
series, so a slope measured before is the history filling up, not a leak.
The soak therefore sets ``[storage] ring_buffer_samples`` to
``--ring-samples`` (120: the 5 s series are full after 600 s, the default
warm-up), and also prints the slope of the agent's own
``agent_store_bytes`` (scraped from ``/metrics``) and of the RSS minus it.
``--tracemalloc`` runs the agent with ``tracemalloc`` on, takes a snapshot
at the end of the warm-up and one at the end (SIGUSR2) and prints the
fifteen allocation sites that grew most in between.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, List, Optional, Tuple

ROOT = Path(__file__).resolve().parent.parent
#: the soak collects and analyses this many times as often as the bundled config
#: (cpu, memory, load, disk and network I/O, the analyzers: 1 s instead of 10 s;
#: processes 2 s instead of 30 s; disk usage 5 s instead of 60 s): an hour of soak
#: is ten hours of an agent's work, a simulated day 2.4 h (plus 60 reloads and
#: 120 log bursts an hour, which no host sees)
SPEED_UP = 10.0
#: the RSS slope is also printed over spans of this many seconds (growth that
#: slows down and stops is a cache filling up; creep keeps its pace)
SPAN_SECS = 600.0


class _Http(BaseHTTPRequestHandler):
    requests = 0

    def _ok(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        _Http.requests += 1
        body = b'{"ok":true,"result":{}}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = _ok
    do_POST = _ok

    def log_message(self, *args: Any) -> None:
        pass


def start_http() -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Http)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def start_smtp() -> Tuple[Any, int]:
    from aiosmtpd.controller import Controller

    class Sink:
        messages = 0

        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            Sink.messages += 1
            return "250 OK"

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    controller = Controller(Sink(), hostname="127.0.0.1", port=port)
    controller.start()
    return controller, port


def start_syslog() -> Tuple[socket.socket, int]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))

    def drain() -> None:
        while True:
            try:
                sock.recv(65536)
            except OSError:
                return

    threading.Thread(target=drain, daemon=True).start()
    return sock, sock.getsockname()[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def config_text(
    tmp: Path, http: str, smtp_port: int, syslog_port: int, prom_port: int, warn: float, ring: int
) -> str:
    return f"""
[agent]
hostname = "soak"
log_level = "warning"
data_dir = "{tmp / "data"}"
pid_file = ""

[collector.cpu]
interval_secs = 1
[collector.memory]
interval_secs = 1
[collector.load]
interval_secs = 1
[collector.disk_usage]
interval_secs = 5
[collector.disk_io]
interval_secs = 1
[collector.network]
interval_secs = 1
[collector.process]
interval_secs = 2
[collector.fd]
interval_secs = 5
[collector.log]
enabled = true
kmsg = false
journal = false
files = ["{tmp / "app.log"}"]

[analyzer]
interval_secs = 1

[thresholds.memory_usage_percent]
warn = {warn}
critical = {99.5 if warn > 90 else 95.0}
emergency = 99.9

[storage]
sqlite = true
ring_buffer_samples = {ring}

[prometheus]
enabled = true
port = {prom_port}

[alerting]
group_window_secs = 1
rate_limit_per_minute = 60
rate_limit_burst = 20

[alerting.heartbeat]
url = "{http}/ping/soak"
interval_secs = 5

[alerting.console]
enabled = false
[alerting.discord]
enabled = true
webhook_url = "{http}/discord"
[alerting.slack]
enabled = true
webhook_url = "{http}/slack"
[alerting.telegram]
enabled = true
bot_token = "123:abc"
chat_id = "1"
api_base_url = "{http}"
[alerting.webhook]
enabled = true
url = "{http}/hook"
[alerting.email]
enabled = true
smtp_host = "127.0.0.1"
smtp_port = {smtp_port}
security = "none"
from_addr = "agent@example.com"
to_addrs = ["ops@example.com"]
[alerting.syslog]
enabled = true
address = "127.0.0.1:{syslog_port}"
[alerting.alertmanager]
enabled = true
url = "{http}"
"""


#: run the agent with tracemalloc; SIGUSR2 dumps a snapshot to $SOAK_SNAPSHOT.<n>
TRACED_AGENT = """
import os, signal, sys, tracemalloc
tracemalloc.start(10)
_n = [0]
def _dump(signum, frame):
    _n[0] += 1
    tracemalloc.take_snapshot().dump(os.environ["SOAK_SNAPSHOT"] + "." + str(_n[0]))
signal.signal(signal.SIGUSR2, _dump)
from sysops_agent.cli import main
sys.exit(main(sys.argv[1:]))
"""


def print_growth(first: Path, second: Path, top: int = 15) -> None:
    import tracemalloc

    old = tracemalloc.Snapshot.load(str(first))
    new = tracemalloc.Snapshot.load(str(second))
    keep = [tracemalloc.Filter(False, tracemalloc.__file__)]
    stats = new.filter_traces(keep).compare_to(old.filter_traces(keep), "traceback")
    total = sum(s.size_diff for s in stats)
    print(f"traced Python heap grew {total / 2**20:+.2f} MiB between the snapshots; top sites:")
    for stat in stats[:top]:
        frame = stat.traceback[-1] if stat.traceback else None
        where = f"{frame.filename}:{frame.lineno}" if frame else "?"
        print(f"  {stat.size_diff / 1024:+9.1f} KiB {stat.count_diff:+7d} blocks  {where}")
        for f in list(stat.traceback)[-4:-1][::-1]:
            print(f"        from {f.filename}:{f.lineno}")


def scrape_store_bytes(prom_port: int) -> Optional[float]:
    """``sysops_agent_store_bytes`` from the agent's /metrics, or None."""
    try:
        body = urllib.request.urlopen(f"http://127.0.0.1:{prom_port}/metrics", timeout=5).read()
    except OSError:
        return None
    for line in body.decode("utf-8", "replace").splitlines():
        if line.startswith("sysops_agent_store_bytes"):
            return float(line.rsplit(" ", 1)[1])
    return None


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def slope_per_hour(points: List[Tuple[float, float]]) -> float:
    n = len(points)
    mt = sum(t for t, _ in points) / n
    mv = sum(v for _, v in points) / n
    num = sum((t - mt) * (v - mv) for t, v in points)
    den = sum((t - mt) ** 2 for t, _ in points) or 1.0
    return num / den * 3600.0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--duration", type=float, default=7200.0)
    p.add_argument("--warmup", type=float, default=600.0)
    p.add_argument("--sighup-every", type=float, default=60.0)
    p.add_argument("--burst-every", type=float, default=30.0)
    p.add_argument("--burst-lines", type=int, default=2000)
    p.add_argument("--sample-every", type=float, default=10.0)
    p.add_argument("--ring-samples", type=int, default=120, help="[storage] ring_buffer_samples")
    p.add_argument("--tracemalloc", action="store_true", help="print the heap's top growth")
    p.add_argument("--progress", type=Path, help="append 'seconds rss_mib store_bytes' lines")
    args = p.parse_args()
    if args.warmup >= args.duration:
        p.error("--warmup must be shorter than --duration")

    asyncio.set_event_loop_policy(None)  # aiosmtpd's controller makes its own loop
    http = start_http()
    smtp, smtp_port = start_smtp()
    syslog_sock, syslog_port = start_syslog()
    http_url = f"http://127.0.0.1:{http.server_address[1]}"
    prom_port = free_port()
    tmp = Path(tempfile.mkdtemp(prefix="sysops-soak-"))
    (tmp / "app.log").write_text("")
    cfg = tmp / "agent.toml"

    def write_config(warn: float) -> None:
        cfg.write_text(
            config_text(tmp, http_url, smtp_port, syslog_port, prom_port, warn, args.ring_samples)
        )
        cfg.chmod(0o600)

    warn = 1.0
    write_config(warn)
    env = dict(os.environ, SOAK_SNAPSHOT=str(tmp / "heap"))
    command = ["-c", TRACED_AGENT] if args.tracemalloc else ["-m", "sysops_agent"]
    agent = subprocess.Popen(
        [sys.executable, *command, "run", "--config", str(cfg)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(tmp / "agent.err", "w"),  # noqa: SIM115 - open for the child's lifetime
        cwd=ROOT,
    )
    start = time.monotonic()
    next_hup = start + args.sighup_every
    next_burst = start + args.burst_every
    next_sample = start
    next_scrape = start + 10
    samples: List[Tuple[float, float]] = []
    store: List[Tuple[float, float]] = []
    snapshot_taken = False
    pid_counter = 100_000
    reloads = bursts = 0
    try:
        while True:
            now = time.monotonic()
            elapsed = now - start
            if elapsed >= args.duration or agent.poll() is not None:
                break
            if now >= next_sample:
                samples.append((elapsed, rss_kib(agent.pid) / 1024.0))
                held = scrape_store_bytes(prom_port)
                if held is not None:
                    store.append((elapsed, held / 2**20))
                if args.progress is not None:
                    with open(args.progress, "a") as out:
                        out.write(f"{elapsed:.0f} {samples[-1][1]:.3f} {held or 0.0:.0f}\n")
                next_sample += args.sample_every
            if args.tracemalloc and not snapshot_taken and elapsed >= args.warmup:
                agent.send_signal(signal.SIGUSR2)
                snapshot_taken = True
            if now >= next_hup:
                warn = 99.0 if warn == 1.0 else 1.0
                write_config(warn)
                agent.send_signal(signal.SIGHUP)
                reloads += 1
                next_hup += args.sighup_every
            if now >= next_burst:
                with open(tmp / "app.log", "a") as f:
                    for _ in range(args.burst_lines):
                        pid_counter += 1
                        f.write(
                            f"Dec  1 00:00:00 soak kernel: app{pid_counter % 50}[{pid_counter}]:"
                            " segfault at 0 ip 0 sp 0 error 4 in libc.so[7f00+1000]\n"
                        )
                bursts += 1
                next_burst += args.burst_every
            if now >= next_scrape:
                with contextlib.suppress(OSError):
                    urllib.request.urlopen(
                        f"http://127.0.0.1:{prom_port}/metrics", timeout=5
                    ).read()
                next_scrape += 10
            time.sleep(0.2)
    finally:
        alive = agent.poll() is None
        if alive and args.tracemalloc and snapshot_taken:
            agent.send_signal(signal.SIGUSR2)
            time.sleep(20)  # the snapshot of a traced heap takes a while
        agent.send_signal(signal.SIGTERM)
        agent.wait(30)
        http.shutdown()
        smtp.stop()
        syslog_sock.close()
    ran = time.monotonic() - start
    after = [(t, v) for t, v in samples if t >= args.warmup]
    print(f"ran {ran:.0f} s ({ran / 3600:.2f} h), agent alive at the end: {alive}")
    print(f"reloads: {reloads}, log bursts: {bursts} x {args.burst_lines} lines")
    print(f"HTTP requests received: {_Http.requests}")
    if len(after) < 3:
        print("too few samples after the warm-up for a slope")
        return 1
    slope = slope_per_hour(after)
    print(f"RSS at start {samples[0][1]:.1f} MiB, after warm-up {after[0][1]:.1f} MiB,")
    print(f"    at the end {after[-1][1]:.1f} MiB, max {max(v for _, v in samples):.1f} MiB")
    print(
        f"RSS slope after {args.warmup:.0f} s warm-up: {slope:+.3f} MiB/h"
        f" = {slope * 24:+.2f} MiB per day of soak"
        f" = {slope * 24 / SPEED_UP:+.2f} MiB per simulated day (target: <= 1)"
    )
    half = after[len(after) // 2 :]
    if len(half) >= 3:
        print(
            f"    over the second half ({half[0][0]:.0f} s to the end):"
            f" {slope_per_hour(half):+.3f} MiB/h"
            f" = {slope_per_hour(half) * 24 / SPEED_UP:+.2f} MiB per simulated day"
        )
    spans = [
        [(t, v) for t, v in after if lo <= t < lo + SPAN_SECS]
        for lo in range(int(args.warmup), int(after[-1][0]), int(SPAN_SECS))
    ]
    print(
        f"    each {SPAN_SECS / 60:.0f} minutes after the warm-up (MiB/h): "
        + ", ".join(f"{slope_per_hour(span):+.2f}" for span in spans if len(span) >= 3)
    )
    held = [(t, v) for t, v in store if t >= args.warmup]
    if len(held) >= 3:
        by_time = dict(held)
        rest = [(t, v - by_time[t]) for t, v in after if t in by_time]
        print(
            f"in-memory history (agent_store_bytes): {held[0][1]:.2f} -> {held[-1][1]:.2f} MiB,"
            f" slope {slope_per_hour(held):+.3f} MiB/h; RSS minus it:"
            f" {slope_per_hour(rest):+.3f} MiB/h"
        )
    first, second = tmp / "heap.1", tmp / "heap.2"
    if args.tracemalloc and first.exists() and second.exists():
        print_growth(first, second)
    print(f"agent stderr: {tmp / 'agent.err'}")
    return 0 if alive else 1


if __name__ == "__main__":
    raise SystemExit(main())
