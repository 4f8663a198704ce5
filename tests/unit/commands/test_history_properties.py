"""The ``history`` argument parsers: any text gives a value or ``UsageError``, nothing else."""

from __future__ import annotations

from typing import List

from hypothesis import given
from hypothesis import strategies as st

from sysops_agent.commands.history import UsageError, parse_duration, parse_labels, parse_when
from tests.support.properties import PROPERTY, any_text

TIME_TOKENS = ("s", "m", "h", "d", "w", "@", "now", "Z", "z", "T", "+00:00", "-23:59", ":")
TIME_TOKENS += ("2026-05-01", "0001-01-01", "9999-12-31", "12:00", "12:00:00.5")


@PROPERTY
@given(text=any_text(TIME_TOKENS))
def test_any_duration_gives_seconds_or_usage_error(text: str) -> None:
    try:
        seconds = parse_duration(text)
    except UsageError:
        return
    assert isinstance(seconds, float) and seconds >= 0


@PROPERTY
@given(text=any_text(TIME_TOKENS), now=st.floats(min_value=0, max_value=4e9))
def test_any_time_gives_seconds_or_usage_error(text: str, now: float) -> None:
    try:
        when = parse_when(text, now)
    except UsageError:
        return
    assert isinstance(when, float)


@PROPERTY
@given(items=st.lists(any_text(("=", "host", "cpu", "total", " ")), max_size=4))
def test_any_label_filters_give_pairs_or_usage_error(items: List[str]) -> None:
    try:
        labels = parse_labels(items)
    except UsageError:
        return
    assert all(k and k == k.strip() for k in labels)
