"""The :class:`Collector` protocol and what every collector is built from."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, List, Protocol

from sysops_agent.model import Sample
from sysops_agent.procfs import ProcFS
from sysops_agent.schema import opt


@dataclass
class CollectorStats:
    """Counters a collector keeps about itself (exposed as agent metrics and in logs)."""

    #: processes we were not allowed to read (no CAP_DAC_READ_SEARCH)
    permission_denied: int = 0
    #: processes that vanished between listing and reading
    vanished: int = 0
    #: things skipped for another reason, by reason, e.g. {"statvfs timeout /mnt/nfs": 1}
    skipped: dict[str, int] = field(default_factory=dict)


class Collector(Protocol):
    """Reads one part of the kernel's state and returns samples.

    ``collect`` is synchronous (procfs reads are cheap, but may block on a hung
    mount): the scheduler runs it in a worker thread with a timeout. It reads
    each file once per call and must not raise for a vanished process.
    Counter-based collectors keep their previous reading between calls and
    return no rate on the first call.

    A collector that reads nothing but the kernel's own counters (``/proc/stat``,
    ``/proc/meminfo``: files no filesystem, driver or other process can hold up)
    may say so with a class attribute ``may_block = False``; the scheduler then
    runs it with the others that do, in one worker job. Without it a collector
    gets a worker thread of its own, so a hang holds up nothing but itself.
    """

    name: str
    interval: float
    stats: CollectorStats

    def collect(self, now: float) -> List[Sample]: ...


#: builds a collector from the procfs root and the collector's own ``[collector.<name>]`` section
CollectorFactory = Callable[[ProcFS, Any], Collector]


def interval_opt(default: float) -> float:
    """The ``interval_secs`` field every collector's section has."""
    return opt(default, min=1, max=3600, help="seconds between collections")  # type: ignore[no-any-return]
