"""The pattern library of SPEC §7, custom patterns, and the matcher that scans log text once.

Speed. A log file is scanned in big chunks (bytes, never split into lines
first). One alternation regex of all library patterns is far too slow in
Python's ``re`` (it tries every branch at every position: ~14 s for a
120 MB syslog, measured). So every library alternative names an *anchor*, text
that any matching line contains (literals and one-character classes), and the
:class:`Prefilter` finds the lines holding an anchor in one ``re`` pass over a
translated copy of the chunk (see there). Only those lines (0.1-0.2 % on
realistic files) are checked against their anchor's alternatives, then decoded
and matched with the full library regex, whose leftmost match decides the
pattern. ``bench/logs.py`` measures this next to ``grep -cE`` with
:func:`library_ere`, with each anchor's hit rate.

Custom patterns are arbitrary Python regexes: each is searched over the
decoded chunk (only decoded when custom patterns exist), and a hit counts
only if the pattern matches its line on its own, so matching is per line.

Every detect alternative is written in the subset shared by Python and POSIX
ERE (no ``(?:``, no lazy quantifiers), so that the benchmark can hand the very
same patterns to grep.

Size: most of this module is the pattern library itself (a table of data, one
entry per failure kind); the prefilter lives in ``prefilter.py``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

from sysops_agent.logwatch.config import CustomPattern
from sysops_agent.logwatch.prefilter import Prefilter
from sysops_agent.model import Severity


@dataclass(frozen=True)
class PatternSpec:
    """One pattern: how to find it, what to capture, how to name and count it."""

    name: str
    severity: Severity
    #: (alternative regex, anchor: text contained in every match of that alternative,
    #: literal characters and ``[..]`` one-character classes; the prefilter looks for it)
    detect: Tuple[Tuple[str, str], ...]
    #: regexes run on a matching line; the named groups of each that matches become fields
    extract: Tuple[str, ...] = ()
    #: fields that identify "the same event" for burst aggregation (e.g. the device)
    key_fields: Tuple[str, ...] = ()
    title: str = ""
    plural: str = ""
    #: texts after the title, formatted with the fields; the first whose fields all exist wins
    subjects: Tuple[str, ...] = ()
    #: the same for burst summaries, from key fields only
    key_subject: str = ""
    #: kernel_*_total counter incremented per occurrence
    counter: Optional[str] = None
    #: False for lines that only give context to another pattern (the oom-kill: summary)
    alerts: bool = True
    #: fixed labels (custom patterns)
    labels: Tuple[Tuple[str, str], ...] = ()
    custom: bool = False
    #: a kernel pattern: matched only in kernel records (see :func:`permits`)
    kernel: bool = True
    #: userland identities (syslog tag / SYSLOG_IDENTIFIER) whose lines may match too; for a
    #: non-kernel pattern, when set, only these (``kernel`` names the kernel's own records)
    idents: Tuple[str, ...] = ()
    #: source names (``kmsg``, ``journal``, ``files`` or a followed path); empty = all
    sources: Tuple[str, ...] = ()
    extract_rx: Tuple[re.Pattern[str], ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        if self.extract and not self.extract_rx:
            object.__setattr__(self, "extract_rx", tuple(re.compile(x) for x in self.extract))


#: the SPEC §7 table, with the context an operator needs extracted from each line
LIBRARY: Tuple[PatternSpec, ...] = (
    PatternSpec(
        "oom_kill",
        Severity.CRITICAL,
        # "Out of memory: Killed process 123 (foo)" (4.x+), "Out of memory: Kill process 123
        # (foo) score 9 or sacrifice child" (3.10), "Memory cgroup out of memory: Killed ..."
        detect=(("[Oo]ut of memory: Kill", "[Oo]ut of memory: Kill"),),
        extract=(
            r"Kill(?:ed)? process (?P<pid>\d+) \((?P<process>.+?)\)(?=[ ,]|$)",
            r"anon-rss:(?P<anon_rss>\d+kB)",
            r"\bUID:(?P<uid>\d+)",
        ),
        key_fields=("process",),
        title="OOM kill",
        plural="OOM kills",
        subjects=(
            ": killed process {process} (pid {pid}, unit {unit})",
            ": killed process {process} (pid {pid}, cgroup {cgroup})",
            ": killed process {process} (pid {pid})",
        ),
        key_subject=" of {process}",
        counter="kernel_oom_kills_total",
    ),
    PatternSpec(
        "oom_context",
        Severity.INFO,
        # 4.19+: "oom-kill:constraint=...,task_memcg=/system.slice/foo.service,task=foo,pid=1,uid=0"
        detect=(("oom-kill:", "oom-kill:"),),
        extract=(r"task_memcg=(?P<cgroup>[^,]*),task=(?P<process>[^,]*),pid=(?P<pid>\d+)",),
        alerts=False,
    ),
    PatternSpec(
        "hardware_error",
        Severity.CRITICAL,
        detect=(
            ("Hardware Error", "Hardware Error"),
            ("Machine [Cc]heck", "Machine [Cc]heck"),
            # bare MCE / ECC / EDAC also appear in boot banners ("MCE: In-kernel MCE decoding
            # enabled", "EDAC ie31200: No ECC support"): require an error word
            (r"\bMCE\b.*(error|ERROR)", "MCE"),
            (r"EDAC.*(error|ERROR|[0-9]+ [CU]E\b)", "EDAC"),
            (r"\bECC\b.*(error|ERROR)", "ECC"),
        ),
        extract=(r"EDAC (?:\S+ )?(?P<mc>MC\d+)", r"\bCPU:? ?(?P<cpu>\d+)"),
        key_fields=("mc",),
        # mcelog and rasdaemon decode machine checks in userland
        idents=("mcelog", "rasdaemon"),
        title="Hardware error",
        plural="hardware errors",
        subjects=(" on {mc}",),
        key_subject=" on {mc}",
        counter="kernel_hardware_errors_total",
    ),
    PatternSpec(
        "filesystem_error",
        Severity.CRITICAL,
        detect=(
            ("EXT[234]-fs error", "EXT[234]-fs error"),
            ("BTRFS error", "BTRFS error"),
            ("XFS.*error", "XFS"),
            ("Remounting.*read-only", "Remounting"),
        ),
        extract=(r"(?:EXT\d-fs|BTRFS|XFS)[^(]*\((?:device )?(?P<device>[^)\s:,]+)",),
        key_fields=("device",),
        title="Filesystem error",
        plural="filesystem errors",
        subjects=(" on {device}",),
        key_subject=" on {device}",
        counter="kernel_fs_errors_total",
    ),
    PatternSpec(
        "hung_task",
        Severity.WARN,
        detect=(("task .+ blocked for more than [0-9]+ seconds", " blocked for more than "),),
        extract=(r"task (?P<process>.+?):(?P<pid>\d+) blocked for more than (?P<seconds>\d+)",),
        key_fields=("process",),
        title="Hung task",
        plural="hung tasks",
        subjects=(": {process} (pid {pid}) blocked for more than {seconds} s",),
        key_subject=" of {process}",
        counter="kernel_hung_tasks_total",
    ),
    PatternSpec(
        "network_down",
        Severity.WARN,
        detect=(
            ("Link is Down", "Link is Down"),
            ("[Cc]arrier lost", "[Cc]arrier lost"),
            ("Lost carrier", "Lost carrier"),
            ("link is not ready", "link is not ready"),
        ),
        extract=(
            r"(?P<interface>[\w.@-]+) NIC Link is Down",
            r"(?P<interface>[\w.@-]+): (?:NIC )?(?:Link is Down|[Ll]ost carrier|[Cc]arrier lost"
            r"|link is not ready)",
            r"device \((?P<interface>[\w.@-]+)\)",
        ),
        key_fields=("interface",),
        # the network managers report carrier loss themselves ("eno1: Lost carrier")
        idents=("systemd-networkd", "NetworkManager", "dhcpcd"),
        title="Network link down",
        plural="network link-down events",
        subjects=(" on {interface}",),
        key_subject=" on {interface}",
    ),
    PatternSpec(
        "io_error",
        Severity.CRITICAL,
        detect=(("I/O [Ee]rror", "I/O [Ee]rror"), ("blk_update_request", "blk_update_request")),
        extract=(
            r"\bdev(?:ice)? (?P<device>[\w.:-]+?)(?=[,\s]|$)",
            r"\[(?P<device>sd[a-z]+|vd[a-z]+|xvd[a-z]+)\]",
            r"^(?:.*\s)?(?P<device>nvme\d+n\d+|nvme\d+)\b",
            r"\bsector (?P<sector>\d+)",
        ),
        key_fields=("device",),
        title="I/O error",
        plural="I/O errors",
        subjects=(" on {device}",),
        key_subject=" on {device}",
        counter="kernel_io_errors_total",
    ),
    PatternSpec(
        "segfault",
        Severity.WARN,
        detect=(("segfault at", "segfault at"),),
        extract=(
            r"(?P<process>[^\s\[]+)\[(?P<pid>\d+)\]: segfault at (?P<address>[0-9a-fA-F]+)",
            r" in (?P<object>[^\s\[]+)\[",
        ),
        key_fields=("process",),
        title="Segfault",
        plural="segfaults",
        subjects=(" in {process} (pid {pid})",),
        key_subject=" in {process}",
        counter="kernel_segfaults_total",
    ),
    PatternSpec(
        "kernel_bug",
        Severity.WARN,
        # a BUG or WARNING prints a dozen lines (the Call Trace below it): one burst, one alert
        detect=(
            ("BUG: ", "BUG: "),
            ("WARNING: CPU: ", "WARNING: CPU: "),
            ("Call Trace:", "Call Trace:"),
        ),
        extract=(
            r"BUG: (?P<bug>.{1,120})",
            r"WARNING: CPU: (?P<cpu>\d+) PID: (?P<pid>\d+) at (?P<where>\S{1,120})",
        ),
        title="Kernel BUG or WARNING",
        plural="kernel BUG/WARNING reports",
        subjects=(": {bug}", " at {where} (pid {pid})"),
    ),
    PatternSpec(
        "gpu_lost",
        Severity.CRITICAL,
        # NVIDIA's Xid catalogue: these mean the GPU is gone or its memory is corrupt
        # (79 fell off the bus, 48/63/64/92/94/95 ECC and row remapping, 74 NVLink,
        # 119/120 GSP firmware, 62 internal micro-controller halt). Application faults
        # (13, 31, 43, 45) are the program's problem and page nobody.
        detect=(
            (
                r"NVRM: Xid \([^)]*\): (48|62|63|64|74|79|92|94|95|119|120),",
                "NVRM: Xid",
            ),
        ),
        extract=(r"NVRM: Xid \((?P<device>[^)]*)\): (?P<xid>\d+),",),
        key_fields=("device",),
        title="GPU lost",
        plural="fatal GPU errors",
        subjects=(" (Xid {xid}) on {device}",),
        key_subject=" on {device}",
    ),
    PatternSpec(
        "kernel_panic",
        Severity.EMERGENCY,
        detect=(("Kernel panic", "Kernel panic"),),
        extract=(r"Kernel panic - not syncing: (?P<reason>.{1,200})",),
        title="Kernel panic",
        plural="kernel panics",
        subjects=(": {reason}",),
    ),
)

#: every counter, so that all of them can be emitted with 0 at start
COUNTERS: Tuple[str, ...] = tuple(p.counter for p in LIBRARY if p.counter)


def library_ere(library: Sequence[PatternSpec] = LIBRARY) -> str:
    """The library as one POSIX ERE (for ``grep -E``): the same alternatives we match."""
    return "|".join(alt for spec in library for alt, _ in spec.detect)


def compile_custom(cp: CustomPattern) -> PatternSpec:
    """A validated custom pattern (the config loader already rejected invalid regexes)."""
    return PatternSpec(
        cp.name,
        Severity.parse(cp.severity),
        detect=((cp.pattern, ""),),
        extract=(cp.pattern,),
        key_fields=tuple(sorted(re.compile(cp.pattern).groupindex)),
        title=cp.name,
        plural=f"{cp.name} events",
        labels=tuple(sorted(cp.labels.items())),
        custom=True,
        kernel=False,
        idents=tuple(cp.idents),
        sources=tuple(cp.sources),
    )


def permits(spec: PatternSpec, source: str, *, kernel: bool, ident: Optional[str]) -> bool:
    """Whether a hit of ``spec`` counts in a record from ``source`` (SPEC §7, trust).

    ``kernel`` says that the record is the kernel's own (every kmsg record, a journal
    entry with ``_TRANSPORT=kernel``, a syslog-file line tagged ``kernel`` while kmsg is
    not reading); ``ident`` is the writer's tag, if any. Kernel patterns match kernel
    records, plus the userland daemons in ``spec.idents``; userland patterns match
    anywhere, unless scoped with ``sources`` / ``idents``.
    """
    if (
        spec.sources
        and source not in spec.sources
        and not (source.startswith("/") and "files" in spec.sources)
    ):
        return False
    if spec.kernel:
        return kernel or (ident is not None and ident in spec.idents)
    if spec.idents:
        return ("kernel" if kernel else ident) in spec.idents
    return True


class Hit(NamedTuple):
    """A line that matched ``spec``; ``start`` is where the match begins in ``line``."""

    spec: PatternSpec
    line: str
    start: int
    fields: Dict[str, str]


def extract_fields(spec: PatternSpec, line: str) -> Dict[str, str]:
    """Named groups of every extract regex that matches; the first value of a name wins."""
    fields: Dict[str, str] = {}
    for rx in spec.extract_rx:
        m = rx.search(line)
        if m is None:
            continue
        for k, v in m.groupdict().items():
            if v is not None and k not in fields:
                fields[k] = v
    return fields


class Matcher:
    """Finds library and custom pattern hits in log text, scanning each chunk once."""

    def __init__(
        self,
        library: Sequence[PatternSpec] = LIBRARY,
        custom: Sequence[PatternSpec] = (),
    ) -> None:
        self.library = tuple(library)
        self.custom = tuple(custom)
        self._custom_rx = [(spec, re.compile(spec.detect[0][0], re.MULTILINE)) for spec in custom]
        anchors: List[str] = []
        #: per anchor, the alternatives it stands for, as bytes regexes (a line-level check)
        self._alts: List[List[re.Pattern[bytes]]] = []
        index: Dict[str, int] = {}
        branches = []
        for i, spec in enumerate(self.library):
            for alt, anchor in spec.detect:
                if not anchor:
                    raise ValueError(
                        f"library pattern {spec.name} has an alternative without anchor"
                    )
                if anchor not in index:
                    index[anchor] = len(anchors)
                    anchors.append(anchor)
                    self._alts.append([])
                self._alts[index[anchor]].append(re.compile(alt.encode()))
            branches.append(f"(?P<p{i}>{'|'.join(alt for alt, _ in spec.detect)})")
        self.prefilter = Prefilter(anchors) if anchors else None
        self._verify = re.compile("|".join(branches)) if branches else None
        #: lines the prefilter passed, per anchor, and lines that matched (bench/logs.py)
        self.prefilter_hits = [0] * len(anchors)
        self.confirmed = 0

    def scan(self, buf: bytes) -> List[Hit]:
        """Hits in ``buf`` (complete lines separated by ``\\n``), in line order per kind."""
        hits = self._scan_library(buf) if self.prefilter is not None else []
        if self._custom_rx:
            hits.extend(self._scan_custom(buf.decode("utf-8", "replace")))
        return hits

    def scan_text(self, text: str) -> List[Hit]:
        return self.scan(text.encode("utf-8", "replace"))

    def _scan_library(self, buf: bytes) -> List[Hit]:
        pre = self.prefilter
        assert pre is not None and self._verify is not None
        tbuf = buf.translate(pre.table)
        search = pre.rx.search
        find, rfind = buf.find, buf.rfind
        hits: List[Hit] = []
        counts = self.prefilter_hits
        alts = self._alts
        pos = 0
        n = len(buf)
        while True:
            m = search(tbuf, pos)
            if m is None:
                break
            a = pre.group_anchor[m.lastindex - 1]  # type: ignore[operator]
            counts[a] += 1
            ls = rfind(b"\n", 0, m.start()) + 1
            le = find(b"\n", m.end())
            if le < 0:
                le = n
            pos = le + 1
            # the anchor's own alternatives on the line: cheap, and a superset of what the
            # full (str) verification below accepts
            if not any(rx.search(buf, ls, le) for rx in alts[a]):
                # another anchor later on this line may still stand for a match
                pos = m.end()
                continue
            line = buf[ls:le].decode("utf-8", "replace")
            v = self._verify.search(line)
            if v is None or v.lastgroup is None:
                continue
            self.confirmed += 1
            spec = self.library[int(v.lastgroup[1:])]
            hits.append(Hit(spec, line, v.start(), extract_fields(spec, line)))
        return hits

    def _scan_custom(self, text: str) -> List[Hit]:
        hits: List[Hit] = []
        n = len(text)
        for spec, rx in self._custom_rx:
            pos = 0
            while pos <= n:
                m = rx.search(text, pos)
                if m is None:
                    break
                ls = text.rfind("\n", 0, m.start()) + 1
                le = text.find("\n", m.start())
                if le < 0:
                    le = n
                line = text[ls:le]
                # per-line semantics: a match that ran over a newline does not count
                m2 = rx.search(line)
                if m2 is not None:
                    fields = {k: v for k, v in m2.groupdict().items() if v is not None}
                    hits.append(Hit(spec, line, m2.start(), fields))
                pos = le + 1
        return hits


_SYSLOG_HEADER = re.compile(
    r"^(?:[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d|\d{4}-\d\d-\d\dT\S+) \S+ "
    r"(?P<ident>[^\s\[:]+)(?:\[(?P<pid>\d+)\])?: "
)


def parse_syslog_header(line: str) -> Dict[str, str]:
    """``ident`` and ``pid`` from an rsyslog line (traditional or RFC 3339 timestamps)."""
    m = _SYSLOG_HEADER.match(line)
    if m is None:
        return {}
    return {k: v for k, v in m.groupdict().items() if v is not None}


def format_subject(templates: Sequence[str], fields: Dict[str, str]) -> str:
    """The first template whose fields all exist, formatted; "" when none fits."""
    for template in templates:
        try:
            return template.format(**fields)
        except (KeyError, IndexError, ValueError):
            continue
    return ""
