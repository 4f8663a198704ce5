"""Alertmanager-style matchers on an alert: ``name=value``, ``!=``, ``=~``, ``!~``.

The names an alert offers are its ``metric``, ``severity`` (``warn``,
``critical``...), ``analyzer`` and every label (``mountpoint``, ``device``...).
A label the alert does not have has the empty value, as in Alertmanager:
``mountpoint=""`` matches alerts without one. Regular expressions are anchored
(``=~"/srv.*"`` matches ``/srv/data``, not ``/mnt/srv``). A value may be quoted
with ``"`` (needed only for spaces or commas).

:func:`identity` is the alert's identity for everything that keeps per-alert
state in the operator stages (silences, maintenance, inhibition, ``status``):
(analyzer, metric, labels) — the severity is not part of it, so an alert that
escalates stays the same alert.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

from sysops_agent.model import Alert, Labels, Severity

#: operators, longest first so that ``=~`` is not read as ``=``
OPERATORS = ("=~", "!~", "!=", "=")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

Identity = Tuple[str, str, Labels]


def identity(alert: Alert) -> Identity:
    """The alert's identity: (analyzer, metric, labels)."""
    return (alert.analyzer, alert.metric, alert.labels)


def alert_fields(alert: Alert) -> Dict[str, str]:
    """The names a matcher can test, with this alert's values."""
    fields = dict(alert.labels)
    fields["metric"] = alert.metric
    fields["severity"] = alert.severity.label
    fields["analyzer"] = alert.analyzer
    return fields


@dataclass(frozen=True)
class Matcher:
    name: str
    op: str
    value: str

    def __post_init__(self) -> None:
        if self.op in ("=~", "!~"):
            re.compile(self.value)  # raises re.error for a bad pattern

    def matches_value(self, actual: str) -> bool:
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        hit = re.fullmatch(self.value, actual) is not None
        return hit if self.op == "=~" else not hit

    def matches(self, alert: Alert) -> bool:
        return self.matches_value(alert_fields(alert).get(self.name, ""))

    def __str__(self) -> str:
        plain = self.value and re.fullmatch(r"[A-Za-z0-9_.:/*+?|()\[\]^$-]+", self.value)
        value = self.value if plain else '"' + self.value.replace('"', '\\"') + '"'
        return f"{self.name}{self.op}{value}"


def parse_matcher(text: str) -> Matcher:
    """``name<op>value``; ValueError with the reason for anything else."""
    text = text.strip()
    m = _NAME.match(text)
    if m is None:
        raise ValueError(f"bad matcher {text!r}: expected name=value, name!=value, name=~regex")
    name, rest = m.group(0), text[m.end() :].lstrip()
    op = next((o for o in OPERATORS if rest.startswith(o)), None)
    if op is None:
        raise ValueError(
            f"bad matcher {text!r}: expected one of {', '.join(OPERATORS)} after {name!r}"
        )
    value = rest[len(op) :].strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        value = value[1:-1].replace('\\"', '"')
    try:
        return Matcher(name, op, value)
    except re.error as e:
        raise ValueError(f"bad matcher {text!r}: invalid regular expression: {e}") from None


def parse_matchers(texts: Sequence[str]) -> List[Matcher]:
    return [parse_matcher(t) for t in texts]


def matchers_problem(text: str) -> Optional[str]:
    """The config ``validate`` hook (called per list item): why ``text`` is no matcher, or None."""
    try:
        parse_matcher(text)
    except ValueError as e:
        return str(e)
    return None


def matches_all(matchers: Sequence[Matcher], alert: Alert) -> bool:
    return all(m.matches(alert) for m in matchers)


def names_severity(matchers: Sequence[Matcher], alert: Alert) -> bool:
    """True when a positive ``severity`` matcher (``=`` or ``=~``) selects the alert's severity.

    An emergency is muted (by a silence or a maintenance window) only then:
    ``metric=disk_usage_percent`` alone, or ``severity!=warn``, never hides one.
    """
    return any(m.name == "severity" and m.op in ("=", "=~") and m.matches(alert) for m in matchers)


def mutes(matchers: Sequence[Matcher], alert: Alert) -> bool:
    """Whether a silence or window with ``matchers`` hides ``alert`` (the emergency rule)."""
    if not matchers or not matches_all(matchers, alert):
        return False
    return alert.severity is not Severity.EMERGENCY or names_severity(matchers, alert)
