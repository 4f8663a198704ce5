"""The GPU collector against recorded nvidia-smi outputs, through a fake nvidia-smi (a real child)."""

from __future__ import annotations

import logging
import stat
from pathlib import Path
from typing import Dict, List, Tuple

import pytest

from sysops_agent.collectors.gpu import (
    APP_FIELDS,
    FIELDS,
    GpuApp,
    GpuCollector,
    parse_compute_apps,
)
from sysops_agent.model import Sample
from sysops_agent.procfs import ProcFS
from tests.support.paths import FIXTURES

RECORDED = FIXTURES / "nvidia_smi"
MIB = 1024.0 * 1024.0


def fake_nvidia_smi(bin_dir: Path, case: str, *, hang: bool = False) -> Path:
    """``bin_dir/nvidia-smi`` printing ``case``'s recorded outputs: ``<case>.apps.out`` (or
    nothing) for ``--query-compute-apps``, ``<case>.out`` otherwise. It notes its arguments
    (``args``, ``args.apps``) and counts its runs (``runs``)."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    exit_file = RECORDED / f"{case}.exit"
    code = int(exit_file.read_text()) if exit_file.exists() else 0
    apps = RECORDED / f"{case}.apps.out"
    script = bin_dir / "nvidia-smi"
    script.write_text(
        "#!/bin/sh\n"
        f'echo run >> "{bin_dir}/runs"\n' + ("exec sleep 60\n" if hang else "") + 'case "$1" in\n'
        "--query-compute-apps=*)\n"
        f'  printf "%s\\n" "$@" > "{bin_dir}/args.apps"\n'
        + (f'  cat "{apps}"\n' if apps.exists() else "")
        + "  exit 0;;\n"
        "esac\n"
        f'printf "%s\\n" "$@" > "{bin_dir}/args"\n'
        f'cat "{RECORDED / (case + ".out")}"\n'
        f"exit {code}\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def _collect(tmp_path: Path, case: str) -> Dict[Tuple[str, str], float]:
    script = fake_nvidia_smi(tmp_path / "bin", case)
    samples = GpuCollector(ProcFS(tmp_path, tmp_path), command=str(script)).collect(1000.0)
    return {
        (s.metric, dict(s.labels)["gpu"]): s.value
        for s in samples
        if s.metric != "gpu_process_memory_bytes"
    }


def test_two_a100s_all_fields_and_the_query_asked(tmp_path: Path) -> None:
    script = fake_nvidia_smi(tmp_path / "bin", "a100_x2")
    samples = GpuCollector(ProcFS(tmp_path, tmp_path), command=str(script)).collect(1000.0)
    samples = [s for s in samples if s.metric != "gpu_process_memory_bytes"]
    got = {(s.metric, dict(s.labels)["gpu"]): s.value for s in samples}
    assert got == pytest.approx(
        {
            ("gpu_utilization_percent", "0"): 87.0,
            ("gpu_memory_used_bytes", "0"): 30512 * MIB,
            ("gpu_memory_usage_percent", "0"): 30512 * 100 / 40960,
            ("gpu_temperature_celsius", "0"): 71.0,
            ("gpu_power_watts", "0"): 312.45,
            ("gpu_ecc_errors_total", "0"): 0.0,
            ("gpu_thermal_slowdown", "0"): 0.0,
            ("gpu_utilization_percent", "1"): 0.0,
            ("gpu_memory_used_bytes", "1"): 4 * MIB,
            ("gpu_memory_usage_percent", "1"): 4 * 100 / 40960,
            ("gpu_temperature_celsius", "1"): 33.0,
            ("gpu_power_watts", "1"): 52.10,
            ("gpu_ecc_errors_total", "1"): 2.0,
            ("gpu_thermal_slowdown", "1"): 0.0,
        }
    )
    labels = dict(next(s for s in samples if dict(s.labels)["gpu"] == "1").labels)
    assert labels == {
        "gpu": "1",
        "uuid": "GPU-7c1d0e4b-3a2f-4b8e-9d6c-0f1e2a3b4c5d",
        "name": "NVIDIA A100-SXM4-40GB",
    }
    args = (tmp_path / "bin" / "args").read_text().split("\n")
    assert args[:2] == ["--query-gpu=" + ",".join(FIELDS), "--format=csv,noheader,nounits"]


def test_t4(tmp_path: Path) -> None:
    got = _collect(tmp_path, "t4")
    assert got[("gpu_power_watts", "0")] == pytest.approx(27.31)
    assert len(got) == 7


def test_consumer_card_without_ecc_skips_the_field(tmp_path: Path) -> None:
    got = _collect(tmp_path, "rtx4090")
    assert ("gpu_ecc_errors_total", "0") not in got
    assert got[("gpu_temperature_celsius", "0")] == 52.0 and len(got) == 6


def test_mig_mode_has_no_utilization_and_not_supported_power(tmp_path: Path) -> None:
    got = _collect(tmp_path, "a100_mig")
    assert ("gpu_utilization_percent", "0") not in got
    assert ("gpu_power_watts", "0") not in got
    assert got[("gpu_memory_used_bytes", "0")] == 11520 * MIB


def test_lost_gpu_keeps_the_others_and_is_said_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    script = fake_nvidia_smi(tmp_path / "bin", "gpu_lost")
    collector = GpuCollector(ProcFS(tmp_path, tmp_path), command=str(script))
    with caplog.at_level(logging.WARNING, logger="sysops_agent.collectors.gpu"):
        for i in range(3):
            samples = collector.collect(1000.0 + 30 * i)
            assert {dict(s.labels)["gpu"] for s in samples} == {"0"}
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 1 and "exited with 15" in said[0] and "GPU0000:3B:00.0" in said[0]
    assert collector.stats.skipped == {"nvidia-smi exit 15": 3}


def test_driver_not_answering_gives_nothing_and_is_said(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="sysops_agent.collectors.gpu"):
        assert _collect(tmp_path, "no_driver") == {}
    assert "couldn't communicate with the NVIDIA driver" in caplog.records[0].getMessage()


@pytest.mark.slow
def test_hung_nvidia_smi_is_killed_after_the_timeout(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    script = fake_nvidia_smi(tmp_path / "bin", "a100_x2", hang=True)
    collector = GpuCollector(ProcFS(tmp_path, tmp_path), command=str(script), timeout=1.0)
    with caplog.at_level(logging.WARNING, logger="sysops_agent.collectors.gpu"):
        assert collector.collect(1000.0) == []
        assert collector.collect(1030.0) == []
    assert [r.getMessage() for r in caplog.records] == [
        f"{script} did not answer within 1 s: killed"
    ]
    assert collector.stats.skipped == {"nvidia-smi timed out": 2}


def test_no_nvidia_smi_on_path_is_said_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    collector = GpuCollector(ProcFS(tmp_path, tmp_path))
    with caplog.at_level(logging.INFO, logger="sysops_agent.collectors.gpu"):
        for i in range(3):
            assert collector.collect(1000.0 + i) == []
    assert [r.getMessage() for r in caplog.records] == ["no nvidia-smi on PATH: no GPU metrics"]


def test_samples_are_samples(tmp_path: Path) -> None:
    script = fake_nvidia_smi(tmp_path / "bin", "h100_hot")
    samples = GpuCollector(ProcFS(tmp_path, tmp_path), command=str(script)).collect(5.0)
    assert all(isinstance(s, Sample) and s.ts == 5.0 for s in samples)
    assert {s.metric: s.value for s in samples}["gpu_thermal_slowdown"] == 1.0


# --- GPU processes' memory (--query-compute-apps) ---------------------------------------


def _processes(samples: List[Sample]) -> Dict[Tuple[str, str, str], float]:
    out: Dict[Tuple[str, str, str], float] = {}
    for s in samples:
        if s.metric == "gpu_process_memory_bytes":
            labels = dict(s.labels)
            assert set(labels) == {"gpu", "pid", "name"}
            out[(labels["gpu"], labels["pid"], labels["name"])] = s.value
    return out


def test_process_memory_is_attributed_to_gpu_index_pid_and_name(tmp_path: Path) -> None:
    script = fake_nvidia_smi(tmp_path / "bin", "a100_x2")
    samples = GpuCollector(ProcFS(tmp_path, tmp_path), command=str(script)).collect(1000.0)
    assert _processes(samples) == {
        ("0", "48213", "python3"): 30208 * MIB,
        ("0", "48990", "python3.10"): 210 * MIB,
    }
    args = (tmp_path / "bin" / "args.apps").read_text().split("\n")
    assert args[:2] == [
        "--query-compute-apps=" + ",".join(APP_FIELDS),
        "--format=csv,noheader,nounits",
    ]
    assert (tmp_path / "bin" / "runs").read_text().count("run") == 2  # two children a call


def test_process_memory_is_bounded_to_the_top_n_and_a_missing_name_is_looked_up(
    tmp_path: Path,
) -> None:
    script = fake_nvidia_smi(tmp_path / "bin", "h100_hot")
    (tmp_path / "210102").mkdir()
    (tmp_path / "210102" / "comm").write_text("vllm-worker-2\n")  # the pid nvidia-smi cannot name
    samples = GpuCollector(ProcFS(tmp_path, tmp_path), command=str(script)).collect(1000.0)
    got = _processes(samples)
    assert len(got) == 10
    assert got[("0", "210100", "vllm-worker")] == 9216 * MIB
    assert got[("0", "210102", "vllm-worker-2")] == 8192 * MIB
    assert min(got.values()) == 4608 * MIB  # the two smallest of twelve are left out
    few = GpuCollector(ProcFS(tmp_path, tmp_path), command=str(script), process_top_n=3)
    assert sorted(_processes(few.collect(1030.0)).values()) == [8192 * MIB, 8704 * MIB, 9216 * MIB]
    none = GpuCollector(ProcFS(tmp_path, tmp_path), command=str(script), process_top_n=0)
    assert _processes(none.collect(1060.0)) == {}
    unknown = GpuCollector(ProcFS(tmp_path / "none", tmp_path), command=str(script))
    assert ("0", "210102", "unknown") in _processes(unknown.collect(1090.0))


def test_processes_without_attributable_memory_are_skipped(tmp_path: Path) -> None:
    script = fake_nvidia_smi(tmp_path / "bin", "a100_mig")
    collector = GpuCollector(ProcFS(tmp_path, tmp_path), command=str(script))
    samples = collector.collect(1000.0)
    assert _processes(samples) == {}
    assert samples and collector.stats.skipped == {}  # [N/A] is not an error


def test_no_compute_apps_query_after_the_gpu_query_hung(tmp_path: Path) -> None:
    script = fake_nvidia_smi(tmp_path / "bin", "a100_x2", hang=True)
    collector = GpuCollector(ProcFS(tmp_path, tmp_path), command=str(script), timeout=1.0)
    assert collector.collect(1000.0) == []
    assert (tmp_path / "bin" / "runs").read_text().count("run") == 1


def test_hung_compute_apps_query_is_killed_and_the_gpus_are_kept(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    script = tmp_path / "nvidia-smi"
    script.write_text(
        "#!/bin/sh\n"
        'case "$1" in --query-compute-apps=*) exec sleep 60;; esac\n'
        f'cat "{RECORDED / "t4.out"}"\n'
    )
    script.chmod(0o755)
    collector = GpuCollector(ProcFS(tmp_path, tmp_path), command=str(script), timeout=1.0)
    with caplog.at_level(logging.WARNING, logger="sysops_agent.collectors.gpu"):
        samples = collector.collect(1000.0)
    assert {s.metric for s in samples} >= {"gpu_power_watts", "gpu_temperature_celsius"}
    assert _processes(samples) == {}
    assert collector.stats.skipped == {"nvidia-smi compute-apps timed out": 1}
    assert [r.getMessage() for r in caplog.records] == [
        f"{script} did not answer within 1 s: killed"
    ]


@pytest.mark.parametrize(
    ("text", "apps", "other"),
    [
        ("GPU-a, 17, /usr/bin/python3, 512\n", [("GPU-a", 17, "python3", 512 * MIB)], 0),
        ("GPU-a, 17, [N/A], 512\n", [("GPU-a", 17, "", 512 * MIB)], 0),
        ("GPU-a, 17, python, [N/A]\n", [], 0),
        ("GPU-a, 17, python, [Not Supported]\n", [], 0),
        ("GPU-a, 17, my, app, 3\n", [("GPU-a", 17, "my, app", 3 * MIB)], 0),
        ("No running processes found\n", [], 1),
        ("GPU-a, x, python, 5\n", [], 1),
        ("GPU-a, 17, python, -5\n", [], 1),
        ("GPU-a, 17, python, lots\n", [], 1),
        ("\n\n", [], 0),
    ],
)
def test_parse_compute_apps(text: str, apps: List[GpuApp], other: int) -> None:
    got, rest = parse_compute_apps(text)
    assert got == apps and len(rest) == other
