"""The replay parsers: any line gives a sample or ``BadLine``, nothing else."""

from __future__ import annotations

import json
import math
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from sysops_agent.model import Sample
from sysops_agent.replay import BadLine, parse_csv_line, parse_json_line, parse_timestamp
from tests.support.properties import PROPERTY, any_text

#: JSON values, including integers too large for a float
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=10**300, max_value=10**400)
    | st.floats()
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=8,
)
#: objects shaped like the samples, each field possibly missing or of the wrong type
SAMPLE_OBJECTS = st.fixed_dictionaries(
    {},
    optional={
        "ts": JSON_VALUES,
        "metric": st.text(max_size=8) | JSON_VALUES,
        "value": JSON_VALUES,
        "labels": st.dictionaries(st.text(max_size=4), JSON_VALUES, max_size=3) | JSON_VALUES,
    },
)


def _json(obj: Any) -> str:
    return json.dumps(obj)  # NaN and Infinity come out as JSON's non-standard literals


def _is_sample(result: Any) -> bool:
    return (
        isinstance(result, Sample)
        and math.isfinite(result.ts)
        and result.ts >= 0
        and math.isfinite(result.value)
        and bool(result.metric)
    )


@PROPERTY
@given(line=any_text(('{"ts": ', '"metric": "m"', '"value": ', '"labels": {}', "{", "}")))
@example(line="[" * 5000)
@example(line='{"ts": 1' + "0" * 400 + ', "metric": "m", "value": 1}')
def test_any_json_line_gives_a_sample_or_bad_line(line: str) -> None:
    try:
        result = parse_json_line(line)
    except BadLine:
        return
    assert _is_sample(result), result


@PROPERTY
@given(line=SAMPLE_OBJECTS.map(_json))
def test_sample_shaped_objects_give_a_sample_or_bad_line(line: str) -> None:
    try:
        result = parse_json_line(line)
    except BadLine:
        return
    assert _is_sample(result), result


#: ``YYYY-MM-DD HH:MM:SS[.f]`` with every part allowed out of range
TIMESTAMPS = st.builds(
    "{:04d}-{:02d}-{:02d}{}{:02d}:{:02d}:{:02d}{}".format,
    st.integers(0, 9999),
    st.integers(0, 99),
    st.integers(0, 99),
    st.sampled_from([" ", "T", "x"]),
    st.integers(0, 99),
    st.integers(0, 99),
    st.integers(0, 99),
    st.sampled_from(["", ".5", ".000000", ".", ".x", "Z", ".5e400", ".nan"]),
)


@PROPERTY
@given(text=any_text(("2014-04-10", " ", "07:15:00", ".5")) | TIMESTAMPS)
def test_any_timestamp_gives_seconds_or_bad_line(text: str) -> None:
    try:
        result = parse_timestamp(text)
    except BadLine:
        return
    assert isinstance(result, float)


@PROPERTY
@given(
    line=any_text(("2014-04-10 07:15:00", ",", "1.5"))
    | st.tuples(TIMESTAMPS, any_text()).map(",".join)
)
def test_any_csv_line_gives_a_sample_or_bad_line(line: str) -> None:
    try:
        result = parse_csv_line(line, "m")
    except BadLine:
        return
    assert isinstance(result, Sample) and math.isfinite(result.value), result
