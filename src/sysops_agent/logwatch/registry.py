"""The log sources, one :class:`~sysops_agent.plugins.Plugin` line each, in start order.

A new source is its module (code + ``create(config, context)``) and one line here.
The three built-in sources keep their keys in ``[collector.log]`` itself (``kmsg``,
``journal``, ``files``: unchanged since the first release), so their config class is
:class:`LogConfig`; a new source with keys of its own would bring its own config class.
"""

from __future__ import annotations

from typing import Callable, Optional, Tuple

from sysops_agent.logwatch import journal, kmsg, tail
from sysops_agent.logwatch.config import LogConfig
from sysops_agent.logwatch.source import LogSource, SourceContext
from sysops_agent.plugins import Plugin

SourceFactory = Callable[[LogConfig, SourceContext], Optional[LogSource]]

SOURCES: Tuple[Plugin[SourceFactory], ...] = (
    Plugin("kmsg", LogConfig, kmsg.create),
    Plugin("journal", LogConfig, journal.create),
    Plugin("files", LogConfig, tail.create),
)
