"""The performance budget, measured side by side (issue 7, SPEC §10). Prints one table.

    .venv/bin/python bench/footprint.py [--window 300] [--procs 1068] [--cycles 30]
                                        [--parts agent,exporter,fleet,fleet-full,full,full-noise,cycle,process]
                                        [--low-procs 100] [--modules bytecode,source]
                                        [--profile]
    .venv/bin/python bench/footprint.py --peers [--window 300] [--no-scrape] [--before SRC]

Three measurements in one run, all against this machine's live /proc:

``agent``  The full agent (``sysops-agent run`` with the bundled
           ``config/sysops-agent.toml``: every collector at its default
           interval, all five analyzers, the log analyzer, SQLite, console
           channel) in a subprocess. After a warm-up, its RSS is sampled every
           second and its CPU time (utime + stime, its children included) is
           read at both ends of ``--window`` seconds: % of one core.
``exporter`` The same agent with ``[prometheus] enabled = true``, scraped
           every 10 s by this script (as Prometheus would), measured the same
           way: the exporter's cost is this row minus ``agent``.
``fleet``  Issue 15's fleet configuration: ``/metrics`` scraped, the
           Alertmanager channel and remote_write (every 10 s) on, both sending
           to a loopback sink in this process (budget: 30 MB RSS).
``fleet-full``  The fleet configuration with every ring buffer full, preloaded
           as for ``full`` below (remote_write's cursors start after the
           preloaded points: a running agent pushed them as they came).
``full``   The same agent with every ring buffer full: ``bench/full_agent.py``
           (which imports nothing but what ``sysops-agent run`` imports)
           starts the daemon in a subprocess and, before the collectors
           start, preloads its store with 300 series x 8,640 samples (24 h at
           10 s) one 10 s step at a time with an analyzer pass after each, as
           a running agent receives them; then RSS and CPU as above over a
           shorter window (``--window / 5``, at least 30 s). The values are a
           smooth wave (``full``) or white noise (``full-noise``: the ring
           buffers' incompressible worst case).
``cycle``  One full collection cycle (every enabled collector once) against a
           psutil-based collection of the same data, timed in this process,
           alternating, at this machine's process count and at ``--procs``
           processes (the difference is made up with ``sleep`` processes
           that this script starts and kills again). Reported: median wall
           time and CPU time (user + system) per cycle. ``--profile`` adds a
           cProfile of our cycle at the higher process count.
``process`` The process collector alone (``ProcessCollector.collect``, bundled
           config: top 20 by RSS), the same with every ``stat`` opened and
           closed each cycle (no kept descriptors), and psutil doing the same work
           (``process_iter`` with name, memory, CPU times and threads, then
           ``num_fds``, ``cpu_percent`` and ``io_counters`` of the top 20 by
           RSS), alternating, at ``--low-procs`` (100) and ``--procs`` processes
           (``sleep`` processes make up the difference), with the high/low
           scaling of each; and, if ``prometheus-node-exporter`` is installed,
           its ``processes`` collector (which reads every ``/proc/<pid>/stat``
           and each thread's) alone, scraped ``--cycles`` times at both counts:
           CPU per scrape from its own utime + stime, minus a node_exporter
           with no collector at all scraped the same way (HTTP and Go runtime).
           A per-process scan cannot scale flat: 1,000 more processes are
           1,000 more files for the kernel to generate.

The agent parts run a copy of ``src/sysops_agent``, once per ``--modules``
entry: ``bytecode`` (the default) byte-compiled beforehand, as pip, the .deb and
the .rpm install it; ``source`` without bytecode, every module compiled at every
start, as from the single-file ``.pyz``.
"""

from __future__ import annotations

import argparse
import cProfile
import heapq
import io
import math
import os
import pstats
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

ROOT = Path(__file__).resolve().parent.parent
BUNDLED_CONFIG = ROOT / "config" / "sysops-agent.toml"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
MiB = 1024 * 1024
#: startup (imports, first readings, first analyzer pass) is not the steady state
WARMUP_SECS = 15.0
FULL_SERIES = 300
FULL_SAMPLES = 8640
TOP_N = 20  # the process collector's default


# --------------------------------------------------------------------------- process metrics


def children_of(pid: int) -> List[int]:
    out: List[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out.extend(int(c) for c in f.read().split())
        except OSError:
            continue
    return out


def tree(pid: int) -> List[int]:
    """pid and all its descendants (journalctl, for the log analyzer)."""
    todo, seen = [pid], []
    while todo:
        p = todo.pop()
        seen.append(p)
        todo.extend(children_of(p))
    return seen


def cpu_ticks(pid: int) -> int:
    """utime + stime + children's (waited-for) cutime + cstime."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return sum(int(fields[i]) for i in (11, 12, 13, 14))


def rss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * PAGE
    except OSError:
        return 0


class Footprint:
    def __init__(self, label: str) -> None:
        self.label = label
        self.rss: List[int] = []
        self.children_rss: List[int] = []
        self.cpu_percent = math.nan
        self.children_cpu_percent = math.nan
        self.window = 0.0


def watch(proc: subprocess.Popen[bytes], label: str, window: float) -> Footprint:
    """Sample RSS every second and CPU at both ends of ``window`` seconds."""
    fp = Footprint(label)
    pid = proc.pid

    def ticks() -> Tuple[int, int]:
        kids = tree(pid)[1:]
        return cpu_ticks(pid), sum(cpu_ticks(k) for k in kids)

    t0 = time.monotonic()
    own0, kids0 = ticks()
    deadline = t0 + window
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{label}: the agent exited with {proc.returncode}")
        fp.rss.append(rss(pid))
        fp.children_rss.append(sum(rss(k) for k in tree(pid)[1:]))
        time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
    own1, kids1 = ticks()
    fp.window = time.monotonic() - t0
    fp.cpu_percent = (own1 - own0) / CLK_TCK / fp.window * 100
    fp.children_cpu_percent = (kids1 - kids0) / CLK_TCK / fp.window * 100
    return fp


def stop(proc: subprocess.Popen[bytes]) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


def wait_for_line(proc: subprocess.Popen[bytes], needle: bytes, timeout: float) -> None:
    assert proc.stderr is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            raise SystemExit(f"the agent exited before printing {needle!r}")
        if needle in line:
            return
    raise SystemExit(f"no {needle!r} within {timeout}s")


def drain(proc: subprocess.Popen[bytes]) -> None:
    """Keep reading stderr so that the agent never blocks on a full pipe."""
    import threading

    def pump() -> None:
        assert proc.stderr is not None
        for _ in proc.stderr:
            pass

    threading.Thread(target=pump, daemon=True).start()


def measure(
    cmd: List[str],
    ready: bytes,
    timeout: float,
    label: str,
    window: float,
    workdir: Path,
    lib: Optional[Path] = None,
) -> Footprint:
    """Start ``cmd``, wait for ``ready`` on its stderr, warm up, then watch it for ``window``.

    ``lib``: the package copy to run (:func:`package_copy`).
    """
    proc = subprocess.Popen(
        cmd, cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=agent_env(lib)
    )
    try:
        wait_for_line(proc, ready, timeout)
        drain(proc)
        time.sleep(WARMUP_SECS)
        return watch(proc, label, window)
    finally:
        code = stop(proc)
        if code != 0:
            print(f"warning: {label}: the agent exited with {code}", file=sys.stderr)


def run_agent(window: float, workdir: Path, lib: Optional[Path] = None) -> Footprint:
    cmd = [sys.executable, "-m", "sysops_agent", "run", "--config", str(BUNDLED_CONFIG)]
    label = "agent, live (bundled config)"
    return measure(cmd, b"collectors: ", 60, label, window, workdir, lib)


def run_full(
    window: float, workdir: Path, values: str = "wave", lib: Optional[Path] = None
) -> Footprint:
    cmd = [
        sys.executable,
        str(Path(__file__).resolve().parent / "full_agent.py"),
        f"--series={FULL_SERIES}",
        f"--samples={FULL_SAMPLES}",
        f"--values={values}",
    ]
    label = f"agent, {FULL_SERIES} series x {FULL_SAMPLES} full ({values})"
    return measure(cmd, b"bench: store preloaded", 300, label, window, workdir, lib)


def _sink() -> Tuple[str, Callable[[], None]]:
    """A loopback HTTP server answering every POST with 200 (Alertmanager / remote-write stand-in)."""
    import http.server
    import threading

    class Sink(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self.send_response(200)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return None

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}", server.shutdown


def exporter_text(port: int) -> str:
    """The bundled config with ``[prometheus] enabled = true`` on ``port``."""
    text = BUNDLED_CONFIG.read_text().replace(
        "enabled = false\nlisten_address", "enabled = true\nlisten_address", 1
    )
    return text.replace("port = 9845", f"port = {port}", 1)


def exporter_config(path: Path, port: int) -> Path:
    """:func:`exporter_text` written to ``path`` (mode 0600, as the agent wants it)."""
    path.write_text(exporter_text(port))
    path.chmod(0o600)
    return path


def run_exporter(
    window: float,
    workdir: Path,
    scrape_every: float = 10.0,
    fleet: bool = False,
    full: Optional[str] = None,
    lib: Optional[Path] = None,
) -> Footprint:
    """The bundled config with ``/metrics`` on, scraped every ``scrape_every`` s by this process.

    ``fleet``: also the Alertmanager channel and remote_write (every 10 s), both to
    a loopback sink: issue 15's fleet configuration. ``full`` (``wave``/``noise``):
    run it as ``bench/full_agent.py`` does, every ring buffer full.
    """
    import socket
    import threading
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    text = exporter_text(port)
    stop_sink: Optional[Callable[[], None]] = None
    if fleet:
        sink, stop_sink = _sink()
        text = text.replace(
            '# Base URL of the Alertmanager, e.g. "http://127.0.0.1:9093".\nurl = ""',
            f'# Base URL of the Alertmanager, e.g. "http://127.0.0.1:9093".\nurl = "{sink}"',
            1,
        )
        rw = text.index("[remote_write]\n")
        text = text[:rw] + text[rw:].replace("enabled = false", "enabled = true", 1)
        text = text.replace('url = ""\n# Push the points', f'url = "{sink}/api/v1/write"\n#', 1)
        text = text.replace(
            "interval_secs = 30\nmax_samples_per_send",
            "interval_secs = 10\nmax_samples_per_send",
            1,
        )
        marker = "# Push alerts to a Prometheus Alertmanager (API v2, POST /api/v2/alerts)."
        i = text.index(marker)
        j = text.index("enabled = false", i)
        text = text[:j] + "enabled = true" + text[j + len("enabled = false") :]
    config = workdir / "agent.toml"
    config.write_text(text)
    config.chmod(0o600)
    done = threading.Event()
    scrapes: List[float] = []

    def scraper() -> None:
        while not done.wait(scrape_every):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                    scrapes.append(len(r.read()))
            except OSError as e:
                print(f"warning: scrape failed: {e}", file=sys.stderr)

    thread = threading.Thread(target=scraper, daemon=True)
    thread.start()
    cmd = [sys.executable, "-m", "sysops_agent", "run", "--config", str(config)]
    label = f"agent, /metrics on, scraped every {scrape_every:g} s"
    if fleet:
        label = "fleet: /metrics + Alertmanager + remote_write"
    ready, timeout = b"collectors: ", 60.0
    if full is not None:
        cmd = [
            sys.executable,
            str(Path(__file__).resolve().parent / "full_agent.py"),
            f"--series={FULL_SERIES}",
            f"--samples={FULL_SAMPLES}",
            f"--values={full}",
            "--agent-config",
            str(config),
        ]
        label += f", {FULL_SERIES} series x {FULL_SAMPLES} full ({full})"
        ready, timeout = b"bench: store preloaded", 300.0
    try:
        return measure(cmd, ready, timeout, label, window, workdir, lib)
    finally:
        done.set()
        if stop_sink is not None:
            stop_sink()
        if scrapes:
            print(f"{len(scrapes)} scrapes of {statistics.median(scrapes) / 1024:.1f} KiB")


def agent_env(lib: Optional[Path] = None) -> Dict[str, str]:
    """The agent's environment: the installed package, or the copy ``lib`` if given."""
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    if lib is not None:
        env["PYTHONPATH"] = str(lib)
        env["PYTHONDONTWRITEBYTECODE"] = "1"  # a "source" copy stays without bytecode
    return env


MODULE_LOADING = ("bytecode", "source")


def package_copy(tmp: Path, modules: str, src: Path = ROOT / "src", name: str = "lib") -> Path:
    """A copy of ``src``'s ``sysops_agent`` under ``tmp``, its modules loaded as ``modules`` says.

    ``bytecode``: compiled once here, as pip, the .deb and the .rpm do at install time,
    so the agent loads ``.pyc`` files. ``source``: no bytecode, every module compiled
    at every start, as from the single-file ``.pyz`` (zipimport neither reads nor
    writes ``__pycache__``). Compiling leaves the allocator fragmented: the two
    differ by about 1.5 MiB of RSS.
    """
    import compileall

    lib = tmp / f"{name}-{modules}"
    shutil.copytree(
        src / "sysops_agent",
        lib / "sysops_agent",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    if modules == "bytecode" and not compileall.compile_dir(str(lib), quiet=1):
        raise SystemExit(f"could not byte-compile {lib}")
    return lib


# --------------------------------------------------------------------------- collection cycles


class OurCycle:
    def __init__(self) -> None:
        from sysops_agent.collectors.registry import build_collectors
        from sysops_agent.config import load_config
        from sysops_agent.procfs import ProcFS

        config = load_config(BUNDLED_CONFIG).config
        self.collectors = build_collectors(ProcFS("/proc", "/sys"), config.collector)

    def __call__(self) -> int:
        now = time.time()
        return sum(len(c.collect(now)) for c in self.collectors)


class PsutilCycle:
    """The same data through psutil's public API, the way a psutil-based agent gets it."""

    def __init__(self) -> None:
        import psutil

        self.psutil = psutil
        psutil.cpu_times_percent()
        psutil.cpu_percent(percpu=True)
        self.attrs = ["pid", "name", "memory_info", "cpu_times", "num_threads"]

    def __call__(self) -> int:
        ps = self.psutil
        out: List[Any] = [ps.cpu_times_percent(), ps.cpu_percent(percpu=True), ps.getloadavg()]
        out += [ps.virtual_memory(), ps.swap_memory()]
        out.append(ps.disk_io_counters(perdisk=True))
        out += [ps.disk_usage(p.mountpoint) for p in ps.disk_partitions(all=False)]
        out.append(ps.net_io_counters(pernic=True))
        procs = list(ps.process_iter(self.attrs))
        out.append(len(procs))
        top = heapq.nlargest(TOP_N, procs, key=_rss_of)
        for p in top:
            try:
                out += [p.num_fds(), p.cpu_percent(), p.io_counters()]
            except ps.Error:
                continue
        with open("/proc/sys/fs/file-nr") as f:  # psutil has no system-wide fd count
            out.append(f.read())
        out.append(time.time() - ps.boot_time())
        return len(out)


class OurProcesses:
    """The process collector alone, as the agent builds it from the bundled config.

    ``keep=False``: every ``stat`` opened and closed each cycle (no ``KeptPidFiles``).
    """

    def __init__(self, keep: bool = True) -> None:
        from sysops_agent.collectors import process
        from sysops_agent.config import load_config
        from sysops_agent.procfs import KeptPidFiles, ProcFS

        config = load_config(BUNDLED_CONFIG).config
        self.collector = process.create(ProcFS("/proc", "/sys"), config.collector.process)
        if not keep:
            self.collector._kept = KeptPidFiles(limit=0)

    def __call__(self) -> int:
        return len(self.collector.collect(time.time()))


class PsutilProcesses:
    """The same data as :class:`OurProcesses` through psutil: every process's name, memory,
    CPU times and threads, then the top 20 by RSS's open files, CPU share and disk I/O."""

    def __init__(self) -> None:
        import psutil

        self.psutil = psutil
        self.attrs = ["pid", "name", "memory_info", "cpu_times", "num_threads"]

    def __call__(self) -> int:
        ps = self.psutil
        procs = list(ps.process_iter(self.attrs))
        out: List[Any] = [len(procs)]
        for p in heapq.nlargest(TOP_N, procs, key=_rss_of):
            try:
                out += [p.num_fds(), p.cpu_percent(), p.io_counters()]
            except ps.Error:
                continue
        return len(out)


class NodeExporter:
    """``prometheus-node-exporter`` on a loopback port with only the given collectors."""

    def __init__(self, binary: str, collectors: List[str]) -> None:
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        cmd = [
            binary,
            "--collector.disable-defaults",
            f"--web.listen-address=127.0.0.1:{self.port}",
        ]
        cmd += [f"--collector.{c}" for c in collectors]
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                self.scrape()
                break
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    stop(self.proc)
                    raise SystemExit(f"node_exporter did not answer on port {self.port}") from None
                time.sleep(0.1)

    def scrape(self) -> int:
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=10) as r:
            return len(r.read())

    def cpu_ms_per_scrape(self, scrapes: int) -> float:
        """Its CPU time (utime + stime, 1/CLK_TCK resolution) over ``scrapes`` scrapes, per scrape."""
        self.scrape()
        t0 = cpu_ticks(self.proc.pid)
        for _ in range(scrapes):
            self.scrape()
        return (cpu_ticks(self.proc.pid) - t0) / CLK_TCK * 1000 / scrapes

    def close(self) -> None:
        stop(self.proc)


def _rss_of(p: Any) -> int:
    mi = p.info.get("memory_info")
    return int(mi.rss) if mi is not None else 0


def cpu_time() -> float:
    return time.process_time()  # user + system, nanosecond clock (os.times() ticks are 10 ms)


def time_cycles(fns: Dict[str, Callable[[], int]], cycles: int) -> Dict[str, Tuple[float, float]]:
    """Median (wall ms, CPU ms) per cycle, the functions alternating each round."""
    for fn in fns.values():  # prime rate collectors / psutil's per-process cache
        fn()
        fn()
    wall: Dict[str, List[float]] = {k: [] for k in fns}
    cpu: Dict[str, List[float]] = {k: [] for k in fns}
    for _ in range(cycles):
        for name, fn in fns.items():
            c0, w0 = cpu_time(), time.perf_counter()
            fn()
            wall[name].append((time.perf_counter() - w0) * 1000)
            cpu[name].append((cpu_time() - c0) * 1000)
    return {k: (statistics.median(wall[k]), statistics.median(cpu[k])) for k in fns}


def process_count() -> int:
    return sum(1 for n in os.listdir("/proc") if n.isdigit())


class Sleepers:
    """``sleep`` processes started (and killed) by this script, to reach a process count."""

    def __init__(self, target: int) -> None:
        self.procs: List[subprocess.Popen[bytes]] = []
        missing = target - process_count()
        for _ in range(max(0, missing)):
            self.procs.append(
                subprocess.Popen(
                    ["sleep", "3600"],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )

    def __enter__(self) -> Sleepers:
        return self

    def __exit__(self, *exc: object) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.kill()
        for p in self.procs:
            p.wait()


def profile_cycle(ours: OurCycle, cycles: int) -> str:
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(cycles):
        ours()
    prof.disable()
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(15)
    return buf.getvalue()


def run_cycles(procs: int, cycles: int, profile: bool) -> Tuple[List[List[str]], str]:
    ours, theirs = OurCycle(), PsutilCycle()
    rows: List[List[str]] = []
    prof = ""
    for label, target in (("this machine", 0), ("with sleepers", procs)):
        with Sleepers(target):
            n = process_count()
            res = time_cycles({"ours": ours, "psutil": theirs}, cycles)
            if profile and target:
                prof = profile_cycle(ours, cycles)
        (ow, oc), (pw, pc) = res["ours"], res["psutil"]
        rows.append(
            [
                f"collection cycle, {n} processes ({label})",
                f"{ow:.2f} ms wall / {oc:.2f} ms CPU",
                f"{pw:.2f} ms wall / {pc:.2f} ms CPU",
                f"{pw / ow:.1f}x wall, {pc / oc:.1f}x CPU" if ow and oc else "-",
            ]
        )
    return rows, prof


def run_processes(low: int, high: int, cycles: int) -> List[List[str]]:
    """The process collector alone vs psutil (and node_exporter's ``processes``) at two counts."""
    ours, by_path, theirs = OurProcesses(), OurProcesses(keep=False), PsutilProcesses()
    binary = shutil.which("prometheus-node-exporter") or shutil.which("node_exporter")
    exporters: List[NodeExporter] = []
    if binary:
        exporters = [NodeExporter(binary, ["processes"]), NodeExporter(binary, [])]
    res: List[Tuple[int, Dict[str, Tuple[float, float]], Optional[Tuple[float, float]]]] = []
    try:
        for target in (low, high):
            with Sleepers(target):
                n = process_count()
                timed = time_cycles({"ours": ours, "by path": by_path, "psutil": theirs}, cycles)
                node = None
                if exporters:
                    scrapes = max(cycles, 50)
                    node = (
                        exporters[0].cpu_ms_per_scrape(scrapes),
                        exporters[1].cpu_ms_per_scrape(scrapes),
                    )
            res.append((n, timed, node))
    finally:
        for e in exporters:
            e.close()
    rows: List[List[str]] = []
    for n, timed, node in res:
        (ow, oc), (pw, pc) = timed["ours"], timed["psutil"]
        row = [
            f"process collector, {n} processes",
            f"{oc:.2f} ms CPU ({ow:.2f} wall)",
            f"{timed['by path'][1]:.2f} ms CPU ({timed['by path'][0]:.2f} wall)",
            f"{pc:.2f} ms CPU ({pw:.2f} wall)",
            f"{pc / oc:.1f}x" if oc else "-",
        ]
        row.append(f"{node[0] - node[1]:.2f} ms ({node[0]:.2f} - {node[1]:.2f})" if node else "-")
        rows.append(row)
    (n0, t0, node0), (n1, t1, node1) = res
    scale = [f"CPU x({n1}/{n0} processes)"]
    scale.append(f"x{t1['ours'][1] / t0['ours'][1]:.2f}" if t0["ours"][1] else "-")
    scale.append(f"x{t1['by path'][1] / t0['by path'][1]:.2f}" if t0["by path"][1] else "-")
    scale.append(f"x{t1['psutil'][1] / t0['psutil'][1]:.2f}" if t0["psutil"][1] else "-")
    scale.append("")
    if node0 and node1 and node0[0] - node0[1] > 0:
        scale.append(f"x{(node1[0] - node1[1]) / (node0[0] - node0[1]):.2f}")
    else:
        scale.append("-")
    rows.append(scale)
    return rows


# --------------------------------------------------------------------------- report


def fmt_fp(fp: Footprint) -> List[str]:
    kids_rss = max(fp.children_rss, default=0)
    return [
        fp.label,
        f"RSS {statistics.mean(fp.rss) / MiB:.1f} MiB mean, {max(fp.rss) / MiB:.1f} max",
        f"CPU {fp.cpu_percent:.3f} % of one core over {fp.window:.0f} s",
        f"children (journalctl): {kids_rss / MiB:.1f} MiB, {fp.children_cpu_percent:.3f} %",
    ]


def table(rows: List[List[str]], header: List[str]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    out = ["| " + " | ".join(h.ljust(w) for h, w in zip(header, widths)) + " |", line]
    out += ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |" for r in rows]
    return "\n".join(out)


def run_agent_parts(parts: Set[str], window: float, base: Path, lib: Path) -> List[Footprint]:
    """The parts that run the whole agent, from the package copy ``lib``, under ``base``."""

    def workdir(part: str) -> Path:
        path = base / part
        path.mkdir(parents=True)
        return path

    fps: List[Footprint] = []
    short = max(30.0, window / 5)  # the preloaded agents: a shorter window
    if "agent" in parts:
        fps.append(run_agent(window, workdir("agent"), lib))
    if "exporter" in parts:
        fps.append(run_exporter(window, workdir("exporter"), lib=lib))
    if "fleet" in parts:
        fps.append(run_exporter(window, workdir("fleet"), fleet=True, lib=lib))
    if "fleet-full" in parts:
        fps.append(run_exporter(short, workdir("fleet-full"), fleet=True, full="wave", lib=lib))
    for part, values in (("full", "wave"), ("full-noise", "noise")):
        if part in parts:
            fps.append(run_full(short, workdir(part), values, lib))
    return fps


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--window", type=float, default=300.0, help="agent CPU window (s)")
    parser.add_argument("--procs", type=int, default=1068, help="process count, second case")
    parser.add_argument(
        "--low-procs", type=int, default=100, help="process count, first case of 'process'"
    )
    parser.add_argument("--cycles", type=int, default=30, help="timed collection cycles")
    parser.add_argument(
        "--parts",
        default="agent,exporter,fleet,fleet-full,full,full-noise,cycle,process",
        help="which measurements",
    )
    parser.add_argument(
        "--modules",
        default="bytecode",
        help="how the agent's modules load, comma-separated: bytecode (pip, .deb, .rpm), "
        "source (the .pyz: compiled at every start); each agent part runs once per entry",
    )
    parser.add_argument("--profile", action="store_true", help="cProfile our cycle")
    parser.add_argument(
        "--peers",
        action="store_true",
        help="only the agent beside node_exporter, monit, collectd (bench/peerbench.py)",
    )
    parser.add_argument("--no-scrape", action="store_true", help="--peers: the idle window only")
    parser.add_argument(
        "--before",
        type=Path,
        metavar="SRC",
        help="--peers: also run the agent from this source tree (e.g. an export of main's src/)",
    )
    args = parser.parse_args(argv)
    if args.peers:
        from peerbench import run_peers

        with tempfile.TemporaryDirectory(prefix="sysops-peers-") as tmp:
            return run_peers(
                args.window, Path(tmp), scraped_window=not args.no_scrape, before=args.before
            )
    parts = set(args.parts.split(","))
    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
        f"{process_count()} processes, window {args.window:.0f} s"
    )
    modes = args.modules.split(",")
    for mode in modes:
        if mode not in MODULE_LOADING:
            parser.error(f"--modules: {mode!r} is not one of {', '.join(MODULE_LOADING)}")
    fps: List[Footprint] = []
    with tempfile.TemporaryDirectory(prefix="sysops-bench-") as tmp:
        for mode in modes:
            lib = package_copy(Path(tmp), mode)
            for fp in run_agent_parts(parts, args.window, Path(tmp) / mode, lib):
                if mode == "source":
                    fp.label += " [modules compiled at start]"
                fps.append(fp)
    if fps:
        print()
        print(table([fmt_fp(f) for f in fps], ["agent", "memory", "CPU", "log subprocess"]))
    if "cycle" in parts:
        if shutil.which("sleep") is None:
            raise SystemExit("needs the sleep command")
        rows, prof = run_cycles(args.procs, args.cycles, args.profile)
        print()
        print(table(rows, ["", "sysops-agent", "psutil", "psutil / ours"]))
        if prof:
            print()
            print(prof)
    if "process" in parts:
        if shutil.which("sleep") is None:
            raise SystemExit("needs the sleep command")
        rows = run_processes(args.low_procs, args.procs, args.cycles)
        print()
        header = ["", "sysops-agent", "the same, stat opened each cycle", "psutil"]
        header += ["psutil / ours", "node_exporter processes"]
        print(table(rows, header))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
