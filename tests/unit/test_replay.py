"""``sysops-agent replay``: CSV and JSON-lines input, bad lines, webhook JSON output."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List

import pytest

from sysops_agent import cli
from sysops_agent.replay import BadLine, parse_timestamp


def run_cli(
    capsys: pytest.CaptureFixture[str], *argv: str
) -> tuple[int, List[Dict[str, Any]], str]:
    code = cli.main(["replay", *argv])
    out, err = capsys.readouterr()
    return code, [json.loads(line) for line in out.splitlines()], err


def nab_time(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts))


def test_csv_series_named_by_stem_and_metric_option(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    start = 1_400_000_000
    lines = ["timestamp,value"]
    for i in range(600):
        value = 10.0 + (i % 5) * 0.1
        if i == 500:
            value = 90.0
        lines.append(f"{nab_time(start + i * 300)},{value}")
    path = tmp_path / "web_latency.csv"
    path.write_text("\n".join(lines) + "\n")
    code, alerts, err = run_cli(capsys, str(path))
    assert code == 0 and err == ""
    assert alerts, "the spike at row 500 must be reported"
    first = alerts[0]
    assert first["metric"] == "web_latency" and first["state"] == "firing"
    assert first["timestamp"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start + 500 * 300))
    assert set(first) == {
        "hostname", "timestamp", "severity", "metric", "value", "threshold", "message",
        "labels", "duration_secs", "analyzer", "state", "id",
    }  # fmt: skip
    assert {a["analyzer"] for a in alerts} <= {"anomaly", "zscore", "ema"}
    assert any(a["state"] == "resolved" for a in alerts)
    code, renamed, _ = run_cli(capsys, str(path), "--metric", "cpu_usage_percent")
    assert code == 0 and {a["metric"] for a in renamed} == {"cpu_usage_percent"}


def test_jsonl_with_labels_threshold_and_dedup(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    labels = {"mountpoint": "/", "device": "/dev/sda1", "fstype": "ext4"}
    rows = []
    for i in range(30):
        # 92 % for 30 minutes: one critical alert, not one per sample
        rows.append({"ts": 1_700_000_000 + i * 60, "metric": "disk_usage_percent",
                     "labels": labels, "value": 92.0})  # fmt: skip
    rows.append({"ts": 1_700_000_000 + 30 * 60, "metric": "disk_usage_percent",
                 "labels": labels, "value": 50.0})  # fmt: skip
    path = tmp_path / "host.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = tmp_path / "agent.toml"
    cfg.write_text('[agent]\nhostname = "db7"\n')
    code, alerts, err = run_cli(capsys, str(path), "--config", str(cfg))
    assert code == 0 and err == ""
    assert [(a["state"], a["severity"], a["analyzer"]) for a in alerts] == [
        ("firing", "critical", "threshold"),
        ("resolved", "critical", "threshold"),
    ]
    assert alerts[0]["message"] == "disk / 92.0% full (critical level 90%)"
    assert alerts[0]["hostname"] == "db7" and alerts[0]["labels"] == labels
    assert alerts[1]["duration_secs"] == 1800


def test_bad_lines_are_reported_with_line_numbers_and_skipped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = {"ts": 1_700_000_000, "metric": "cpu_usage_percent", "labels": {}, "value": 99.5}
    lines = [
        json.dumps(good),  # 1
        "{not json",  # 2
        json.dumps({"ts": 1_700_000_010, "metric": "m"}),  # 3: no value
        json.dumps({**good, "ts": 1_700_000_020, "value": "high"}),  # 4
        json.dumps({**good, "ts": 1_700_000_030, "value": -5}),  # 5: impossible
        json.dumps({**good, "ts": 1_699_999_000}),  # 6: goes backwards
        "",  # 7: blank lines are fine
        json.dumps([1, 2]),  # 8
        json.dumps({**good, "ts": 1_700_000_100}),  # 9
    ]
    jsonl = tmp_path / "x.jsonl"
    jsonl.write_text("\n".join(lines) + "\n")
    csv = tmp_path / "y.csv"
    csv.write_text(
        "timestamp,value\n2014-01-01 00:00:00,1\n2014-13-01 00:00:00,2\nfoo\n2014-01-01 00:05:00,abc\n"
    )
    code, _alerts, err = run_cli(capsys, str(jsonl), str(csv))
    assert code == 0
    reported = [line.split(": ")[1] for line in err.splitlines()]
    # files are read interleaved in time order, so compare as sets
    expected = [f"{jsonl}:{n}" for n in (2, 3, 4, 5, 6, 8)] + [f"{csv}:{n}" for n in (3, 4, 5)]
    assert sorted(reported) == sorted(expected) and len(reported) == len(expected)
    assert 'missing "value"' in err and "cannot be negative" in err and "not after" in err
    assert "is not YYYY-MM-DD HH:MM:SS" in err and "expected 2 fields" in err


def test_hostile_input_is_reported_line_by_line_never_a_crash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 18's reproductions: each used to end replay with a traceback or invalid JSON."""
    good = {"ts": 1_700_000_000, "metric": "memory_usage_percent", "value": 95.0}
    lines = [
        json.dumps(good),  # 1
        json.dumps({**good, "ts": 1_700_000_010, "value": int("9" * 400)}),  # 2: OverflowError
        json.dumps({**good, "ts": 1_700_000_020_000}),  # 3: milliseconds
        '{"a":' * 5000,  # 4: RecursionError
        json.dumps({**good, "ts": 1_700_000_030, "value": 4e38}),  # 5: beyond float32
        json.dumps({**good, "ts": 1_700_000_040, "value": 150.0}),  # 6: a percentage above 100
        json.dumps({**good, "ts": 1_700_000_050}),  # 7
    ]
    jsonl = tmp_path / "x.jsonl"
    jsonl.write_text("\n".join(lines) + "\n")
    csv = tmp_path / "y.csv"
    csv.write_text(
        "timestamp,value\n"
        "2020-01-01 00:00:00,1\n"  # 2
        "9999-12-31 23:59:59,2\n"  # 3: past 2106
        "2020-01-01 00:00:00.5e400,3\n"  # 4: float infinity
        "2020-01-01 00:00:10,1e999\n"  # 5: inf
        "2020-01-01 00:00:20,4\n"  # 6
    )
    code, alerts, err = run_cli(capsys, str(jsonl), str(csv))
    assert code == 0
    reported = sorted(line.split(": ")[1] for line in err.splitlines())
    expected = sorted([f"{jsonl}:{n}" for n in (2, 3, 4, 5, 6)] + [f"{csv}:{n}" for n in (3, 4, 5)])
    assert reported == expected, err
    assert "too large for a number" in err and "nested too deeply" in err
    assert "float32" in err and "not unix seconds" in err and "above 100" in err
    for alert in alerts:  # valid JSON all through: no Infinity, no "inf%"
        assert "inf" not in json.dumps(alert, allow_nan=False).lower()


def test_missing_file_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["replay", str(tmp_path / "nope.csv")])
    assert code == 2 and "cannot read" in capsys.readouterr().err


def test_parse_timestamp() -> None:
    assert parse_timestamp("1970-01-02 00:00:01") == 86401
    assert parse_timestamp("2014-04-10 07:15:00.000000") == 1397114100
    for bad in ("2014-04-10", "2014-04-10 25:00:00", "2014/04/10 00:00:00", "2014-04-10 00:00:00Z"):
        with pytest.raises(BadLine):
            parse_timestamp(bad)


@pytest.mark.slow
def test_replay_as_a_real_process(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    path.write_text(
        "".join(
            json.dumps({"ts": 1_700_000_000 + i * 10, "metric": "fd_usage_percent", "value": v})
            + "\n"
            for i, v in enumerate([10.0, 96.0, 97.0, 10.0])
        )
    )
    proc = subprocess.run(
        [sys.executable, "-m", "sysops_agent", "replay", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    states = [(d["state"], d["severity"]) for d in map(json.loads, proc.stdout.splitlines())]
    assert states == [("firing", "critical"), ("resolved", "critical")]
