"""A real SMTP server (aiosmtpd) on 127.0.0.1 for tests, with a throw-away CA (trustme).

``SMTPTestServer`` runs on the test's own event loop (port 0, no thread):
``security`` is ``"starttls"`` (STARTTLS offered and required before MAIL),
``"tls"`` (implicit TLS) or ``"none"``; with ``users`` it offers AUTH
LOGIN/PLAIN and requires it. It records every accepted message and can be told
to answer RCPT or DATA with a given reply (``rcpt_replies``, ``data_reply``).
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import ssl
import warnings
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Dict, List, Optional

import trustme
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session


@dataclass
class Received:
    mail_from: str
    rcpt_tos: List[str]
    data: bytes
    login: Optional[str]
    tls: bool

    @property
    def message(self) -> EmailMessage:
        msg = email.message_from_bytes(self.data, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        return msg


@dataclass
class TLSFiles:
    ca: trustme.CA
    ca_file: Path
    server_context: ssl.SSLContext


def make_tls(tmp_path: Path) -> TLSFiles:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(ctx)
    ca_file = tmp_path / "test-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return TLSFiles(ca, ca_file, ctx)


class _Session(Session):
    # aiosmtpd 1.4 itself assigns its deprecated ``login_data`` property after a
    # successful AUTH, which warns (an error under pytest); a plain attribute does not.
    login_data: Any = None


class _SMTP(SMTP):
    def _create_session(self) -> Session:
        return _Session(self.loop)


@dataclass
class _Handler:
    server: SMTPTestServer

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        reply = self.server.rcpt_replies.get(address)
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.server.data_reply:
            return self.server.data_reply
        login = session.auth_data.login.decode() if session.authenticated else None
        content = envelope.original_content or b""
        self.server.messages.append(
            Received(
                str(envelope.mail_from),
                list(envelope.rcpt_tos),
                content,
                login,
                server.transport is not None
                and server.transport.get_extra_info("ssl_object") is not None,
            )
        )
        return "250 Message accepted"


@dataclass
class SMTPTestServer:
    tls: Optional[TLSFiles] = None
    security: str = "starttls"
    users: Dict[str, str] = field(default_factory=dict)
    rcpt_replies: Dict[str, str] = field(default_factory=dict)
    data_reply: str = ""
    messages: List[Received] = field(default_factory=list)
    auth_attempts: List[str] = field(default_factory=list)
    #: the reply to a failed AUTH (a hostile server may quote the credentials back)
    auth_fail_reply: str = ""
    #: AUTH mechanisms not offered (to force LOGIN or PLAIN)
    exclude_mechanisms: List[str] = field(default_factory=list)
    port: int = 0
    #: client connections accepted so far
    connection_count: int = 0
    _server: Optional[asyncio.AbstractServer] = None
    _connections: List[SMTP] = field(default_factory=list)

    def _authenticator(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login = auth_data.login.decode()
        self.auth_attempts.append(f"{mechanism} {login}")
        if self.users.get(login) != auth_data.password.decode():
            # aiosmtpd answers 535 unless told otherwise
            return AuthResult(success=False, handled=False, message=self.auth_fail_reply or None)
        return AuthResult(success=True, auth_data=auth_data)

    def _factory(self) -> SMTP:
        starttls = self.security == "starttls"
        assert not starttls or self.tls is not None
        with warnings.catch_warnings():
            # "Requiring AUTH while not requiring TLS": intended for implicit TLS and "none"
            warnings.simplefilter("ignore", UserWarning)
            return self._make_smtp(starttls)

    def _make_smtp(self, starttls: bool) -> SMTP:
        smtp = _SMTP(
            _Handler(self),
            hostname="smtp.test",
            tls_context=self.tls.server_context if starttls and self.tls else None,
            require_starttls=starttls,
            auth_required=bool(self.users),
            # aiosmtpd only counts STARTTLS as TLS; with implicit TLS the link is encrypted
            auth_require_tls=starttls,
            authenticator=self._authenticator if self.users else None,
            auth_exclude_mechanism=self.exclude_mechanisms,
            enable_SMTPUTF8=True,
        )
        self._connections.append(smtp)
        self.connection_count += 1
        return smtp

    async def start(self) -> SMTPTestServer:
        loop = asyncio.get_running_loop()
        ssl_ctx = None
        if self.security == "tls":
            assert self.tls is not None
            ssl_ctx = self.tls.server_context
        self._server = await loop.create_server(self._factory, "127.0.0.1", 0, ssl=ssl_ctx)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        # Close what clients left open (e.g. after a refused TLS handshake).
        for smtp in self._connections:
            for transport in (smtp.transport, getattr(smtp, "_original_transport", None)):
                if transport is not None and not transport.is_closing():
                    transport.close()
        self._connections.clear()
        for _ in range(3):
            await asyncio.sleep(0)
