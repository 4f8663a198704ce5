"""Bursts and storms of log events: what :class:`~sysops_agent.logwatch.events.EventPipeline`
folds before anything reaches the alert queue (the module docstring of ``events.py``
explains both). Split from ``events.py`` to keep each module one concern.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict, deque
from typing import Deque, Dict, List, Optional, Set, Tuple

from sysops_agent.logwatch.patterns import PatternSpec, format_subject
from sysops_agent.model import Alert, Severity, make_labels
from sysops_agent.units import format_duration

log = logging.getLogger("sysops_agent.logwatch")

#: bounded memory (bench/logflood.py): distinct burst keys kept at most (about 1 KiB a
#: burst, which keeps its last line; full: 1 MiB)
MAX_BURST_KEYS = 1000
#: storms (see the module docstring): a pattern whose (STORM_KEYS + 1)-th distinct new key
#: arrives within STORM_WINDOW seconds of the first goes into storm mode. 3 events of one
#: kind from 3 different processes/devices in 10 s are already unusual; beyond that they
#: share a cause, and one count serves better than one alert each. 3 prompt alerts plus
#: the storm summary fit the default rate-limit burst of 5 (SPEC §6), so the summary is
#: not itself reduced to "...and N more suppressed" by a channel's rate limiter.
STORM_KEYS = 3
STORM_WINDOW = 10.0
#: distinct keys counted exactly per storm window (a hash each, about 70 KiB when full);
#: beyond that the summary says "from over 1,024 processes" (the event count stays exact)
STORM_MAX_KEYS = 1024
#: how a summary names the distinct keys of a storm, by key field
KEY_NOUNS = {
    "process": "processes",
    "device": "devices",
    "interface": "interfaces",
    "mc": "memory controllers",
}


def _clock_time(wall: float) -> str:
    """``06:00:00.123`` (local time, like the syslog files it comes from)."""
    return time.strftime("%H:%M:%S", time.localtime(wall)) + f".{int(wall * 1000) % 1000:03d}"


class _Burst:
    """One burst's state (``__slots__``: up to MAX_BURST_KEYS of them exist)."""

    __slots__ = (
        "count",
        "first",
        "first_window",
        "key_fields",
        "last",
        "last_line",
        "last_source",
        "severity",
        "spec",
        "total",
        "window_start",
    )

    def __init__(
        self,
        spec: PatternSpec,
        key_fields: Dict[str, str],
        window_start: float,
        line: str,
        source: str,
        severity: Severity,
    ) -> None:
        self.spec = spec
        self.key_fields = key_fields
        self.window_start = window_start
        #: occurrences this window will report (the first window includes the prompt one)
        self.count = 1
        self.first = window_start
        self.last = window_start
        self.total = 1
        self.first_window = True
        self.last_line = line
        self.last_source = source
        self.severity = severity


#: one example of a storm: (wall time, fields, line, source)
_Example = Tuple[float, Dict[str, str], str, str]
#: a new key that alerted at once: (monotonic time, burst key, example)
_Recent = Tuple[float, Tuple[str, Tuple[str, ...]], _Example]


class _Storm:
    """One pattern in storm mode: counts of the current window, first and last example."""

    __slots__ = (
        "count",
        "first",
        "first_mono",
        "keys",
        "keys_over",
        "last",
        "last_mono",
        "severity",
        "since",
        "spec",
        "total",
        "window_start",
        "windows",
    )

    def __init__(self, spec: PatternSpec, mono: float, first: _Example, severity: Severity):
        self.spec = spec
        self.severity = severity
        self.window_start = mono
        #: occurrences this window will report; all of the storm so far
        self.count = 0
        self.total = 0
        self.first_mono = mono
        self.first = first
        self.last_mono = mono
        self.last = first
        #: hashes of the distinct keys seen this window (at most STORM_MAX_KEYS)
        self.keys: Set[int] = set()
        self.keys_over = False
        #: wall time the storm started; windows reported so far
        self.since = first[0]
        self.windows = 0

    def add_key(self, key: Tuple[str, ...], limit: int) -> None:
        keys = self.keys
        if len(keys) < limit:
            keys.add(hash(key))
        elif not self.keys_over and hash(key) not in keys:
            self.keys_over = True


class BurstAggregator:
    """Prompt alert for the first occurrence, one counted follow-up per window of repeats.

    Bounded: at most ``max_keys`` bursts, kept in the order their windows started (a
    burst whose window restarts moves to the end), so :meth:`flush` looks only at the
    bursts whose window closed (O(1) amortised, never a rescan). A new key beyond the
    cap closes the oldest burst early: its count is sent with the next flush, not lost.
    """

    def __init__(
        self, window: float, hostname: str, max_line: int, max_keys: int = MAX_BURST_KEYS
    ) -> None:
        self.window = window
        self.hostname = hostname
        self.max_line = max_line
        self.max_keys = max_keys
        self._bursts: OrderedDict[Tuple[str, Tuple[str, ...]], _Burst] = OrderedDict()
        self._early: List[Alert] = []
        #: bursts closed before their window ended because of the cap
        self.evicted = 0
        #: 0 turns storm detection off
        self.storm_keys = STORM_KEYS
        self.storm_window = STORM_WINDOW
        self.storm_max_keys = STORM_MAX_KEYS
        #: per pattern: the last ``storm_keys`` new keys that alerted at once
        self._recent: Dict[str, Deque[_Recent]] = {}
        #: patterns in storm mode (at most one per pattern: bounded by the pattern count)
        self._storms: Dict[str, _Storm] = {}
        #: storms started since the agent started
        self.storms_started = 0

    def __len__(self) -> int:
        return len(self._bursts)

    def add(
        self,
        spec: PatternSpec,
        fields: Dict[str, str],
        line: str,
        source: str,
        labels: Dict[str, str],
        mono: float,
        wall: float,
        severity: Optional[Severity] = None,
        note: str = "",
    ) -> Optional[Alert]:
        """Count one occurrence; the alert to send now (the first of a burst) or None."""
        sev = spec.severity if severity is None else severity
        if self._storms and self.fold(spec, fields, line, source, mono, wall, sev):
            return None
        key_values = tuple(fields.get(k, "") for k in spec.key_fields)
        key = (spec.name, key_values)
        burst = self._bursts.get(key)
        if burst is not None:
            if sev > burst.severity:  # a proven occurrence after an unproven one
                burst.severity = sev
            if burst.count == 0:
                burst.first = mono
            burst.count += 1
            burst.total += 1
            burst.last = mono
            burst.last_line = line[: self.max_line]
            burst.last_source = source
            return None
        if spec.key_fields and self.storm_keys > 0:  # too many new keys at once: a storm
            recent = self._recent.get(spec.name)
            if recent is None:
                recent = self._recent[spec.name] = deque(maxlen=self.storm_keys)
            if len(recent) >= self.storm_keys and mono - recent[0][0] < self.storm_window:
                self._start_storm(spec, recent, key_values, mono, (wall, fields, line, source), sev)
                return None
            recent.append((mono, key, (wall, fields, line, source)))
        while len(self._bursts) >= self.max_keys:
            _, old = self._bursts.popitem(last=False)
            self.evicted += 1
            repeats = old.count - 1 if old.first_window else old.count
            if repeats > 0:
                self._early.append(self._summary(old, wall))
        key_fields = {k: fields[k] for k in spec.key_fields if fields.get(k)}
        self._bursts[key] = _Burst(spec, key_fields, mono, line[: self.max_line], source, sev)
        subject = format_subject(spec.subjects, fields)
        return Alert(
            timestamp=wall,
            hostname=self.hostname,
            severity=sev,
            metric=f"log_{spec.name}",
            value=1.0,
            threshold=1.0,
            message=f"{spec.title}{subject} [{source}]{note}: {line[:200]}",
            analyzer="log",
            labels=make_labels(labels),
        )

    def fold(
        self,
        spec: PatternSpec,
        fields: Dict[str, str],
        line: str,
        source: str,
        mono: float,
        wall: float,
        severity: Severity,
    ) -> bool:
        """Count one occurrence into its pattern's storm; False when there is no storm.

        O(1): a counter, the key's hash (while fewer than ``storm_max_keys``), the last
        example (the first one too at the start of a window).
        """
        storm = self._storms.get(spec.name)
        if storm is None:
            return False
        example = (wall, fields, line, source)
        if storm.count == 0:  # the first of a new window
            storm.first_mono = mono
            storm.first = example
        storm.count += 1
        storm.total += 1
        storm.last_mono = mono
        storm.last = example
        storm.add_key(tuple(fields.get(k, "") for k in spec.key_fields), self.storm_max_keys)
        if severity > storm.severity:
            storm.severity = severity
        return True

    def _start_storm(
        self,
        spec: PatternSpec,
        recent: Deque[_Recent],
        key_values: Tuple[str, ...],
        mono: float,
        example: _Example,
        severity: Severity,
    ) -> None:
        """Storm mode for ``spec``: the bursts of the keys that alerted at once fold into it."""
        first_mono, _, first = recent[0]
        storm = _Storm(spec, first_mono, first, severity)
        storm.window_start = mono
        for _, key, _ in recent:
            burst = self._bursts.pop(key, None)
            storm.add_key(key[1], self.storm_max_keys)
            if burst is not None:  # its occurrences not reported yet (prompt one included)
                storm.count += burst.count
                if burst.severity > storm.severity:
                    storm.severity = burst.severity
        recent.clear()
        storm.total = storm.count
        storm.count += 1
        storm.total += 1
        storm.last_mono = mono
        storm.last = example
        storm.add_key(key_values, self.storm_max_keys)
        self._storms[spec.name] = storm
        self.storms_started += 1
        log.info(
            "log storm: more than %d %s from distinct sources within %gs; "
            "counting them, a summary every %gs",
            self.storm_keys,
            spec.plural,
            self.storm_window,
            self.window,
        )

    @property
    def storms(self) -> int:
        """Patterns in storm mode now."""
        return len(self._storms)

    def pending(self) -> bool:
        """Whether a burst or storm window is open (a follow-up may be due)."""
        return bool(self._bursts or self._storms or self._early)

    def flush(self, mono: float, wall: float, force: bool = False) -> List[Alert]:
        """Follow-ups for windows that closed (every window with ``force``, at shutdown)."""
        out, self._early = self._early, []
        for name, storm in list(self._storms.items()):  # one per pattern at most
            if not force and mono - storm.window_start < self.window:
                continue
            if storm.count > 0:
                out.append(self._storm_summary(storm, wall))
            if force or storm.count == 0:  # a quiet window ends the storm
                del self._storms[name]
            else:
                storm.window_start = mono
                storm.count = 0
                storm.windows += 1
                storm.keys = set()
                storm.keys_over = False
        bursts = self._bursts
        while bursts:
            key, burst = next(iter(bursts.items()))
            if not force and mono - burst.window_start < self.window:
                break  # ordered by window start: every later one is still open
            repeats = burst.count - 1 if burst.first_window else burst.count
            if repeats <= 0 or force:
                del bursts[key]
            else:
                bursts.move_to_end(key)
            if repeats > 0:
                out.append(self._summary(burst, wall))
                burst.window_start = mono
                burst.count = 0
                burst.first_window = False
        return out

    def _storm_summary(self, storm: _Storm, wall: float) -> Alert:
        spec = storm.spec
        span = max(0.0, storm.last_mono - storm.first_mono)
        nkeys = len(storm.keys)
        noun = KEY_NOUNS.get(spec.key_fields[0], "") if len(spec.key_fields) == 1 else ""
        noun = noun or f"distinct {'/'.join(spec.key_fields)} values"
        keys = f"over {nkeys:,}" if storm.keys_over else f"{nkeys:,}"
        first_wall, first_fields, first_line, _ = storm.first
        last_wall, last_fields, last_line, last_source = storm.last
        if storm.windows == 0:
            what = f"{storm.count:,} {spec.plural}"
            ongoing = " (storm)"
        else:
            what = f"{storm.count:,} more {spec.plural}"
            ongoing = f" (storm since {_clock_time(storm.since)}, {storm.total:,} in total)"
        message = (
            f"{what} from {keys} {noun} in {format_duration(span)}{ongoing}, "
            f"first{self._example(spec, first_fields, first_line)} at {_clock_time(first_wall)}, "
            f"last{self._example(spec, last_fields, last_line)} at {_clock_time(last_wall)}"
        )
        labels = dict(spec.labels)
        labels.update(
            pattern=spec.name,
            source=last_source,
            count=str(storm.count),
            total=str(storm.total),
            storm="true",
            keys=keys.replace(",", ""),
            first_line=first_line[: self.max_line],
            line=last_line[: self.max_line],
        )
        return Alert(
            timestamp=wall,
            hostname=self.hostname,
            severity=storm.severity,
            metric=f"log_{spec.name}",
            value=float(storm.count),
            threshold=1.0,
            message=message,
            analyzer="log",
            labels=make_labels(labels),
            duration=span,
        )

    @staticmethod
    def _example(spec: PatternSpec, fields: Dict[str, str], line: str) -> str:
        """`` in app (pid 1)``: the pattern's subject, or the line's start when it has none."""
        return format_subject(spec.subjects, fields) or f": {line[:100]}"

    def _summary(self, burst: _Burst, wall: float) -> Alert:
        spec = burst.spec
        span = max(0.0, burst.last - burst.first)
        subject = format_subject((spec.key_subject,), burst.key_fields) if burst.key_fields else ""
        labels = dict(spec.labels)
        labels.update(burst.key_fields)
        labels.update(
            pattern=spec.name,
            source=burst.last_source,
            count=str(burst.count),
            line=burst.last_line[: self.max_line],
        )
        ongoing = "" if burst.first_window else f" (ongoing, {burst.total} in total)"
        return Alert(
            timestamp=wall,
            hostname=self.hostname,
            severity=burst.severity,
            metric=f"log_{spec.name}",
            value=float(burst.count),
            threshold=1.0,
            message=f"{burst.count} {spec.plural}{subject} in {format_duration(span)}{ongoing}",
            analyzer="log",
            labels=make_labels(labels),
            duration=span,
        )
