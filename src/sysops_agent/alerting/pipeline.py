"""The stage lists of the alert pipeline, and how a list of stages runs.

:data:`STAGES` run on every alert before routing; :data:`LANE_STAGES` run in
each channel's lane after routing, in order. Each entry is a stage module's
``create`` factory; a factory may return None when its stage does not apply
(a channel that throttles by itself gets no rate limiter). Adding a stage is
its module (a :class:`~sysops_agent.alerting.stage.Stage` plus ``create``)
and one line here; :class:`~sysops_agent.alerting.manager.AlertManager` is not
edited.

:func:`run_stages` is how the manager drives a list: each stage gets the
alerts the previous one let through one at a time (so a stage that adds an
alert — the rate limiter's summary — never merges it with the next one by
accident), or ``[]`` when there are none, which is how held-back alerts come
out when they are due.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence, Tuple

from sysops_agent.alerting import (
    dedup,
    firing,
    flap,
    group,
    inhibit,
    maintenance,
    ratelimit,
    repeat,
    silence,
)
from sysops_agent.alerting.config import PipelineConfig
from sysops_agent.alerting.stage import Stage
from sysops_agent.clock import Clock
from sysops_agent.model import Alert


@dataclass(frozen=True)
class Lane:
    """What a lane stage's factory may know about its channel."""

    name: str
    supports_batch: bool
    rate_limited: bool
    clock: Clock


StageFactory = Callable[[PipelineConfig], Optional[Stage]]
LaneStageFactory = Callable[[PipelineConfig, Lane], Optional[Stage]]

#: before routing, for every alert
STAGES: Tuple[StageFactory, ...] = (
    firing.create,
    dedup.create,
    flap.create,
    inhibit.create,
    maintenance.create,
    silence.create,
    repeat.create,
)

#: per channel, after routing
LANE_STAGES: Tuple[LaneStageFactory, ...] = (
    ratelimit.create,
    group.create,
)


def build_stages(cfg: PipelineConfig) -> List[Stage]:
    return [s for s in (create(cfg) for create in STAGES) if s is not None]


def build_lane_stages(cfg: PipelineConfig, lane: Lane) -> List[Stage]:
    return [s for s in (create(cfg, lane) for create in LANE_STAGES) if s is not None]


def run_stages(
    stages: Sequence[Stage], alerts: Sequence[Alert], now: float, *, flush: bool = False
) -> List[List[Alert]]:
    """Run ``alerts`` through ``stages``: the non-empty outputs of the last stage's calls.

    With ``flush`` every stage also lets out what it holds (shutdown).
    """
    outputs: List[List[Alert]] = [list(alerts)]
    for stage in stages:
        stream = [a for out in outputs for a in out]
        outputs = [stage([a], now) for a in stream] or [stage([], now)]
        if flush:
            outputs.append(stage.flush(now))
    return [out for out in outputs if out]


def next_due(stages: Sequence[Stage]) -> Optional[float]:
    """The earliest time one of ``stages`` wants to be called again."""
    due = [t for t in (s.next_due() for s in stages) if t is not None]
    return min(due) if due else None
