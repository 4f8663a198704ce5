"""``parse_record``: any bytes give a record or None (malformed), never an exception."""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st

from sysops_agent.logwatch.kmsg import KmsgRecord, parse_record
from tests.support.properties import PROPERTY, soup

RECORD_TOKENS = ("6,", "3,", "-1,", "1234,", "5678,", "-;", "c;", ",", ";", "\n SUBSYSTEM=pci")
RECORD_TOKENS += ("\n DEVICE=+pci:0000:00:01.0", "\n", "\xff", "Out of memory")


@PROPERTY
@given(raw=st.binary() | soup(RECORD_TOKENS).map(lambda s: s.encode("utf-8", "surrogateescape")))
@example(raw=b"6," + b"9" * 5000 + b",1,-;x\n")
def test_any_bytes_give_a_record_or_none(raw: bytes) -> None:
    record = parse_record(raw)
    if record is not None:
        assert isinstance(record, KmsgRecord)
        assert 0 <= record.level <= 7
        assert "\n" not in record.message
