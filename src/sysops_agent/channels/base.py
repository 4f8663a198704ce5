"""What every channel module shares: the protocol, the factory's context, config helpers.

A channel is one module (``channels/<name>.py``) holding its frozen config
class (the ``[alerting.<name>]`` section: defaults, validation, help texts,
and a ``problems(path)`` method for what is required when the channel is
enabled), its factory ``create(cfg, ctx) -> Channel`` and its code; plus one
line in :data:`sysops_agent.channels.registry.CHANNELS`.

:class:`Channel` and :class:`ChannelError` are defined in
:mod:`sysops_agent.alerting.channel` (the pipeline drives channels, so the
contract lives in the lower layer) and re-exported here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, List, Mapping, Sequence

from sysops_agent.alerting.channel import Channel, ChannelError
from sysops_agent.clock import Clock
from sysops_agent.model import Severity
from sysops_agent.redact import Redactor
from sysops_agent.schema import Problem

__all__ = [
    "REQUIRED",
    "SEVERITIES",
    "Channel",
    "ChannelContext",
    "ChannelError",
    "ChannelFactory",
    "missing",
    "severity_of",
]

#: the ``min_severity`` choices of every channel section
SEVERITIES = tuple(s.label for s in Severity)

#: the message of a setting a channel cannot work without
REQUIRED = "required when the channel is enabled"


@dataclass(frozen=True)
class ChannelContext:
    """What a channel factory gets besides its own section."""

    redactor: Redactor
    clock: Clock
    #: ``[alerting] send_timeout_secs``: the channel's own per-request timeout
    send_timeout_secs: float = 10.0
    #: ``[agent] labels``: static labels (env, team, …) for channels that carry labels
    labels: Mapping[str, str] = field(default_factory=dict)


#: ``create(cfg, ctx)``: builds a channel from its own section
ChannelFactory = Callable[[Any, ChannelContext], Channel]


def missing(section: Any, path: str, keys: Sequence[str]) -> List[Problem]:
    """A :data:`REQUIRED` problem for each of ``keys`` that is empty in ``section``."""
    return [Problem(f"{path}.{key}", REQUIRED) for key in keys if not getattr(section, key)]


def severity_of(text: str) -> Severity:
    """A section's ``min_severity`` (validated by the loader, so it parses)."""
    return Severity.parse(text)
