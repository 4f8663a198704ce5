"""Configuration: defaults, ${ENV}, validation table, secrets file mode, check-config."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sysops_agent.cli import main
from sysops_agent.config import Config, load_config
from tests.support.paths import ROOT

REPO = ROOT
SAMPLE = REPO / "config" / "sysops-agent.toml"


def problems_of(text: str, env: dict[str, str] | None = None) -> list[str]:
    return [str(p) for p in load_config(text=text, env=env or {}).problems]


def test_no_file_gives_every_default() -> None:
    loaded = load_config(None, env={})
    assert loaded.problems == []
    assert loaded.config == Config()
    assert loaded.config.collector.cpu.interval_secs == 10
    assert loaded.config.thresholds["cpu_usage_percent"].warn == 80
    assert loaded.config.thresholds["memory_usage_percent"].critical == 90


def test_sample_config_is_valid_and_documents_every_section() -> None:
    loaded = load_config(SAMPLE, env={})
    assert [str(p) for p in loaded.problems] == []
    text = SAMPLE.read_text()
    for section in (
        "[agent]",
        "[collector.cpu]",
        "[thresholds.",
        "[storage]",
        "[alerting]",
        "[prometheus]",
    ):
        assert section in text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # wrong types
        ("[agent]\nlog_level = 3\n", ["agent.log_level: expected string, got 3"]),
        (
            '[collector.cpu]\ninterval_secs = "fast"\n',
            ["collector.cpu.interval_secs: expected number, got 'fast'"],
        ),
        (
            '[collector.process]\ntrack_patterns = "nginx"\n',
            ["collector.process.track_patterns: expected a list of strings"],
        ),
        ("[collector.cpu]\nenabled = 1\n", ["collector.cpu.enabled: expected boolean, got 1"]),
        # out of range / not a choice
        (
            "[collector.cpu]\ninterval_secs = 0\n",
            ["collector.cpu.interval_secs: 0 is below the minimum 1"],
        ),
        ("[prometheus]\nport = 70000\n", ["prometheus.port: 70000 is above the maximum 65535"]),
        ('[agent]\nlog_level = "loud"\n', ["agent.log_level: 'loud' is not one of"]),
        (
            "[thresholds.cpu_usage_percent]\nwarn = 90\ncritical = 80\n",
            ["thresholds.cpu_usage_percent: levels must not decrease"],
        ),
        # unknown keys, at any depth
        ('[agnet]\nhostname = "x"\n', ["agnet: unknown key"]),
        ("[collector.cpu]\nintervall = 5\n", ["collector.cpu.intervall: unknown key"]),
        ('[alerting.slack]\nwebhook = "x"\n', ["alerting.slack.webhook: unknown key"]),
        (
            '[[collector.log.custom_patterns]]\nname = "x"\npattern = "(unclosed"\n',
            ["collector.log.custom_patterns[0].pattern: invalid regular expression '(unclosed'"],
        ),
        (
            '[[collector.log.custom_patterns]]\nseverity = "warn"\n',
            [
                "collector.log.custom_patterns[0].name: required",
                "collector.log.custom_patterns[0].pattern: required",
            ],
        ),
        # an unset environment variable names the key
        (
            '[agent]\nhostname = "${NOPE_UNSET}"\n',
            ["agent.hostname: environment variable NOPE_UNSET is not set"],
        ),
    ],
)
def test_validation_table(text: str, expected: list[str]) -> None:
    found = problems_of(text)
    assert len(found) == len(expected), found
    for want, got in zip(expected, found):
        assert got.startswith(want), (want, got)


def test_every_problem_is_reported_at_once_and_bad_values_fall_back() -> None:
    loaded = load_config(
        text='[agent]\nlog_level = "x"\nbogus = 1\n[collector.cpu]\ninterval_secs = -5\n', env={}
    )
    assert len(loaded.problems) == 3
    assert loaded.config.agent.log_level == "info"
    assert loaded.config.collector.cpu.interval_secs == 10


def test_broken_toml_reports_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[agent]\nhostname = "x"\nlog_level = \n')
    loaded = load_config(path, env={})
    assert len(loaded.fatal) == 1
    assert "line 3" in str(loaded.fatal[0]) and "column" in str(loaded.fatal[0])


def test_env_expansion_in_any_string() -> None:
    loaded = load_config(
        text='[agent]\nhostname = "web-${N}"\n[collector.process]\ntrack_patterns = ["${P}*"]\n',
        env={"N": "01", "P": "postgres"},
    )
    assert loaded.problems == []
    assert loaded.config.agent.hostname == "web-01"
    assert loaded.config.collector.process.track_patterns == ["postgres*"]


def test_threshold_override_keeps_other_levels() -> None:
    loaded = load_config(text="[thresholds.cpu_usage_percent]\nwarn = 70\n", env={})
    rule = loaded.config.thresholds["cpu_usage_percent"]
    assert (rule.warn, rule.critical, rule.emergency) == (70, 95, 99)
    assert "memory_usage_percent" in loaded.config.thresholds


SECRET_TOML = '[alerting.slack]\nenabled = true\nwebhook_url = "https://hooks.slack.com/services/T0/B0/SECRETSECRET"\n'


def test_literal_secret_in_world_readable_file_is_fatal(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(SECRET_TOML)
    path.chmod(0o644)
    loaded = load_config(path, env={})
    assert len(loaded.fatal) == 1
    message = str(loaded.fatal[0])
    assert "chmod 600" in message and "alerting.slack.webhook_url" in message
    assert "SECRETSECRET" not in message
    path.chmod(0o600)
    assert load_config(path, env={}).fatal == []


def test_secret_by_env_reference_needs_no_0600(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text('[alerting.slack]\nenabled = true\nwebhook_url = "${SLACK_URL}"\n')
    path.chmod(0o644)
    loaded = load_config(path, env={"SLACK_URL": "https://hooks.slack.com/services/X"})
    assert loaded.problems == []
    assert loaded.secrets == {"alerting.slack.webhook_url": "https://hooks.slack.com/services/X"}


def test_check_config_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.toml"
    good.write_text('[agent]\nhostname = "h"\n')
    assert main(["check-config", str(good)]) == 0
    assert "configuration is valid" in capsys.readouterr().out

    bad = tmp_path / "bad.toml"
    bad.write_text(SECRET_TOML + '[agent]\nlog_level = "x"\nnope = 1\n')
    os.chmod(bad, 0o644)
    assert main(["check-config", str(bad)]) == 1
    out = capsys.readouterr().out
    assert "agent.log_level" in out and "agent.nope: unknown key" in out and "chmod 600" in out
    assert "SECRETSECRET" not in out

    broken = tmp_path / "broken.toml"
    broken.write_text("[agent\n")
    assert main(["check-config", str(broken)]) == 1
    assert "invalid TOML" in capsys.readouterr().out
