"""Shared pieces of the property-based parser tests (hypothesis).

Every ``parse_*`` function gets arbitrary input and must either return a value
or raise its module's documented error, never anything else. Three kinds of
input: any text, any bytes decoded the two ways the agent decodes what it
reads (``errors="replace"`` and ``"surrogateescape"``), and a "token soup" of
fragments the parser looks for, so that the examples get past the first
checks and reach the number conversions and index arithmetic deeper in.
"""

from __future__ import annotations

from typing import Sequence

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

#: deterministic (the same examples every run), no example database written into the
#: checkout, no per-example deadline (the machine may be busy): fast tier material
PROPERTY = settings(
    derandomize=True,
    max_examples=150,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

#: numbers as a parser meets them, and the ones that break conversions
NUMBERS = (
    "0",
    "1",
    "7",
    "42",
    "-1",
    "+3",
    "3.5",
    "1e3",
    "1e400",
    "-1e400",
    "nan",
    "inf",
    "1_000",
    "0x10",
    "٣",
    "18446744073709551616",
    "9" * 40,
)
PUNCTUATION = (" ", "  ", "\t", "\n", ":", ",", ";", ".", "-", "=", "(", ")", "[", "]", '"')


def soup(tokens: Sequence[str], max_size: int = 60) -> st.SearchStrategy[str]:
    """Strings glued together from ``tokens``, the numbers and the punctuation."""
    return st.lists(st.sampled_from((*tokens, *NUMBERS, *PUNCTUATION)), max_size=max_size).map(
        "".join
    )


def field_lines(tokens: Sequence[str], max_fields: int = 30) -> st.SearchStrategy[str]:
    """Whitespace-separated lines of fields, as the /proc tables have them."""
    field = st.sampled_from((*tokens, *NUMBERS))
    line = st.lists(field, max_size=max_fields).map(" ".join)
    return st.lists(line, max_size=6).map("\n".join)


def any_text(tokens: Sequence[str] = ()) -> st.SearchStrategy[str]:
    """Any text, bytes decoded with replace or surrogateescape, or a token soup."""
    return st.one_of(
        st.text(),
        st.binary().map(lambda b: b.decode("utf-8", "replace")),
        st.binary().map(lambda b: b.decode("utf-8", "surrogateescape")),
        soup(tokens),
    )
