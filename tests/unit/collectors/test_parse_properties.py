"""Every collector ``parse_*``: any input gives a value or ``ParseError``, nothing else."""

from __future__ import annotations

from typing import Any, Callable, Sequence, Tuple

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from sysops_agent.collectors.cgroup import (
    parse_blkio_bytes,
    parse_io_stat,
    parse_keyed,
    parse_pressure_avg10,
)
from sysops_agent.collectors.common import ParseError
from sysops_agent.collectors.cpu import parse_stat
from sysops_agent.collectors.disk_io import parse_diskstats
from sysops_agent.collectors.disk_usage import parse_mounts
from sysops_agent.collectors.fd import parse_file_nr
from sysops_agent.collectors.gpu import parse_query_gpu
from sysops_agent.collectors.hardware import parse_mdstat
from sysops_agent.collectors.load import parse_loadavg
from sysops_agent.collectors.memory import parse_meminfo, parse_meminfo_fields
from sysops_agent.collectors.netstack import parse_snmp, parse_sockstat
from sysops_agent.collectors.network import parse_net_dev
from sysops_agent.collectors.pressure import parse_pressure
from sysops_agent.collectors.process import parse_pid_stat
from sysops_agent.collectors.uptime import parse_uptime
from tests.support.properties import PROPERTY, any_text, field_lines

#: (parser, the words of its file, the type it returns)
PARSERS: Sequence[Tuple[Callable[[str], Any], Sequence[str], type]] = [
    (parse_stat, ("cpu", "cpu0", "cpu1", "intr", "ctxt"), dict),
    (parse_diskstats, ("8", "sda", "sda1", "nvme0n1"), list),
    (parse_mounts, ("/dev/sda1", "/", "ext4", "rw", "\\040", "\\011", "\\777", "\\"), list),
    (parse_file_nr, (), tuple),
    (parse_loadavg, ("1/234",), tuple),
    (parse_meminfo_fields, ("MemTotal:", "MemAvailable:", "kB", "HugePages_Total:"), dict),
    (
        parse_meminfo,
        ("MemTotal:", "MemFree:", "MemAvailable:", "Buffers:", "Cached:", "Shmem:", "kB"),
        tuple,
    ),
    (parse_net_dev, ("eth0:", "lo:", "|", "Inter-|", "face"), list),
    (parse_pid_stat, ("(bash)", "(a) b)", "(", ")", "S", "R", "Z"), tuple),
    (parse_uptime, (), float),
]


#: built once: the strategies are the same for every example
TEXTS = {parser: st.one_of(any_text(tokens), field_lines(tokens)) for parser, tokens, _ in PARSERS}


def _ids(row: Tuple[Callable[[str], Any], Sequence[str], type]) -> str:
    return row[0].__name__


def _check(parser: Callable[[str], Any], returns: type, text: str) -> None:
    try:
        result = parser(text)
    except ParseError as e:
        assert str(e).startswith("/proc/"), e  # the message names the file
        return
    assert isinstance(result, returns), result


@pytest.mark.parametrize("row", PARSERS, ids=_ids)
@PROPERTY
@given(data=st.data())
def test_any_text_gives_a_value_or_parse_error(
    row: Tuple[Callable[[str], Any], Sequence[str], type], data: st.DataObject
) -> None:
    """Any text, and lines of whitespace-separated fields (past the shape checks, into the
    conversions)."""
    parser, _, returns = row
    text = data.draw(TEXTS[parser], label="text")
    _check(parser, returns, text)


@PROPERTY
@given(text=any_text(("(", ")", "S")))
@example(text="x) S 1 (y")
def test_pid_stat_comm_may_hold_anything(text: str) -> None:
    """The command name sits between the first '(' and the last ')': whatever is in it."""
    line = f"12 ({text}) S" + " 1" * 22
    stat = parse_pid_stat(line)
    assert stat.pid == 12
    assert stat.comm == text


# --- the issue-16 collectors' parsers (some take the file's path, some may return None) ---


def parse_pressure_cpu(text: str) -> Any:
    return parse_pressure(text, "/proc/pressure/cpu")


def parse_snmp_tables(text: str) -> Any:
    return parse_snmp(text, "/proc/net/snmp")


#: (parser, the words of its file, the types it may return)
MORE_PARSERS: Sequence[Tuple[Callable[[str], Any], Sequence[str], Tuple[type, ...]]] = [
    (parse_pressure_cpu, ("some", "full", "avg10=", "avg60=", "avg300=", "total="), (object,)),
    (parse_snmp_tables, ("Tcp:", "Udp:", "Ip:", "RetransSegs", "InErrors"), (dict,)),
    (parse_sockstat, ("sockets:", "TCP:", "inuse", "orphan", "tw", "used"), (dict,)),
    (parse_keyed, ("oom_kill", "usage_usec", "nr_throttled"), (dict,)),
    (parse_io_stat, ("8:0", "rbytes=", "wbytes=", "rios="), (tuple, type(None))),
    (parse_blkio_bytes, ("8:0", "Read", "Write", "Total"), (tuple, type(None))),
    (parse_pressure_avg10, ("some", "full", "avg10=", "total="), (dict,)),
    (parse_mdstat, ("md0", ":", "active", "raid1", "sda1[0]", "[2/1]", "[U_]"), (list,)),
    (parse_query_gpu, (",", "[N/A]", "[Not Supported]", "Active", "GPU-"), (tuple,)),
]
MORE_TEXTS = {p: st.one_of(any_text(t), field_lines(t)) for p, t, _ in MORE_PARSERS}


@pytest.mark.parametrize("row", MORE_PARSERS, ids=lambda row: row[0].__name__)
@PROPERTY
@given(data=st.data())
def test_the_newer_parsers_give_a_value_or_parse_error(
    row: Tuple[Callable[[str], Any], Sequence[str], Tuple[type, ...]], data: st.DataObject
) -> None:
    parser, _, returns = row
    text = data.draw(MORE_TEXTS[parser], label="text")
    try:
        result = parser(text)
    except ParseError as e:
        assert str(e).startswith(("/proc/", "/sys/", "nvidia-smi")), e
        return
    assert isinstance(result, returns), result
