"""What ``bench/fuzz.py`` found (issue 18 item 3), and the bench itself staying green."""

from __future__ import annotations

import re
import subprocess
import sys

from sysops_agent.config import load_config
from tests.support.paths import ROOT


def test_a_400_digit_number_for_a_float_key_is_a_problem_not_a_crash() -> None:
    loaded = load_config(text=f"[collector.fd]\ninterval_secs = {'9' * 400}\n", env={})
    (problem,) = loaded.problems
    assert problem.path == "collector.fd.interval_secs"
    assert (
        "expected number, got 99999" in problem.message and "using the default" in problem.message
    )
    assert (
        loaded.config.collector.fd.interval_secs == type(loaded.config.collector.fd)().interval_secs
    )


def test_the_fuzz_bench_finds_nothing_unexpected() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "fuzz.py"), "--cases", "400", "--seed", "3"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    targets = re.search(r"per target, (\d+) targets", done.stdout)
    assert targets is not None and int(targets.group(1)) >= 19, done.stdout  # 18 + httpclient
    total = f"total: {400 * int(targets.group(1)):,} cases, 0 unexpected exceptions"
    assert total in done.stdout
