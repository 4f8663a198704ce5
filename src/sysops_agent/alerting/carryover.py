"""Keep the operator stages' state when a reload rebuilds the alert manager.

A SIGHUP that changes ``[alerting]`` builds a new manager with new stages.
Without this, an alert held by a silence, a window or an inhibition would be
forgotten (and never sent when its mute ends: analyzers only report changes),
and ``status`` would lose what fires, the acks and the flap history.
:func:`carry_over` copies that state from each old stage to the new stage of
the same class.
"""

from __future__ import annotations

from typing import Any, Dict, Sequence

from sysops_agent.alerting.firing import FiringStage
from sysops_agent.alerting.flap import FlapStage
from sysops_agent.alerting.inhibit import InhibitStage
from sysops_agent.alerting.mute import MuteStage
from sysops_agent.alerting.repeat import RepeatStage


def carry_over(old: Sequence[Any], new: Sequence[Any]) -> int:
    """Copy state from ``old`` stages to the ``new`` ones of the same class; how many."""
    by_class: Dict[type, Any] = {type(s): s for s in old}
    carried = 0
    for stage in new:
        before = by_class.get(type(stage))
        if before is None:
            continue
        if isinstance(stage, FiringStage):
            stage.firing = dict(before.firing)
        elif isinstance(stage, MuteStage):
            stage.state = before.state
            stage.muted_total = before.muted_total
            if isinstance(stage, InhibitStage):
                stage.sources = dict(before.sources)
        elif isinstance(stage, RepeatStage):
            stage.tracked = dict(before.tracked)
        elif isinstance(stage, FlapStage):
            stage.states = dict(before.states)
        else:
            continue
        carried += 1
    return carried
