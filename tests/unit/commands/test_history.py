"""``sysops-agent history``: table, JSON, label filter, time range, PNG, and clear errors."""

from __future__ import annotations

import asyncio
import importlib
import json
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any, List

import pytest

from sysops_agent.cli import main
from sysops_agent.clock import VirtualClock
from sysops_agent.commands import history as hist
from sysops_agent.model import iso_utc, make_labels
from sysops_agent.storage.sqlite_history import SqliteHistory
from sysops_agent.storage.store import Store

T0 = 1_780_000_000 - (1_780_000_000 % 3600)  # an hour boundary
MINUTES = 120


async def _build(path: Path) -> None:
    """Two hours of a queue depth (2 queues: a unitless metric, so -1 is a value) and memory;
    queue 0 ramps -1..120."""
    clock = VirtualClock(T0 - 1)
    h = SqliteHistory(path, clock=clock)
    await h.open()
    store = Store()
    for m in range(MINUTES):
        for s in range(0, 60, 20):  # 3 samples a minute
            t = T0 + 60 * m + s
            store.add(t, "queue_depth", float(m) + s / 20 - 1, make_labels(core=0))
            store.add(t, "queue_depth", 50.0, make_labels(core=1))
            store.add(t, "memory_used_bytes", 3 * 1024**3, ())
        await h.flush(store, T0 + 60 * (m + 1))
    await h.close()


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("hist") / "metrics.db"
    asyncio.run(_build(path))
    return path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["history", *args])
    out, err = capsys.readouterr()
    return code, out, err


def at(minute: int) -> str:
    return f"@{T0 + 60 * minute}"


def test_table_with_sparkline(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(
        capsys, "queue_depth", "--db", str(db), "--labels", "core=0",
        "--since", at(0), "--until", at(MINUTES), "--step", "10m",
    )  # fmt: skip
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == (f'queue_depth{{core="0"}}  {iso_utc(T0)} .. {iso_utc(T0 + 7200)}  step 10m')
    spark = lines[1].strip()
    assert len(spark) == 12 and spark[0] == "▁" and spark[-1] == "█"
    assert list(spark) == sorted(spark)  # a ramp
    assert lines[2].split()[:6] == ["avg", "59.5", "min", "-1", "max", "120"]
    assert lines[3].split() == ["time", "avg", "min", "max"]
    rows = lines[4:]
    assert len(rows) == 12
    # first 10 minutes: values m-1, m, m+1 for m in 0..9
    assert rows[0].split() == [iso_utc(T0), "4.5", "-1", "10"]
    assert rows[-1].split() == [iso_utc(T0 + 6600), "114.5", "109", "120"]


def test_table_shows_every_matching_series_and_bytes_in_units(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "queue_depth", "--db", str(db), "--since", at(0), "--until", at(5))
    assert code == 0
    headers = [line for line in out.splitlines() if line.startswith("queue_depth{")]
    assert [h.split()[0] for h in headers] == [
        'queue_depth{core="0"}',
        'queue_depth{core="1"}',
    ]
    assert "  ▄▄▄▄▄" in out  # the flat core-1 series
    code, out, _ = run(
        capsys, "memory_used_bytes", "--db", str(db), "--since", at(0), "--until", at(2)
    )
    assert code == 0
    assert out.splitlines()[-1].split() == [
        iso_utc(T0 + 60),
        "3.00",
        "GiB",
        "3.00",
        "GiB",
        "3.00",
        "GiB",
    ]


def test_json_lines(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys, "queue_depth", "--db", str(db), "--json", "--since", at(10), "--until", at(13)
    )
    assert code == 0
    objs: List[Any] = [json.loads(line) for line in out.splitlines()]
    assert len(objs) == 6  # 3 minutes x 2 series, one row per minute by default
    first = objs[0]
    assert first == {
        "ts": T0 + 600,
        "time": iso_utc(T0 + 600),
        "metric": "queue_depth",
        "labels": {"core": "0"},
        "avg": 10.0,
        "min": 9.0,
        "max": 11.0,
        "count": 3,
    }
    assert {o["labels"]["core"] for o in objs} == {"0", "1"}


def test_step_merges_rows_weighted_by_count(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys, "queue_depth", "--db", str(db), "--json", "--labels", "core=0",
        "--since", at(0), "--until", at(60), "--step", "1h",
    )  # fmt: skip
    objs = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and len(objs) == 1
    assert objs[0]["count"] == 180 and objs[0]["avg"] == pytest.approx(29.5)
    assert (objs[0]["min"], objs[0]["max"]) == (-1.0, 60.0)


def test_since_until_iso_and_labels_filter(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    since = iso_utc(T0 + 3600)  # ...Z
    until = iso_utc(T0 + 3600 + 300).replace("Z", "+00:00")
    code, out, _ = run(
        capsys, "queue_depth", "--db", str(db), "--json", "--labels", "core=1",
        "--since", since, "--until", until,
    )  # fmt: skip
    objs = [json.loads(line) for line in out.splitlines()]
    assert code == 0
    assert [o["ts"] for o in objs] == [T0 + 3600 + 60 * i for i in range(5)]
    assert all(o["labels"] == {"core": "1"} and o["avg"] == 50.0 for o in objs)
    # a naive ISO time is UTC
    code, out2, _ = run(
        capsys, "queue_depth", "--db", str(db), "--json", "--labels", "core=1",
        "--since", since[:-1], "--until", until[:-6],
    )  # fmt: skip
    assert out2 == out


def test_unknown_metric_suggests_close_names(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "queue_dept", "--db", str(db))
    assert code == 1 and out == ""
    assert "no metric 'queue_dept'" in err and "did you mean queue_depth" in err
    code, _, err = run(capsys, "zzz", "--db", str(db))
    assert code == 1 and "2 metrics, e.g. memory_used_bytes, queue_depth" in err


def test_labels_that_match_nothing(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "queue_depth", "--db", str(db), "--labels", "core=7")
    assert code == 1 and out == ""
    assert "no series of queue_depth has labels core=7" in err
    assert "core=0; core=1" in err


def test_no_rows_in_range_says_where_the_data_is(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(
        capsys, "queue_depth", "--db", str(db), "--since", at(-600), "--until", at(-300)
    )
    assert code == 1
    assert f"it has data from {iso_utc(T0)} to {iso_utc(T0 + 7200)}" in err


@pytest.mark.parametrize(
    "args, message",
    [
        (["--since", "6x"], "invalid time '6x'"),
        (["--since", at(10), "--until", at(5)], "is not after --since"),
        (["--labels", "core"], "invalid label filter 'core'"),
        (["--step", "10s"], "--step must be at least 1m"),
        (["--step", "often"], "invalid duration 'often'"),
    ],
)
def test_bad_arguments_exit_2(
    db: Path, capsys: pytest.CaptureFixture[str], args: List[str], message: str
) -> None:
    code, _, err = run(capsys, "queue_depth", "--db", str(db), *args)
    assert code == 2 and message in err


def test_missing_and_foreign_databases(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "x", "--db", str(tmp_path / "nope.db"))
    assert code == 1 and "no history database at" in err and not (tmp_path / "nope.db").exists()
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not sqlite at all" * 100)
    code, _, err = run(capsys, "x", "--db", str(junk))
    assert code == 1 and "not a readable SQLite database" in err
    other = tmp_path / "other.db"
    with closing(sqlite3.connect(other, isolation_level=None)) as conn:
        conn.execute("CREATE TABLE t (x)")
    code, _, err = run(capsys, "x", "--db", str(other))
    assert code == 1 and "not a sysops-agent history database" in err


def test_db_path_comes_from_the_config(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "agent.toml"
    cfg.write_text(f'[agent]\ndata_dir = "{db.parent}"\n[storage]\nsqlite = true\n')
    code, out, err = run(
        capsys, "memory_used_bytes", "--config", str(cfg), "--since", at(0), "--until", at(1)
    )
    assert code == 0, err
    assert out.startswith("memory_used_bytes  ")


def test_reads_while_the_writer_holds_a_lock_and_changes_nothing(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = db.read_bytes()
    writer = sqlite3.connect(db, isolation_level=None)
    writer.execute("BEGIN EXCLUSIVE")
    try:
        code, out, err = run(
            capsys,
            "memory_used_bytes",
            "--db",
            str(db),
            "--json",
            "--since",
            at(0),
            "--until",
            at(3),
        )
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    assert code == 0, err
    assert len(out.splitlines()) == 3
    assert db.read_bytes() == before


# matplotlib 3.9 (the last release for Python 3.9) calls pyparsing names that
# pyparsing 3.3 deprecates; that is between those two libraries, not ours.
@pytest.mark.filterwarnings("ignore:.*deprecated - use:DeprecationWarning")
def test_png_chart(db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib", reason="the plot extra (matplotlib) is not installed")
    png = tmp_path / "cpu.png"
    code, out, err = run(
        capsys,
        "queue_depth",
        "--db",
        str(db),
        "--since",
        at(0),
        "--until",
        at(MINUTES),
        "--png",
        str(png),
    )
    assert code == 0, err
    assert out.strip() == f"wrote {png}: 2 series, 240 points"
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


def test_png_without_matplotlib_says_how_to_install(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    real = importlib.import_module

    def no_matplotlib(name: str, package: Any = None) -> Any:
        if name.startswith("matplotlib"):
            raise ImportError(f"No module named {name!r}")
        return real(name, package)

    monkeypatch.setattr(hist.importlib, "import_module", no_matplotlib)
    code, _, err = run(
        capsys,
        "queue_depth",
        "--db",
        str(db),
        "--since",
        at(0),
        "--until",
        at(5),
        "--png",
        str(tmp_path / "x.png"),
    )
    assert code == 1
    assert "pip install 'sysops-agent[plot]'" in err
    assert not (tmp_path / "x.png").exists()


# --------------------------------------------------------------------------- pure helpers


@pytest.mark.parametrize(
    "text, expected",
    [
        ("now", 1_000_000.0),
        ("90s", 1_000_000.0 - 90),
        ("30m", 1_000_000.0 - 1800),
        ("6h", 1_000_000.0 - 21600),
        ("2d", 1_000_000.0 - 172800),
        ("1w", 1_000_000.0 - 604800),
        ("1.5h", 1_000_000.0 - 5400),
        ("@123", 123.0),
        ("1970-01-02T00:00:00Z", 86400.0),
        ("1970-01-02T00:00", 86400.0),
        ("1970-01-02 01:00:00+01:00", 86400.0),
        ("1970-01-02", 86400.0),
    ],
)
def test_parse_when(text: str, expected: float) -> None:
    assert hist.parse_when(text, 1_000_000.0) == expected


def test_sparkline_scales_and_marks_gaps() -> None:
    pts = [(0, 0.0), (60, 7.0), (180, 3.5)]  # nothing at 120
    assert hist.sparkline(pts, 60) == "▁█ ▅"
    assert hist.sparkline([(0, 5.0), (60, 5.0)], 60) == "▄▄"
    assert hist.sparkline([], 60) == ""
    long = [(60 * i, float(i)) for i in range(600)]
    line = hist.sparkline(long, 60, width=60)
    assert len(line) == 60 and line[0] == "▁" and line[-1] == "█"


def test_auto_step_and_value_format() -> None:
    assert hist.auto_step(0, 3600) == 60
    assert hist.auto_step(0, 6 * 3600) == 600
    assert hist.auto_step(0, 30 * 86400) == 43200
    assert hist.format_value("memory_used_bytes", 512.0) == "512"
    assert hist.format_value("net_rx_bytes_per_second", 1536.0) == "1.50 KiB/s"
    assert hist.format_value("cpu_usage_percent", 12.345678) == "12.3457"
