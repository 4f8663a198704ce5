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


def _documented_keys(text: str) -> dict[str, set[str]]:
    """Section -> keys written in the sample file, commented-out entries included."""
    import re

    out: dict[str, set[str]] = {}
    current = ""
    for raw in text.splitlines():
        line = raw.strip().lstrip("#").strip()
        head = re.fullmatch(r"\[\[?([A-Za-z0-9_.]+)\]\]?", line)
        if head:
            current = head.group(1)
            out.setdefault(current, set())
            continue
        key = re.match(r"([A-Za-z_][A-Za-z0-9_]*)\s*=", line)
        if key and current:
            out[current].add(key.group(1))
    return out


def test_sample_config_lists_exactly_the_registered_plugins_and_their_keys() -> None:
    """The registries are the source of truth: every plugin has its documented section, every
    key of its config class is in the sample file, and no section there names a plugin that
    does not exist (a plugin renamed or removed fails here)."""
    import dataclasses

    from sysops_agent.analyzers.registry import ANALYZERS
    from sysops_agent.collectors.registry import COLLECTORS

    documented = _documented_keys(SAMPLE.read_text())
    for prefix, plugins in (("collector", COLLECTORS), ("analyzer", ANALYZERS)):
        names = {p.name for p in plugins}
        for plugin in plugins:
            section = f"{prefix}.{plugin.name}"
            assert section in documented, f"[{section}] is missing from {SAMPLE.name}"
            keys = {f.name for f in dataclasses.fields(plugin.config_cls)}
            assert keys <= documented[section], (section, keys - documented[section])
        stale = {
            s.split(".")[1]
            for s in documented
            if s.startswith(prefix + ".") and s.count(".") == 1 and s.split(".")[1] not in names
        }
        # the tables' own sub-tables: [collector.log], [[analyzer.rules]]
        assert stale <= {"log", "rules"}, stale


def test_includes_merge_in_order_and_name_the_file_of_each_problem(tmp_path: Path) -> None:
    conf_d = tmp_path / "conf.d"
    conf_d.mkdir()
    main_file = tmp_path / "agent.toml"
    main_file.write_text(
        'include = ["conf.d/*.toml"]\n[agent]\nhostname = "main"\n'
        '[[analyzer.rules]]\nmetric = "load_*"\nzscore = false\n'
    )
    (conf_d / "10-role.toml").write_text(
        '[agent]\nhostname = "web-1"\n[collector.cpu]\ninterval_secs = "fast"\n'
        '[[analyzer.rules]]\nmetric = "net_*"\nema = false\n'
    )
    (conf_d / "20-site.toml").write_text('[agent]\nhostname = "web-1.prod"\n')
    loaded = load_config(main_file, env={})
    assert loaded.config.agent.hostname == "web-1.prod"  # later files win
    assert [r.metric for r in loaded.config.analyzer.rules] == ["load_*", "net_*"]  # appended
    assert [str(p) for p in loaded.problems] == [
        f"{conf_d / '10-role.toml'}: collector.cpu.interval_secs: expected number, "
        "got 'fast'; using the default 10"
    ]


def test_include_errors_are_reported(tmp_path: Path) -> None:
    main_file = tmp_path / "agent.toml"
    main_file.write_text('include = ["missing.toml", "none.d/*.toml"]\n')
    problems = [str(p) for p in load_config(main_file, env={}).problems]
    assert problems == [f"include[0]: {tmp_path / 'missing.toml'} does not exist"]
    (tmp_path / "inner.toml").write_text('include = ["x.toml"]\n[agent\n')
    main_file.write_text('include = ["inner.toml"]\n')
    problems = [str(p) for p in load_config(main_file, env={}).problems]
    assert len(problems) == 1 and "invalid TOML" in problems[0] and "inner.toml" in problems[0]


def test_a_literal_secret_in_an_included_file_needs_that_file_0600(tmp_path: Path) -> None:
    main_file = tmp_path / "agent.toml"
    main_file.write_text('include = ["secret.toml"]\n')
    main_file.chmod(0o644)
    secret = tmp_path / "secret.toml"
    secret.write_text('[alerting.slack]\nwebhook_url = "https://hooks.slack.com/services/T/B/x"\n')
    secret.chmod(0o644)
    fatal = [str(p) for p in load_config(main_file, env={}).fatal]
    assert len(fatal) == 1 and f"chmod 600 {secret}" in fatal[0], fatal
    secret.chmod(0o600)
    assert load_config(main_file, env={}).fatal == []


def test_check_config_warns_about_rules_that_name_no_metric(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(
        "[thresholds.memory_usage_pct]\nwarn = 50.0\n"
        "[thresholds.sysops_memory_usage_ratio]\nwarn = 0.5\n"
        '[thresholds."disk_*_percent"]\nwarn = 70.0\n'
        '[[analyzer.rules]]\nmetric = "nett_*"\nzscore = false\n'
    )
    assert main(["check-config", str(path)]) == 0  # warnings, not errors
    out = capsys.readouterr().out
    assert "thresholds.memory_usage_pct: no collector emits" in out
    assert "did you mean memory_usage_percent" in out
    assert "sysops_memory_usage_ratio is the exported Prometheus name" in out
    assert "'memory_usage_percent' (in percent, not a 0-1 ratio)" in out
    assert "analyzer.rules[0].metric: 'nett_*' matches no metric" in out
    assert "disk_*_percent" not in out  # a glob that matches is fine
    assert out.rstrip().endswith("configuration is valid")


def test_every_fixture_metric_is_declared_by_a_collector() -> None:
    """``METRICS`` on each collector's config class is what check-config trusts: it must be complete."""
    import json

    from sysops_agent.config_checks import known_metrics

    emitted = set()
    for expected in (REPO / "tests" / "fixtures" / "proc").glob("*/expected.json"):
        for step in json.loads(expected.read_text()).get("steps", []):
            emitted.update(sample[0] for sample in step.get("samples", []))
    assert emitted and emitted <= set(known_metrics()), emitted - set(known_metrics())


@pytest.mark.parametrize("role", sorted((REPO / "config" / "examples").glob("*.toml")))
def test_role_templates_are_valid_as_includes(role: Path, tmp_path: Path) -> None:
    from sysops_agent.config_checks import metric_name_problems

    main_file = tmp_path / "agent.toml"
    main_file.write_text(
        SAMPLE.read_text().replace("[agent]\n", f'include = ["{role}"]\n[agent]\n', 1)
    )
    loaded = load_config(main_file, env={})
    assert [str(p) for p in loaded.problems] == []
    assert [str(p) for p in metric_name_problems(loaded.config)] == []
