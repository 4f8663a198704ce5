"""``sysops-agent test-alert`` against local servers: HTTP, SMTP (STARTTLS + AUTH) and syslog.

``cli.main`` runs in a worker thread (it starts its own event loop) while the
servers run on the test's loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from pathlib import Path
from typing import AsyncIterator, Dict, Iterator, List, Tuple

import pytest

from sysops_agent import cli
from tests.support.httpserver import HttpTestServer, Reply
from tests.support.logstate import restore_logging
from tests.support.smtpserver import SMTPTestServer, TLSFiles, make_tls

SMTP_USER = "agent@example.com"
SMTP_PASSWORD = "smtp-Pa55word-Very-Secret"
DISCORD_TOKEN = "discordTokenAbcdefghijkl0123456789"
SLACK_PATH = "/services/T0001/B0002/slackSecretXyz0123456789"
BOT_TOKEN = "987654:telegramSecretAbcdefghijklmnop"
HOOK_AUTH = "Bearer webhookSecret-0123456789abcdef"

SECRETS = [
    SMTP_PASSWORD,
    DISCORD_TOKEN,
    SLACK_PATH,
    BOT_TOKEN,
    "telegramSecretAbcdefghijklmnop",
    HOOK_AUTH,
    "webhookSecret-0123456789abcdef",
]


@pytest.fixture(autouse=True)
def _logging() -> Iterator[None]:
    with restore_logging():
        yield


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    return make_tls(tmp_path_factory.mktemp("tls"))


class Servers:
    """One recording HTTP server per HTTP channel, an SMTP server and a syslog receiver."""

    def __init__(
        self, http: Dict[str, HttpTestServer], smtp: SMTPTestServer, syslog: socket.socket
    ) -> None:
        self.http = http
        self.smtp = smtp
        self.syslog = syslog

    def config(self, tls: TLSFiles, *, email_password: str = SMTP_PASSWORD) -> str:
        h = self.http
        return f"""
[agent]
hostname = "test-host"

[alerting]
retries = 1
retry_base_delay_secs = 0
send_timeout_secs = 2

[alerting.console]
enabled = false

[alerting.discord]
enabled = true
webhook_url = "{h["discord"].url(f"/api/webhooks/42/{DISCORD_TOKEN}")}"

[alerting.slack]
enabled = true
webhook_url = "{h["slack"].url(SLACK_PATH)}"

[alerting.telegram]
enabled = true
bot_token = "{BOT_TOKEN}"
chat_id = "-1001"
api_base_url = "{h["telegram"].url("")}"

[alerting.webhook]
enabled = true
url = "{h["webhook"].url("/hook")}"
headers = {{ Authorization = "{HOOK_AUTH}" }}

[alerting.email]
enabled = true
smtp_host = "127.0.0.1"
smtp_port = {self.smtp.port}
security = "starttls"
username = "{SMTP_USER}"
password = "{email_password}"
from_addr = "agent@example.com"
to_addrs = ["ops@example.com"]
ca_file = "{tls.ca_file}"

[alerting.syslog]
enabled = true
address = "127.0.0.1:{self.syslog.getsockname()[1]}"
facility = "local1"
"""


@pytest.fixture
async def servers(tls: TLSFiles) -> AsyncIterator[Servers]:
    smtp = await SMTPTestServer(
        tls=tls, security="starttls", users={SMTP_USER: SMTP_PASSWORD}
    ).start()
    syslog = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    syslog.bind(("127.0.0.1", 0))
    syslog.setblocking(False)
    async with contextlib.AsyncExitStack() as stack:
        http = {
            name: await stack.enter_async_context(HttpTestServer(reply))
            for name, reply in [
                ("discord", Reply(204)),
                ("slack", Reply(200, "ok")),
                ("telegram", Reply(200, {"ok": True, "result": {"message_id": 1}})),
                ("webhook", Reply(200, "")),
            ]
        }
        yield Servers(http, smtp, syslog)
    syslog.close()
    await smtp.stop()


async def run_cli(argv: List[str], capsys: pytest.CaptureFixture[str]) -> Tuple[int, str, str]:
    def main() -> int:
        try:
            return cli.main(argv)
        except SystemExit as e:  # what the process would exit with
            return int(e.code or 0)

    rc = await asyncio.to_thread(main)
    out, err = capsys.readouterr()
    return rc, out, err


def write_config(tmp_path: Path, text: str) -> str:
    path = tmp_path / "agent.toml"
    path.write_text(text)
    path.chmod(0o600)
    return str(path)


def _no_secrets(*texts: str) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text, (secret, text)


async def test_every_channel_ok(
    servers: Servers, tls: TLSFiles, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(tmp_path, servers.config(tls))
    rc, out, err = await run_cli(["test-alert", "--config", path], capsys)
    assert rc == 0, (out, err)
    assert out.splitlines() == [
        "discord: OK",
        "slack: OK",
        "telegram: OK",
        "email: OK",
        "webhook: OK",
        "syslog: OK",
    ]
    _no_secrets(out, err)
    for name, server in servers.http.items():
        [req] = server.requests
        assert "This is a test alert from sysops-agent on test-host" in req.body.decode(), name
    [hook] = servers.http["webhook"].requests
    body = hook.json()
    assert (body["metric"], body["severity"], body["analyzer"]) == (
        "sysops_agent_test",
        "warn",
        "test",
    )
    assert hook.headers["authorization"] == HOOK_AUTH
    [mail] = servers.smtp.messages
    assert mail.login == SMTP_USER and mail.tls
    assert (
        "test alert" in mail.message["Subject"].lower()
        or "sysops_agent_test" in mail.message["Subject"]
    )
    line = servers.syslog.recv(65536).decode()
    assert line.startswith("<140>")  # local1 (17) * 8 + warning (4)
    assert "no action needed" in line


async def test_failures_are_reported_per_channel_and_exit_1(
    servers: Servers, tls: TLSFiles, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    http = servers.http
    http["discord"].default = Reply(404, {"message": "Unknown Webhook", "code": 10015})
    http["telegram"].default = Reply(
        400, {"ok": False, "error_code": 400, "description": "Bad Request: chat not found"}
    )
    http["slack"].default = Reply(500, "internal_error")
    path = write_config(tmp_path, servers.config(tls, email_password="wrong-Pa55word-also-secret"))
    rc, out, err = await run_cli(["test-alert", "--config", path], capsys)
    assert rc == 1
    lines = dict(line.split(": ", 1) for line in out.splitlines())
    assert lines["discord"].startswith("FAILED: HTTP 404") and "Unknown Webhook" in lines["discord"]
    assert (
        lines["telegram"].startswith("FAILED: HTTP 400") and "chat not found" in lines["telegram"]
    )
    assert lines["slack"].startswith("FAILED: HTTP 500") and "(after 2 attempts)" in lines["slack"]
    assert lines["email"].startswith("FAILED: SMTP 127.0.0.1:") and " 535 " in lines["email"]
    assert lines["webhook"] == "OK" and lines["syslog"] == "OK"
    _no_secrets(out, err)
    assert "wrong-Pa55word-also-secret" not in out + err
    assert len(http["slack"].requests) == 2  # retried once (retries = 1)
    assert len(http["discord"].requests) == 1  # 404 is final


async def test_one_channel_even_if_disabled(
    servers: Servers, tls: TLSFiles, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = servers.config(tls).replace(
        "[alerting.syslog]\nenabled = true", "[alerting.syslog]\nenabled = false"
    )
    path = write_config(tmp_path, text)
    rc, out, err = await run_cli(["test-alert", "--config", path, "--channel", "syslog"], capsys)
    assert (rc, out) == (0, "syslog: OK\n")
    assert "alerting.syslog.enabled is false; testing it anyway" in err
    assert b"no action needed" in servers.syslog.recv(65536)
    assert all(s.requests == [] for s in servers.http.values()) and servers.smtp.messages == []


async def test_unknown_or_unconfigured_channel_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(tmp_path, "[alerting.console]\nenabled = true\n")
    rc, out, err = await run_cli(["test-alert", "--config", path, "--channel", "pager"], capsys)
    assert rc == 2 and "unknown channel 'pager' (known: alertmanager, console, discord" in err
    rc, out, err = await run_cli(["test-alert", "--config", path, "--channel", "telegram"], capsys)
    assert rc == 2
    assert (
        "channel 'telegram' is not configured: set alerting.telegram.bot_token, "
        "alerting.telegram.chat_id in the config" in err
    )
    assert out == ""


async def test_console_default_and_config_problems_first(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(
        tmp_path,
        f'[alerting]\nbogus = 1\n[alerting.discord]\nwebhook_url = "https://discord.example/api/webhooks/1/{DISCORD_TOKEN}"\n',
    )
    rc, out, err = await run_cli(["test-alert", "--config", path], capsys)
    assert rc == 0
    assert "warning: config alerting.bogus: unknown key" in err
    assert "[WARN] sysops_agent_test{test=true}: This is a test alert" in out
    assert out.rstrip().endswith("console: OK")
    _no_secrets(out, err)


async def test_unreadable_config_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(tmp_path, "[alerting\n")
    rc, out, err = await run_cli(["test-alert", "--config", path], capsys)
    assert rc == 2 and "invalid TOML" in err and out == ""


def test_help_lists_the_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["test-alert", "--help"])
    out = capsys.readouterr().out
    assert "--channel NAME" in out and "--config PATH" in out
