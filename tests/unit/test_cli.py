"""The command line never surprises (issue 15 item 7): honest exit codes, no traceback
on a closed pipe, each command's own usage on a bad flag, "did you mean", JSON logs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import List

import pytest

from sysops_agent import cli

#: every case runs the CLI in a fresh interpreter
pytestmark = pytest.mark.slow


def agent(*args: str, stdout: int = subprocess.PIPE) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sysops_agent", *args],
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
        timeout=60,
    )


def partial_procfs(tmp_path: Path) -> Path:
    """A procfs root where only the load and uptime collectors find their files."""
    root = tmp_path / "proc"
    root.mkdir()
    (root / "loadavg").write_text("0.50 0.40 0.30 1/123 4567\n")
    (root / "uptime").write_text("12345.67 23456.78\n")
    return root


def test_collect_exits_3_when_every_collector_failed(tmp_path: Path) -> None:
    # --procfs alone: the collectors that read /sys (links, hwmon, cgroups) still work
    proc = agent("collect", "--once", "--interval", "0", "--procfs", "/nonexistent")
    assert proc.returncode != 0, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert "collectors failed" in last and "process" in last and "cpu" in last
    # neither /proc nor /sys: nothing at all is collected
    proc = agent(*nothing_to_collect(tmp_path))
    assert proc.returncode == 3, proc.stderr
    assert proc.stdout == ""
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("sysops-agent: ")
    assert "process" in last and "cpu" in last and "nothing collected" in last


def test_collect_exits_1_listing_the_failed_collectors(tmp_path: Path) -> None:
    proc = agent("collect", "--once", "--interval", "0", "--procfs", str(partial_procfs(tmp_path)))
    assert proc.returncode == 1, proc.stderr
    metrics = {line.split()[0] for line in proc.stdout.splitlines()}
    assert {"load_avg_1m", "uptime_seconds"} <= metrics, proc.stdout
    summary = proc.stderr.strip().splitlines()[-1]
    assert "collectors failed: " in summary
    failed = summary.split("collectors failed: ")[1].split(", ")
    assert "cpu" in failed and "memory" in failed
    assert "load" not in failed and "uptime" not in failed and "process" not in failed


def test_collect_exits_0_when_every_collector_worked() -> None:
    proc = agent("collect", "--once", "--interval", "0", "--json")
    assert proc.returncode == 0, proc.stderr
    assert all(json.loads(line)["metric"] for line in proc.stdout.splitlines())


def test_a_closed_pipe_ends_quietly_with_141() -> None:
    """``collect --once | head -1``: the reader goes away; no BrokenPipeError traceback."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first line is written
    try:
        proc = agent("collect", "--once", "--interval", "0", stdout=write_end)
    finally:
        os.close(write_end)
    assert "Traceback" not in proc.stderr and "BrokenPipeError" not in proc.stderr, proc.stderr
    assert proc.returncode == cli.EXIT_BROKEN_PIPE


#: each command with its required arguments
VALID = {
    "run": [],
    "collect": ["--once"],
    "check-config": ["x.toml"],
    "test-alert": [],
    "replay": ["x.jsonl"],
    "history": ["cpu_usage_percent"],
    "status": [],
    "silence": ["list"],
    "ack": ["abc"],
}


@pytest.mark.parametrize("command", list(cli.COMMANDS))
def test_a_bad_flag_prints_the_commands_own_usage(command: str) -> None:
    args: List[str] = [command, *VALID[command]]
    proc = agent(*args, "--bogus")
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"usage: sysops-agent {command} "), proc.stderr
    assert f"sysops-agent {command}: error: unrecognized arguments: --bogus" in proc.stderr


def test_a_bad_flag_before_the_command_prints_the_top_level_usage() -> None:
    proc = agent("--bogus")
    assert proc.returncode == 2
    assert proc.stderr.startswith("usage: sysops-agent [-h]"), proc.stderr


@pytest.mark.parametrize(
    "typo, suggestion",
    [("colect", "'collect'"), ("check-conf", "'check-config'"), ("histroy", "'history'")],
)
def test_a_mistyped_command_gets_a_suggestion(typo: str, suggestion: str) -> None:
    proc = agent(typo)
    assert proc.returncode == 2
    assert f"unknown command {typo!r}; did you mean {suggestion}?" in proc.stderr, proc.stderr
    assert proc.stderr.startswith("usage: sysops-agent [-h]")


def test_an_unknown_command_without_a_close_one_lists_the_commands() -> None:
    proc = agent("zzzz")
    assert proc.returncode == 2
    assert "did you mean" not in proc.stderr
    assert "unknown command 'zzzz' (commands: run, collect, check-config," in proc.stderr


def nothing_to_collect(tmp_path: Path) -> List[str]:
    """``collect`` arguments under which every collector fails or finds nothing (no /proc, no /sys)."""
    config = tmp_path / "agent.toml"
    config.write_text('[agent]\nsys_root = "/nonexistent"\n')
    return [
        "collect",
        "--once",
        "--interval",
        "0",
        "--procfs",
        "/nonexistent",
        "--config",
        str(config),
    ]


def test_log_format_json_one_object_per_line(tmp_path: Path) -> None:
    proc = agent(*nothing_to_collect(tmp_path), "--log-format", "json")
    assert proc.returncode == 3
    lines = [line for line in proc.stderr.splitlines() if line.startswith("{")]
    assert len(lines) >= 9  # one per failed collector
    records = [json.loads(line) for line in lines]
    first = records[0]
    assert set(first) >= {"ts", "level", "logger", "message", "fields"}
    assert first["level"] == "warning"
    assert first["logger"] == "sysops_agent.collectors.registry"
    assert first["message"].startswith("collector ")
    by_collector = {r["fields"]["collector"]: r for r in records}
    assert "No such file or directory" in by_collector["cpu"]["fields"]["error"]


def test_log_level_error_silences_warnings(tmp_path: Path) -> None:
    proc = agent(*nothing_to_collect(tmp_path), "--log-level", "error")
    assert proc.returncode == 3
    assert "collector cpu failed" not in proc.stderr
    assert "nothing collected" in proc.stderr  # the command's own summary stays


JSON_DEBUG = ("--log-format", "json", "--log-level", "debug")


def test_run_honours_log_format_and_level_over_the_config(tmp_path: Path) -> None:
    """A daemon whose config says info/text logs JSON at debug with the flags."""
    config = tmp_path / "agent.toml"
    config.write_text(
        f'[agent]\ndata_dir = "{tmp_path}"\npid_file = ""\nlog_level = "info"\n'
        "[storage]\nsqlite = false\n[prometheus]\nenabled = false\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "sysops_agent", "run", "--config", str(config), *JSON_DEBUG],
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    records = []
    try:
        for line in proc.stderr:
            records.append(json.loads(line))
            if "sysops-agent starting" in records[-1]["message"]:
                break
    finally:
        proc.terminate()
        _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0
    records += [json.loads(line) for line in err.splitlines()]
    assert any(r["message"] == "sysops-agent stopped" for r in records)
    assert {r["logger"] for r in records} >= {"sysops_agent.daemon"}


def test_every_command_documents_its_exit_status() -> None:
    parser = cli.build_parser()
    sub = cli._subparser(parser, "run")
    assert sub.prog == "sysops-agent run"
    for command in cli.COMMANDS:
        text = cli._subparser(parser, command).format_help()
        assert "Exit status: 0 " in " ".join(text.split()), command
    assert "141" in parser.format_help()
