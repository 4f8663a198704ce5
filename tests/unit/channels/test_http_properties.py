"""``parse_retry_after``: any header and body give seconds >= 0 or None, never an exception."""

from __future__ import annotations

from typing import Any, Optional

from hypothesis import example, given
from hypothesis import strategies as st

from sysops_agent.channels.http import parse_retry_after
from tests.support.properties import PROPERTY, any_text

#: HTTP dates with every part allowed out of range
HTTP_DATES = st.builds(
    "{}, {:02d} {} {} {:02d}:{:02d}:{:02d} {}".format,
    st.sampled_from(["Mon", "Fri", "Xyz"]),
    st.integers(0, 99),
    st.sampled_from(["Jan", "Dec", "Foo"]),
    st.integers(0, 10**12),
    st.integers(0, 99),
    st.integers(0, 99),
    st.integers(0, 99),
    st.sampled_from(["GMT", "UTC", "+0000", "-2359", "+2359", "", "-9999"]),
)
BODIES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(["retry_after", "parameters", "x"]), inner, max_size=3)
    ),
    max_leaves=6,
)


@PROPERTY
@given(
    header=any_text(("Retry-After", "GMT", "Mon, 01 Jan 2026 00:00:00")) | HTTP_DATES,
    body=BODIES,
    now=st.none() | st.floats(min_value=0, max_value=4e9),
)
@example(header="Mon, 01 Jan 99999999999 00:00:00 GMT", body=None, now=0.0)
def test_any_header_and_body_give_seconds_or_none(
    header: str, body: Any, now: Optional[float]
) -> None:
    wait = parse_retry_after({"retry-after": header}, body, now)
    assert wait is None or wait >= 0 or wait != wait  # None, >= 0, or NaN passed through
