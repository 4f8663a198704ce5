"""From pattern hits to alerts and counters: de-duplication, OOM context, bursts.

The three sources overlap: the kernel's own lines reach us from ``/dev/kmsg``,
from the journal (``_TRANSPORT=kernel``) and from ``/var/log/syslog`` (rsyslog
reads them too), and userspace lines from both the journal and the file. An
event is therefore identified by its pattern and the text from the match to
the end of the line (so syslog's ``host kernel: [123.4]`` prefix does not
matter); the n-th occurrence from one source within ``dedup_window`` is a
duplicate when another source already delivered n of them.

Bursts. The first occurrence of an event (pattern + key fields, e.g. the
device) alerts at once — the operator should hear about a dying disk or an
OOM kill immediately, not after an aggregation delay. Repeats within
``burst_window`` are only counted; when the window closes, one follow-up
alert says how many there were ("500 I/O errors on sdb in 1s"). While the
flood goes on, each further window yields one more count, never one alert per
line; a window without repeats ends the burst, and the next occurrence alerts
at once again. So a burst costs two notifications, a lone event one.

Trust. Only a record the kernel provably wrote (every kmsg record, a journal entry
with ``_TRANSPORT=kernel``, passed on as ``transport=kernel``) may raise an
EMERGENCY, the one severity that bypasses the alert rate limiter. An emergency
pattern matched anywhere else (a syslog file's ``kernel:`` tag can be written by any
local user with ``logger -t kernel``; a custom pattern in a userland line) is sent as
CRITICAL, with the label ``downgraded=emergency`` and a note in the message.

Log alerts are events, not conditions: they are sent with state ``firing``
and are never resolved (nothing tells us that "the I/O errors are over";
absence of lines is not recovery). Alertmanager users see them expire after
its ``resolve_timeout``.
"""

from __future__ import annotations

import logging
import re
from collections import OrderedDict
from typing import Any, Callable, Dict, List, Optional, Tuple

from sysops_agent.clock import Clock
from sysops_agent.logwatch.patterns import COUNTERS, Hit, PatternSpec, format_subject
from sysops_agent.model import Alert, Sample, Severity, make_labels
from sysops_agent.units import format_duration

log = logging.getLogger("sysops_agent.logwatch")

#: systemd unit types, to name the unit of an OOM-killed process from its cgroup path
_UNIT = re.compile(r"\.(service|scope|slice|socket|mount|swap|timer)$")

#: bounded memory (bench/logflood.py): distinct burst keys and dedup fingerprints kept at
#: most (about 1 KiB a burst, which keeps its last line, and 0.2 KiB a fingerprint; both
#: full: 1.35 MiB). 2,048 fingerprints cover 200 distinct matching lines a second over
#: the default 10 s window; beyond that the oldest are dropped early.
MAX_BURST_KEYS = 1000
MAX_FINGERPRINTS = 2048
#: oom-kill: context lines remembered per source (pid -> cgroup)
MAX_OOM_CONTEXT = 64


def unit_of_cgroup(cgroup: str) -> Optional[str]:
    """``/system.slice/foo.service`` -> ``foo.service``; None for non-unit cgroups."""
    last = cgroup.rstrip("/").rsplit("/", 1)[-1]
    return last if _UNIT.search(last) else None


class DuplicateFilter:
    """Recognises one line delivered by several sources (see the module docstring).

    Bounded: at most ``max_entries`` fingerprints, kept in arrival order, so expiry
    and eviction pop from the front (O(1) amortised, never a rescan). A fingerprint
    is a hash of (pattern, text): an entry costs the same whatever the line's length.
    """

    def __init__(self, window: float, max_entries: int = MAX_FINGERPRINTS) -> None:
        self.window = window
        self.max_entries = max_entries
        # hash(pattern, text) -> [first seen, source, count, source, count, ...]
        self._seen: OrderedDict[int, List[Any]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._seen)

    def is_duplicate(self, pattern: str, text: str, source: str, now: float) -> bool:
        if self.window <= 0:
            return False
        seen = self._seen
        while seen:
            oldest = next(iter(seen.values()))
            if now - oldest[0] < self.window and len(seen) < self.max_entries:
                break
            seen.popitem(last=False)
        key = hash((pattern, text))
        entry = seen.get(key)
        if entry is None:
            seen[key] = [now, source, 1]
            return False
        mine, others = 1, 0
        for i in range(1, len(entry), 2):
            if entry[i] == source:
                entry[i + 1] += 1
                mine = entry[i + 1]
            else:
                others = max(others, entry[i + 1])
        if mine == 1:
            entry.extend((source, 1))
        return mine <= others


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
        key = (spec.name, tuple(fields.get(k, "") for k in spec.key_fields))
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

    def flush(self, mono: float, wall: float, force: bool = False) -> List[Alert]:
        """Follow-ups for windows that closed (every window with ``force``, at shutdown)."""
        out, self._early = self._early, []
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


class KernelCounters:
    """``kernel_*_total``: counted per occurrence, emitted when changed and periodically."""

    def __init__(self) -> None:
        self.values: Dict[str, int] = dict.fromkeys(COUNTERS, 0)
        self._dirty = set(COUNTERS)

    def inc(self, name: str) -> None:
        self.values[name] = self.values.get(name, 0) + 1
        self._dirty.add(name)

    def samples(self, ts: float, everything: bool = False) -> List[Sample]:
        names = sorted(self.values) if everything else sorted(self._dirty)
        self._dirty.clear()
        return [Sample(ts, n, float(self.values[n])) for n in names]


def trusted(source: str, meta: Dict[str, str]) -> bool:
    """Whether a record proves it came from the kernel (only then may it raise an emergency).

    Every kmsg record does; a journal entry does when journald marked it
    ``_TRANSPORT=kernel`` (the source passes that on as ``transport``); nothing else.
    """
    return source == "kmsg" or (source == "journal" and meta.get("transport") == "kernel")


class EventPipeline:
    """What every source feeds: hit -> dedup -> context -> counters -> burst -> alert."""

    def __init__(
        self,
        *,
        hostname: str,
        clock: Clock,
        emit_alert: Callable[[Alert], None],
        emit_sample: Callable[[Sample], None],
        burst_window: float,
        dedup_window: float,
        max_line: int,
        own_pid: int,
    ) -> None:
        self.clock = clock
        self.emit_alert = emit_alert
        self.emit_sample = emit_sample
        self.max_line = max_line
        self.own_pid = str(own_pid)
        self.dedup = DuplicateFilter(dedup_window, MAX_FINGERPRINTS)
        self.bursts = BurstAggregator(burst_window, hostname, max_line, MAX_BURST_KEYS)
        self.counters = KernelCounters()
        self._oom: Dict[str, OrderedDict[str, Dict[str, str]]] = {}
        self.events = 0
        self.duplicates = 0

    def deliver(self, source: str, hit: Hit, meta: Dict[str, str]) -> None:
        """One hit from ``source``; ``meta`` holds labels from the source (ident, unit, pid)."""
        if meta.get("log_pid") == self.own_pid:
            return  # our own output (console alerts in the journal): never feed back
        spec = hit.spec
        fields = dict(hit.fields)
        if not spec.alerts:
            if spec.name == "oom_context" and "pid" in fields:
                ctx = self._oom.setdefault(source, OrderedDict())
                ctx[fields["pid"]] = fields
                while len(ctx) > MAX_OOM_CONTEXT:
                    ctx.popitem(last=False)
            return
        mono = self.clock.monotonic()
        if self.dedup.is_duplicate(spec.name, hit.line[hit.start :], source, mono):
            self.duplicates += 1
            return
        if spec.name == "oom_kill":
            self._add_oom_context(source, fields)
        self.events += 1
        if spec.counter:
            self.counters.inc(spec.counter)
        labels: Dict[str, str] = dict(spec.labels)
        labels.update(meta)
        labels.update(fields)
        labels.update(pattern=spec.name, source=source, line=hit.line[: self.max_line])
        severity, note = spec.severity, ""
        if severity is Severity.EMERGENCY and not trusted(source, meta):
            severity, note = (
                Severity.CRITICAL,
                " (emergency pattern, unproven source: sent as critical)",
            )
            labels["downgraded"] = "emergency"
        alert = self.bursts.add(
            spec, fields, hit.line, source, labels, mono, self.clock.time(), severity, note
        )
        if alert is not None:
            self.emit_alert(alert)

    def _add_oom_context(self, source: str, fields: Dict[str, str]) -> None:
        ctx = self._oom.get(source)
        extra = ctx.pop(fields.get("pid", ""), None) if ctx else None
        if extra is None:
            return
        cgroup = extra.get("cgroup", "")
        if cgroup and cgroup != "/":
            fields.setdefault("cgroup", cgroup)
            unit = unit_of_cgroup(cgroup)
            if unit:
                fields.setdefault("unit", unit)

    def tick(self, *, all_counters: bool = False, force_flush: bool = False) -> None:
        """Follow-up alerts for closed burst windows; counters that changed (or all)."""
        for alert in self.bursts.flush(self.clock.monotonic(), self.clock.time(), force_flush):
            self.emit_alert(alert)
        for sample in self.counters.samples(self.clock.time(), all_counters):
            self.emit_sample(sample)
