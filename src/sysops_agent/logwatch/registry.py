"""The log sources, one :class:`~sysops_agent.plugins.Plugin` line each, in start order.

A new source is its module (its frozen config class, its code and
``create(section, context)``) and one line here: its keys become the
``[collector.log.<name>]`` table, derived from this tuple (:data:`LogWatchConfig`),
and the watcher hands the source that section. The three built-in sources keep
their keys in ``[collector.log]`` itself (``kmsg``, ``journal``, ``files``:
unchanged since the first release), so their config class is :class:`LogConfig`
and they are handed the whole table.
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Tuple

from sysops_agent.logwatch import journal, kmsg, tail
from sysops_agent.logwatch.config import LogConfig
from sysops_agent.logwatch.source import LogSource, SourceContext
from sysops_agent.plugins import Plugin, sections_class

SourceFactory = Callable[[Any, SourceContext], Optional[LogSource]]

SOURCES: Tuple[Plugin[SourceFactory], ...] = (
    Plugin("kmsg", LogConfig, kmsg.create),
    Plugin("journal", LogConfig, journal.create),
    Plugin("files", LogConfig, tail.create),
)


#: ``[collector.log]``: the watcher's own keys, then one section per source with keys of its own
LogWatchConfig: Any = sections_class(
    "LogWatchConfig",
    [p for p in SOURCES if p.config_cls is not LogConfig],
    base=LogConfig,
    module=__name__,
)


def section_for(plugin: Plugin[SourceFactory], config: Any) -> Any:
    """What ``plugin.create`` is given: its own section, or the whole table for the built-ins."""
    return config if plugin.config_cls is LogConfig else getattr(config, plugin.name)
