"""``[alerting]`` and ``[alerting.<channel>]`` (SPEC §6, §8).

Secrets (webhook URLs, tokens, passwords) are declared ``secret=True``: they
are redacted in every log line and require a 0600 file when written literally.
A channel is used when ``enabled = true``; :meth:`AlertingConfig.check` reports
an enabled channel that lacks what it needs.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Dict, List

from sysops_agent.schema import Problem, opt

SEVERITIES = ("info", "warn", "critical", "emergency")


@dataclass
class ConsoleChannelConfig:
    enabled: bool = opt(True, help="print alerts to stdout; also used when no channel is enabled")
    min_severity: str = opt("info", choices=SEVERITIES)


@dataclass
class DiscordChannelConfig:
    enabled: bool = opt(False)
    webhook_url: str = opt("", secret=True)
    mention_user_ids: List[str] = opt(factory=list, help="users pinged on critical/emergency")
    mention_role_ids: List[str] = opt(factory=list, help="roles pinged on critical/emergency")
    username: str = opt("SysOps Agent")
    min_severity: str = opt("warn", choices=SEVERITIES)


@dataclass
class SlackChannelConfig:
    enabled: bool = opt(False)
    webhook_url: str = opt("", secret=True)
    mention: str = opt("", help="e.g. <@U12345> or <!subteam^S123>, added on critical/emergency")
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
    smtp_port: int = opt(587, min=1, max=65535)
    security: str = opt("starttls", choices=("starttls", "tls", "none"))
    username: str = opt("")
    password: str = opt("", secret=True)
    from_addr: str = opt("")
    to_addrs: List[str] = opt(factory=list)
    ca_file: str = opt("", help="CA bundle to verify the server; empty = system store")
    min_severity: str = opt("warn", choices=SEVERITIES)


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
    address: str = opt("", help="empty = local /dev/log; host:port (UDP) or a unix socket path")
    facility: str = opt("daemon")
    min_severity: str = opt("warn", choices=SEVERITIES)


@dataclass
class AlertmanagerChannelConfig:
    enabled: bool = opt(False)
    url: str = opt("", help="base URL, e.g. http://127.0.0.1:9093")
    resend_interval_secs: float = opt(60.0, min=10, max=600)
    min_severity: str = opt("warn", choices=SEVERITIES)


@dataclass
class AlertingConfig:
    dedup_window_secs: float = opt(600.0, min=0)
    group_window_secs: float = opt(5.0, min=0, max=300)
    rate_limit_per_minute: float = opt(10.0, min=0.1)
    rate_limit_burst: int = opt(5, min=1)
    retries: int = opt(3, min=0, max=10)
    send_timeout_secs: float = opt(10.0, min=1, max=120)
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

    def check(self) -> List[Problem]:
        """Enabled channels that lack a required setting."""
        required = {
            "discord": ["webhook_url"],
            "slack": ["webhook_url"],
            "telegram": ["bot_token", "chat_id"],
            "email": ["smtp_host", "from_addr", "to_addrs"],
            "webhook": ["url"],
            "alertmanager": ["url"],
        }
        problems = []
        for name, keys in required.items():
            section = getattr(self, name)
            if not section.enabled:
                continue
            for key in keys:
                if not getattr(section, key):
                    problems.append(
                        Problem(f"alerting.{name}.{key}", "required when the channel is enabled")
                    )
        return problems
