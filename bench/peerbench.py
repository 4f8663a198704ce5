"""``bench/footprint.py --peers``: the agent beside node_exporter, monit and collectd (issue 17).

Every peer that is installed (``make bench-deps``: the Debian packages
prometheus-node-exporter, monit, collectd) runs in the foreground with its
minimal config from ``bench/peers/`` (collectd: cpu, memory, df, disk,
interface, load, processes at 10 s; monit: system, a filesystem and a
process matched by name every 10 s; node_exporter: its default collectors).
Our agent runs with the bundled config on the live host, from a byte-compiled
copy of the package (as pip, the .deb and the .rpm install it; ``--before``'s
tree too). All of them run at once, so one window sees the same host:

1. **idle**: nobody is scraped. Every process tree's CPU (utime + stime of
   every process in it, and of the children it reaped) is read every
   ``slice`` seconds and its RSS (VmRSS of the main process, and of the
   whole tree) every second. utime + stime come in clock ticks (10 ms): an
   idle agent spends a dozen in 300 s, so a reading is off by up to one
   tick at each end. The window's total is therefore also read in
   nanoseconds, from every thread's ``schedstat`` at both ends (exact for
   threads that live through the window, as every peer's and ours do; a
   thread or child that ends within it is missing there, and its ticks are
   not), and the verdicts use it.
2. **scraped**: our agent again, now with ``[prometheus] enabled = true``,
   and node_exporter (still running), each scraped every 10 s by the same
   scraper in this process, one after the other (alternating who goes
   first). The CPU of one scrape is the target's on-CPU time
   (``/proc/<pid>/task/*/schedstat``, nanoseconds) from just before the
   request to just after the whole answer was read.

The table gives the mean over the window and, in brackets, the range over
its slices, and our agent's ratio to node_exporter.
"""

from __future__ import annotations

import math
import os
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

from footprint import (
    BUNDLED_CONFIG,
    CLK_TCK,
    WARMUP_SECS,
    MiB,
    agent_env,
    cpu_ticks,
    drain,
    exporter_config,
    package_copy,
    rss,
    stop,
    table,
    tree,
    wait_for_line,
)

PEERS_DIR = Path(__file__).resolve().parent / "peers"
SCRAPE_EVERY = 10.0
US = "sysops-agent"
BEFORE = "before"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def find(*names: str) -> Optional[str]:
    for name in names:
        for d in ("", "/usr/sbin", "/usr/bin", "/sbin"):
            path = shutil.which(name) if not d else os.path.join(d, name)
            if path and os.access(path, os.X_OK):
                return path
    return None


def render(template: str, scratch: Path) -> Path:
    """``bench/peers/<template>`` with ``@DIR@`` replaced, written (mode 0600) to ``scratch``."""
    out = scratch / template
    out.write_text((PEERS_DIR / template).read_text().replace("@DIR@", str(scratch)))
    out.chmod(0o600)  # monit refuses a control file others can read
    return out


class Peer:
    """One program measured beside the agent: how to start it and, if it has one, its /metrics."""

    def __init__(self, name: str, argv: List[str], url: Optional[str] = None) -> None:
        self.name = name
        self.argv = argv
        self.url = url
        self.proc: Optional[subprocess.Popen[bytes]] = None

    def start(self, cwd: Path) -> None:
        self.proc = subprocess.Popen(
            self.argv,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


def installed_peers(scratch: Path) -> Tuple[List[Peer], List[str]]:
    """The peers found on this machine (each with its config in ``scratch``), and the missing."""
    peers: List[Peer] = []
    missing: List[str] = []
    node = find("prometheus-node-exporter", "node_exporter")
    if node:
        port = free_port()
        argv = [node, f"--web.listen-address=127.0.0.1:{port}"]
        peers.append(Peer("node_exporter", argv, f"http://127.0.0.1:{port}/metrics"))
    else:
        missing.append("node_exporter")
    monit = find("monit")
    if monit:
        peers.append(Peer("monit", [monit, "-I", "-c", str(render("monitrc", scratch))]))
    else:
        missing.append("monit")
    collectd = find("collectd")
    if collectd:
        peers.append(
            Peer("collectd", [collectd, "-f", "-C", str(render("collectd.conf", scratch))])
        )
    else:
        missing.append("collectd")
    return peers, missing


# --------------------------------------------------------------------------- measuring


def tree_ticks(pid: int) -> int:
    return sum(cpu_ticks(p) for p in tree(pid))


def on_cpu_ns(pid: int) -> int:
    """Nanoseconds on a CPU of every thread of every process in ``pid``'s tree (schedstat)."""
    total = 0
    for p in tree(pid):
        try:
            tids = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                with open(f"/proc/{p}/task/{tid}/schedstat") as f:
                    total += int(f.read().split()[0])
            except (OSError, ValueError, IndexError):
                continue
    return total


class Usage:
    """One process tree over one window: CPU per slice, RSS every second, scrapes."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.slices: List[float] = []  # % of one core per slice
        self.cpu = float("nan")  # % of one core over the window (clock ticks)
        self.cpu_exact = float("nan")  # the same from schedstat (nanoseconds)
        self.rss_main: List[int] = []
        self.rss_tree: List[int] = []
        self.scrape_ns: List[int] = []
        self.scrape_bytes: List[int] = []


def observe(
    pids: Dict[str, int],
    window: float,
    alive: Callable[[], Optional[str]],
    scrape: Optional[Dict[str, Tuple[str, int]]] = None,
) -> Dict[str, Usage]:
    """Watch every tree in ``pids`` for ``window`` s; ``scrape``: name -> (URL, pid) every 10 s."""
    usage = {name: Usage(name) for name in pids}
    slice_secs = max(10.0, min(60.0, window / 5))
    done = threading.Event()
    threads: List[threading.Thread] = []
    if scrape:

        def scraper() -> None:
            order = list(scrape)
            while not done.wait(SCRAPE_EVERY):
                for name in order:
                    url, pid = scrape[name]
                    before = on_cpu_ns(pid)
                    try:
                        with urllib.request.urlopen(url, timeout=5) as r:
                            size = len(r.read())
                    except OSError as e:
                        print(f"warning: scrape of {name} failed: {e}", file=sys.stderr)
                        continue
                    usage[name].scrape_ns.append(on_cpu_ns(pid) - before)
                    usage[name].scrape_bytes.append(size)
                order.reverse()  # neither always first nor always second

        threads.append(threading.Thread(target=scraper, daemon=True))
        threads[0].start()
    try:
        t0 = time.monotonic()
        start = {n: tree_ticks(p) for n, p in pids.items()}
        start_ns = {n: on_cpu_ns(p) for n, p in pids.items()}
        mark, last = t0, dict(start)
        deadline = t0 + window
        while True:
            now = time.monotonic()
            if now >= deadline:
                break
            dead = alive()
            if dead:
                raise SystemExit(f"{dead} exited during the window")
            for name, pid in pids.items():
                usage[name].rss_main.append(rss(pid))
                usage[name].rss_tree.append(sum(rss(p) for p in tree(pid)))
            if now - mark >= slice_secs:
                for name, pid in pids.items():
                    t = tree_ticks(pid)
                    usage[name].slices.append((t - last[name]) / CLK_TCK / (now - mark) * 100)
                    last[name] = t
                mark = now
            time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
        elapsed = time.monotonic() - t0
        for name, pid in pids.items():
            t = tree_ticks(pid)
            usage[name].cpu = (t - start[name]) / CLK_TCK / elapsed * 100
            usage[name].cpu_exact = (on_cpu_ns(pid) - start_ns[name]) / 1e9 / elapsed * 100
            if time.monotonic() - mark >= slice_secs / 2:
                usage[name].slices.append(
                    (t - last[name]) / CLK_TCK / (time.monotonic() - mark) * 100
                )
    finally:
        done.set()
        for th in threads:
            th.join(10)
    return usage


# --------------------------------------------------------------------------- our agent


def start_agent(config: Path, workdir: Path, lib: Optional[Path] = None) -> subprocess.Popen[bytes]:
    """``sysops-agent run`` installed, or from the package copy ``lib``."""
    workdir.mkdir(exist_ok=True)
    env = agent_env(lib)
    cmd = [sys.executable, "-m", "sysops_agent", "run", "--config", str(config)]
    proc = subprocess.Popen(
        cmd, cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env
    )
    try:
        wait_for_line(proc, b"collectors: ", 60)
    except BaseException:
        stop(proc)
        raise
    drain(proc)
    return proc


# --------------------------------------------------------------------------- report


def pct(u: Optional[Usage]) -> str:
    if u is None:
        return ""
    if not u.slices:
        return f"{u.cpu:.3f} %"
    return f"{u.cpu:.3f} % ({min(u.slices):.3f}–{max(u.slices):.3f})"


def exact(u: Optional[Usage]) -> str:
    return "" if u is None else f"{u.cpu_exact:.4f} %"


def mem(u: Optional[Usage]) -> str:
    if u is None:
        return ""
    main, whole = statistics.mean(u.rss_main) / MiB, statistics.mean(u.rss_tree) / MiB
    if abs(whole - main) < 0.05:
        return f"{main:.1f} MiB"
    return f"{main:.1f} / {whole:.1f} MiB"


def per_scrape(u: Optional[Usage]) -> str:
    if u is None or not u.scrape_ns:
        return ""
    ms = [n / 1e6 for n in u.scrape_ns]
    kib = statistics.median(u.scrape_bytes) / 1024
    return f"{statistics.median(ms):.2f} ms ({min(ms):.2f}–{max(ms):.2f}), {kib:.0f} KiB"


def ratio(a: Optional[Usage], b: Optional[Usage], what: str) -> str:
    if a is None or b is None:
        return ""
    if what == "cpu":
        x, y = a.cpu, b.cpu
    elif what == "exact":
        x, y = a.cpu_exact, b.cpu_exact
    elif what == "rss":
        x, y = statistics.mean(a.rss_tree), statistics.mean(b.rss_tree)
    else:
        if not a.scrape_ns or not b.scrape_ns:
            return ""
        x, y = statistics.median(a.scrape_ns), statistics.median(b.scrape_ns)
    return f"{x / y:.2f}×" if y else "-"


def report(
    idle: Dict[str, Usage], scraped: Dict[str, Usage], names: List[str], window: float
) -> str:
    ne = "node_exporter"
    if BEFORE in idle:
        names = [BEFORE, *names]
    header = ["", "us", *names, "us / node_exporter"]
    rows: List[List[str]] = []

    def row(
        label: str, data: Dict[str, Usage], fmt: Callable[[Optional[Usage]], str], what: str
    ) -> None:
        rows.append(
            [
                label,
                fmt(data.get(US)),
                *(fmt(data.get(n)) for n in names),
                ratio(data.get(US), data.get(ne), what),
            ]
        )

    row("CPU, bundled config (% of one core)", idle, pct, "cpu")
    row("  the same from schedstat (ns)", idle, exact, "exact")
    row("RSS, main process / with children", idle, mem, "rss")
    if scraped:
        row(f"CPU, /metrics scraped every {SCRAPE_EVERY:g} s", scraped, pct, "cpu")
        row("  the same from schedstat (ns)", scraped, exact, "exact")
        row("RSS, scraped", scraped, mem, "rss")
        row("one scrape: CPU (median, range), size", scraped, per_scrape, "scrape")
    lines = [table(rows, header)]
    us, peer = idle.get(US), idle.get(ne)
    if us is not None and peer is not None:
        cpu_ok = us.cpu_exact <= 0.6 * peer.cpu_exact
        rss_ok = statistics.mean(us.rss_tree) <= statistics.mean(peer.rss_tree)
        lines.append(
            f"item 1, idle CPU ≤ 0.6× node_exporter's (schedstat): {'met' if cpu_ok else 'NOT met'}"
            f" ({us.cpu_exact:.4f} % vs {0.6 * peer.cpu_exact:.4f} %)"
        )
        working = scraped.get(ne)
        if working is not None:  # node_exporter collects nothing until it is scraped
            ok = us.cpu_exact <= 0.6 * working.cpu_exact
            lines.append(
                f"        the same against node_exporter scraped every {SCRAPE_EVERY:g} s"
                f" (collecting as often as we do): {'met' if ok else 'NOT met'}"
                f" ({us.cpu_exact:.4f} % vs {0.6 * working.cpu_exact:.4f} %,"
                f" {us.cpu_exact / working.cpu_exact if working.cpu_exact else math.nan:.2f}×)"
            )
        lines.append(f"item 2, RSS of the tree ≤ node_exporter's: {'met' if rss_ok else 'NOT met'}")
    s = scraped.get(US)
    if s is not None:
        lines.append(
            f"item 1, scraped CPU ≤ 0.10 % (schedstat): {'met' if s.cpu_exact <= 0.10 else 'NOT met'}"
            f" ({s.cpu_exact:.4f} %)"
        )
    lines.append(
        f"window {window:.0f} s each, CPU ranges over {len(us.slices) if us else 0} slices"
    )
    return "\n".join(lines)


def run_peers(
    window: float, scratch: Path, scraped_window: bool = True, before: Optional[Path] = None
) -> int:
    """Both windows; prints the table. Returns 0 (1 if no peer is installed).

    ``before``: the source tree (its ``src``) of another version of the agent,
    run beside ours in both windows (column "before").
    """
    peers, missing = installed_peers(scratch)
    if missing:
        print(f"not installed (make bench-deps): {', '.join(missing)}")
    names = [p.name for p in peers]
    agent_dir = scratch / "agent"
    agent_dir.mkdir()
    agents: Dict[str, subprocess.Popen[bytes]] = {}
    # both from bytecode, as pip, the .deb and the .rpm install the agent
    srcs = {US: package_copy(scratch, "bytecode", name=US)}
    if before is not None:
        srcs[BEFORE] = package_copy(scratch, "bytecode", before, BEFORE)
    try:
        for p in peers:
            p.start(scratch)
        for label, src in srcs.items():
            agents[label] = start_agent(BUNDLED_CONFIG, agent_dir / label, src)

        def dead() -> Optional[str]:
            for p in peers:
                if not p.alive():
                    return p.name
            for label, proc in agents.items():
                if proc.poll() is not None:
                    return label
            return None

        time.sleep(WARMUP_SECS)
        pids = {**{k: a.pid for k, a in agents.items()}, **{p.name: p.pid for p in peers}}
        print(f"idle window: {window:.0f} s, {', '.join(pids)}", flush=True)
        idle = observe(pids, window, dead)
        scraped: Dict[str, Usage] = {}
        if scraped_window:
            targets: Dict[str, Tuple[str, int]] = {}
            for label, src in srcs.items():
                stop(agents.pop(label))
                port = free_port()
                config = exporter_config(scratch / f"{label}-exporter.toml", port)
                agents[label] = start_agent(config, agent_dir / label, src)
                targets[label] = (f"http://127.0.0.1:{port}/metrics", agents[label].pid)
            for p in peers:
                if p.url:
                    targets[p.name] = (p.url, p.pid)
            time.sleep(WARMUP_SECS)
            pids = {name: pid for name, (_url, pid) in targets.items()}
            print(f"scraped window: {window:.0f} s, {', '.join(pids)}", flush=True)
            scraped = observe(pids, window, dead, scrape=targets)
    finally:
        for proc in agents.values():
            stop(proc)
        for p in peers:
            if p.proc is not None:
                stop(p.proc)
    print()
    print(report(idle, scraped, names, window))
    return 0 if peers else 1
