"""``sysops-agent test-alert [--config PATH] [--channel NAME]``: prove the channels work.

Sends one clearly marked test alert (severity warn, analyzer ``test``, metric
``sysops_agent_test``) through every enabled channel, or through the one
named by ``--channel``, and prints one line per channel::

    discord: OK
    slack: FAILED: HTTP 404: no_service
    email: FAILED: SMTP mail.example.com:587: authentication as 'alerts' failed: 535 ...

The alert bypasses dedup, routing and the rate limiter: each channel's
``send`` is called directly, with the agent's retry policy (retries, backoff,
``Retry-After``, per-attempt timeout), all channels at once. ``--channel``
may name a channel that is not enabled (to try it before enabling it), but
its required settings must be filled in.

Config problems are printed first; every line of output is redacted.
Exit status: 0 all delivered, 1 at least one channel failed, 2 for a config
or usage error (unknown or unconfigured channel, unreadable config).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from typing import TYPE_CHECKING, List, Optional, Tuple

from sysops_agent.clock import Clock, SystemClock
from sysops_agent.commands import SubParsers, add_config_arg, load_or_exit
from sysops_agent.model import Alert, Severity, make_labels
from sysops_agent.redact import Redactor

if TYPE_CHECKING:
    from sysops_agent.config import Config

log = logging.getLogger("sysops_agent.test_alert")

TEST_METRIC = "sysops_agent_test"
#: a channel still retrying after this long is reported as failed
DEFAULT_DEADLINE_SECS = 60.0


def register(sub: SubParsers) -> None:
    p = sub.add_parser(
        "test-alert",
        help="send a test alert through the configured channels",
        description=(
            "Send a clearly marked test alert through every enabled channel (or only "
            "--channel NAME) and report per channel OK or the error."
        ),
        epilog=(
            "Exit status: 0 when every channel delivered; 1 when one failed; 2 for an "
            "unknown or unconfigured channel, a usage or config error."
        ),
    )
    add_config_arg(p)
    p.add_argument(
        "--channel",
        metavar="NAME",
        help="only this channel; it may be disabled but must be configured",
    )
    p.add_argument(
        "--deadline",
        type=float,
        default=DEFAULT_DEADLINE_SECS,
        metavar="SECS",
        help=f"give up on a channel still retrying after SECS (default {DEFAULT_DEADLINE_SECS:g})",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from sysops_agent.agent_logging import setup_logging
    from sysops_agent.channels.registry import (
        channel_names,
        enabled_channel_names,
        missing_settings,
    )
    from sysops_agent.config import resolve_hostname
    from sysops_agent.redact import Redactor, install_log_redaction

    loaded = load_or_exit(args.config)
    config = loaded.config
    redact = Redactor(loaded.secrets.values())
    factory = install_log_redaction(redact)
    try:
        setup_logging("warning", "", redact)
        if args.channel:
            name = args.channel
            if name not in channel_names():
                known = ", ".join(sorted(channel_names()))
                print(f"sysops-agent: unknown channel {name!r} (known: {known})", file=sys.stderr)
                return 2
            missing = missing_settings(name, config.alerting)
            if missing:
                print(
                    f"sysops-agent: channel {name!r} is not configured: set "
                    f"{', '.join(missing)} in the config",
                    file=sys.stderr,
                )
                return 2
            if not getattr(config.alerting, name).enabled:
                print(
                    f"sysops-agent: note: alerting.{name}.enabled is false; testing it anyway",
                    file=sys.stderr,
                )
            names = [name]
        else:
            names = enabled_channel_names(config.alerting)
        alert = make_test_alert(resolve_hostname(config), time.time())
        results = asyncio.run(_send_all(config, names, alert, redact, args.deadline))
    finally:
        factory.uninstall()
    failed = 0
    for name, error in results:
        if error is None:
            print(f"{name}: OK")
        else:
            failed += 1
            print(redact(f"{name}: FAILED: {error}"))
    sys.stdout.flush()
    return 1 if failed else 0


def make_test_alert(host: str, now: float) -> Alert:
    return Alert(
        timestamp=now,
        hostname=host,
        severity=Severity.WARN,
        metric=TEST_METRIC,
        value=0.0,
        threshold=0.0,
        message=f"This is a test alert from sysops-agent on {host} — no action needed",
        analyzer="test",
        labels=make_labels({"test": "true"}),
    )


def _strip_name(name: str, error: str) -> str:
    """Channel errors start with the channel's name; the line already does."""
    prefix = f"{name}: "
    return error[len(prefix) :] if error.startswith(prefix) else error


#: time for closing TLS connections to finish before the command exits
CLOSE_GRACE_SECS = 0.2


async def _send_one(
    name: str, config: Config, alert: Alert, redact: Redactor, clock: Clock, deadline: float
) -> Optional[str]:
    """None when delivered, else the (redacted) reason."""
    from sysops_agent.alerting.manager import TIMEOUT_GRACE_SECS
    from sysops_agent.alerting.retry import send_with_retry
    from sysops_agent.channels.registry import build_channel

    cfg = config.alerting
    try:
        channel = build_channel(name, cfg, redact, clock, config.agent.labels)
    except Exception as exc:  # a channel that cannot even be set up is a failure, not a crash
        return redact(f"cannot set up the channel: {exc}")
    try:
        result = await asyncio.wait_for(
            send_with_retry(
                channel,
                [alert],
                clock,
                retries=cfg.retries,
                base_delay=cfg.retry_base_delay_secs,
                max_delay=cfg.retry_max_delay_secs,
                timeout=cfg.send_timeout_secs + TIMEOUT_GRACE_SECS,
            ),
            deadline,
        )
    except asyncio.TimeoutError:
        return f"still failing after {deadline:g} s of retries"
    finally:
        try:
            await channel.aclose()
        except Exception as exc:
            log.warning("%s: close failed: %s", name, redact(str(exc)))
    if result.ok:
        return None
    error = _strip_name(name, redact(result.error or "unknown error"))
    if result.attempts > 1:
        error += f" (after {result.attempts} attempts)"
    return error


async def _send_all(
    config: Config, names: List[str], alert: Alert, redact: Redactor, deadline: float
) -> List[Tuple[str, Optional[str]]]:
    clock = SystemClock()
    outcomes = await asyncio.gather(
        *(_send_one(name, config, alert, redact, clock, deadline) for name in names)
    )
    # A TLS connection (SMTP) finishes closing with a close_notify exchange after
    # aclose() returns; give it a moment before the event loop goes away.
    await asyncio.sleep(CLOSE_GRACE_SECS)
    return list(zip(names, outcomes))
