"""The GPU collector against recorded nvidia-smi outputs, through a fake nvidia-smi (a real child)."""

from __future__ import annotations

import logging
import stat
from pathlib import Path
from typing import Dict, Tuple

import pytest

from sysops_agent.collectors.gpu import FIELDS, GpuCollector
from sysops_agent.model import Sample
from sysops_agent.procfs import ProcFS
from tests.support.paths import FIXTURES

RECORDED = FIXTURES / "nvidia_smi"
MIB = 1024.0 * 1024.0


def fake_nvidia_smi(bin_dir: Path, case: str, *, hang: bool = False) -> Path:
    """``bin_dir/nvidia-smi`` printing ``case``'s recorded output; it notes its arguments."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    exit_file = RECORDED / f"{case}.exit"
    code = int(exit_file.read_text()) if exit_file.exists() else 0
    script = bin_dir / "nvidia-smi"
    script.write_text(
        "#!/bin/sh\n"
        f'printf "%s\\n" "$@" > "{bin_dir}/args"\n'
        + ("exec sleep 60\n" if hang else "")
        + f'cat "{RECORDED / (case + ".out")}"\n'
        f"exit {code}\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def _collect(tmp_path: Path, case: str) -> Dict[Tuple[str, str], float]:
    script = fake_nvidia_smi(tmp_path / "bin", case)
    samples = GpuCollector(ProcFS(tmp_path, tmp_path), command=str(script)).collect(1000.0)
    return {(s.metric, dict(s.labels)["gpu"]): s.value for s in samples}


def test_two_a100s_all_fields_and_the_query_asked(tmp_path: Path) -> None:
    script = fake_nvidia_smi(tmp_path / "bin", "a100_x2")
    samples = GpuCollector(ProcFS(tmp_path, tmp_path), command=str(script)).collect(1000.0)
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
