"""``[alerting]`` and ``[alerting.<channel>]`` (SPEC §6, §8).

Secrets (webhook URLs, tokens, passwords) are declared ``secret=True``: they
are redacted in every log line and require a 0600 file when written literally.
A channel is used when ``enabled = true``; :meth:`AlertingConfig.check` reports
an enabled channel that lacks what it needs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from typing import Dict, List, Optional, Tuple

from sysops_agent.schema import Problem, opt

SEVERITIES = ("info", "warn", "critical", "emergency")

#: syslog facility names and codes (RFC 5424 §6.2.1)
SYSLOG_FACILITY_CODES: Dict[str, int] = {
    "kern": 0,
    "user": 1,
    "mail": 2,
    "daemon": 3,
    "auth": 4,
    "syslog": 5,
    "lpr": 6,
    "news": 7,
    "uucp": 8,
    "cron": 9,
    "authpriv": 10,
    "ftp": 11,
    **{f"local{i}": 16 + i for i in range(8)},
}
SYSLOG_FACILITIES = tuple(SYSLOG_FACILITY_CODES)

_MAIL_ADDRESS = re.compile(r"^[^\s@<>(),;:\\\"\[\]]+@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$")


def check_mail_address(value: str) -> Optional[str]:
    """A bare ``user@domain`` address (no display name, no spaces or control characters)."""
    if value and not _MAIL_ADDRESS.match(value):
        return f"{value!r} is not an e-mail address like alerts@example.com"
    return None


def split_syslog_address(value: str) -> Tuple[str, int]:
    """``host:port``, ``[v6]:port`` or ``host`` (port 514) -> (host, port); raises ValueError."""
    host, port = value, "514"
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            raise ValueError("missing ']' after the IPv6 address")
        host, rest = value[1:end], value[end + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise ValueError("expected ':port' after ']'")
            port = rest[1:]
    elif value.count(":") == 1:
        host, port = value.split(":")
    if not host or any(c.isspace() for c in host):
        raise ValueError("empty host or host with spaces")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"port {port!r} is not a number from 1 to 65535")
    return host, int(port)


def check_syslog_address(value: str) -> Optional[str]:
    if not value or value.startswith("/"):
        return None
    try:
        split_syslog_address(value)
    except ValueError as e:
        return f"{value!r} is neither a unix socket path (/dev/log) nor host:port ({e})"
    return None


def check_discord_id(value: str) -> Optional[str]:
    if not re.fullmatch(r"\d{1,25}", value.strip()):
        return f"{value!r} is not a Discord id (digits only, e.g. 123456789012345678)"
    return None


def check_discord_username(value: str) -> Optional[str]:
    # Discord rejects the whole message (HTTP 400) for these names
    lowered = value.lower()
    if not value.strip() or len(value) > 80 or "discord" in lowered or "clyde" in lowered:
        return f"{value!r}: Discord needs 1-80 characters without 'discord' or 'clyde'"
    return None


def check_slack_mention(value: str) -> Optional[str]:
    if value and not re.fullmatch(r"(\s*<[!@#][^<>\s]+>)+\s*", value):
        return (
            f"{value!r} is not Slack mention syntax: use <!here>, <!channel>, <@U12345> "
            "or <!subteam^S12345>"
        )
    return None


def _is_loopback(host: str) -> bool:
    return host in ("localhost", "::1") or host.startswith("127.")


@dataclass
class ConsoleChannelConfig:
    enabled: bool = opt(True, help="print alerts to stdout; also used when no channel is enabled")
    min_severity: str = opt("info", choices=SEVERITIES)


@dataclass
class DiscordChannelConfig:
    enabled: bool = opt(False)
    webhook_url: str = opt("", secret=True)
    mention_user_ids: List[str] = opt(
        factory=list, validate=check_discord_id, help="users pinged on critical/emergency"
    )
    mention_role_ids: List[str] = opt(
        factory=list, validate=check_discord_id, help="roles pinged on critical/emergency"
    )
    username: str = opt("SysOps Agent", validate=check_discord_username)
    min_severity: str = opt("warn", choices=SEVERITIES)


@dataclass
class SlackChannelConfig:
    enabled: bool = opt(False)
    webhook_url: str = opt("", secret=True)
    mention: str = opt(
        "",
        validate=check_slack_mention,
        help="e.g. <@U12345> or <!subteam^S123>, added on critical/emergency",
    )
    min_severity: str = opt("warn", choices=SEVERITIES)


@dataclass
class TelegramChannelConfig:
    enabled: bool = opt(False)
    bot_token: str = opt("", secret=True)
    chat_id: str = opt("")
    api_base_url: str = opt("https://api.telegram.org")
    min_severity: str = opt("warn", choices=SEVERITIES)


@dataclass
class EmailChannelConfig:
    enabled: bool = opt(False)
    smtp_host: str = opt("")
    smtp_port: int = opt(587, min=1, max=65535, help="587 with starttls, 465 with tls, 25 for none")
    security: str = opt(
        "starttls",
        choices=("starttls", "tls", "none"),
        help="starttls (required, not opportunistic), tls (implicit, port 465) or none",
    )
    username: str = opt("", help="AUTH after TLS when set")
    password: str = opt("", secret=True)
    from_addr: str = opt("", validate=check_mail_address)
    from_name: str = opt("SysOps Agent", help="display name; the alert's host is appended")
    to_addrs: List[str] = opt(factory=list, validate=check_mail_address)
    subject_prefix: str = opt("[sysops]")
    ca_file: str = opt("", help="CA bundle to verify the server; empty = system store")
    min_severity: str = opt("warn", choices=SEVERITIES)

    def problems(self, path: str) -> List[Problem]:
        """Settings that are valid alone but wrong together."""
        out: List[Problem] = []
        if self.password and not self.username:
            out.append(Problem(f"{path}.username", "required when a password is set"))
        if self.username and self.security == "none" and not _is_loopback(self.smtp_host):
            out.append(
                Problem(
                    f"{path}.security",
                    f"'none' would send the password in clear text to {self.smtp_host}; "
                    "use starttls or tls",
                )
            )
        return out


@dataclass
class WebhookChannelConfig:
    enabled: bool = opt(False)
    url: str = opt("", secret=True)
    method: str = opt("POST", choices=("POST", "PUT", "PATCH"))
    headers: Dict[str, str] = opt(factory=dict, secret=True, help="values may use ${ENV}")
    min_severity: str = opt("warn", choices=SEVERITIES)


@dataclass
class SyslogChannelConfig:
    enabled: bool = opt(False)
    address: str = opt(
        "",
        validate=check_syslog_address,
        help="empty = local /dev/log; a unix socket path, or host:port (UDP, port default 514)",
    )
    facility: str = opt("daemon", choices=SYSLOG_FACILITIES)
    format: str = opt(
        "rfc3164",
        choices=("rfc3164", "rfc5424"),
        help="rfc3164 (classic BSD line, what /dev/log expects) or rfc5424",
    )
    max_length: int = opt(2048, min=480, max=8192, help="bytes per datagram, longer text is cut")
    min_severity: str = opt("warn", choices=SEVERITIES)


@dataclass
class AlertmanagerChannelConfig:
    enabled: bool = opt(False)
    url: str = opt("", help="base URL, e.g. http://127.0.0.1:9093")
    resend_interval_secs: float = opt(
        60.0, min=10, max=600, help="firing alerts are re-sent this often until resolved"
    )
    resolved_resend_secs: float = opt(
        300.0, min=0, max=3600, help="resolved alerts are re-sent on each tick for this long"
    )
    generator_url: str = opt("", help="optional link sent as generatorURL (e.g. a dashboard)")
    min_severity: str = opt("warn", choices=SEVERITIES)


@dataclass
class AlertingConfig:
    dedup_window_secs: float = opt(600.0, min=0)
    group_window_secs: float = opt(5.0, min=0, max=300)
    rate_limit_per_minute: float = opt(10.0, min=0.1)
    rate_limit_burst: int = opt(5, min=1)
    retries: int = opt(3, min=0, max=10)
    retry_base_delay_secs: float = opt(
        1.0, min=0, max=60, help="first retry waits this long, then 2x, 4x (unless Retry-After)"
    )
    retry_max_delay_secs: float = opt(60.0, min=0, max=600, help="cap of one backoff wait")
    send_timeout_secs: float = opt(10.0, min=1, max=120)
    warn_channels: List[str] = opt(
        factory=list, help="channels that get warn alerts; empty = every enabled channel"
    )
    console: ConsoleChannelConfig = opt(factory=ConsoleChannelConfig)
    discord: DiscordChannelConfig = opt(factory=DiscordChannelConfig)
    slack: SlackChannelConfig = opt(factory=SlackChannelConfig)
    telegram: TelegramChannelConfig = opt(factory=TelegramChannelConfig)
    email: EmailChannelConfig = opt(factory=EmailChannelConfig)
    webhook: WebhookChannelConfig = opt(factory=WebhookChannelConfig)
    syslog: SyslogChannelConfig = opt(factory=SyslogChannelConfig)
    alertmanager: AlertmanagerChannelConfig = opt(factory=AlertmanagerChannelConfig)

    def channel_names(self) -> List[str]:
        return [f.name for f in fields(self) if hasattr(getattr(self, f.name), "enabled")]

    def missing_settings(self, name: str) -> List[str]:
        """Key paths that channel ``name`` needs but are empty (whether enabled or not)."""
        section = getattr(self, name)
        return [
            f"alerting.{name}.{key}" for key in _REQUIRED.get(name, []) if not getattr(section, key)
        ]

    def check(self) -> List[Problem]:
        """Enabled channels that lack a required setting, or whose settings contradict."""
        problems = []
        for name in _REQUIRED:
            if not getattr(self, name).enabled:
                continue
            for key_path in self.missing_settings(name):
                problems.append(Problem(key_path, "required when the channel is enabled"))
        if self.email.enabled:
            problems.extend(self.email.problems("alerting.email"))
        known = self.channel_names()
        for name in self.warn_channels:
            if name not in known:
                problems.append(
                    Problem(
                        "alerting.warn_channels",
                        f"unknown channel {name!r} (expected one of: {', '.join(known)})",
                    )
                )
        return problems


#: settings each channel cannot work without
_REQUIRED: Dict[str, List[str]] = {
    "discord": ["webhook_url"],
    "slack": ["webhook_url"],
    "telegram": ["bot_token", "chat_id"],
    "email": ["smtp_host", "from_addr", "to_addrs"],
    "webhook": ["url"],
    "alertmanager": ["url"],
}
