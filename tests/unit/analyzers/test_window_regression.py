"""The trend and leak analyzers' rolling regression: fixed memory, exact over what it holds."""

from __future__ import annotations

import math
import sys
from typing import List, Tuple

from hypothesis import given, settings
from hypothesis import strategies as st

from sysops_agent.analyzers.window import RollingRegression


def least_squares(points: List[Tuple[float, float]]) -> Tuple[float, float]:
    """(slope, value of the line at the newest point): the oracle, in plain sums."""
    n = len(points)
    mt = math.fsum(t for t, _ in points) / n
    mv = math.fsum(v for _, v in points) / n
    sxx = math.fsum((t - mt) ** 2 for t, _ in points)
    slope = math.fsum((t - mt) * (v - mv) for t, v in points) / sxx
    return slope, mv + slope * (points[-1][0] - mt)


steps = st.lists(
    st.tuples(
        st.floats(min_value=0.5, max_value=900.0),  # seconds to the next sample (gaps too)
        st.floats(min_value=-1e6, max_value=1e6),  # the change of the value
    ),
    min_size=3,
    max_size=400,
)


@settings(max_examples=200, deadline=None)
@given(steps, st.floats(min_value=600.0, max_value=21600.0))
def test_the_fit_is_the_least_squares_line_of_the_points_it_holds(
    steps: List[Tuple[float, float]], window: float
) -> None:
    reg = RollingRegression(window)
    t, v = 1.7e9, 5e8
    points: List[Tuple[float, float]] = []
    for dt, dv in steps:
        t, v = t + dt, v + dv
        reg.add(t, v)
        points.append((t, v))
    held = [p for p in points if p[0] >= reg.first_ts]
    assert reg.n == len(held)
    # between the window and one bucket more (unless the data are shorter)
    assert reg.span() <= window + reg.bucket_secs + max(dt for dt, _ in steps)
    if points[-1][0] - points[0][0] >= window + reg.bucket_secs:
        assert reg.span() >= window - max(dt for dt, _ in steps)
    if len({p[0] for p in held}) < 3:
        return
    slope, fitted, r2 = reg.fit()
    want_slope, want_fitted = least_squares(held)
    scale = max(1.0, max(abs(p[1] - held[0][1]) for p in held))
    assert math.isclose(slope, want_slope, rel_tol=1e-6, abs_tol=1e-9 * scale)
    assert math.isclose(fitted, want_fitted, rel_tol=1e-9, abs_tol=1e-6 * scale)
    assert 0.0 <= r2 <= 1.0


def test_memory_does_not_grow_with_the_sampling_rate() -> None:
    """A 6 h window at 1 s held 21,600 points (346 KiB) in the point arrays it replaced."""
    reg = RollingRegression(21600.0)
    before = sys.getsizeof(reg._buckets)
    for i in range(100_000):
        reg.add(1.7e9 + i, 1e9 + 1000.0 * i)
    assert sys.getsizeof(reg._buckets) == before < 4096
    slope, _, r2 = reg.fit()
    assert math.isclose(slope, 1000.0) and r2 > 0.999999
