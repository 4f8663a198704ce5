"""Soak test: the whole agent for hours, every channel busy; prints the RSS slope.

    .venv/bin/python bench/soak.py [--duration 7200] [--warmup 600] [--sighup-every 60]
                                   [--burst-every 30] [--burst-lines 2000] [--sample-every 10]

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
``--warmup`` the least-squares slope is printed in MiB per hour and per day
(the target is flat: at most 1 MiB per day), with the RSS at the end of the
warm-up and at the end. A short run gives a noisy slope: say how long it ran.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
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
from typing import Any, List, Tuple

ROOT = Path(__file__).resolve().parent.parent


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
    tmp: Path, http: str, smtp_port: int, syslog_port: int, prom_port: int, warn: float
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
        cfg.write_text(config_text(tmp, http_url, smtp_port, syslog_port, prom_port, warn))
        cfg.chmod(0o600)

    warn = 1.0
    write_config(warn)
    agent = subprocess.Popen(
        [sys.executable, "-m", "sysops_agent", "run", "--config", str(cfg)],
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
                next_sample += args.sample_every
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
        f" = {slope * 24:+.2f} MiB/day (target: <= 1 MiB/day)"
    )
    print(f"agent stderr: {tmp / 'agent.err'}")
    return 0 if alive else 1


if __name__ == "__main__":
    raise SystemExit(main())
