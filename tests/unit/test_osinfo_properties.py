"""``parse_os_release``: any text gives a dict of strings, never an exception."""

from __future__ import annotations

from hypothesis import given

from sysops_agent.osinfo import distro_from_os_release, parse_os_release
from tests.support.properties import PROPERTY, any_text

OS_RELEASE_TOKENS = ("ID", "ID_LIKE", "VERSION_ID", "PRETTY_NAME", "=", '"', "'", "\\", "#", "\n")


@PROPERTY
@given(text=any_text(OS_RELEASE_TOKENS))
def test_any_text_gives_string_pairs(text: str) -> None:
    fields = parse_os_release(text)
    assert all(isinstance(k, str) and k and isinstance(v, str) for k, v in fields.items())
    assert distro_from_os_release(text).id  # and the distro built from it has an id
