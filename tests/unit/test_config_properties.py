"""``parse_toml``: any text gives a table or one fatal ``Problem``, never an exception."""

from __future__ import annotations

from hypothesis import example, given

from sysops_agent.config import parse_toml
from tests.support.properties import PROPERTY, any_text

TOML_TOKENS = (
    "[",
    "]",
    "[[",
    "]]",
    "a",
    "b.c",
    " = ",
    "'",
    '"""',
    "true",
    "{",
    "}",
    "#",
    "\\u0000",
    "1979-05-27T07:32:00Z",
    "07:32:00",
    "[agent]\n",
    "[[collector.log.custom_patterns]]\n",
)


@PROPERTY
@given(text=any_text(TOML_TOKENS))
@example(text="a = " + "[" * 5000)
@example(text="a = " + "{b = " * 5000)
def test_any_text_gives_a_table_or_a_fatal_problem(text: str) -> None:
    data, problems = parse_toml(text, "agent.toml")
    assert isinstance(data, dict)
    if problems:
        assert data == {}
        assert len(problems) == 1 and problems[0].fatal
        assert str(problems[0]).startswith("agent.toml: invalid TOML: "), problems
