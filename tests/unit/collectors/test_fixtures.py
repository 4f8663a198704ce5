"""Every collector over every captured /proc tree, step by step (STYLE.md points 3-4).

Cases live in ``tests/fixtures/proc/<case>/`` (format: ``tests/support/procfixture.py``).
Each step's samples must match ``expected.json`` exactly as a set of series,
with values equal up to float rounding.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest

from sysops_agent.collectors.common import ParseError
from sysops_agent.model import Sample, make_labels
from tests.support.procfixture import Replay, cases, load_spec

Key = Tuple[str, Tuple[Tuple[str, str], ...]]


def _by_key(rows: List[Tuple[Key, float]], where: str) -> Dict[Key, float]:
    out: Dict[Key, float] = {}
    for key, value in rows:
        assert key not in out, f"{where}: series {key} reported twice"
        out[key] = value
    return out


def _expected(step: Dict[str, Any], where: str) -> Dict[Key, float]:
    return _by_key(
        [((m, make_labels(labels)), float(v)) for m, labels, v in step["samples"]], where
    )


def _actual(samples: List[Sample], now: float, where: str) -> Dict[Key, float]:
    for s in samples:
        assert s.ts == now, f"{where}: {s.metric} stamped {s.ts}, expected {now}"
    return _by_key([((s.metric, s.labels), s.value) for s in samples], where)


@pytest.mark.parametrize("case_dir", cases(), ids=lambda p: p.name)
def test_fixture_case(case_dir: Path) -> None:
    spec = load_spec(case_dir)
    replay = Replay(case_dir, spec)
    assert spec["steps"], f"{case_dir.name}: no steps"
    for step in spec["steps"]:
        where = f"{case_dir.name}/{step['dir']}"
        replay.enter(step)
        errors: Dict[str, str] = dict(step.get("errors", {}))
        samples: List[Sample] = []
        for collector in replay.collectors:
            if collector.name in errors:
                with pytest.raises(ParseError, match=errors.pop(collector.name)):
                    collector.collect(step["now"])
            else:
                samples.extend(collector.collect(step["now"]))
        assert not errors, f"{where}: expected errors from collectors not run: {errors}"

        actual = _actual(samples, step["now"], where)
        expected = _expected(step, where)
        assert sorted(actual) == sorted(expected), (
            f"{where}: unexpected series {sorted(set(actual) - set(expected))}, "
            f"missing series {sorted(set(expected) - set(actual))}"
        )
        for key, value in expected.items():
            assert actual[key] == pytest.approx(value, rel=1e-9, abs=1e-9), f"{where}: {key}"

        by_name = {c.name: c for c in replay.collectors}
        for name, counters in step.get("stats", {}).items():
            stats = by_name[name].stats
            for field, want in counters.items():
                assert getattr(stats, field) == want, f"{where}: {name}.stats.{field}"
        for path, size in step.get("state", {}).items():
            name, attr = path.split(".")
            assert len(getattr(by_name[name], attr)) == size, f"{where}: len({path})"
