"""``parse_syslog_header``: any line gives the fields found (maybe none), never an exception."""

from __future__ import annotations

from hypothesis import given

from sysops_agent.logwatch.patterns import parse_syslog_header
from tests.support.properties import PROPERTY, any_text

HEADER_TOKENS = ("Jan", "May", " 1", "12", "12:00:00", "2026-05-01T12:00:00+00:00", "host")
HEADER_TOKENS += ("sshd", "kernel", "[", "]", "123", ": ")


@PROPERTY
@given(line=any_text(HEADER_TOKENS))
def test_any_line_gives_ident_and_pid_or_nothing(line: str) -> None:
    fields = parse_syslog_header(line)
    assert set(fields) <= {"ident", "pid"}
    assert not fields or fields["ident"] in line
    assert fields.get("pid", "0").isdigit()
