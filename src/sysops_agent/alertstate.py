"""Firing alerts saved across restarts: ``<data_dir>/alerts.state``.

The daemon saves the firing series of every analyzer (its
:class:`~sysops_agent.analyzers.lifecycle.Lifecycle`) every
:data:`SAVE_INTERVAL_SECS` and at shutdown, and restores them at start-up:

- an alert that is still firing after the restart is *not* notified again
  (the analyzer's lifecycle already says "firing at this severity");
- one whose condition cleared while the agent was down gets its resolved
  notice with the next sample;
- one whose series never comes back (a process that exited meanwhile) is
  resolved once :func:`grace_secs` passed without a sample confirming it.

With them the file keeps the alert pipeline's own state (``"pipeline"``,
written by :meth:`~sysops_agent.control_api.Operator.pipeline_state`): the
firing table ``status`` shows and the repeat stage's alerts with their acks.
At start-up it is restored for the alerts the analyzers restored as firing
(:func:`firing_identities`), so ``status`` lists them with their original
"since", and an acked alert stays acked until it resolves.

The file is JSON, replaced atomically and fsynced, and only when its content
changed (an idle agent does not rewrite and fsync the same bytes every minute;
the file's mtime says when the state last changed). A missing, unreadable or
foreign file is reported and ignored: the agent starts with no firing alerts
(what it did before this file existed).
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple

from sysops_agent.analyzers.base import Analyzer, Stateful
from sysops_agent.analyzers.common import transition_alert
from sysops_agent.analyzers.describe import subject
from sysops_agent.analyzers.lifecycle import Firing
from sysops_agent.fsutil import write_atomic
from sysops_agent.model import Alert, Labels, SeriesKey, Severity
from sysops_agent.storage.store import Store

log = logging.getLogger("sysops_agent.alertstate")

FILE_NAME = "alerts.state"
VERSION = 1
#: how often the daemon saves the firing alerts (and at shutdown)
SAVE_INTERVAL_SECS = 60.0
#: a restored alert no sample confirmed within this many collection intervals is resolved
GRACE_INTERVALS = 3


def state_path(data_dir: str) -> str:
    return os.path.join(data_dir, FILE_NAME)


def grace_secs(collection_interval: float) -> float:
    """How long a restored alert waits for a sample of its series (at least a minute)."""
    return max(60.0, GRACE_INTERVALS * collection_interval)


def snapshot(analyzers: Sequence[Analyzer]) -> Dict[str, List[Firing]]:
    return {a.name: a.lifecycle.snapshot() for a in analyzers if isinstance(a, Stateful)}


def encode(state: Dict[str, List[Firing]], pipeline: Optional[Dict[str, Any]] = None) -> str:
    return json.dumps(
        {
            "version": VERSION,
            "pipeline": pipeline or {},
            "analyzers": {
                name: [
                    {
                        "metric": f.key.metric,
                        "labels": [list(kv) for kv in f.key.labels],
                        "severity": int(f.severity),
                        "started": f.started,
                        "value": f.value,
                    }
                    for f in firing
                ]
                for name, firing in state.items()
            },
        },
        separators=(",", ":"),
    )


def decode(text: str) -> Dict[str, List[Firing]]:
    data: Any = json.loads(text)
    if not isinstance(data, dict) or data.get("version") != VERSION:
        raise ValueError("not an alert state file of this version")
    out: Dict[str, List[Firing]] = {}
    for name, items in data["analyzers"].items():
        out[str(name)] = [
            Firing(
                SeriesKey(str(i["metric"]), tuple((str(k), str(v)) for k, v in i["labels"])),
                Severity(int(i["severity"])),
                float(i["started"]),
                float(i["value"]),
            )
            for i in items
        ]
    return out


def save(
    path: str,
    analyzers: Sequence[Analyzer],
    pipeline: Optional[Dict[str, Any]] = None,
    *,
    unless: Optional[str] = None,
) -> Optional[str]:
    """Write the firing alerts of ``analyzers`` and the ``pipeline`` state, unless they
    encode to ``unless`` (what the last save returned) and the file is still there.

    Returns the content now on disk, or None if it could not be written (logged,
    never raised; the next save tries again).
    """
    text = encode(snapshot(analyzers), pipeline)
    if text == unless and os.path.exists(path):
        return text
    try:
        write_atomic(path, text, fsync=True)
    except OSError as exc:
        log.warning("cannot save the alert state to %s: %s", path, exc)
        return None
    return text


def restore(path: str, analyzers: Sequence[Analyzer]) -> int:
    """Put the saved firing alerts back into ``analyzers``' lifecycles; returns how many."""
    try:
        with open(path, encoding="utf-8") as f:
            saved = decode(f.read())
    except FileNotFoundError:
        return 0
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("alert state %s ignored: %s", path, exc)
        return 0
    n = 0
    for analyzer in analyzers:
        if not isinstance(analyzer, Stateful):
            continue
        for firing in saved.get(analyzer.name, []):
            analyzer.lifecycle.restore(firing, restored=True)
            n += 1
    return n


def load_pipeline(path: str) -> Dict[str, Any]:
    """The pipeline state saved in ``path`` (empty when there is none or it is unreadable:
    :func:`restore` already said so)."""
    try:
        with open(path, encoding="utf-8") as f:
            data: Any = json.loads(f.read())
        pipeline = data.get("pipeline") if isinstance(data, dict) else None
    except (OSError, ValueError):
        return {}
    return pipeline if isinstance(pipeline, dict) else {}


def firing_identities(analyzers: Sequence[Analyzer]) -> Set[Tuple[str, str, Labels]]:
    """(analyzer, metric, labels) of every series the analyzers consider firing."""
    return {
        (name, f.key.metric, f.key.labels)
        for name, firing in snapshot(analyzers).items()
        for f in firing
    }


def resolve_unconfirmed(
    analyzers: Sequence[Analyzer], store: Store, hostname: str, now: float
) -> List[Alert]:
    """Resolved notices for restored alerts whose series sent no sample since the restart."""

    def reported(key: SeriesKey) -> bool:
        return store.latest(key.metric, key.labels) is not None

    out: List[Alert] = []
    for analyzer in analyzers:
        if not isinstance(analyzer, Stateful):
            continue
        for key, t in analyzer.lifecycle.drop_restored(now, reported):
            message = f"{subject(key)} not reported since the agent restarted; alert closed"
            out.append(transition_alert(analyzer.name, hostname, key, t, message, 0.0))
    return out
