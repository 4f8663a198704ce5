"""The machine-level collectors of issue 16 beyond what the fixture cases show:
log lines said once, errors a file tree cannot reproduce, default thresholds."""

from __future__ import annotations

import errno
import logging
from pathlib import Path
from typing import List, Optional, Tuple

import pytest

from sysops_agent.analyzers.threshold import ThresholdAnalyzer, ThresholdRule, default_thresholds
from sysops_agent.collectors import pressure
from sysops_agent.collectors.keptfiles import KeptFiles
from sysops_agent.model import Alert, Labels, make_labels
from sysops_agent.procfs import ProcFS
from sysops_agent.storage.store import Store
from tests.support.paths import FIXTURES


class _PsiOff(KeptFiles):
    """A kernel booted with psi=0: /proc/pressure/* exist, reading them fails."""

    def read(self, path: str) -> Optional[bytes]:
        if "/pressure/" in path:
            raise OSError(errno.EOPNOTSUPP, "Operation not supported")
        return super().read(path)


@pytest.mark.parametrize("psi_off", [False, True], ids=["absent", "psi=0"])
def test_pressure_without_psi_is_said_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, psi_off: bool
) -> None:
    collector = pressure.PressureCollector(ProcFS(tmp_path, tmp_path))
    if psi_off:
        collector.files = _PsiOff()
    with caplog.at_level(logging.INFO, logger=pressure.__name__):
        for i in range(5):
            assert collector.collect(1000.0 + 10 * i) == []
    said = [r for r in caplog.records if "no pressure stall information" in r.getMessage()]
    assert len(said) == 1
    assert said[0].levelno == logging.INFO


def test_pressure_other_read_errors_are_not_hidden(tmp_path: Path) -> None:
    (tmp_path / "pressure" / "cpu").mkdir(parents=True)  # opens, but reading fails: EISDIR
    with pytest.raises(OSError) as raised:
        pressure.PressureCollector(ProcFS(tmp_path, tmp_path)).collect(1000.0)
    assert raised.value.errno == errno.EISDIR


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


# --- thresholds for the new metrics ---------------------------------------------------

T0 = 1_700_000_000.0


def _feed(metric: str, values: List[float], labels: Labels = ()) -> List[Alert]:
    store, analyzer = Store(), ThresholdAnalyzer(default_thresholds(), "web1")
    out: List[Alert] = []
    for i, v in enumerate(values):
        store.add(T0 + 10 * i, metric, v, labels)
        out.extend(analyzer.analyze(store, T0 + 10 * i))
    return out


def _states(alerts: List[Alert]) -> List[Tuple[str, str]]:
    return [(a.state.value, a.severity.label) for a in alerts]


def test_link_that_was_up_and_goes_down_is_critical_once() -> None:
    eth0 = make_labels(interface="eth0")
    alerts = _feed("net_link_up", [1, 1, 0, 0, 0, 1, 0], eth0)
    assert _states(alerts) == [
        ("firing", "critical"),
        ("resolved", "critical"),
        ("firing", "critical"),
    ]
    assert alerts[0].message == "link eth0 is down (it was up)"
    assert alerts[0].labels == eth0 and alerts[0].threshold == 0
    assert alerts[1].message == "link eth0 is up again"


def test_link_never_up_is_quiet_until_it_has_been_up() -> None:
    ifb0 = make_labels(interface="ifb0")
    assert _feed("net_link_up", [0, 0, 0, 0], ifb0) == []
    assert _states(_feed("net_link_up", [0, 0, 1, 0], ifb0)) == [("firing", "critical")]


def test_below_rule_levels_descend_and_resolve_above() -> None:
    rule = ThresholdRule(warn=20, critical=10, below=True, hysteresis=0.1)
    store, analyzer = Store(), ThresholdAnalyzer({"x_free_percent": rule}, "web1")
    alerts: List[Alert] = []
    for i, v in enumerate([50.0, 20.0, 9.0, 10.5, 21.0, 22.5]):
        store.add(T0 + 10 * i, "x_free_percent", v)
        alerts.extend(analyzer.analyze(store, T0 + 10 * i))
    # 10.5 stays critical (hysteresis: leaves critical above 11), 21 is still warn (22 to leave)
    assert _states(alerts) == [
        ("firing", "warn"),
        ("firing", "critical"),
        ("firing", "warn"),
        ("resolved", "warn"),
    ]
    assert alerts[0].message == "x_free_percent 20.0% is at or below the warn level 20%"
    assert alerts[1].threshold == 10
    assert alerts[3].message == "x_free_percent back to 22.5% (above 22%)"


@pytest.mark.parametrize(
    ("value", "severity"), [(79.0, None), (80.0, "warn"), (91.0, "critical"), (95.5, "emergency")]
)
def test_conntrack_levels(value: float, severity: Optional[str]) -> None:
    alerts = _feed("conntrack_usage_percent", [10.0, value])
    assert [a.severity.label for a in alerts] == ([severity] if severity else [])


def test_cgroup_oom_kill_is_critical_and_names_the_container() -> None:
    docker = make_labels(
        cgroup="/system.slice/docker-4f1c2a9d8e7b.scope", name="docker 4f1c2a9d8e7b"
    )
    alerts = _feed("cgroup_memory_oom_kills", [0, 0, 2, 0], docker)
    assert _states(alerts) == [("firing", "critical"), ("resolved", "critical")]
    assert alerts[0].message == (
        "OOM kill in docker 4f1c2a9d8e7b: 2 processes killed for exceeding the cgroup's memory limit"
    )
    assert alerts[0].labels == docker


def test_leak_analyzer_flags_a_cgroup_whose_memory_grows_for_hours() -> None:
    from sysops_agent.analyzers.leak import LeakAnalyzer, LeakConfig
    from sysops_agent.analyzers.rules import Selector

    nginx = make_labels(cgroup="/system.slice/nginx.service", name="nginx.service")
    flat = make_labels(cgroup="/system.slice/cron.service", name="cron.service")
    store, analyzer = Store(), LeakAnalyzer(LeakConfig(), Selector("leak", []), "web1")
    alerts: List[Alert] = []
    mb = 1024.0 * 1024.0
    for i in range(int(3 * 3600 / 30)):  # 3 h at 30 s, nginx +120 MB/h, cron flat
        ts = T0 + 30 * i
        store.add(ts, "cgroup_memory_bytes", 300 * mb + 120 * mb * i * 30 / 3600, nginx)
        store.add(ts, "cgroup_memory_bytes", 20 * mb, flat)
        alerts.extend(analyzer.analyze(store, ts))
    assert [(a.state.value, a.labels) for a in alerts] == [("firing", nginx)]
    assert alerts[0].message.startswith("nginx.service memory ")
    assert "+120 MB/h" in alerts[0].message


def test_cgroup_v1_without_oom_kill_count_is_said_once(caplog: pytest.LogCaptureFixture) -> None:
    from sysops_agent.collectors.cgroup import CgroupCollector

    case = FIXTURES / "proc" / "cgroup_v1" / "step0"
    collector = CgroupCollector(ProcFS(case / "proc", case / "sys"))
    with caplog.at_level(logging.INFO, logger="sysops_agent.collectors.cgroup"):
        for i in range(3):
            assert collector.collect(1000.0 + 30 * i)
    said = [r for r in caplog.records if "no oom_kill count" in r.getMessage()]
    assert len(said) == 1


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("/system.slice/nginx.service", "nginx.service"),
        ("/system.slice/docker-" + "ab" * 32 + ".scope", "docker abababababab"),
        ("/machine.slice/libpod-" + "cd" * 32 + ".scope", "podman cdcdcdcdcdcd"),
        (
            "/kubepods.slice/x.slice/cri-containerd-" + "ef" * 32 + ".scope",
            "cri-containerd efefefefefef",
        ),
        ("/kubepods.slice/x.slice/crio-" + "01" * 32 + ".scope", "crio 010101010101"),
        ("/docker/" + "9f" * 32, "docker 9f9f9f9f9f9f"),
        ("/user.slice/user-1000.slice", "user-1000.slice"),
        ("/lxc/web", "web"),
    ],
)
def test_cgroup_names(path: str, name: str) -> None:
    from sysops_agent.collectors.cgroup import cgroup_name

    assert cgroup_name(path) == name


def test_md_degraded_is_critical() -> None:
    md1 = make_labels(device="md1")
    alerts = _feed("md_degraded", [0, 1, 1, 0], md1)
    assert _states(alerts) == [("firing", "critical"), ("resolved", "critical")]
    assert alerts[0].message == "RAID array md1 is degraded"


def test_temperature_alerts_at_the_devices_own_limits() -> None:
    pkg = make_labels(chip="coretemp", sensor="Package id 0", hwmon="hwmon2")
    crit = _feed("hardware_temperature_crit_percent", [45.0, 101.0, 50.0], pkg)
    assert _states(crit) == [("firing", "critical"), ("resolved", "critical")]
    assert crit[0].message == "temperature coretemp Package id 0 at 101% of its critical limit"
    warn = _feed("hardware_temperature_max_percent", [56.0, 99.0, 101.2], pkg)
    assert _states(warn) == [("firing", "warn")]
    assert warn[0].message == "temperature coretemp Package id 0 at 101% of its maximum limit"


def test_edac_uncorrectable_is_critical_and_any_correctable_warns() -> None:
    mc0 = make_labels(controller="mc0")
    assert _states(_feed("edac_uncorrectable_errors", [0, 1, 0], mc0)) == [
        ("firing", "critical"),
        ("resolved", "critical"),
    ]
    assert _states(_feed("edac_correctable_errors_per_second", [0.0, 1 / 60, 0.0], mc0)) == [
        ("firing", "warn"),
        ("resolved", "warn"),
    ]
