"""The pattern library and the matcher, against log lines in real formats."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Tuple

import pytest

from sysops_agent.config import load_config
from sysops_agent.logwatch.config import CustomPattern, LogConfig
from sysops_agent.logwatch.journal import message_text
from sysops_agent.logwatch.patterns import LIBRARY, Matcher, compile_custom, library_ere
from tests.support import paths

FIXTURES = paths.FIXTURES / "logs"

Expected = List[Tuple[str, Dict[str, str]]]

#: every hit the library must find in each fixture, in order, with the fields it must extract
FIXTURE_HITS: Dict[str, Expected] = {
    "debian-syslog.log": [
        ("oom_context", {"cgroup": "/system.slice/tomcat9.service", "pid": "4242"}),
        ("oom_kill", {"pid": "4242", "process": "java", "anon_rss": "4012345kB", "uid": "997"}),
        ("io_error", {"device": "sdb", "sector": "2048"}),
        ("io_error", {"device": "sdb1"}),
        ("filesystem_error", {"device": "sda1"}),
        ("filesystem_error", {"device": "sda1"}),
        ("hung_task", {"process": "jbd2/sda1-8", "pid": "312", "seconds": "120"}),
        ("segfault", {"process": "php-fpm8.2", "pid": "23456", "object": "php-fpm8.2"}),
        ("network_down", {"interface": "eno1"}),
        ("network_down", {"interface": "eno1"}),
        ("hardware_error", {}),
        ("hardware_error", {"mc": "MC0"}),
        ("kernel_panic", {"reason": "Fatal exception in interrupt"}),
    ],
    "ubuntu-syslog-rfc3339.log": [
        ("network_down", {"interface": "ens3"}),
        ("io_error", {"device": "nvme0n1", "sector": "123456"}),
        ("io_error", {"device": "nvme0n1"}),
        ("filesystem_error", {"device": "sdc1"}),
    ],
    "rhel-messages.log": [
        ("oom_kill", {"pid": "2345", "process": "mysqld"}),
        ("io_error", {"device": "vdb", "sector": "1024"}),
        ("filesystem_error", {"device": "vdb1"}),
        ("oom_context", {"cgroup": "/user.slice/user-1001.slice/session-4.scope", "pid": "5678"}),
        ("oom_kill", {"pid": "5678", "process": "node", "uid": "1001"}),
        ("oom_kill", {"pid": "6789", "process": "python3"}),
        ("network_down", {"interface": "enp3s0"}),
    ],
}


def _check(hits: list, expected: Expected) -> None:  # type: ignore[type-arg]
    got = [(h.spec.name, h.fields) for h in hits]
    assert [name for name, _ in got] == [name for name, _ in expected], got
    for (name, fields), (_, want) in zip(got, expected):
        for k, v in want.items():
            assert fields.get(k) == v, (name, k, fields)


@pytest.mark.parametrize("name", sorted(FIXTURE_HITS))
def test_fixture_files(name: str) -> None:
    _check(Matcher().scan((FIXTURES / name).read_bytes()), FIXTURE_HITS[name])


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(FIXTURE_HITS))
def test_same_lines_as_grep(name: str) -> None:
    grep = shutil.which("grep")
    if grep is None:
        pytest.skip("no grep on this machine")
    path = FIXTURES / name
    out = subprocess.run([grep, "-cE", library_ere(), str(path)], capture_output=True, text=True)
    assert int(out.stdout) == len(Matcher().scan(path.read_bytes()))


def test_journal_fixture_messages() -> None:
    m = Matcher()
    hits = []
    for line in (FIXTURES / "journal.jsonl").read_text().splitlines():
        text = message_text(json.loads(line).get("MESSAGE"))
        if text:
            hits.extend(m.scan_text(text))
    _check(
        hits,
        [
            ("oom_context", {"pid": "4242"}),
            ("oom_kill", {"pid": "4242", "process": "java"}),
            ("network_down", {"interface": "eno1"}),
            ("segfault", {"process": "myapp", "pid": "777", "object": "libfoo\ufffd.so"}),
            ("io_error", {"device": "sdb"}),
        ],
    )


#: (pattern, line that must match it, fields) and lines that must match nothing
POSITIVE = [
    ("oom_kill", "Out of memory: Killed process 123 (foo) total-vm:1kB", {"pid": "123"}),
    (
        "oom_kill",
        "Out of memory: Kill process 9 (my proc) score 1 or sacrifice child",
        {"process": "my proc"},
    ),
    ("oom_kill", "Memory cgroup out of memory: Killed process 7 (php)", {"process": "php"}),
    (
        "hardware_error",
        "{1}[Hardware Error]: Hardware error from APEI Generic Hardware Error Source: 0",
        {},
    ),
    ("hardware_error", "mce: CPU 3: Machine Check: 0 Bank 5: be00000000800400", {"cpu": "3"}),
    ("hardware_error", "EDAC sbridge MC1: HANDLING MCE MEMORY ERROR", {"mc": "MC1"}),
    ("hardware_error", "EDAC MC0: 1 UE memory read error on DIMM_A1", {"mc": "MC0"}),
    ("hardware_error", "ECC error detected on bank 2", {}),
    (
        "filesystem_error",
        "EXT4-fs error (device dm-0): ext4_journal_check_start:83: Detected aborted journal",
        {"device": "dm-0"},
    ),
    (
        "filesystem_error",
        "EXT3-fs error (device sdd1): ext3_find_entry: reading directory",
        {"device": "sdd1"},
    ),
    (
        "filesystem_error",
        "XFS (sdb1): Corruption of in-memory data detected; error 117",
        {"device": "sdb1"},
    ),
    ("filesystem_error", "EXT4-fs (md0): Remounting filesystem read-only", {"device": "md0"}),
    (
        "hung_task",
        "INFO: task kworker/u16:2:123 blocked for more than 241 seconds.",
        {"process": "kworker/u16:2", "pid": "123"},
    ),
    (
        "network_down",
        "bnxt_en 0000:3b:00.0 ens1f0np0: NIC Link is Down",
        {"interface": "ens1f0np0"},
    ),
    ("network_down", "r8169 0000:02:00.0 enp2s0: Link is Down", {"interface": "enp2s0"}),
    ("network_down", "wlan0: carrier lost", {"interface": "wlan0"}),
    (
        "io_error",
        "print_req_error: I/O error, dev sda, sector 9876",
        {"device": "sda", "sector": "9876"},
    ),
    ("io_error", "Buffer I/O error on device sdc1, logical block 0", {"device": "sdc1"}),
    (
        "io_error",
        "blk_update_request: critical medium error, dev sdb, sector 77",
        {"device": "sdb"},
    ),
    (
        "segfault",
        "node[31337]: segfault at 7ffd0 ip 0000 sp 0000 error 6 in node[400000+2000]",
        {"process": "node", "pid": "31337"},
    ),
    (
        "kernel_bug",
        "BUG: kernel NULL pointer dereference, address: 0000000000000008",
        {"bug": "kernel NULL pointer dereference, address: 0000000000000008"},
    ),
    (
        "kernel_bug",
        "WARNING: CPU: 3 PID: 1234 at net/core/dev.c:5501 __netif_receive_skb+0x1c/0x70",
        {"cpu": "3", "pid": "1234", "where": "net/core/dev.c:5501"},
    ),
    ("kernel_bug", "Call Trace:", {}),
    (
        "gpu_lost",
        "NVRM: Xid (PCI:0000:3b:00): 79, pid=1911, GPU has fallen off the bus.",
        {"device": "PCI:0000:3b:00", "xid": "79"},
    ),
    (
        "gpu_lost",
        "NVRM: Xid (PCI:0000:af:00): 48, pid=0, An uncorrectable double bit error (DBE)",
        {"xid": "48"},
    ),
    (
        "kernel_panic",
        "Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)",
        {"reason": "VFS: Unable to mount root fs on unknown-block(0,0)"},
    ),
]
NEGATIVE = [
    "NVRM: Xid (PCI:0000:3b:00): 13, pid=2211, Graphics Exception: ESR 0x504648=0x1",
    "NVRM: Xid (PCI:0000:3b:00): 31, pid=2211, Ch 00000010, intr 10000000. MMU Fault",
    "EDAC MC: Ver: 3.0.0",
    "MCE: In-kernel MCE decoding enabled.",
    "EDAC ie31200: No ECC support",
    "e1000e 0000:00:1f.6 eno1: NIC Link is Up 1000 Mbps Full Duplex",
    "java invoked oom-killer: gfp_mask=0x100cca(GFP_HIGHUSER_MOVABLE), order=0",
    "Killed process 2345 (mysqld) total-vm:12345678kB, anon-rss:7654321kB",
    "systemd[1]: foo.service: Main process exited, code=killed, status=9/KILL",
    "XFS (sda1): Mounting V5 Filesystem",
    'dockerd[811]: level=error msg="Handler for GET /containers/json returned error"',
    "sshd[1]: Accepted publickey for deploy: RSA SHA256:Ab+ECC/xyz",
]


@pytest.mark.parametrize(("name", "line", "fields"), POSITIVE)
def test_library_entry_matches(name: str, line: str, fields: Dict[str, str]) -> None:
    hits = Matcher().scan_text(line)
    assert [h.spec.name for h in hits] == [name]
    for k, v in fields.items():
        assert hits[0].fields.get(k) == v, hits[0].fields
    assert hits[0].line == line


@pytest.mark.parametrize("line", NEGATIVE)
def test_library_ignores(line: str) -> None:
    assert Matcher().scan_text(line) == []


def test_every_library_entry_is_covered() -> None:
    covered = {name for name, _, _ in POSITIVE}
    alerting = {spec.name for spec in LIBRARY if spec.alerts}
    assert alerting <= covered


def test_anchors_are_literal_parts_of_their_alternative() -> None:
    for spec in LIBRARY:
        for alt, anchor in spec.detect:
            assert anchor and anchor in re.sub(r"\\b", "", alt), (spec.name, alt, anchor)


def test_leftmost_pattern_wins_one_hit_per_line() -> None:
    hits = Matcher().scan_text("XFS (sdc1): metadata I/O error in xfs_da_read_buf error 5")
    assert [h.spec.name for h in hits] == ["filesystem_error"]


def test_invalid_utf8_and_a_line_without_newline() -> None:
    buf = b"a \xff\xfe line\nkernel: segfault at 0 in \xc3(\n[9]: I/O error, dev sdz"
    hits = Matcher().scan(buf)
    assert [h.spec.name for h in hits] == ["segfault", "io_error"]
    assert "\ufffd" in hits[0].line
    assert hits[1].fields["device"] == "sdz"


def _custom(name: str, pattern: str, severity: str = "warn", **labels: str) -> CustomPattern:
    return CustomPattern(name=name, pattern=pattern, severity=severity, labels=dict(labels))


def test_custom_patterns_with_named_groups() -> None:
    nginx = compile_custom(
        _custom(
            "nginx_upstream_timeout",
            r"upstream timed out .* client: (?P<client>[\d.]+)",
            team="web",
        )
    )
    ssh = compile_custom(
        _custom("ssh_root", r"^.*sshd\[\d+\]: Accepted \w+ for root\b", "critical")
    )
    m = Matcher(LIBRARY, [nginx, ssh])
    text = (FIXTURES / "ubuntu-syslog-rfc3339.log").read_bytes() + (
        b"Nov 27 05:00:00 h sshd[1]: Accepted password for root from 10.0.0.1\n"
        b"Nov 27 05:00:01 h sshd[2]: Accepted password for rooted from 10.0.0.1\n"
    )
    hits = m.scan(text)
    custom = [h for h in hits if h.spec.custom]
    assert [h.spec.name for h in custom] == ["nginx_upstream_timeout", "ssh_root"]
    assert custom[0].fields == {"client": "10.0.0.7"}
    assert custom[0].spec.labels == (("team", "web"),)
    assert custom[0].spec.key_fields == ("client",)
    assert custom[1].spec.severity.label == "critical"
    assert custom[1].line.startswith("Nov 27 05:00:00 h sshd[1]")
    # the library still sees its own lines in the same scan
    assert [h.spec.name for h in hits if not h.spec.custom] == [
        "network_down",
        "io_error",
        "io_error",
        "filesystem_error",
    ]


def test_custom_pattern_is_matched_per_line() -> None:
    # "a\s+b" could match across a newline in the chunk; per line it must not
    spec = compile_custom(_custom("ab", r"alpha\s+beta"))
    hits = Matcher(LIBRARY, [spec]).scan(b"x alpha\nbeta y\nalpha beta\n")
    assert [h.line for h in hits] == ["alpha beta"]


def test_invalid_custom_regex_is_a_config_problem_naming_the_pattern() -> None:
    text = """
[[collector.log.custom_patterns]]
name = "good"
pattern = "ok (?P<n>\\\\d+)"

[[collector.log.custom_patterns]]
name = "broken_one"
pattern = "unbalanced (group"
severity = "critical"
"""
    result = load_config(text=text, env={})
    problems = [str(p) for p in result.problems]
    assert len(problems) == 1, problems
    assert problems[0].startswith("collector.log.custom_patterns[1].pattern:")
    assert "'unbalanced (group'" in problems[0]
    assert "missing )" in problems[0]
    cfg = result.config.collector.log
    assert [cp.pattern for cp in cfg.custom_patterns] == ["ok (?P<n>\\d+)", ""]
    assert [str(p) for p in cfg.check()] == [
        "collector.log.custom_patterns[1].pattern: required (pattern 'broken_one')"
    ]


@pytest.mark.slow
def test_check_config_reports_an_invalid_custom_regex(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(
        '[[collector.log.custom_patterns]]\nname = "bad"\npattern = "a[b"\nseverity = "warn"\n'
    )
    out = subprocess.run(
        [sys.executable, "-m", "sysops_agent", "check-config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode != 0
    assert "collector.log.custom_patterns[0].pattern" in out.stdout + out.stderr
    assert "'a[b'" in out.stdout + out.stderr


@pytest.mark.parametrize("pattern", ["", ".*", "x?", "^"])
def test_a_pattern_that_matches_every_line_is_refused(pattern: str) -> None:
    text = f'[[collector.log.custom_patterns]]\nname = "all"\npattern = "{pattern}"\n'
    problems = [str(p) for p in load_config(text=text, env={}).problems]
    assert len(problems) == 1 and "collector.log.custom_patterns[0].pattern" in problems[0]


def test_default_log_config_has_no_problems() -> None:
    assert LogConfig().check() == []
    assert load_config(text="", env={}).problems == []


def test_the_prefilter_finds_exactly_the_lines_the_library_matches() -> None:
    """Random lines made of anchor fragments, near misses and noise: same hits as a per-line
    search with the library's own regex (the prefilter only skips lines, never changes them)."""
    import random

    rnd = random.Random(7)
    pieces = [alt_anchor for spec in LIBRARY for _, alt_anchor in spec.detect]
    fragments = [
        *(re.sub(r"\[(.)[^\]]*\]", r"\1", a) for a in pieces),  # [Oo]ut -> Out
        *(a.replace("[", "").replace("]", "") for a in pieces),
        "EXT4-fs (vda1): mounted filesystem",
        "error",
        "ERROR",
        " ",
        "task x:1",
        "Killed",
        "\x01",
        "é",
        "120 seconds",
        "0 CE",
        "read-only",
        "kernel: ",
    ]
    lines = []
    for _ in range(3000):
        parts = rnd.choices(fragments, k=rnd.randint(1, 4))
        cut = rnd.randint(0, 3)
        lines.append("".join(parts)[cut:])
    verify = re.compile(
        "|".join(f"(?P<p{i}>{'|'.join(a for a, _ in s.detect)})" for i, s in enumerate(LIBRARY))
    )
    want = []
    for line in lines:
        m = verify.search(line)
        if m is not None and m.lastgroup is not None:
            want.append((LIBRARY[int(m.lastgroup[1:])].name, line))
    buf = "\n".join(lines).encode()
    got = [(h.spec.name, h.line) for h in Matcher().scan(buf)]
    assert got == want
    assert len(want) > 500


def test_the_prefilter_does_not_fire_on_common_benign_lines() -> None:
    m = Matcher()
    benign = (
        b"Nov 24 00:00:01 web-01 kernel: [1.5] EXT4-fs (vda1): mounted filesystem with ordered "
        b"data mode. Quota mode: none.\n"
        b"Nov 24 00:00:01 web-01 kernel: [1.5] e1000e: eth0 NIC Link is Up 1000 Mbps Full\n"
        b"Nov 24 00:00:01 web-01 kernel: [1.5] IPv6: ADDRCONF(NETDEV_CHANGE): veth1: link "
        b"becomes ready\n"
        b'Nov 24 00:00:01 web-01 dockerd[9]: level=error msg="Handler for GET returned error"\n'
        b"Nov 24 00:00:01 web-01 systemd[1]: Started Session 4 of user root.\n"
    )
    assert m.scan(benign * 100) == []
    assert sum(m.prefilter_hits) == 0
