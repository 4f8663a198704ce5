"""The parsers added after the first property tests: any input gives a value or the
parser's documented error, never another exception (hypothesis, deterministic)."""

from __future__ import annotations

import contextlib
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from sysops_agent.alerting.matchers import parse_matcher, parse_matchers
from sysops_agent.collectors.gpu import parse_compute_apps
from sysops_agent.commands.silence import parse_until
from sysops_agent.exporters.http import parse_head
from sysops_agent.exporters.webconfig import WebConfigError, parse_web_config
from tests.support.properties import PROPERTY, any_text, field_lines

MATCHER_TOKENS = ("metric", "severity", "=", "!=", "=~", "!~", '"', ".*", "(", "[", "\\")


@PROPERTY
@given(text=st.one_of(any_text(MATCHER_TOKENS), field_lines(MATCHER_TOKENS)))
def test_parse_matcher_gives_a_matcher_or_value_error(text: str) -> None:
    with contextlib.suppress(ValueError):
        parse_matcher(text)
    with contextlib.suppress(ValueError):
        parse_matchers([text, text])


@PROPERTY
@given(text=st.one_of(any_text((",", "GPU-", "[N/A]", "[Not Supported]")), field_lines((",",))))
def test_parse_compute_apps_gives_apps_and_problems(text: str) -> None:
    apps, problems = parse_compute_apps(text)
    assert isinstance(apps, list) and isinstance(problems, list)


@PROPERTY
@given(
    head=st.one_of(
        st.binary(),
        any_text(("GET", " ", "/metrics", "HTTP/1.1", "\r\n", ":")).map(
            lambda t: t.encode("utf-8", "surrogateescape")
        ),
    )
)
def test_parse_head_gives_a_request_or_none(head: bytes) -> None:
    parse_head(head)  # None when malformed; nothing raises


@PROPERTY
@given(text=any_text((":", "T", "Z", "-", "+00:00", "12", "99", "2026")), now=st.floats(0, 4e9))
def test_parse_until_gives_a_time_or_value_error(text: str, now: float) -> None:
    with contextlib.suppress(ValueError):
        parse_until(text, now)


JSONISH: Any = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20)),
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(
            st.sampled_from(
                (
                    "tls_server_config",
                    "basic_auth_users",
                    "cert_file",
                    "key_file",
                    "http_server_config",
                    "x",
                )
            ),
            children,
            max_size=4,
        ),
    ),
    max_leaves=12,
)


@PROPERTY
@given(data=JSONISH)
def test_parse_web_config_gives_a_config_or_web_config_error(data: Any) -> None:
    with contextlib.suppress(WebConfigError):
        parse_web_config("/etc/web.yml", data)
