"""Immutable records that flow through the pipeline: samples and alerts."""

from __future__ import annotations

import enum
import os
import re
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any, Mapping, NamedTuple, Optional, Tuple

#: Characters that must not reach a console line, a log line, a message, a label
#: or a subject as they are: C0 controls (NUL, ESC, CR, LF, ...), DEL, C1 controls,
#: the Unicode line/paragraph separators and the bidirectional overrides that
#: make text display in another order than it reads ("Trojan Source").
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_CONTROL_BUT_LF = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(m: re.Match[str]) -> str:
    ch = m.group()
    code = ord(ch)
    return _ESCAPES.get(ch) or (f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}")


def clean_text(text: str, *, keep_newlines: bool = False) -> str:
    """``text`` from the host (a process name, a log line, a label, a hostname), safe to show.

    Every control character is replaced by a visible escape (``\\n``, ``\\x00``,
    ``\\u202e``), so a process named ``"x\\nFAKE ALERT"`` stays on its line and
    NUL or ESC bytes never reach a terminal. ``keep_newlines`` keeps ``\\n`` (an
    alert message may span lines; a CR still goes). The one function for this:
    :class:`Alert` and :func:`make_labels` apply it, and so do the console line
    and the agent's log lines.
    """
    pattern = _CONTROL_BUT_LF if keep_newlines else _CONTROL
    if pattern.search(text) is None:  # the common case: no copy
        return text
    return pattern.sub(_escape, text)


def clean_labels(labels: Labels) -> Labels:
    if not any(_CONTROL.search(k) or _CONTROL.search(v) for k, v in labels):
        return labels
    return tuple(sorted((clean_text(k), clean_text(v)) for k, v in labels))


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
    return clean_labels(tuple(sorted(items.items())))


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


#: analyzers whose alerts are events, not states: sent once and never resolved (log
#: lines, test alerts, the agent's own notices, the rate limiter's summaries). Nothing
#: waits for their resolution, so no table keeps them as "firing".
SUMMARY_ANALYZER = "rate-limiter"  # the rate limiter's "N more suppressed" summaries
EVENT_ANALYZERS = frozenset({"log", "test", "agent", SUMMARY_ANALYZER})


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

    def __post_init__(self) -> None:
        # Host text (hostnames, process names, log lines) arrives here from every
        # analyzer and the log watcher; it leaves through every channel.
        for name in ("hostname", "metric", "analyzer"):
            value = getattr(self, name)
            cleaned = clean_text(value)
            if cleaned is not value:
                object.__setattr__(self, name, cleaned)
        message = clean_text(self.message, keep_newlines=True)
        if message is not self.message:
            object.__setattr__(self, "message", message)
        labels = clean_labels(self.labels)
        if labels is not self.labels:
            object.__setattr__(self, "labels", labels)

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
