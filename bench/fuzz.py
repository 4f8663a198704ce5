"""Fuzz every input parser: seeded, >= 100,000 cases each, zero unexpected exceptions.

Each target starts from real inputs (the captured /proc trees and log files
under tests/fixtures/, the sample configuration, Retry-After headers and
Alertmanager answers) and mutates them — spans replaced by the numbers and
fragments that break parsers (``1e400``, 400 digits, ``nan``, ``٣``, NUL,
surrogates, 5,000 nested brackets), spans deleted, duplicated, cut and
swapped — with a ``random.Random`` seeded from ``--seed`` and the target's
name, so a run is repeatable case for case. A target may raise only the
error it documents (``ParseError``, ``BadLine``, ``ChannelError``); anything
else, and any broken invariant (a replayed sample that is not valid JSON, a
negative wait), is counted as unexpected and the first inputs are printed.

    .venv/bin/python bench/fuzz.py                  # 100,000 cases per target
    .venv/bin/python bench/fuzz.py --seconds 10     # what `make test` runs
    .venv/bin/python bench/fuzz.py --only kmsg --cases 1000000 --seed 7

Exit status 1 when anything unexpected happened. Not a timed test: it prints
the counts and the rate.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
import traceback
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Type

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"

#: fragments that break conversions and index arithmetic
TOKENS: Tuple[str, ...] = (
    "0",
    "-1",
    "+3",
    "3.5",
    "1e400",
    "-1e400",
    "4e38",
    "nan",
    "NaN",
    "inf",
    "-inf",
    "Infinity",
    "1_000",
    "0x10",
    "٣",
    "18446744073709551616",
    "9" * 400,
    "9999-12-31 23:59:59",
    "2020-01-01 00:00:00.5e400",
    "1700000000000",
    "\x00",
    "\x1b[2J",
    "\r\n",
    "\n",
    "\t",
    " ",
    "\u2028",
    "\ufffd",
    "\udcff",
    "🔥",
    '"',
    "'",
    "\\",
    "{",
    "}",
    "[",
    "]",
    "(",
    ")",
    ":",
    ",",
    "=",
    "${X}",
    "${",
    "[" * 5000,
    '{"a":' * 5000,
)


def mutate(rng: random.Random, text: str, extra: Sequence[str] = ()) -> str:
    """``text`` with one to four random edits."""
    tokens = TOKENS + tuple(extra)
    for _ in range(rng.randint(1, 4)):
        n = len(text)
        op = rng.randrange(9)
        i = rng.randint(0, n)
        j = min(n, i + rng.randint(0, 12))
        if op == 0:
            text = text[:i] + rng.choice(tokens) + text[j:]
        elif op == 1:
            text = text[:i] + rng.choice(tokens) + text[i:]
        elif op == 2:
            text = text[:i] + text[j:]
        elif op == 3:
            text = text[:i] + text[i:j] * rng.randint(2, 50) + text[j:]
        elif op == 4:
            text = text[:i]
        elif op == 5:  # a run of digits becomes a hostile number
            k = i
            while k < n and text[k].isdigit():
                k += 1
            text = text[:i] + rng.choice(TOKENS[:18]) + text[k:]
        elif op == 6:  # random code points, surrogates included
            chars = "".join(chr(rng.randrange(0x110000)) for _ in range(rng.randint(1, 8)))
            text = text[:i] + chars + text[i:]
        elif op == 7:
            lines = text.split("\n")
            rng.shuffle(lines)
            text = "\n".join(lines)
        else:
            text = text[:i] + chr(rng.randrange(0x20)) + text[i:]
    return text


def mutate_bytes(rng: random.Random, raw: bytes, extra: Sequence[str] = ()) -> bytes:
    if rng.random() < 0.3:
        data = bytearray(raw)
        for _ in range(rng.randint(1, 6)):
            if data:
                data[rng.randrange(len(data))] = rng.randrange(256)
        return bytes(data)
    # surrogatepass: a lone surrogate becomes bytes that are not UTF-8, as a file may hold
    return mutate(rng, raw.decode("utf-8", "surrogateescape"), extra).encode(
        "utf-8", "surrogatepass"
    )


@dataclass
class Target:
    name: str
    corpus: List[Any]
    run: Callable[[Any], None]
    #: the errors the target documents
    expected: Tuple[Type[BaseException], ...] = ()
    tokens: Sequence[str] = ()
    binary: bool = False


@dataclass
class Result:
    name: str
    cases: int = 0
    expected: int = 0
    unexpected: int = 0
    seconds: float = 0.0
    examples: List[str] = field(default_factory=list)


def _read(paths: Sequence[Path]) -> List[str]:
    return [p.read_text(encoding="utf-8", errors="surrogateescape") for p in sorted(paths)]


def _proc(name: str) -> List[str]:
    return _read([p for p in (FIXTURES / "proc").glob(f"*/step*/proc/{name}") if p.is_file()])


# ---------------------------------------------------------------- the targets
def replay_targets() -> List[Target]:
    from sysops_agent.replay import BadLine, parse_csv_line, parse_json_line, parse_timestamp

    def valid_json_out(sample: Any) -> None:
        # what `replay` prints must be JSON a strict parser takes: no NaN, no Infinity
        json.dumps(sample.to_json_obj(), allow_nan=False)
        assert math.isfinite(sample.value) and math.isfinite(sample.ts), sample

    def json_line(text: str) -> None:
        valid_json_out(parse_json_line(text))

    def csv_line(text: str) -> None:
        valid_json_out(parse_csv_line(text, "cpu_usage_percent"))

    def timestamp(text: str) -> None:
        assert math.isfinite(parse_timestamp(text))

    lines = [
        '{"ts": 1780000000.0, "metric": "memory_usage_percent", "labels": {}, "value": 42.5}',
        '{"ts": 1780000010, "metric": "disk_usage_percent", "labels": {"mountpoint": "/"}, '
        '"value": 97}',
        '{"ts": "2026-12-01 06:00:00", "metric": "load1", "value": 0.5}',
    ]
    csv = ["2026-12-01 06:00:00,42.5", "2026-12-01T06:00:10.250,0", "1780000000,99.9"]
    return [
        Target("replay.json_line", lines, json_line, (BadLine,), ('"ts"', '"value"')),
        Target("replay.csv_line", csv, csv_line, (BadLine,)),
        Target("replay.timestamp", [c.split(",")[0] for c in csv], timestamp, (BadLine,)),
    ]


def config_target() -> Target:
    from sysops_agent.config import load_config

    sample = (ROOT / "config" / "sysops-agent.toml").read_text()
    # one seed per table: the whole file per case would spend the time in tomllib
    chunks: List[str] = []
    current: List[str] = []
    for line in sample.splitlines():
        if line.startswith("[") and current:
            chunks.append("\n".join(current))
            current = []
        current.append(line)
    chunks.append("\n".join(current))

    def load(text: str) -> None:
        loaded = load_config(text=text, env={"X": "1", "SLACK_URL": "https://x.invalid/a"})
        for p in loaded.problems:
            str(p)

    return Target("config.toml_values", chunks, load, (), ("= ", '= "', "= [", "= {"))


def procfs_targets() -> List[Target]:
    from sysops_agent.collectors.common import ParseError
    from sysops_agent.collectors.cpu import parse_stat
    from sysops_agent.collectors.disk_io import parse_diskstats
    from sysops_agent.collectors.disk_usage import parse_mounts
    from sysops_agent.collectors.fd import parse_file_nr
    from sysops_agent.collectors.load import parse_loadavg
    from sysops_agent.collectors.memory import parse_meminfo
    from sysops_agent.collectors.network import parse_net_dev
    from sysops_agent.collectors.process import parse_pid_stat
    from sysops_agent.collectors.uptime import parse_uptime
    from sysops_agent.osinfo import parse_os_release

    pid_stats = _read(
        [p for p in (FIXTURES / "proc").glob("*/step*/proc/[0-9]*/stat") if p.is_file()]
    )
    table: List[Tuple[str, Callable[[str], Any], List[str]]] = [
        ("procfs.parse_stat", parse_stat, _proc("stat")),
        ("procfs.parse_meminfo", parse_meminfo, _proc("meminfo")),
        ("procfs.parse_loadavg", parse_loadavg, _proc("loadavg")),
        ("procfs.parse_uptime", parse_uptime, _proc("uptime")),
        ("procfs.parse_diskstats", parse_diskstats, _proc("diskstats")),
        ("procfs.parse_net_dev", parse_net_dev, _proc("net/dev")),
        ("procfs.parse_mounts", parse_mounts, _proc("mounts") + _proc("self/mounts")),
        ("procfs.parse_file_nr", parse_file_nr, _proc("sys/fs/file-nr")),
        ("procfs.parse_pid_stat", parse_pid_stat, pid_stats),
        (
            "osinfo.parse_os_release",
            parse_os_release,
            _read(list(FIXTURES.glob("etc/*/os-release"))),
        ),
    ]
    out = []
    for name, fn, corpus in table:
        if not corpus:
            raise SystemExit(f"fuzz: no fixture for {name}")
        out.append(Target(name, corpus, fn, (ParseError,)))
    return out


def log_targets() -> List[Target]:
    from sysops_agent.clock import VirtualClock
    from sysops_agent.logwatch.events import EventPipeline
    from sysops_agent.logwatch.kmsg import parse_record
    from sysops_agent.logwatch.patterns import Matcher, parse_syslog_header

    matcher = Matcher()
    pipeline = EventPipeline(
        hostname="fuzz",
        clock=VirtualClock(),
        emit_alert=lambda a: None,
        emit_sample=lambda s: None,
        burst_window=30.0,
        dedup_window=10.0,
        max_line=512,
        own_pid=999,
    )
    logs = FIXTURES / "logs"
    lines = [
        line
        for name in ("debian-syslog.log", "rhel-messages.log", "ubuntu-syslog-rfc3339.log")
        for line in (logs / name).read_text(errors="surrogateescape").splitlines()
        if line
    ]

    def through_matcher(text: str) -> None:
        for hit in matcher.scan(text.encode("utf-8", "surrogatepass")):
            pipeline.deliver("/var/log/syslog", hit, parse_syslog_header(text))

    records = [r for r in (logs / "kmsg.records").read_bytes().split(b"\n") if r]

    def kmsg(raw: bytes) -> None:
        parse_record(raw)

    return [
        Target(
            "logs.matcher", lines, through_matcher, (), ("kernel:", "Out of memory", "segfault")
        ),
        Target("logs.kmsg_record", records, kmsg, (), (";", ",", "-"), binary=True),
    ]


def http_targets() -> List[Target]:
    import asyncio

    from sysops_agent import httpclient
    from sysops_agent.channels.alertmanager import AlertmanagerChannel, AlertmanagerChannelConfig
    from sysops_agent.channels.base import ChannelError
    from sysops_agent.channels.http import parse_retry_after
    from sysops_agent.clock import VirtualClock

    headers = [
        "120",
        "0",
        "1.5",
        "Wed, 21 Oct 2026 07:28:00 GMT",
        "Mon, 01 Jan 2026 00:00:00 +0000",
    ]

    def retry_after(text: str) -> None:
        body: Any = None
        if text.startswith("{"):
            try:
                body = json.loads(text)
            except (ValueError, RecursionError):
                body = None
        wait = parse_retry_after({"retry-after": text}, body, 1_780_000_000.0)
        assert wait is None or wait >= 0 or wait != wait, wait

    channel = AlertmanagerChannel(
        AlertmanagerChannelConfig(enabled=True, url="http://127.0.0.1:9093"),
        clock=VirtualClock(1_780_000_000.0),
    )
    answers = [
        '{"status":"success"}',
        '{"status":"error","errorType":"bad_data","error":"start time must be before end time"}',
        "<html><body>502 Bad Gateway</body></html>",
        "",
    ]
    statuses = (200, 202, 400, 404, 410, 413, 429, 500, 502, 503, 599, 100, 302)
    rng = random.Random(0)

    def alertmanager(text: str) -> None:
        status = (
            statuses[rng.randrange(len(statuses))]
            if rng.random() < 0.9
            else rng.randrange(100, 600)
        )
        hdrs = {"retry-after": text[:40]} if rng.random() < 0.5 else {}
        response = httpclient.Response(
            status,
            # as the client decodes header fields off the wire
            httpclient.Headers(
                {k: v.encode("utf-8", "surrogatepass").decode("latin-1") for k, v in hdrs.items()}
            ),
            text.encode("utf-8", "surrogatepass"),
        )
        channel.disabled = None
        channel.check(response)

    raw_answers = [
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        b"HTTP/1.1 503 Busy\r\nRetry-After: 7\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"4;x\r\nbusy\r\n0\r\nT: 1\r\n\r\n",
        b"HTTP/1.0 404 Not Found\r\nContent-Type: text/plain; charset=latin-1\r\n\r\nnope",
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 3\r\n\r\n\x1f\x8b\x08",
    ]

    def response(raw: bytes) -> None:
        async def read() -> None:
            reader = asyncio.StreamReader()
            reader.feed_data(raw)
            reader.feed_eof()
            answer, _ = await httpclient.read_response(reader, "POST", 4096)
            answer.text  # noqa: B018  # decoding the body must not fail either

        asyncio.run(read())

    asyncio.get_event_loop_policy()  # the client is imported; nothing is sent
    return [
        Target("http.retry_after", headers + answers, retry_after, ()),
        Target("alertmanager.response", answers + headers, alertmanager, (ChannelError,)),
        Target(
            "httpclient.response",
            raw_answers,
            response,
            (httpclient.HttpError,),
            ("\r\n", ": ", "HTTP/1.1 ", "chunked", "Content-Length: ", "0\r\n"),
            binary=True,
        ),
    ]


def all_targets() -> List[Target]:
    return [
        *replay_targets(),
        config_target(),
        *procfs_targets(),
        *log_targets(),
        *http_targets(),
    ]


# ------------------------------------------------------------------- the run
def fuzz(target: Target, seed: int, cases: int, deadline: Optional[float]) -> Result:
    rng = random.Random(seed ^ zlib.crc32(target.name.encode()))
    result = Result(target.name)
    start = time.perf_counter()
    for n in range(cases):
        if deadline is not None and n % 64 == 0 and time.perf_counter() > deadline:
            break
        base = target.corpus[rng.randrange(len(target.corpus))]
        if target.binary:
            case: Any = mutate_bytes(rng, base, target.tokens)
        elif rng.random() < 0.05:  # now and then, text with no structure at all
            case = "".join(chr(rng.randrange(0x110000)) for _ in range(rng.randint(0, 80)))
        else:
            case = mutate(rng, base, target.tokens)
        try:
            target.run(case)
        except target.expected:
            result.expected += 1
        except Exception as e:  # counting them is the point
            result.unexpected += 1
            if len(result.examples) < 3:
                where = traceback.extract_tb(e.__traceback__)[-1]
                result.examples.append(
                    f"{type(e).__name__}: {str(e)[:120]} at {Path(where.filename).name}:"
                    f"{where.lineno} for {repr(case)[:200]}"
                )
        result.cases += 1
    result.seconds = time.perf_counter() - start
    return result


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--cases", type=int, default=100_000, help="cases per target (default 100,000)")
    ap.add_argument(
        "--seconds", type=float, help="bound the whole run, split evenly across targets"
    )
    ap.add_argument("--only", help="comma-separated target names or prefixes")
    args = ap.parse_args(argv)
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 1000))
    targets = all_targets()
    if args.only:
        wanted = args.only.split(",")
        targets = [t for t in targets if any(t.name.startswith(w) for w in wanted)]
    per_target = args.seconds / len(targets) if args.seconds else None
    print(f"fuzz: seed {args.seed}, up to {args.cases:,} cases per target, {len(targets)} targets")
    print(f"{'target':<26} {'cases':>9} {'expected':>9} {'unexpected':>10} {'cases/s':>9}")
    total: Dict[str, int] = {"cases": 0, "unexpected": 0}
    for target in targets:
        deadline = time.perf_counter() + per_target if per_target else None
        r = fuzz(target, args.seed, args.cases, deadline)
        rate = r.cases / r.seconds if r.seconds else 0.0
        print(f"{r.name:<26} {r.cases:>9,} {r.expected:>9,} {r.unexpected:>10,} {rate:>9,.0f}")
        for example in r.examples:
            print(f"    {example}")
        total["cases"] += r.cases
        total["unexpected"] += r.unexpected
    print(f"total: {total['cases']:,} cases, {total['unexpected']:,} unexpected exceptions")
    return 1 if total["unexpected"] else 0


if __name__ == "__main__":
    sys.exit(main())
