"""The e-mail channel: one message per alert group over SMTP (``aiosmtplib``).

Transport security follows ``security``: ``starttls`` (submission, port 587;
STARTTLS is *required*, not opportunistic, so a stripped STARTTLS offer fails
instead of sending in clear text), ``tls`` (implicit TLS, port 465) or
``none`` (a local relay). AUTH happens after TLS when a username is set.
The server certificate is verified against ``ca_file`` or the system store.

Every message has a plain-text and an HTML part. Alert text reaches headers
only through :func:`header_text`, which removes CR, LF and every other control
character, so a hostile hostname, process name or log line cannot start a new
header (``Bcc:``) or end the header block; the ``email.policy.SMTP`` policy then
encodes non-ASCII text (RFC 2047) and folds long lines. In the HTML part every
piece of alert text is escaped.

Failures become :class:`ChannelError`: SMTP 4xx replies and network errors are
retryable, 5xx replies (authentication refused, recipient unknown) and TLS or
protocol problems are final. The password is never part of a message.

``aiosmtplib`` and ``ssl`` are imported when the channel is created, the
``email`` package when a message is built, not with this module: the registry imports it for
:class:`EmailChannelConfig`, and a host without e-mail must not pay for them
(``tests/unit/test_import_budget.py``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, List, Optional, Sequence, Tuple

from sysops_agent.alerting.text import value_and_threshold
from sysops_agent.channels.base import (
    SEVERITIES,
    ChannelContext,
    ChannelError,
    missing,
    severity_of,
)
from sysops_agent.clock import Clock, SystemClock
from sysops_agent.model import Alert, AlertState, Severity, iso_utc
from sysops_agent.redact import Redactor
from sysops_agent.schema import Problem, opt
from sysops_agent.units import format_duration, format_value

if TYPE_CHECKING:
    import ssl
    from email.message import EmailMessage

#: Subjects longer than this are cut (RFC 5322 allows more, but mail clients show ~80).
SUBJECT_MAX = 200
#: A display name longer than this is cut.
FROM_NAME_MAX = 100
#: Alert text longer than this is cut in the body (a log line can be huge).
TEXT_MAX = 4000
#: At most this many alerts are written out in full in one message; the rest are counted.
DETAIL_MAX = 100

_SEVERITY_COLOURS = {
    Severity.INFO: "#3b82f6",
    Severity.WARN: "#f59e0b",
    Severity.CRITICAL: "#dc2626",
    Severity.EMERGENCY: "#7f1d1d",
}
_RESOLVED_COLOUR = "#16a34a"

_MAIL_ADDRESS = re.compile(r"^[^\s@<>(),;:\\\"\[\]]+@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$")


def check_mail_address(value: str) -> Optional[str]:
    """A bare ``user@domain`` address (no display name, no spaces or control characters)."""
    if value and not _MAIL_ADDRESS.match(value):
        return f"{value!r} is not an e-mail address like alerts@example.com"
    return None


def _is_loopback(host: str) -> bool:
    return host in ("localhost", "::1") or host.startswith("127.")


@dataclass(frozen=True)
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
        """What the channel needs, and settings that are valid alone but wrong together."""
        out = missing(self, path, ["smtp_host", "from_addr", "to_addrs"])
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


def one_line(text: str, limit: int) -> str:
    """``text`` with every control character replaced by a space, runs collapsed, cut to ``limit``."""
    import unicodedata

    # Cc: C0/C1 controls incl. CR, LF, TAB, NEL; Zl/Zp: U+2028/U+2029 line and
    # paragraph separators, which some mail software also treats as line breaks.
    control = ("Cc", "Zl", "Zp")
    cleaned = "".join(" " if unicodedata.category(ch) in control else ch for ch in text)
    cleaned = " ".join(cleaned.split())
    if len(cleaned) > limit:
        cleaned = cleaned[: limit - 1].rstrip() + "…"
    return cleaned


def header_text(text: str, limit: int = SUBJECT_MAX) -> str:
    """Alert text made safe for a header: one line, no control characters, bounded."""
    return one_line(text, limit)


def _state_word(alert: Alert) -> str:
    return "RESOLVED" if alert.state is AlertState.RESOLVED else alert.severity.label.upper()


def _labels(alert: Alert) -> str:
    return ", ".join(f"{k}={v}" for k, v in alert.labels)


def subject_for(alerts: Sequence[Alert], prefix: str = "[sysops]") -> str:
    """``[sysops] CRITICAL web-01: cpu_usage_percent …`` or ``[sysops] CRITICAL web-01: 3 alerts``."""
    worst = max(alerts, key=lambda a: (a.state is AlertState.FIRING, a.severity))
    hosts = sorted({a.hostname for a in alerts})
    host = hosts[0] if len(hosts) == 1 else f"{len(hosts)} hosts"
    if len(alerts) == 1:
        a = alerts[0]
        value = format_value(a.metric, a.value)
        text = f"{prefix} {_state_word(a)} {host}: {a.metric} {value} - {a.message}"
    else:
        text = f"{prefix} {_state_word(worst)} {host}: {len(alerts)} alerts"
    return header_text(text.strip())


def _fields(alert: Alert) -> List[Tuple[str, str]]:
    rows = [
        ("Host", alert.hostname),
        ("Metric", alert.metric),
        (
            "Value",
            value_and_threshold(alert),
        ),
        ("Message", alert.message),
        ("Labels", _labels(alert) or "-"),
        ("Duration", format_duration(alert.duration)),
        ("Analyzer", alert.analyzer),
        ("Time", iso_utc(alert.timestamp)),
        ("Alert id", alert.id),
    ]
    return [(name, one_line(value, TEXT_MAX)) for name, value in rows]


def text_body(alerts: Sequence[Alert]) -> str:
    lines: List[str] = []
    for alert in alerts[:DETAIL_MAX]:
        head = one_line(f"[{_state_word(alert)}] {alert.metric} on {alert.hostname}", TEXT_MAX)
        lines.append(head)
        for name, value in _fields(alert):
            lines.append(f"  {name + ':':<10}{value}")
        lines.append("")
    if len(alerts) > DETAIL_MAX:
        lines.append(f"…and {len(alerts) - DETAIL_MAX} more alerts.")
        lines.append("")
    lines.append("-- ")
    lines.append("Sent by sysops-agent.")
    return "\n".join(lines) + "\n"


def html_body(alerts: Sequence[Alert]) -> str:
    import html

    e = html.escape
    parts = ['<!DOCTYPE html>\n<html><body style="font-family: sans-serif">']
    for alert in alerts[:DETAIL_MAX]:
        colour = (
            _RESOLVED_COLOUR
            if alert.state is AlertState.RESOLVED
            else _SEVERITY_COLOURS[alert.severity]
        )
        title = one_line(f"{_state_word(alert)} {alert.metric} on {alert.hostname}", TEXT_MAX)
        parts.append(
            f'<h3 style="border-left: 6px solid {colour}; padding-left: 8px">{e(title)}</h3>'
        )
        parts.append('<table cellpadding="3" style="border-collapse: collapse">')
        for name, value in _fields(alert):
            parts.append(f'<tr><th align="left">{e(name)}</th><td>{e(value)}</td></tr>')
        parts.append("</table>")
    if len(alerts) > DETAIL_MAX:
        parts.append(f"<p>…and {len(alerts) - DETAIL_MAX} more alerts.</p>")
    parts.append("<p><small>Sent by sysops-agent.</small></p></body></html>")
    return "\n".join(parts) + "\n"


def build_message(
    alerts: Sequence[Alert],
    cfg: EmailChannelConfig,
    now: float,
) -> EmailMessage:
    """The complete message for ``alerts`` (one or a group), ready for SMTP."""
    from email.headerregistry import Address
    from email.message import EmailMessage
    from email.policy import SMTP
    from email.utils import format_datetime, make_msgid

    if not alerts:
        raise ValueError("no alerts to send")
    msg = EmailMessage(policy=SMTP)
    hosts = sorted({a.hostname for a in alerts})
    display = cfg.from_name
    if len(hosts) == 1:
        display = f"{display} ({hosts[0]})"
    domain = cfg.from_addr.rpartition("@")[2] or "localhost"
    msg["Subject"] = subject_for(alerts, cfg.subject_prefix)
    msg["From"] = Address(display_name=header_text(display, FROM_NAME_MAX), addr_spec=cfg.from_addr)
    msg["To"] = [Address(addr_spec=addr) for addr in cfg.to_addrs]
    msg["Date"] = format_datetime(datetime.fromtimestamp(now, tz=timezone.utc))
    # make_msgid without a domain asks DNS for the FQDN, which may block.
    msg["Message-ID"] = make_msgid(domain=domain)
    # RFC 3834: tells vacation responders and ticket systems not to answer.
    msg["Auto-Submitted"] = "auto-generated"
    worst = max(a.severity for a in alerts)
    msg["X-SysOps-Severity"] = worst.label
    msg.set_content(text_body(alerts), subtype="plain", charset="utf-8", cte="quoted-printable")
    msg.add_alternative(html_body(alerts), subtype="html", charset="utf-8", cte="quoted-printable")
    return msg


def _retryable_code(code: int) -> bool:
    """SMTP reply classes: 4xx transient (try later), 5xx permanent (RFC 5321 §4.2.1)."""
    return 400 <= code < 500


class EmailChannel:
    name = "email"
    supports_batch = True
    rate_limited = True

    def __init__(
        self,
        cfg: EmailChannelConfig,
        *,
        redactor: Optional[Redactor] = None,
        clock: Optional[Clock] = None,
        timeout: float = 10.0,
    ) -> None:
        # the channel is being set up (start-up): load the SMTP and TLS stack now
        import ssl  # noqa: F401

        import aiosmtplib  # noqa: F401

        self._cfg = cfg
        self._redact = redactor if redactor is not None else Redactor()
        if cfg.password:
            self._redact.add(cfg.password)
        self._clock: Clock = clock or SystemClock()
        self._timeout = timeout
        self.min_severity = severity_of(cfg.min_severity)
        self.disabled: Optional[str] = None
        self._tls_context: Optional[ssl.SSLContext] = None

    def _context(self) -> ssl.SSLContext:
        import ssl

        if self._tls_context is None:
            try:
                self._tls_context = ssl.create_default_context(cafile=self._cfg.ca_file or None)
            except (OSError, ssl.SSLError) as e:
                raise ChannelError(
                    f"cannot load CA file {self._cfg.ca_file}: {e}", retryable=False
                ) from None
        return self._tls_context

    def _where(self) -> str:
        return f"SMTP {self._cfg.smtp_host}:{self._cfg.smtp_port}"

    def _error(self, text: str, *, retryable: bool, status: Optional[int] = None) -> ChannelError:
        return ChannelError(
            self._redact(f"{self._where()}: {text}"), retryable=retryable, status=status
        )

    async def send(self, alerts: Sequence[Alert], *, mention: bool = False) -> None:
        """Long on purpose: one SMTP session (connect, STARTTLS or TLS, AUTH, send) with each
        of its failures mapped to a retryable or final error.
        """
        import ssl

        import aiosmtplib

        cfg = self._cfg
        message = build_message(alerts, cfg, self._clock.time())
        security = cfg.security
        tls_context = self._context() if security in ("starttls", "tls") else None
        try:
            errors, _ = await aiosmtplib.send(
                message,
                hostname=cfg.smtp_host,
                port=cfg.smtp_port,
                sender=cfg.from_addr,
                recipients=list(cfg.to_addrs),
                username=cfg.username or None,
                password=cfg.password if cfg.username else None,
                use_tls=security == "tls",
                start_tls=security == "starttls",
                tls_context=tls_context,
                timeout=self._timeout,
            )
        except aiosmtplib.SMTPRecipientsRefused as e:
            codes = [r.code for r in e.recipients]
            details = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in e.recipients)
            raise self._error(
                f"every recipient was refused ({details})",
                retryable=all(_retryable_code(c) for c in codes),
                status=codes[0] if codes else None,
            ) from None
        except aiosmtplib.SMTPAuthenticationError as e:
            raise self._error(
                f"authentication as {cfg.username!r} failed: {e.code} {e.message}",
                retryable=_retryable_code(e.code),
                status=e.code,
            ) from None
        except aiosmtplib.SMTPResponseException as e:
            raise self._error(
                f"{e.code} {e.message}", retryable=_retryable_code(e.code), status=e.code
            ) from None
        except aiosmtplib.SMTPNotSupported as e:
            # e.g. STARTTLS required but not offered, or AUTH not offered
            raise self._error(f"not supported by the server: {e}", retryable=False) from None
        except (aiosmtplib.SMTPTimeoutError, aiosmtplib.SMTPServerDisconnected) as e:
            raise self._error(f"{type(e).__name__}: {e}", retryable=True) from None
        except aiosmtplib.SMTPConnectError as e:
            cause = e.__cause__ or e.__context__
            if isinstance(cause, ssl.SSLCertVerificationError):
                raise self._error(
                    f"TLS certificate not trusted: {cause.verify_message}", retryable=False
                ) from None
            raise self._error(f"cannot connect: {e}", retryable=True) from None
        except ssl.SSLCertVerificationError as e:
            raise self._error(
                f"TLS certificate not trusted: {e.verify_message}", retryable=False
            ) from None
        except ssl.SSLError as e:
            raise self._error(f"TLS error: {e}", retryable=False) from None
        except aiosmtplib.SMTPException as e:
            raise self._error(f"{type(e).__name__}: {e}", retryable=False) from None
        except OSError as e:
            raise self._error(f"network error: {e}", retryable=True) from None
        if errors:
            refused = "; ".join(f"{rcpt}: {r.code} {r.message}" for rcpt, r in errors.items())
            # Some recipients got it: retrying would send duplicates to the others.
            raise self._error(f"some recipients were refused ({refused})", retryable=False)

    async def aclose(self) -> None:
        return None


def create(cfg: EmailChannelConfig, ctx: ChannelContext) -> EmailChannel:
    return EmailChannel(cfg, redactor=ctx.redactor, clock=ctx.clock, timeout=ctx.send_timeout_secs)
