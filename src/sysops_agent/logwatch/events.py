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

Storms. Bursts are per key; a storm has many keys: 50,000 segfaults from
50,000 processes in a fraction of a second would be 50,000 "first
occurrences", more than the alert queue holds, so the queue would drop the
*beginning* of the storm. So a pattern whose new keys arrive faster than
``STORM_KEYS`` within ``STORM_WINDOW`` seconds switches to storm mode *before*
anything is queued: the first ``STORM_KEYS`` events went out at once (the first
event of a storm is always delivered at once), every further occurrence of the
pattern is only counted (O(1): a counter, a bounded set of key hashes, the
first and last example), and one summary goes out per ``burst_window`` while
the storm lasts ("50,000 segfaults from 50,000 processes in 0.08s (storm),
first in app (pid 1) at 06:00:00.001, last in ... at ..."), counting exactly,
plus one at shutdown. A window without occurrences ends the storm. Every
occurrence is counted in exactly one summary: the bursts of the keys that
started the storm are folded into it.

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
from typing import Any, Callable, Dict, List, Optional

from sysops_agent.clock import Clock
from sysops_agent.logwatch.bursts import MAX_BURST_KEYS, BurstAggregator
from sysops_agent.logwatch.patterns import COUNTERS, Hit
from sysops_agent.model import Alert, Sample, Severity

log = logging.getLogger("sysops_agent.logwatch")

#: systemd unit types, to name the unit of an OOM-killed process from its cgroup path
_UNIT = re.compile(r"\.(service|scope|slice|socket|mount|swap|timer)$")

#: dedup fingerprints kept at most (0.2 KiB each; bench/logflood.py): 2,048 cover 200
#: distinct matching lines a second over the default 10 s window; beyond that the oldest
#: are dropped early
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


class KernelCounters:
    """``kernel_*_total``: counted per occurrence, emitted when changed and periodically."""

    def __init__(self) -> None:
        self.values: Dict[str, int] = dict.fromkeys(COUNTERS, 0)
        self._dirty = set(COUNTERS)

    def inc(self, name: str) -> None:
        self.values[name] = self.values.get(name, 0) + 1
        self._dirty.add(name)

    @property
    def changed(self) -> bool:
        return bool(self._dirty)

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

    def busy(self) -> bool:
        """Whether :meth:`tick` has work now: an open burst window or a counter that changed."""
        return self.bursts.pending() or self.counters.changed

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
        severity, note = spec.severity, ""
        downgraded = severity is Severity.EMERGENCY and not trusted(source, meta)
        if downgraded:
            severity, note = (
                Severity.CRITICAL,
                " (emergency pattern, unproven source: sent as critical)",
            )
        wall = self.clock.time()
        if self.bursts.fold(spec, fields, hit.line, source, mono, wall, severity):
            return  # a storm: counted, no labels built (O(1) per line)
        labels: Dict[str, str] = dict(spec.labels)
        labels.update(meta)
        labels.update(fields)
        labels.update(pattern=spec.name, source=source, line=hit.line[: self.max_line])
        if downgraded:
            labels["downgraded"] = "emergency"
        alert = self.bursts.add(spec, fields, hit.line, source, labels, mono, wall, severity, note)
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
