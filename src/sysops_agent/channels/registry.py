"""The channel registry: one :class:`~sysops_agent.plugins.Plugin` line per channel.

Each channel module holds its config class (the ``[alerting.<name>]``
section) and ``create(cfg, ctx)``; :data:`CHANNELS` lists them in config
order. :data:`AlertingConfig` — the whole ``[alerting]`` table — is derived
from it plus the pipeline's own keys (:class:`PipelineConfig`), so the schema,
``check-config`` and the "enabled" logic cannot disagree with what is built.
Adding a channel is its module plus one line in :data:`CHANNELS`.

Importing this module imports every channel module, but none of them imports
the HTTP client, aiosmtplib or ssl before a channel is created or sends
(``tests/unit/test_import_budget.py``).

:func:`build_channels` builds every enabled channel (the console when none
is), :func:`build_channel` one by name (``test-alert``), and
:func:`build_alert_manager` the daemon's pipeline with them. The channels
layer sits above ``alerting``: this module imports
:mod:`sysops_agent.alerting.config` (the pipeline's keys of ``[alerting]``) and
:mod:`sysops_agent.alerting.manager` (to wire the channels into it) and
:mod:`sysops_agent.alerting.outbox` (the manager's outbox in the data directory).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, List, Mapping, Optional, Tuple

from sysops_agent.alerting.config import PipelineConfig
from sysops_agent.channels import (
    alertmanager,
    console,
    discord,
    email,
    slack,
    syslog,
    telegram,
    webhook,
)
from sysops_agent.channels.base import REQUIRED, Channel, ChannelContext, ChannelFactory
from sysops_agent.clock import Clock
from sysops_agent.model import Severity
from sysops_agent.plugins import Plugin, fields_of, is_enabled, project, sections_class
from sysops_agent.redact import Redactor

if TYPE_CHECKING:
    from sysops_agent.alerting.manager import AlertManager

log = logging.getLogger("sysops_agent.channels")

CHANNELS: Tuple[Plugin[ChannelFactory], ...] = (
    Plugin("console", console.ConsoleChannelConfig, console.create),
    Plugin("discord", discord.DiscordChannelConfig, discord.create),
    Plugin("slack", slack.SlackChannelConfig, slack.create),
    Plugin("telegram", telegram.TelegramChannelConfig, telegram.create),
    Plugin("email", email.EmailChannelConfig, email.create),
    Plugin("webhook", webhook.WebhookChannelConfig, webhook.create),
    Plugin("syslog", syslog.SyslogChannelConfig, syslog.create),
    Plugin("alertmanager", alertmanager.AlertmanagerChannelConfig, alertmanager.create),
)

if TYPE_CHECKING:  # a class made at run time: mypy sees its sections as Any
    AlertingConfig = Any
else:
    AlertingConfig = sections_class(
        "AlertingConfig",
        CHANNELS,
        extra=fields_of(PipelineConfig),
        doc="``[alerting]``: the pipeline's keys and one ``[alerting.<channel>]`` per channel.",
        module=__name__,
    )

#: used for a channel that has no ``[alerting.<name>]`` section of its own
DEFAULT_MIN_SEVERITY = Severity.WARN


def _plugin(name: str) -> Plugin[ChannelFactory]:
    for p in CHANNELS:
        if p.name == name:
            return p
    known = ", ".join(sorted(p.name for p in CHANNELS))
    raise ValueError(f"unknown channel {name!r} (known: {known})")


def channel_names() -> List[str]:
    return [p.name for p in CHANNELS]


def enabled_channel_names(alerting: Any) -> List[str]:
    """Names of the enabled channels, in config order (``console`` when none is)."""
    names = [p.name for p in CHANNELS if is_enabled(getattr(alerting, p.name))]
    return names or ["console"]


def missing_settings(name: str, alerting: Any) -> List[str]:
    """Key paths that channel ``name`` needs but are empty (whether enabled or not)."""
    section = getattr(alerting, _plugin(name).name)
    check = getattr(section, "problems", None)
    if check is None:
        return []
    return [p.path for p in check(f"alerting.{name}") if p.message == REQUIRED]


def context(
    alerting: Any, redactor: Redactor, clock: Clock, labels: Optional[Mapping[str, str]] = None
) -> ChannelContext:
    timeout = project(alerting, PipelineConfig).send_timeout_secs
    return ChannelContext(redactor, clock, timeout, dict(labels or {}))


def build_channel(
    name: str,
    alerting: Any,
    redactor: Redactor,
    clock: Clock,
    labels: Optional[Mapping[str, str]] = None,
) -> Channel:
    """Build channel ``name`` (enabled or not); ValueError for an unknown name.

    ``labels``: the static ``[agent] labels``, for channels that carry labels.
    """
    plugin = _plugin(name)
    ctx = context(alerting, redactor, clock, labels)
    return plugin.create(getattr(alerting, plugin.name), ctx)


def build_channels(
    alerting: Any, redactor: Redactor, clock: Clock, labels: Optional[Mapping[str, str]] = None
) -> List[Channel]:
    """Every enabled channel; the console when none is enabled (or none could be built)."""
    channels: List[Channel] = []
    for name in enabled_channel_names(alerting):
        try:
            channels.append(build_channel(name, alerting, redactor, clock, labels))
        except Exception as exc:  # one bad channel must not stop the agent
            log.error("channel %s could not be set up: %s", name, redactor(str(exc)))
    if not channels:
        channels.append(build_channel("console", alerting, redactor, clock))
    return channels


def channel_min_severity(name: str, alerting: Any) -> Severity:
    """The ``min_severity`` of channel ``name`` (``DEFAULT_MIN_SEVERITY`` without a section)."""
    section = getattr(alerting, name, None)
    text = getattr(section, "min_severity", None)
    if not isinstance(text, str):
        return DEFAULT_MIN_SEVERITY
    try:
        return Severity.parse(text)
    except ValueError:
        return DEFAULT_MIN_SEVERITY


def build_alert_manager(
    alerting: Any,
    clock: Clock,
    redactor: Redactor,
    labels: Optional[Mapping[str, str]] = None,
    data_dir: str = "",
) -> AlertManager:
    """The daemon's alert manager with every enabled channel (console when none).

    With ``data_dir`` its outbox is ``<data_dir>/outbox.db`` (durable); without, in memory.
    ``labels`` are the static ``[agent] labels`` the channels add to every alert.
    """
    from sysops_agent.alerting.manager import AlertManager
    from sysops_agent.alerting.outbox import Outbox

    cfg = project(alerting, PipelineConfig)
    outbox = None
    if data_dir:
        outbox = Outbox.open(
            data_dir,
            max_count=cfg.outbox_max_notifications,
            max_bytes=cfg.outbox_max_bytes,
            max_age_secs=cfg.outbox_max_age_secs,
        )
    channels = build_channels(alerting, redactor, clock, labels)
    return AlertManager(cfg, channels, clock, redactor=redactor, outbox=outbox)
