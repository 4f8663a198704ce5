"""Silences: ``sysops-agent silence add MATCHER... --for 2h`` mutes matching alerts until then.

A :class:`Silence` is a set of matchers (:mod:`sysops_agent.alerting.matchers`)
with a wall-clock end. The :class:`SilenceBook` keeps them in
``<data_dir>/silences.json`` (written atomically on every change, read at
start, so silences survive restarts); ended silences stay listed for
:data:`KEEP_ENDED_SECS`, then are forgotten. :class:`SilenceStage` is the
pipeline stage (a :class:`~sysops_agent.alerting.mute.MuteStage`): a silenced
alert is held and, if still firing when its silence ends, sent then (once).
An emergency is silenced only by a silence whose matchers name its severity.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from typing import Any, Dict, List, Optional

from sysops_agent.alerting.config import PipelineConfig
from sysops_agent.alerting.matchers import Matcher, mutes, parse_matchers
from sysops_agent.alerting.mute import MuteStage
from sysops_agent.fsutil import write_atomic
from sysops_agent.model import Alert, new_alert_id

log = logging.getLogger("sysops_agent.alerting.silence")

#: an ended silence is still listed (``silence list``) for this long
KEEP_ENDED_SECS = 86400.0
#: the file in the data directory
FILENAME = "silences.json"


@dataclass(frozen=True)
class Silence:
    id: str
    matchers: List[str]
    starts_at: float
    ends_at: float
    comment: str = ""
    created_by: str = ""

    def parsed(self) -> List[Matcher]:
        return parse_matchers(self.matchers)

    def active(self, wall: float) -> bool:
        return self.starts_at <= wall < self.ends_at

    def mutes(self, alert: Alert, wall: float) -> bool:
        return self.active(wall) and mutes(self.parsed(), alert)

    def to_json_obj(self) -> Dict[str, Any]:
        return {
            "id": self.id,
            "matchers": list(self.matchers),
            "starts_at": self.starts_at,
            "ends_at": self.ends_at,
            "comment": self.comment,
            "created_by": self.created_by,
        }

    @classmethod
    def from_json_obj(cls, obj: Dict[str, Any]) -> Silence:
        silence = cls(
            id=str(obj["id"]),
            matchers=[str(m) for m in obj["matchers"]],
            starts_at=float(obj["starts_at"]),
            ends_at=float(obj["ends_at"]),
            comment=str(obj.get("comment", "")),
            created_by=str(obj.get("created_by", "")),
        )
        silence.parsed()  # ValueError for a damaged entry
        return silence


def silenced_by(silences: List[Silence], alert: Alert, wall: float) -> List[Silence]:
    """The silences that mute ``alert`` at ``wall`` (pure)."""
    return [s for s in silences if s.mutes(alert, wall)]


class SilenceBook:
    """The silences, kept in a file (``path``) or only in memory (``path=None``)."""

    def __init__(self, path: Optional[str] = None) -> None:
        self.path = path
        self.silences: List[Silence] = []
        self._warned = False
        #: why the last save failed (None: saved, or nothing to save to)
        self.save_error: Optional[str] = None
        if path is not None:
            self._load(path)

    def _load(self, path: str) -> None:
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except FileNotFoundError:
            return
        except (OSError, ValueError) as e:
            log.warning("silences in %s not read: %s", path, e)
            return
        for obj in data.get("silences", []) if isinstance(data, dict) else []:
            try:
                self.silences.append(Silence.from_json_obj(obj))
            except (KeyError, TypeError, ValueError) as e:
                log.warning("ignoring a damaged silence in %s: %s", path, e)

    def save(self) -> Optional[str]:
        """Write the file; the error text if it could not be written (logged once)."""
        if self.path is None:
            return None
        text = json.dumps({"silences": [s.to_json_obj() for s in self.silences]}, indent=1)
        try:
            write_atomic(self.path, text + "\n", fsync=True)
        except OSError as e:
            if not self._warned:
                self._warned = True
                log.warning("silences not saved to %s (they last until restart): %s", self.path, e)
            self.save_error = str(e)
            return self.save_error
        self.save_error = None
        return None

    def add(
        self, matchers: List[str], starts_at: float, ends_at: float, comment: str, created_by: str
    ) -> Silence:
        parse_matchers(matchers)  # ValueError before anything is stored
        silence = Silence(new_alert_id(), list(matchers), starts_at, ends_at, comment, created_by)
        self.prune(starts_at)
        self.silences.append(silence)
        self.save()
        return silence

    def find(self, prefix: str) -> List[Silence]:
        return [s for s in self.silences if s.id.startswith(prefix)]

    def expire(self, silence_id: str, wall: float) -> Silence:
        """End the silence at ``wall``; KeyError if no silence or more than one has that prefix."""
        found = self.find(silence_id)
        if len(found) != 1:
            what = "no silence" if not found else f"{len(found)} silences"
            raise KeyError(f"{what} with id {silence_id!r}")
        old = found[0]
        new = replace(old, ends_at=min(old.ends_at, wall))
        self.silences = [new if s is old else s for s in self.silences]
        self.save()
        return new

    def active(self, wall: float) -> List[Silence]:
        return [s for s in self.silences if s.active(wall)]

    def prune(self, wall: float) -> None:
        self.silences = [s for s in self.silences if wall - s.ends_at < KEEP_ENDED_SECS]


class SilenceStage(MuteStage):
    """Holds silenced alerts; sends the ones still firing when their silence ends."""

    note = "its silence ended"

    def __init__(self, book: Optional[SilenceBook] = None) -> None:
        super().__init__()
        self.book = book if book is not None else SilenceBook()

    def is_muted(self, alert: Alert, wall: float) -> bool:
        return bool(silenced_by(self.book.silences, alert, wall))

    def changes_at(self, wall: float) -> Optional[float]:
        ends = [s.ends_at for s in self.book.silences if s.ends_at > wall]
        return min(ends) if ends else None


def create(cfg: PipelineConfig) -> SilenceStage:
    return SilenceStage()
