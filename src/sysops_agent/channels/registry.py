"""The channel registry: name -> factory, written out explicitly (no scanning).

A factory takes ``(config, redactor, clock)`` and returns a :class:`Channel`
built from ``config.alerting.<name>``. Adding a channel is one module plus one
line in :data:`CHANNELS`. :func:`build_channels` builds every enabled channel
(the console when none is), :func:`build_channel` one by name (``test-alert``).
"""

from __future__ import annotations

import logging
from typing import Callable, Dict, List

from sysops_agent.alerting.route import channel_min_severity as _min_severity
from sysops_agent.channels.base import Channel
from sysops_agent.channels.console import ConsoleChannel
from sysops_agent.clock import Clock
from sysops_agent.config import Config
from sysops_agent.model import Severity
from sysops_agent.redact import Redactor

log = logging.getLogger("sysops_agent.channels")

ChannelFactory = Callable[[Config, Redactor, Clock], Channel]


# Each factory imports its channel module when called: a host that only prints
# to the console does not pay for httpx or aiosmtplib (about 5 MiB of RSS).


def _console(config: Config, redactor: Redactor, clock: Clock) -> Channel:
    return ConsoleChannel()


def _discord(config: Config, redactor: Redactor, clock: Clock) -> Channel:
    from sysops_agent.channels.discord import DiscordChannel

    a = config.alerting
    return DiscordChannel(a.discord, redactor=redactor, timeout=a.send_timeout_secs, clock=clock)


def _slack(config: Config, redactor: Redactor, clock: Clock) -> Channel:
    from sysops_agent.channels.slack import SlackChannel

    a = config.alerting
    return SlackChannel(a.slack, redactor=redactor, timeout=a.send_timeout_secs, clock=clock)


def _telegram(config: Config, redactor: Redactor, clock: Clock) -> Channel:
    from sysops_agent.channels.telegram import TelegramChannel

    a = config.alerting
    return TelegramChannel(a.telegram, redactor=redactor, timeout=a.send_timeout_secs, clock=clock)


def _webhook(config: Config, redactor: Redactor, clock: Clock) -> Channel:
    from sysops_agent.channels.webhook import WebhookChannel

    a = config.alerting
    return WebhookChannel(a.webhook, redactor=redactor, timeout=a.send_timeout_secs, clock=clock)


def _email(config: Config, redactor: Redactor, clock: Clock) -> Channel:
    from sysops_agent.channels import email

    return email.create(config, redactor, clock)


def _syslog(config: Config, redactor: Redactor, clock: Clock) -> Channel:
    from sysops_agent.channels import syslog

    return syslog.create(config, redactor, clock)


def _alertmanager(config: Config, redactor: Redactor, clock: Clock) -> Channel:
    from sysops_agent.channels import alertmanager

    return alertmanager.create(config, redactor, clock)


CHANNELS: Dict[str, ChannelFactory] = {
    "console": _console,
    "discord": _discord,
    "slack": _slack,
    "telegram": _telegram,
    "webhook": _webhook,
    "email": _email,
    "syslog": _syslog,
    "alertmanager": _alertmanager,
}


def enabled_channel_names(config: Config) -> List[str]:
    """Names of the enabled channels, in config order (``console`` when none is)."""
    names = [n for n in config.alerting.channel_names() if getattr(config.alerting, n).enabled]
    return names or ["console"]


def build_channel(name: str, config: Config, redactor: Redactor, clock: Clock) -> Channel:
    """Build channel ``name`` (enabled or not); ValueError for an unknown name."""
    factory = CHANNELS.get(name)
    if factory is None:
        known = ", ".join(sorted(CHANNELS))
        raise ValueError(f"unknown channel {name!r} (known: {known})")
    return factory(config, redactor, clock)


def build_channels(config: Config, redactor: Redactor, clock: Clock) -> List[Channel]:
    """Every enabled channel; the console when none is enabled (or none could be built)."""
    channels: List[Channel] = []
    for name in enabled_channel_names(config):
        if name not in CHANNELS:
            log.error("channel %s is enabled but this build has no such channel; skipped", name)
            continue
        try:
            channels.append(build_channel(name, config, redactor, clock))
        except Exception as exc:  # one bad channel must not stop the agent
            log.error("channel %s could not be set up: %s", name, redactor(str(exc)))
    if not channels:
        channels.append(_console(config, redactor, clock))
    return channels


def channel_min_severity(name: str, config: Config) -> Severity:
    return _min_severity(name, config.alerting)
