"""Immutable records that flow through the pipeline: samples and alerts."""

from __future__ import annotations

import enum
import os
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any, Mapping, NamedTuple, Optional, Tuple

#: Labels are stored as a tuple of (name, value) pairs sorted by name, so that a
#: series key is hashable and two samples with the same labels compare equal.
Labels = Tuple[Tuple[str, str], ...]

NO_LABELS: Labels = ()


def make_labels(mapping: Optional[Mapping[str, object]] = None, **kwargs: object) -> Labels:
    """Build a canonical (sorted, stringified) label tuple."""
    items: dict[str, str] = {}
    if mapping:
        items.update({str(k): str(v) for k, v in mapping.items()})
    items.update({k: str(v) for k, v in kwargs.items()})
    return tuple(sorted(items.items()))


class SeriesKey(NamedTuple):
    """Identity of one time series: metric name plus labels."""

    metric: str
    labels: Labels

    def label(self, name: str, default: str = "") -> str:
        for k, v in self.labels:
            if k == name:
                return v
        return default

    def __str__(self) -> str:
        if not self.labels:
            return self.metric
        inner = ",".join(f'{k}="{v}"' for k, v in self.labels)
        return f"{self.metric}{{{inner}}}"


class Sample(NamedTuple):
    """One observation of one series. A NamedTuple: cheap to create and immutable."""

    ts: float
    metric: str
    value: float
    labels: Labels = NO_LABELS

    @property
    def key(self) -> SeriesKey:
        return SeriesKey(self.metric, self.labels)

    def to_json_obj(self) -> dict[str, Any]:
        return {
            "ts": self.ts,
            "metric": self.metric,
            "labels": dict(self.labels),
            "value": self.value,
        }


class Severity(enum.IntEnum):
    """Alert severities, ordered so that comparisons mean "at least as bad"."""

    INFO = 0
    WARN = 1
    CRITICAL = 2
    EMERGENCY = 3

    @classmethod
    def parse(cls, text: str) -> Severity:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            choices = ", ".join(s.label for s in cls)
            raise ValueError(f"unknown severity {text!r} (expected one of: {choices})") from None

    @property
    def label(self) -> str:
        return self.name.lower()


#: (analyzer or rule, metric, labels): see :attr:`Alert.identity`
AlertIdentity = Tuple[str, str, Labels]


class AlertState(str, enum.Enum):
    FIRING = "firing"
    RESOLVED = "resolved"


def iso_utc(ts: float) -> str:
    """ISO-8601 UTC with a ``Z`` suffix and second precision."""
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_alert_id() -> str:
    """A random (version 4) UUID in its usual text form.

    Formatted here rather than by :mod:`uuid`, which imports :mod:`platform`
    and costs the daemon 0.25 MiB of RSS for this one line.
    """
    b = bytearray(os.urandom(16))
    b[6] = (b[6] & 0x0F) | 0x40  # version 4
    b[8] = (b[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


@dataclass(frozen=True)
class Alert:
    """An alert notification (SPEC §6). Immutable; use :meth:`evolve` to derive."""

    timestamp: float
    hostname: str
    severity: Severity
    metric: str
    value: float
    threshold: float
    message: str
    analyzer: str
    labels: Labels = NO_LABELS
    duration: Optional[float] = None
    state: AlertState = AlertState.FIRING
    id: str = field(default_factory=new_alert_id)

    @property
    def key(self) -> tuple[str, Severity, Labels]:
        """Metric, severity and labels (one severity of one series)."""
        return (self.metric, self.severity, self.labels)

    @property
    def identity(self) -> AlertIdentity:
        """What the alert is about: (analyzer or rule, metric, labels).

        Two analyzers alerting on one series (the disk trend and the disk
        threshold) are two alerts; the severity and the state are not part of
        the identity: they are its transitions (firing, escalation,
        de-escalation, resolved).
        """
        return (self.analyzer, self.metric, self.labels)

    def evolve(self, **changes: Any) -> Alert:
        return replace(self, **changes)

    def to_json_obj(self) -> dict[str, Any]:
        """The webhook JSON of SPEC §6."""
        return {
            "hostname": self.hostname,
            "timestamp": iso_utc(self.timestamp),
            "severity": self.severity.label,
            "metric": self.metric,
            "value": self.value,
            "threshold": self.threshold,
            "message": self.message,
            "labels": dict(self.labels),
            "duration_secs": None if self.duration is None else int(self.duration),
            "analyzer": self.analyzer,
            "state": self.state.value,
            "id": self.id,
        }
