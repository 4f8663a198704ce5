"""What a log source is: the :class:`LogSource` protocol and what its factory is given.

A log source is one module (``kmsg.py``, ``journal.py``, ``tail.py``) holding its
code and a factory ``create(config, context) -> Optional[LogSource]`` (None when
the configuration leaves it off), plus one :class:`~sysops_agent.plugins.Plugin`
line in :mod:`sysops_agent.logwatch.registry`. The watcher knows no source by name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, List, Protocol

from sysops_agent.clock import Clock
from sysops_agent.logwatch.patterns import Hit, Matcher

#: what a source calls for each hit: (source name or path, hit, labels from the record)
Deliver = Callable[[str, Hit, Dict[str, str]], None]


class LogSource(Protocol):
    """One source of log records, run as its own task by the watcher."""

    #: the ``source`` label of its alerts (a file source labels each file with its path)
    name: str

    async def run(self) -> None:
        """Read until cancelled (or return when the source is off); raising restarts it."""

    def save_state(self) -> None:
        """Save the read position (called periodically and at stop)."""

    def close(self) -> None:
        """Release files and processes (synchronous; also after a failed :meth:`run`)."""


@dataclass(frozen=True)
class SourceContext:
    """What the watcher gives every source factory besides ``[collector.log]``."""

    data_dir: str
    matcher: Matcher
    deliver: Deliver
    clock: Clock
    #: the distro's syslog files, when ``files`` is empty
    syslog_paths: List[str]
    #: whether syslog files' ``kernel`` lines count (only while kmsg is not reading)
    files_serve_kernel: Callable[[], bool]
    kmsg_path: str = "/dev/kmsg"
    boot_id_path: str = "/proc/sys/kernel/random/boot_id"
    journalctl: str = "journalctl"
    journald_socket: str = "/run/systemd/journal/socket"
    journal_backoff: float = 1.0
