"""The machine-level collectors of issue 16 beyond what the fixture cases show:
log lines said once, errors a file tree cannot reproduce, default thresholds."""

from __future__ import annotations

import errno
import logging
from pathlib import Path

import pytest

from sysops_agent.analyzers.threshold import default_thresholds
from sysops_agent.collectors import pressure
from sysops_agent.procfs import ProcFS


class _PsiOff(ProcFS):
    """A kernel booted with psi=0: /proc/pressure/* exist, reading them fails."""

    def read_text(self, *parts: str) -> str:
        if parts[0] == "pressure":
            raise OSError(errno.EOPNOTSUPP, "Operation not supported")
        return super().read_text(*parts)


@pytest.mark.parametrize("procfs_cls", [ProcFS, _PsiOff], ids=["absent", "psi=0"])
def test_pressure_without_psi_is_said_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, procfs_cls: type
) -> None:
    (tmp_path / "pressure").mkdir()
    if procfs_cls is ProcFS:
        (tmp_path / "pressure").rmdir()
    collector = pressure.PressureCollector(procfs_cls(tmp_path, tmp_path))
    with caplog.at_level(logging.INFO, logger=pressure.__name__):
        for i in range(5):
            assert collector.collect(1000.0 + 10 * i) == []
    said = [r for r in caplog.records if "no pressure stall information" in r.getMessage()]
    assert len(said) == 1
    assert said[0].levelno == logging.INFO


def test_pressure_other_read_errors_are_not_hidden(tmp_path: Path) -> None:
    class Broken(ProcFS):
        def read_text(self, *parts: str) -> str:
            raise OSError(errno.EIO, "Input/output error")

    with pytest.raises(OSError):
        pressure.PressureCollector(Broken(tmp_path, tmp_path)).collect(1000.0)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",  # no some line
        "some avg10=abc avg60=0.00 avg300=0.00 total=0\n",
        "some avg10=0.00 avg60=0.00 avg300=0.00\n",  # no total
        "some avg10=140.00 avg60=0.00 avg300=0.00 total=1\n",  # not a share
        "both avg10=1.00 avg60=0.00 avg300=0.00 total=1\n",
    ],
)
def test_parse_pressure_rejects_what_the_kernel_does_not_write(text: str) -> None:
    with pytest.raises(ValueError, match="/proc/pressure/io"):
        pressure.parse_pressure(text, "/proc/pressure/io")


def test_memory_full_pressure_default_is_systemd_oomds_kill_level() -> None:
    rule = default_thresholds()["pressure_memory_full_percent"]
    assert (rule.warn, rule.critical, rule.for_secs) == (None, 60, 30)
