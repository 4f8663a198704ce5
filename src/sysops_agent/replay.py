"""Replaying recorded samples through the analyzers and the dedup stage (SPEC §13).

Inputs, detected per file from the first non-blank line:

* JSON lines ``{"ts": <unix seconds>, "metric": ..., "labels": {...}, "value": ...}``
  (what ``collect --once --json`` prints);
* CSV with the header ``timestamp,value`` and timestamps ``YYYY-MM-DD HH:MM:SS``
  (UTC), one series named by ``--metric`` or the file's stem (NAB's format).

Time is virtual: the :class:`Replayer` sets a :class:`VirtualClock` to the
samples' own timestamps and runs the analyzers on the same cadence as the
daemon (``analyzer.interval_secs``), so nothing ever sleeps. A bad line is
reported as ``file:line: reason`` and skipped; the replay carries on.
"""

from __future__ import annotations

import calendar
import heapq
import json
import math
import os
from typing import Callable, Dict, Iterable, Iterator, List, Optional, TextIO, Tuple

from sysops_agent.alerting.dedup import DedupStage
from sysops_agent.analyzers.base import Analyzer
from sysops_agent.analyzers.feed import is_impossible
from sysops_agent.analyzers.registry import build_analyzers
from sysops_agent.clock import VirtualClock
from sysops_agent.config import Config
from sysops_agent.model import Alert, Labels, Sample, make_labels
from sysops_agent.storage.store import Store

#: (line number, sample)
Numbered = Tuple[int, Sample]
ErrorSink = Callable[[str], None]


class BadLine(ValueError):
    """A line that cannot be turned into a sample; the message says why."""


def _number(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadLine(f"{what} must be a number, got {_short(value)}")
    try:
        x = float(value)
    except OverflowError:  # a 400-digit integer
        raise BadLine(f"{what} is too large for a number, got {_short(value)}") from None
    if not math.isfinite(x):
        raise BadLine(f"{what} must be finite, got {value!r}")
    return x


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def parse_json_line(text: str) -> Sample:
    try:
        obj = json.loads(text)
    except ValueError as e:
        raise BadLine(f"not valid JSON ({e})") from None
    except RecursionError:  # {"a": {"a": ... thousands deep
        raise BadLine("not valid JSON (nested too deeply)") from None
    if not isinstance(obj, dict):
        raise BadLine("expected a JSON object")
    metric = obj.get("metric")
    if not isinstance(metric, str) or not metric:
        raise BadLine('"metric" must be a non-empty string')
    if "ts" not in obj:
        raise BadLine('missing "ts"')
    if "value" not in obj:
        raise BadLine('missing "value"')
    ts = _number(obj["ts"], '"ts"')
    if ts < 0:
        raise BadLine(f'"ts" must be unix seconds >= 0, got {obj["ts"]!r}')
    value = _number(obj["value"], '"value"')
    raw_labels = obj.get("labels") or {}
    if not isinstance(raw_labels, dict):
        raise BadLine('"labels" must be an object')
    labels: Labels = ()
    if raw_labels:
        try:
            cache_key = tuple(raw_labels.items())
            cached = _labels_cache.get(cache_key)
        except TypeError:  # unhashable label values (lists, objects)
            cache_key, cached = None, None
        if cached is None:
            cached = make_labels(raw_labels)
            if cache_key is not None and len(_labels_cache) < 100_000:
                _labels_cache[cache_key] = cached
        labels = cached
    return Sample(ts, metric, value, labels)


_labels_cache: Dict[Tuple[Tuple[str, object], ...], Labels] = {}
_day_cache: Dict[str, int] = {}


def parse_timestamp(text: str) -> float:
    """``YYYY-MM-DD HH:MM:SS[.ffffff]`` (UTC) -> unix seconds; fast path for the fixed layout."""
    text = text.strip()
    if len(text) < 19 or text[4] != "-" or text[7] != "-" or text[10] not in " T":
        raise BadLine(f"timestamp {text!r} is not YYYY-MM-DD HH:MM:SS")
    day = text[:10]
    base = _day_cache.get(day)
    try:
        if base is None:
            base = calendar.timegm((int(day[:4]), int(day[5:7]), int(day[8:10]), 0, 0, 0))
            if not (1 <= int(day[5:7]) <= 12 and 1 <= int(day[8:10]) <= 31):
                raise ValueError
            _day_cache[day] = base
        if text[13] != ":" or text[16] != ":":
            raise ValueError
        h, m, s = int(text[11:13]), int(text[14:16]), int(text[17:19])
        if h > 23 or m > 59 or s > 60:
            raise ValueError
        frac = float(text[19:]) if len(text) > 19 and text[19] == "." else 0.0
        if len(text) > 19 and text[19] != ".":
            raise ValueError
    except ValueError:
        raise BadLine(f"timestamp {text!r} is not YYYY-MM-DD HH:MM:SS") from None
    return base + h * 3600 + m * 60 + s + frac


def parse_csv_line(text: str, metric: str) -> Sample:
    parts = text.split(",")
    if len(parts) != 2:
        raise BadLine(f"expected 2 fields (timestamp,value), got {len(parts)}")
    ts = parse_timestamp(parts[0])
    try:
        value = float(parts[1])
    except ValueError:
        raise BadLine(f"value {parts[1].strip()!r} is not a number") from None
    if not math.isfinite(value):
        raise BadLine(f"value {parts[1].strip()!r} is not finite")
    return Sample(ts, metric, value, ())


def series_name(path: str, metric: Optional[str]) -> str:
    if metric:
        return metric
    base = os.path.basename(path)
    stem, _ext = os.path.splitext(base)
    return stem or base


def read_file(
    fh: TextIO, path: str, metric: Optional[str], errors: ErrorSink
) -> Iterator[Numbered]:
    """Samples of one file, in file order; bad lines go to ``errors`` and are skipped."""
    kind: Optional[str] = None
    name = series_name(path, metric)
    for lineno, line in enumerate(fh, 1):
        text = line.strip()
        if not text:
            continue
        if kind is None:
            if text.startswith("{"):
                kind = "json"
            else:
                kind = "csv"
                header = [h.strip().lower() for h in text.split(",")]
                if header == ["timestamp", "value"]:
                    continue
                errors(f"{path}:{lineno}: expected the CSV header 'timestamp,value'; skipped")
                continue
        try:
            sample = parse_json_line(text) if kind == "json" else parse_csv_line(text, name)
        except BadLine as e:
            errors(f"{path}:{lineno}: {e}; skipped")
            continue
        if is_impossible(sample.metric, sample.value):
            errors(
                f"{path}:{lineno}: value {sample.value:g} is impossible for {sample.metric} "
                "(must be >= 0); skipped"
            )
            continue
        yield lineno, sample


class Replayer:
    """The daemon's analysis path on a virtual clock: store → analyzers → dedup."""

    def __init__(self, config: Config, hostname: str, errors: ErrorSink) -> None:
        self.config = config
        self.errors = errors
        self.store = Store(max_samples=config.storage.ring_buffer_samples)
        self.analyzers: List[Analyzer] = build_analyzers(config, hostname)
        self.dedup = DedupStage(config.alerting.dedup_window_secs)
        self.clock = VirtualClock(0.0)
        self.interval = config.analyzer.interval_secs
        self.samples = 0
        self._last_ts: Dict[Tuple[str, Labels], float] = {}

    def _analyze(self, now: float) -> List[Alert]:
        self.clock.set(now)
        out: List[Alert] = []
        for analyzer in self.analyzers:
            try:
                alerts = analyzer.analyze(self.store, now)
            except Exception as e:  # one broken analyzer must not stop the others
                self.errors(f"analyzer {analyzer.name} failed at {now:.0f}: {e!r}")
                continue
            for alert in alerts:
                if self.dedup.admit(alert, now):
                    out.append(alert)
        return out

    def run(self, items: Iterable[Tuple[str, int, Sample]]) -> Iterator[Alert]:
        """Feed ``(source, line, sample)`` in time order; yields the alerts to deliver."""
        interval = self.interval
        next_tick: Optional[float] = None
        last_ts = self._last_ts
        append = self.store.append
        for source, lineno, sample in items:
            ts = sample.ts
            if next_tick is None:
                next_tick = (ts // interval + 1) * interval
            elif ts >= next_tick:
                yield from self._analyze(next_tick)
                next_tick = (ts // interval + 1) * interval
            skey = (sample.metric, sample.labels)
            prev = last_ts.get(skey)
            if prev is not None and ts <= prev:
                self.errors(
                    f"{source}:{lineno}: timestamp {ts:.0f} is not after the previous sample "
                    f"of {sample.metric} ({prev:.0f}); skipped"
                )
                continue
            last_ts[skey] = ts
            if append(sample):
                self.samples += 1
        if next_tick is not None:
            yield from self._analyze(next_tick)


def merged(
    files: List[Tuple[str, Iterator[Numbered]]],
) -> Iterator[Tuple[str, int, Sample]]:
    """Samples of several files in timestamp order (each file is read in its own order)."""
    tagged = [_tag(path, it) for path, it in files]
    if len(tagged) == 1:
        return tagged[0]
    return heapq.merge(*tagged, key=lambda item: item[2].ts)


def _tag(path: str, it: Iterator[Numbered]) -> Iterator[Tuple[str, int, Sample]]:
    for n, s in it:
        yield path, n, s
