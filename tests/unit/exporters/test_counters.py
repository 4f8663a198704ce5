"""Raw counters, filesystem and swap sizes beside the rates, under node_exporter's names (issue 15).

The output is checked with two oracles: ``prometheus_client``'s parser and,
when installed, ``promtool check metrics`` (Debian's ``prometheus`` package).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest
from prometheus_client.parser import text_string_to_metric_families

from sysops_agent.clock import VirtualClock
from sysops_agent.collectors.registry import collect_once
from sysops_agent.config import Config, load_config
from sysops_agent.exporters.config import PrometheusConfig
from sysops_agent.exporters.counters import KernelCounters
from sysops_agent.exporters.prometheus import PrometheusExporter, exposition
from sysops_agent.model import make_labels
from sysops_agent.procfs import ProcFS
from sysops_agent.storage.store import Store

STAT = """cpu  300 10 200 5000 40 0 5 0 0 0
cpu0 100 5 100 2500 20 0 3 0 0 0
cpu1 200 5 100 2500 20 0 2 7 0 0
intr 12345
"""
DISKSTATS = (
    "   8       0 sda 1000 0 2048 0 500 0 4096 0 0 1500 0 0 0 0 0\n"
    "   8       1 sda1 900 0 2000 0 400 0 4000 0 0 1400 0 0 0 0 0\n"
    "   7       0 loop0 10 0 20 0 0 0 0 0 0 5 0 0 0 0 0\n"
)
NETDEV = """Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:     500       5    0    0    0     0          0         0      500       5    0    0    0     0       0          0
  eth0: 1000000    2000    3    4    0     0          0         0   300000    1500    1    2    0     0       0          0
veth12:     100       1    0    0    0     0          0         0      100       1    0    0    0     0       0          0
"""
MEMINFO = """MemTotal:        4000000 kB
MemFree:          1000000 kB
MemAvailable:     2000000 kB
SwapTotal:        1000000 kB
SwapFree:          250000 kB
"""
MOUNTS = "/dev/sda1 / ext4 rw 0 0\nproc /proc proc rw 0 0\n"


class StatVfs:
    f_blocks = 1000
    f_bfree = 300
    f_bavail = 250
    f_frsize = 4096
    f_files = 0
    f_ffree = 0


def families(text: bytes) -> Dict[str, Any]:
    return {f.name: f for f in text_string_to_metric_families(text.decode())}


def samples(fams: Dict[str, Any], family: str) -> Dict[Tuple[Tuple[str, str], ...], float]:
    return {tuple(sorted(s.labels.items())): s.value for s in fams[family].samples}


@pytest.fixture
def procfs(tmp_path: Path) -> ProcFS:
    proc = tmp_path / "proc"
    (proc / "net").mkdir(parents=True)
    (proc / "stat").write_text(STAT)
    (proc / "diskstats").write_text(DISKSTATS)
    (proc / "net" / "dev").write_text(NETDEV)
    (proc / "meminfo").write_text(MEMINFO)
    (proc / "mounts").write_text(MOUNTS)
    return ProcFS(proc, tmp_path / "no-sys")


def counters(procfs: ProcFS, config: str = "") -> KernelCounters:
    sections = load_config(text=config, env={}).config.collector
    kc = KernelCounters(procfs, sections, clk_tck=100)
    if kc.fs is not None:
        kc.fs.statvfs = lambda path: StatVfs()  # type: ignore[assignment,misc,return-value]
    return kc


def test_cpu_disk_network_counters_with_node_exporter_names(procfs: ProcFS) -> None:
    fams = families(exposition(counters(procfs).families()))
    cpu = samples(fams, "sysops_cpu_seconds")  # the parser names counter families without _total
    assert fams["sysops_cpu_seconds"].type == "counter"
    assert cpu[(("cpu", "0"), ("mode", "user"))] == 1.0  # 100 ticks at USER_HZ 100
    assert cpu[(("cpu", "1"), ("mode", "steal"))] == 0.07
    assert len(cpu) == 16  # 2 CPUs x 8 modes; the aggregate line is not exported
    read = samples(fams, "sysops_disk_read_bytes")
    assert read == {(("device", "sda"),): 2048 * 512.0}  # no partition, loop* excluded
    assert samples(fams, "sysops_disk_written_bytes")[(("device", "sda"),)] == 4096 * 512.0
    assert samples(fams, "sysops_disk_reads_completed")[(("device", "sda"),)] == 1000
    assert samples(fams, "sysops_disk_writes_completed")[(("device", "sda"),)] == 500
    assert samples(fams, "sysops_disk_io_time_seconds")[(("device", "sda"),)] == 1.5
    rx = samples(fams, "sysops_network_receive_bytes")
    # the network collector's exclusions apply (lo by default)
    # a container's veth is excluded like the collector excludes it (issue 17's defaults)
    assert rx == {(("device", "eth0"),): 1_000_000.0}
    assert samples(fams, "sysops_network_transmit_packets")[(("device", "eth0"),)] == 1500
    assert samples(fams, "sysops_network_receive_errs")[(("device", "eth0"),)] == 3
    assert samples(fams, "sysops_network_transmit_drop")[(("device", "eth0"),)] == 2
    for name in ("sysops_disk_read_bytes", "sysops_network_receive_bytes"):
        assert fams[name].type == "counter"


def test_filesystem_and_swap_bytes(procfs: ProcFS) -> None:
    fams = families(exposition(counters(procfs).families()))
    root = (("device", "/dev/sda1"), ("fstype", "ext4"), ("mountpoint", "/"))
    assert samples(fams, "sysops_filesystem_size_bytes") == {root: 1000 * 4096.0}
    assert samples(fams, "sysops_filesystem_free_bytes") == {root: 300 * 4096.0}
    assert samples(fams, "sysops_filesystem_avail_bytes") == {root: 250 * 4096.0}
    assert samples(fams, "sysops_memory_swap_total_bytes") == {(): 1_000_000 * 1024.0}
    assert samples(fams, "sysops_memory_swap_free_bytes") == {(): 250_000 * 1024.0}


def test_disabled_collectors_export_no_counters(procfs: ProcFS) -> None:
    config = "".join(
        f"[collector.{c}]\nenabled = false\n"
        for c in ("cpu", "disk_io", "network", "disk_usage", "memory")
    )
    assert counters(procfs, config).families() == []


def test_a_missing_file_leaves_only_its_families_out(procfs: ProcFS) -> None:
    os.unlink(procfs.path("diskstats"))
    fams = families(exposition(counters(procfs).families()))
    assert "sysops_disk_read_bytes" not in fams
    assert "sysops_cpu_seconds" in fams and "sysops_network_receive_bytes" in fams


def test_counters_are_monotonic_raw_values(procfs: ProcFS) -> None:
    kc = counters(procfs)
    before = samples(families(exposition(kc.families())), "sysops_network_receive_bytes")
    Path(procfs.path("net", "dev")).write_text(NETDEV.replace("1000000", "1000900"))
    after = samples(families(exposition(kc.families())), "sysops_network_receive_bytes")
    assert after[(("device", "eth0"),)] - before[(("device", "eth0"),)] == 900


def test_rates_use_node_exporter_label_names() -> None:
    store = Store()
    now = 1_700_000_000.0
    store.add(now, "net_rx_bytes_per_second", 5.0, make_labels(interface="eth0"))
    store.add(now, "cpu_core_usage_percent", 50.0, make_labels(core="3"))
    exporter = PrometheusExporter(
        PrometheusConfig(), store, hostname="h", clock=VirtualClock(now), counters=list
    )
    fams = families(exporter.render())
    assert samples(fams, "sysops_net_rx_bytes_per_second") == {(("device", "eth0"),): 5.0}
    assert samples(fams, "sysops_cpu_core_usage_ratio") == {(("cpu", "3"),): 0.5}


def live_exposition() -> bytes:
    """Every collector on this host's /proc, plus the counters: a whole real scrape."""
    store = Store()
    for s in collect_once(ProcFS(), Config().collector, clock_sleep=0.05):
        store.add(s.ts, s.metric, s.value, s.labels)
    store_now = time.time()
    store.add(store_now, "agent_alerts_sent_total", 1.0)
    exporter = PrometheusExporter(
        PrometheusConfig(),
        store,
        hostname="h",
        clock=VirtualClock(store_now),
        counters=KernelCounters(ProcFS(), Config().collector).families,
    )
    return exporter.render()


def test_a_whole_live_scrape_parses_and_names_are_unique() -> None:
    text = live_exposition()
    names: List[str] = [
        line.split()[2] for line in text.decode().splitlines() if line.startswith("# TYPE ")
    ]
    assert len(names) == len(set(names))
    fams = families(text)
    for name in ("sysops_cpu_seconds", "sysops_processes", "sysops_memory_swap_total_bytes"):
        assert name in fams
    if os.geteuid() == 0 and Path("/proc/self/io").exists():  # every io readable: in the scrape
        assert "sysops_process_io_write_bytes_per_second" in fams
        assert "sysops_process_io_read_bytes_per_second" in fams


def test_promtool_check_metrics_is_clean() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (make system-deps: Debian's prometheus package)")
    result = subprocess.run(
        [promtool, "check", "metrics"],
        input=live_exposition(),
        capture_output=True,
        timeout=30,
    )
    out = (result.stdout + result.stderr).decode()
    assert result.returncode == 0 and out.strip() == "", out


def test_static_agent_labels_on_every_series(procfs: ProcFS) -> None:
    loaded = load_config(text='[agent]\nlabels = { env = "prod", team = "db" }\n', env={})
    assert loaded.problems == []
    labels = loaded.config.agent.labels
    store = Store()
    now = 1_700_000_000.0
    store.add(now, "memory_usage_percent", 50.0)
    store.add(now, "disk_usage_percent", 5.0, make_labels(mountpoint="/", env="own"))
    exporter = PrometheusExporter(
        PrometheusConfig(),
        store,
        hostname="h",
        clock=VirtualClock(now),
        counters=counters(procfs).families,
        labels=labels,
    )
    fams = families(exporter.render())
    for fam in fams.values():
        for s in fam.samples:
            assert s.labels["team"] == "db", (fam.name, s)
    (disk,) = fams["sysops_disk_usage_ratio"].samples
    assert disk.labels["env"] == "own"  # a series' own label wins
    assert fams["sysops_agent_info"].samples[0].labels["env"] == "prod"


def test_invalid_static_label_names_are_config_problems() -> None:
    text = '[agent]\nlabels = { "bad-name" = "x", __x = "y", ok = "z" }\n'
    problems = load_config(text=text, env={}).problems
    assert [p.path for p in problems] == ["agent.labels"]
    assert "bad-name" in problems[0].message and "__x" in problems[0].message
