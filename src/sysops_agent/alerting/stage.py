"""The :class:`Stage` protocol: every step of the alert pipeline has one shape.

A stage is called with the alerts that reach it and ``now`` (the clock's
monotonic time; never read inside the stage) and returns the alerts that go
on — fewer (dedup, a rate limiter holding some back), more (a summary it
adds) or later (grouping). A stage that holds alerts back says when it is next
due with :meth:`Stage.next_due`; the manager then calls it with ``[]`` at that
time. At shutdown :meth:`Stage.flush` lets out everything held back.

The manager runs two lists of stages, both built by
:func:`sysops_agent.alerting.pipeline.build_stages` /
:func:`~sysops_agent.alerting.pipeline.build_lane_stages` from the config:
the stages before routing (one list for every alert) and, per channel, the
*lane* stages after routing. Adding a stage is its module plus one line in
one of those builders; the manager is not edited.
"""

from __future__ import annotations

from typing import List, Optional, Protocol

from sysops_agent.model import Alert


class Stage(Protocol):
    def __call__(self, alerts: List[Alert], now: float) -> List[Alert]:
        """The alerts that go on at ``now``, given the ones that arrived (maybe none)."""

    def next_due(self) -> Optional[float]:
        """When the stage wants to be called (with ``[]``) again; None if it holds nothing."""

    def flush(self, now: float) -> List[Alert]:
        """Everything held back, at once (shutdown)."""
