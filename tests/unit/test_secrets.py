"""Secrets never leak: not in logs, exceptions, ``check-config`` or ``test-alert`` output.

Every channel is configured with distinctive secret values and aimed at local
servers that fail — HTTP 500/404/401 whose error bodies quote the secret back,
refused connections, hanging servers, an SMTP server that refuses the password
and quotes it in its reply. Alerts go through the real ``AlertManager`` and
channels; every log record at DEBUG (all loggers, formatted with exceptions),
every error and all command output are searched for every secret and for
every recognisable piece of one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from pathlib import Path
from typing import AsyncIterator, Dict, Iterator, List, Tuple

import pytest

from sysops_agent import cli
from sysops_agent.agent_logging import setup_logging
from sysops_agent.channels.registry import build_alert_manager
from sysops_agent.clock import SystemClock
from sysops_agent.config import load_config
from sysops_agent.model import Alert, Severity, make_labels
from sysops_agent.redact import (
    MASK,
    RedactingFilter,
    Redactor,
    install_log_redaction,
    mask_secret,
)
from tests.support.httpserver import HttpTestServer, Reply
from tests.support.logstate import restore_logging
from tests.support.smtpserver import SMTPTestServer, TLSFiles, make_tls

DISCORD_TOKEN = "dscTok-Q1w2E3r4T5y6U7i8O9p0"
DISCORD_PATH = f"/api/webhooks/4242/{DISCORD_TOKEN}"
SLACK_TOKEN = "slkTok9Z8y7X6w5V4u3T2s1R"
SLACK_PATH = f"/services/T0AAA/B0BBB/{SLACK_TOKEN}"
TG_SECRET = "tgSecretAAbbCCddEEffGGhh1234"
BOT_TOKEN = f"777000:{TG_SECRET}"
HOOK_TOKEN = "whTok-Kq9Lm8Nn7Oo6Pp5"
HOOK_PATH = f"/ingest/{HOOK_TOKEN}"
HOOK_BEARER = "hdrBearer-Zz1Yy2Xx3Ww4Vv5Uu6"
SMTP_PASSWORD = "smtpPw-Gg7Hh8Jj9Kk0"
SMTP_USER = "agent@example.com"

#: every value (and recognisable part) that must never be seen
SECRETS = [
    DISCORD_TOKEN,
    SLACK_TOKEN,
    TG_SECRET,
    HOOK_TOKEN,
    HOOK_BEARER,
    SMTP_PASSWORD,
]
#: loggers of the test servers themselves (not part of the agent)
HARNESS_LOGGERS = ("mail.log",)


def assert_clean(where: str, text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"{where} leaks {secret!r}:\n{text}"
        # nor a recognisable half of it (messages cut long values short)
        assert secret[: len(secret) // 2 + 1] not in text, f"{where} leaks part of {secret!r}"


# --- the redactor itself -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("secret", "text", "expected"),
    [
        (
            "https://hooks.slack.com/services/T0/B0/abcdefghijklmnop",
            "POST https://hooks.slack.com/services/T0/B0/abcdefghijklmnop failed",
            "POST https://hooks.slack.com/*** failed",
        ),
        (
            "https://hooks.slack.com/services/T0/B0/abcdefghijklmnop",
            "path /services/T0/B0/abcdefghijklmnop, token abcdefghijklmnop",
            f"path /{MASK}, token {MASK}",
        ),
        (
            "https://hooks.slack.com/services/T0/B0/abcdefghijklmnop",
            "got 'https://hooks.slack.com/services/T0/B0/abcd...",
            "got 'https://hooks.slack.com/***...",
        ),
        (
            "bot123:AAbbCCddEEffGGhhII",
            "url /bot123:AAbbCCddEEffGGhhII/sendMessage",
            "url /bot123:***/sendMessage",
        ),
        ("123:AAbbCCddEEffGGhhII", "token=123%3AAAbbCCddEEffGGhhII", "token=123:***"),
        ("123:AAbbCCddEEffGGhhII", "just AAbbCCddEEffGGhhII", f"just {MASK}"),
        ("Bearer abcdef123456", "Authorization: Bearer abcdef123456", f"Authorization: {MASK}"),
        ("Bearer abcdef123456", "sent abcdef123456", f"sent {MASK}"),
        ("p@ss word!", "login p%40ss%20word%21 failed", f"login {MASK} failed"),
        ("p@ss word!", "password 'p@ss w' ...", f"password '{MASK}' ..."),
        ("https://u:hunter2hunter2@h.example/x", "auth hunter2hunter2", f"auth {MASK}"),
        ("abc", "abc stays: too short to mask", "abc stays: too short to mask"),
    ],
)
def test_redactor_masks_every_form(secret: str, text: str, expected: str) -> None:
    assert Redactor([secret])(text) == expected


def test_mask_keeps_what_tells_the_endpoint_apart() -> None:
    assert mask_secret("https://hooks.slack.com/services/T/B/X") == "https://hooks.slack.com/***"
    assert mask_secret("bot123:ABC-def_9") == "bot123:***"
    assert mask_secret("123:ABC-def_9") == "123:***"
    assert mask_secret("hunter2") == MASK


def test_filter_and_factory_redact_message_args_exception_and_stack() -> None:
    redactor = Redactor([SMTP_PASSWORD])
    records: List[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    logger = logging.getLogger("tests.secrets.filter")
    logger.propagate = False
    handler = Keep()
    handler.addFilter(RedactingFilter(redactor))
    logger.addHandler(handler)
    try:
        try:
            raise ValueError(f"bad password {SMTP_PASSWORD}")
        except ValueError:
            logger.exception("login with %s failed", SMTP_PASSWORD, stack_info=True)
    finally:
        logger.removeHandler(handler)
    text = logging.Formatter().format(records[0])
    assert "bad password ***" in text and "login with *** failed" in text
    assert_clean("filtered record", text)

    with restore_logging("tests.secrets.factory"):
        factory = install_log_redaction(redactor)
        assert install_log_redaction(redactor) is factory  # not stacked twice
        record = logging.getLogger("x").makeRecord(
            "x", logging.ERROR, __file__, 1, "pw=%s", (SMTP_PASSWORD,), None
        )
        factory.uninstall()
    assert record.getMessage() == "pw=***"


# --- the real pipeline against failing servers --------------------------------------------


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    return make_tls(tmp_path_factory.mktemp("tls"))


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Scenario:
    """Servers for one fault case and the config that points every channel at them."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.http: Dict[str, HttpTestServer] = {}
        self.smtp_port = 0
        self.syslog_port = 0

    def base(self, key: str) -> str:
        server = self.http.get(key)
        return f"http://127.0.0.1:{server.port if server else closed_port()}"

    def config(self, tls: TLSFiles) -> str:
        return f"""
[agent]
hostname = "web-01"

[alerting]
retries = {0 if self.name == "hang" else 1}
retry_base_delay_secs = 0.01
send_timeout_secs = 1
group_window_secs = 0

[alerting.console]
enabled = false

[alerting.discord]
enabled = true
webhook_url = "{self.base("discord")}{DISCORD_PATH}"
mention_role_ids = ["555"]

[alerting.slack]
enabled = true
webhook_url = "{self.base("slack")}{SLACK_PATH}"

[alerting.telegram]
enabled = true
bot_token = "{BOT_TOKEN}"
chat_id = "-100"
api_base_url = "{self.base("telegram")}"

[alerting.webhook]
enabled = true
url = "{self.base("webhook")}{HOOK_PATH}"
headers = {{ Authorization = "${{HOOK_AUTH}}", X-Api-Key = "{HOOK_TOKEN}" }}

[alerting.email]
enabled = true
smtp_host = "127.0.0.1"
smtp_port = {self.smtp_port or closed_port()}
security = "starttls"
username = "{SMTP_USER}"
password = "{SMTP_PASSWORD}"
from_addr = "agent@example.com"
to_addrs = ["ops@example.com"]
ca_file = "{tls.ca_file}"

[alerting.syslog]
enabled = true
address = "127.0.0.1:{self.syslog_port or closed_port()}"

[alerting.alertmanager]
enabled = true
url = "{self.base("alertmanager")}"
"""


ENV = {"HOOK_AUTH": f"Bearer {HOOK_BEARER}"}

ECHO = f"{DISCORD_PATH} {SLACK_PATH} bot{BOT_TOKEN} {HOOK_PATH} {HOOK_BEARER} {HOOK_TOKEN}"


@contextlib.asynccontextmanager
async def scenario(name: str, tls: TLSFiles) -> AsyncIterator[Scenario]:
    sc = Scenario(name)
    async with contextlib.AsyncExitStack() as stack:
        if name == "reflect":  # error bodies quote the secrets back
            replies = {
                "discord": Reply(500, {"message": f"boom at {ECHO}", "code": 0}),
                "slack": Reply(404, f"no_service {ECHO}"),
                "telegram": Reply(
                    401, {"ok": False, "error_code": 401, "description": f"Unauthorized {ECHO}"}
                ),
                "webhook": Reply(500, f"upstream said: {ECHO}"),
                "alertmanager": Reply(500, f"{ECHO}"),
            }
        elif name == "hang":  # no answer: every request times out
            replies = {k: Reply(hang=True) for k in ("discord", "slack", "telegram", "webhook")}
        else:  # "refused": nothing listens anywhere
            replies = {}
        for key, reply in replies.items():
            sc.http[key] = await stack.enter_async_context(HttpTestServer(reply))
        if name == "reflect":
            smtp = SMTPTestServer(
                tls=tls,
                security="starttls",
                users={SMTP_USER: "the-right-one"},
                auth_fail_reply=f"535 5.7.8 {SMTP_USER}:{SMTP_PASSWORD} rejected",
            )
            await smtp.start()
            stack.push_async_callback(smtp.stop)
            sc.smtp_port = smtp.port
        yield sc


def alerts() -> List[Alert]:
    base = dict(
        timestamp=1_700_000_000.0,
        hostname="web-01",
        value=97.0,
        threshold=95.0,
        analyzer="threshold",
    )
    return [
        Alert(severity=Severity.WARN, metric="memory_usage_percent", message="memory", **base),  # type: ignore[arg-type]
        Alert(
            severity=Severity.CRITICAL,
            metric="disk_usage_percent",
            message="disk",
            labels=make_labels({"mountpoint": "/"}),
            **base,  # type: ignore[arg-type]
        ),
        Alert(severity=Severity.EMERGENCY, metric="cpu_usage_percent", message="cpu", **base),  # type: ignore[arg-type]
    ]


def formatted(records: List[logging.LogRecord]) -> str:
    fmt = logging.Formatter("%(name)s %(levelname)s %(message)s")
    return "\n".join(fmt.format(r) for r in records if not r.name.startswith(HARNESS_LOGGERS))


@pytest.fixture(autouse=True)
def _logging() -> Iterator[None]:
    with restore_logging():
        yield


@pytest.mark.parametrize(
    "case", ["reflect", "refused", pytest.param("hang", marks=pytest.mark.slow)]
)
async def test_failing_channels_leak_nothing_in_logs(
    case: str, tls: TLSFiles, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with scenario(case, tls) as sc:
        loaded = load_config(text=sc.config(tls), env=ENV)
        assert [p for p in loaded.problems if "alertmanager" not in p.path] == []
        redactor = Redactor(loaded.secrets.values())
        # what the daemon does: its own log file through the redacting handler ...
        log_file = tmp_path / "agent.log"
        setup_logging("debug", str(log_file), redactor)
        logging.getLogger("sysops_agent").propagate = True  # ... and let caplog see it too
        # ... and every record of every library redacted at creation
        factory = install_log_redaction(redactor)
        try:
            manager = build_alert_manager(loaded.config.alerting, SystemClock(), redactor)
            assert set(manager.channel_names) >= {
                "discord",
                "slack",
                "telegram",
                "webhook",
                "email",
                "syslog",
            }
            runner = asyncio.ensure_future(manager.run())
            for a in alerts():
                manager.submit(a)
            await manager.close(timeout=20)
            await runner
        finally:
            factory.uninstall()
    counters = manager.counters()
    for name in ("discord", "slack", "telegram", "webhook"):
        assert counters[name][1] > 0, (name, counters)  # they really failed
    if case != "hang":
        assert counters["email"][1] > 0
    records = caplog.records
    assert any(r.levelno >= logging.ERROR and r.name.startswith("sysops_agent") for r in records)
    text = formatted(records)
    assert "HTTP" in text or "no answer" in text or "Connect" in text  # the errors are there
    assert_clean(f"log records ({case})", text)
    assert_clean("log file", log_file.read_text())


async def test_channel_errors_themselves_carry_no_secret(tls: TLSFiles) -> None:
    """Without any logging redaction: the errors the channels raise are already clean."""
    from sysops_agent.alerting.retry import send_with_retry
    from sysops_agent.channels.registry import build_channel

    async with scenario("reflect", tls) as sc:
        loaded = load_config(text=sc.config(tls), env=ENV)
        redactor = Redactor(loaded.secrets.values())
        clock = SystemClock()
        errors: List[Tuple[str, str]] = []
        for name in ("discord", "slack", "telegram", "webhook", "email"):
            channel = build_channel(name, loaded.config.alerting, redactor, clock)
            result = await send_with_retry(channel, alerts()[1:2], clock, retries=0, timeout=5)
            await channel.aclose()
            assert not result.ok
            errors.append((name, result.error or ""))
    for name, error in errors:
        assert error, name
        assert_clean(f"{name} error", error)
    assert any("535" in e for _, e in errors)


async def test_test_alert_output_leaks_nothing(
    tls: TLSFiles, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with scenario("reflect", tls) as sc:
        path = tmp_path / "agent.toml"
        path.write_text(sc.config(tls).replace("${HOOK_AUTH}", f"Bearer {HOOK_BEARER}"))
        path.chmod(0o600)

        def main() -> int:
            try:
                return cli.main(["test-alert", "--config", str(path), "--deadline", "20"])
            except SystemExit as e:
                return int(e.code or 0)

        rc = await asyncio.to_thread(main)
    out, err = capsys.readouterr()
    assert rc == 1
    assert "discord: FAILED: HTTP 500" in out and "email: FAILED:" in out
    assert_clean("test-alert stdout", out)
    assert_clean("test-alert stderr", err)


# --- configuration problems ------------------------------------------------------------------


BROKEN = f"""
[alerting]
bogus = "https://hooks.slack.com{SLACK_PATH}"
console = "https://hooks.slack.com{SLACK_PATH}"

[alerting.slack]
enabled = true
webhook_url = "https://hooks.slack.com{SLACK_PATH}"
mention = "https://hooks.slack.com{SLACK_PATH}"

[alerting.discord]
enabled = true
webhook_url = ["https://discord.com{DISCORD_PATH}"]

[alerting.telegram]
bot_token = {{ token = "{BOT_TOKEN}" }}

[alerting.webhook]
headers = {{ Authorization = ["Bearer {HOOK_BEARER}"], X-Key = "{HOOK_TOKEN}" }}

[alerting.email]
password = ["{SMTP_PASSWORD}"]
"""


def test_config_problems_never_show_a_secret() -> None:
    loaded = load_config(text=BROKEN)
    redactor = Redactor(loaded.secrets.values())
    text = "\n".join(redactor(str(p)) for p in loaded.problems)
    assert "alerting.discord.webhook_url: expected string, got a list (value not shown" in text
    assert "alerting.email.password: expected string, got a list (value not shown" in text
    assert "alerting.webhook.headers.Authorization" in text
    assert "alerting.telegram.bot_token" in text
    assert_clean("config problems", text)


def test_check_config_output_leaks_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(BROKEN)
    path.chmod(0o644)  # literal secrets in a readable file: a fatal problem naming the keys
    rc = cli.main(["check-config", str(path)])
    out, err = capsys.readouterr()
    assert rc == 1
    assert "chmod 600" in out and "alerting.slack.webhook_url" in out
    assert_clean("check-config", out + err)
