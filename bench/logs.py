"""Log matcher throughput: our file source + pattern library next to ``grep -cE``.

    .venv/bin/python bench/logs.py [--lines 1000000] [--file /tmp/sysops-bench-syslog]
                                   [--runs 3] [--custom] [--gen ../shared/tools/logs/gen_syslog.py]

Two files: this script's own and the shared generator's (``gen_syslog.py``, a
realistic mix with benign lines that share words with the patterns, such as
``EXT4-fs (vda1): mounted filesystem``; skipped when the generator is missing).
For each, lines per second next to grep's, the ratio, and the hit rate of every
prefilter anchor (lines it let through, and how many of them matched); for the
generator's file, our counts per category against its printed ground truth.

Generates (once, seeded) a realistic rsyslog file — sshd, CRON, systemd, the
kernel's firewall lines, postfix, dockerd, nginx, kubelet, sudo, … with
0.1 % of the lines being library events (OOM kills with their ``oom-kill:``
line, I/O, filesystem, hardware errors, hung tasks, segfaults, links down) —
then reads it the way the tail source does (``FileFollower``: 256 KiB preads,
chunk scan, hits decoded and parsed) and prints lines per second, next to
``grep -cE`` given the very same patterns (:func:`library_ere`) on the same
file. Both must count the same matching lines. Best of ``--runs``; CPU time
is shown too because the machine may be shared. ``--custom`` adds two custom
patterns (which makes us decode every chunk).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import string
import subprocess
import sys
import time
from typing import Callable, Dict, List, Optional, Tuple

from sysops_agent.clock import SystemClock
from sysops_agent.logwatch.config import CustomPattern
from sysops_agent.logwatch.patterns import LIBRARY, Hit, Matcher, compile_custom, library_ere
from sysops_agent.logwatch.tail import FileFollower

NORMAL = [
    "sshd[{pid}]: Accepted publickey for deploy from 10.0.{a}.{b} port {port} ssh2: RSA SHA256:{b64}",
    "sshd[{pid}]: pam_unix(sshd:session): session opened for user deploy(uid=1000) by (uid=0)",
    "sshd[{pid}]: Disconnected from user deploy 10.0.{a}.{b} port {port}",
    "sshd[{pid}]: Invalid user admin from 185.{a}.{b}.7 port {port}",
    "CRON[{pid}]: (root) CMD (command -v debian-sa1 > /dev/null && debian-sa1 1 1)",
    "CRON[{pid}]: pam_unix(cron:session): session closed for user root",
    "systemd[1]: Started Session {a} of User deploy.",
    "systemd[1]: Starting Daily apt download activities...",
    "systemd[1]: logrotate.service: Succeeded.",
    "systemd[1]: Finished Rotate log files.",
    "kernel: [{up}] [UFW BLOCK] IN=eth0 OUT= MAC=52:54:00:12:34:56:52:54:00:ab:cd:ef:08:00 "
    "SRC=185.{a}.{b}.7 DST=10.0.0.5 LEN=40 TOS=0x00 PREC=0x00 TTL=244 ID={port} PROTO=TCP "
    "SPT={port} DPT=23 WINDOW=1024 RES=0x00 SYN URGP=0",
    'kernel: [{up}] audit: type=1400 audit({up}:{a}): apparmor="DENIED" operation="open" '
    'profile="snap.lxd.daemon" name="/proc/{pid}/mounts" pid={pid} comm="lxd"',
    "postfix/smtpd[{pid}]: connect from unknown[203.0.113.{a}]",
    "postfix/smtpd[{pid}]: disconnect from unknown[203.0.113.{a}] ehlo=1 mail=1 rcpt=0/1 quit=1",
    "postfix/qmgr[{pid}]: {hex}: removed",
    'dockerd[{pid}]: time="2026-11-27T03:12:45.123456789Z" level=error msg="Handler for GET '
    '/v1.41/containers/json returned error: context canceled"',
    'dockerd[{pid}]: time="2026-11-27T03:12:45.123456789Z" level=info msg="ignoring event" '
    "container={hex}{hex} module=libcontainerd namespace=moby topic=/tasks/delete",
    "nginx[{pid}]: 2026/11/27 03:12:45 [warn] {pid}#{pid}: *{port} an upstream response is "
    "buffered to a temporary file /var/cache/nginx/proxy_temp/1/00/{port}",
    "dhclient[{pid}]: DHCPACK of 10.0.0.5 from 10.0.0.1 (xid=0x{hex})",
    "systemd-logind[{pid}]: New session {a} of user deploy.",
    "systemd-logind[{pid}]: Removed session {a}.",
    'rsyslogd[{pid}]: [origin software="rsyslogd" swVersion="8.2302.0" x-pid="{pid}" '
    'x-info="https://www.rsyslog.com"] rsyslogd was HUPed',
    'containerd[{pid}]: time="2026-11-27T03:12:45Z" level=info msg="shim disconnected" id={hex}',
    'kubelet[{pid}]: I1127 03:12:45.123456 {pid} kubelet_getters.go:182] "Pod status updated" '
    'pod="kube-system/coredns-{hex}" status=Running',
    "sudo[{pid}]:   deploy : TTY=pts/0 ; PWD=/home/deploy ; USER=root ; "
    "COMMAND=/usr/bin/systemctl restart nginx",
    "snapd[{pid}]: storehelpers.go:769: cannot refresh: snap has no updates available",
    "ntpd[{pid}]: adjusting local clock by 0.00{a}s",
    "smartd[{pid}]: Device: /dev/sda [SAT], SMART Usage Attribute: 194 Temperature_Celsius "
    "changed from {a} to {b}",
]
EVENTS = [
    [
        "kernel: [{up}] oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,"
        "mems_allowed=0,global_oom,task_memcg=/system.slice/app{a}.service,task=java,"
        "pid={pid},uid=997",
        "kernel: [{up}] Out of memory: Killed process {pid} (java) total-vm:8123456kB, "
        "anon-rss:4012345kB, file-rss:0kB, shmem-rss:0kB, UID:997 pgtables:8200kB oom_score_adj:0",
    ],
    [
        "kernel: [{up}] blk_update_request: I/O error, dev sdb, sector {port} op 0x0:(READ) "
        "flags 0x0 phys_seg 1 prio class 0"
    ],
    ["kernel: [{up}] Buffer I/O error on dev sdb1, logical block {port}, async page read"],
    [
        "kernel: [{up}] EXT4-fs error (device sda1): ext4_find_entry:1455: inode #2: comm ls: "
        "reading directory lblock 0"
    ],
    ["kernel: [{up}] INFO: task jbd2/sda1-8:{pid} blocked for more than 120 seconds."],
    [
        "kernel: [{up}] app[{pid}]: segfault at 0 ip 00007f2a3c4d5e6f sp 00007ffd1a2b3c40 "
        "error 4 in libc.so.6[7f2a3c400000+195000]"
    ],
    ["kernel: [{up}] e1000e 0000:00:1f.6 eth0: NIC Link is Down"],
    ["kernel: [{up}] mce: [Hardware Error]: Machine check events logged"],
    [
        "kernel: [{up}] EDAC MC0: 1 CE memory read error on CPU_SrcID#0_Ha#0_Chan#1_DIMM#0 "
        "(channel:1 slot:0 page:0x{hex} offset:0x0 grain:32)"
    ],
]
CUSTOM = [
    ("nginx_upstream_timeout", r"upstream timed out .* client: [0-9.]+"),
    ("ssh_failed_root", r"Failed password for root from"),
]
CUSTOM_LINES = [
    "nginx[{pid}]: 2026/11/27 03:12:45 [error] {pid}#{pid}: *{port} upstream timed out (110: "
    "Connection timed out) while reading response header from upstream, client: 10.0.{a}.{b}",
    "sshd[{pid}]: Failed password for root from 185.{a}.{b}.9 port {port} ssh2",
]


def generate(path: str, lines: int, custom: bool, seed: int = 1) -> int:
    """Write the file; returns the number of matching lines it holds."""
    rnd = random.Random(seed)
    alphabet = string.ascii_letters + string.digits

    def fill(t: str) -> str:
        return t.format(
            pid=rnd.randint(300, 99999),
            a=rnd.randint(0, 255),
            b=rnd.randint(0, 255),
            port=rnd.randint(1024, 65535),
            b64="".join(rnd.choices(alphabet, k=43)),
            up=f"{rnd.randint(100, 999999)}.{rnd.randint(0, 999999):06d}",
            hex=f"{rnd.getrandbits(40):010X}",
        )

    target = lines // 1000  # 0.1 % of the lines match
    event_at = set(rnd.sample(range(lines), target))
    matching = 0
    out: List[str] = []
    i = 0
    with open(path, "w", encoding="utf-8") as f:
        while i < lines:
            s = i % 86400
            ts = f"Nov 27 {s // 3600:02d}:{(s // 60) % 60:02d}:{s % 60:02d}"
            if i in event_at and matching < target:
                group = (
                    [rnd.choice(CUSTOM_LINES)]
                    if custom and rnd.random() < 0.3
                    else rnd.choice(EVENTS)
                )
                for t in group[: min(lines - i, target - matching)]:
                    out.append(f"{ts} web01 {fill(t)}\n")
                    matching += 1
                    i += 1
                continue
            out.append(f"{ts} web01 {fill(rnd.choice(NORMAL))}\n")
            i += 1
            if len(out) >= 10000:
                f.writelines(out)
                out.clear()
        f.writelines(out)
    return matching


def best_of(runs: int, fn: Callable[[], int]) -> Tuple[int, float, float]:
    """(result, best wall seconds, best CPU seconds)."""
    result, walls, cpus = 0, [], []
    for _ in range(runs):
        w, c = time.perf_counter(), time.process_time()
        result = fn()
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return result, min(walls), min(cpus)


def ours(path: str, matcher: Matcher, per_pattern: Optional[Dict[str, int]] = None) -> int:
    hits = 0

    def deliver(source: str, hit: Hit, meta: Dict[str, str]) -> None:
        nonlocal hits
        hits += 1
        if per_pattern is not None:
            per_pattern[hit.spec.name] = per_pattern.get(hit.spec.name, 0) + 1

    st = os.stat(path)
    saved = {"files": [{"dev": st.st_dev, "ino": st.st_ino, "offset": 0, "fp": ""}]}
    follower = FileFollower(path, matcher, deliver, SystemClock(), saved)
    while follower.poll():
        pass
    follower.close()
    return hits


def grep(path: str, ere: str) -> Tuple[int, float, float]:
    exe = shutil.which("grep")
    if exe is None:
        sys.exit("grep not found")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    w = time.perf_counter()
    out = subprocess.run([exe, "-cE", ere, path], capture_output=True, text=True, check=False)
    wall = time.perf_counter() - w
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return int(out.stdout.strip() or 0), wall, cpu


#: gen_syslog.py's categories -> the library patterns that count them
CATEGORIES = {
    "oom": ("oom_kill",),
    "hw": ("hardware_error",),
    "fs": ("filesystem_error",),
    "ro": (),  # "Remounting filesystem read-only" is a filesystem_error too: counted with fs
    "hung": ("hung_task",),
    "net": ("network_down",),
    "io": ("io_error",),
    "crash": ("segfault", "kernel_panic"),
}


def compare(path: str, lines: int, matcher: Matcher, ere: str, runs: int, expected: int) -> bool:
    """Print ours vs grep and the prefilter hit rates for one file; True when counts agree."""
    with open(path, "rb") as f:  # warm the page cache for both
        while f.read(1 << 24):
            pass
    hits, wall, cpu = best_of(runs, lambda: ours(path, matcher))
    g_hits, g_wall, g_cpu = min((grep(path, ere) for _ in range(runs)), key=lambda r: r[1])
    print(f"grep -cE '<{len(ere)} chars: the library alternatives>' {path}")
    print(
        f"{'':14}{'matching':>10}{'wall s':>9}{'cpu s':>8}{'lines/s (wall)':>17}{'lines/s (cpu)':>16}"
    )
    for name, n, w, c in (("sysops-agent", hits, wall, cpu), ("grep -cE", g_hits, g_wall, g_cpu)):
        print(
            f"{name:14}{n:>10,}{w:>9.3f}{c:>8.3f}{lines / w:>17,.0f}{lines / max(c, 1e-9):>16,.0f}"
        )
    print(
        f"ours / grep: {g_wall / wall:.2f} of grep's speed (wall), {g_cpu / max(cpu, 1e-9):.2f} (cpu)"
        " (target >= 0.33)"
    )
    # hit rates, from one more pass with fresh counters
    fresh = Matcher(matcher.library, matcher.custom)
    ours(path, fresh)
    pre = fresh.prefilter
    assert pre is not None
    print(f"prefilter: key bytes {pre.keys.decode()!r}; lines let through per anchor:")
    print(f"  {'anchor':28}{'lines':>8}{'% of lines':>12}")
    for anchor, n in zip(pre.anchors, fresh.prefilter_hits):
        print(f"  {anchor:28}{n:>8,}{100 * n / lines:>11.4f}%")
    passed = sum(fresh.prefilter_hits)
    print(
        f"  {'all anchors':28}{passed:>8,}{100 * passed / lines:>11.4f}%"
        f"   ({fresh.confirmed:,} of them matched a pattern)"
    )
    ok = hits == g_hits == expected
    if not ok:
        print(f"MISMATCH: ours {hits}, grep {g_hits}, expected {expected}")
    return ok


def gen_file(gen: str, out: str, lines: int) -> Optional[Dict[str, object]]:
    """Run the shared generator; its ground truth (None when it is not there)."""
    if not os.path.exists(gen):
        print(f"{gen} not found: the generator's file is skipped")
        return None
    res = subprocess.run(
        [sys.executable, gen, "--out", out, "--lines", str(lines), "--seed", "42"],
        capture_output=True,
        text=True,
        check=True,
    )
    truth: Dict[str, object] = json.loads(res.stdout.strip().splitlines()[-1])
    return truth


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--file", default="/tmp/sysops-bench-syslog")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--custom", action="store_true", help="add two custom patterns")
    parser.add_argument(
        "--gen",
        default=os.path.join(
            os.path.dirname(os.path.abspath(__file__)),
            "..",
            "..",
            "shared",
            "tools",
            "logs",
            "gen_syslog.py",
        ),
        help="the shared generator (default: ../shared/tools/logs/gen_syslog.py)",
    )
    args = parser.parse_args()

    path = args.file + (".custom" if args.custom else "")
    t = time.perf_counter()
    expected = generate(path, args.lines, args.custom)
    size = os.path.getsize(path)
    print(
        f"generated {path}: {args.lines:,} lines, {size / 1e6:.0f} MB, "
        f"{expected:,} matching ({100 * expected / args.lines:.2f} %) in {time.perf_counter() - t:.1f} s"
    )
    custom = (
        [compile_custom(CustomPattern(name=n, pattern=p)) for n, p in CUSTOM] if args.custom else []
    )
    matcher = Matcher(LIBRARY, custom)
    ere = "|".join([library_ere(), *(p for _, p in CUSTOM)] if args.custom else [library_ere()])
    ok = compare(path, args.lines, matcher, ere, args.runs, expected)

    gen_out = args.file + ".gen"
    truth = gen_file(args.gen, gen_out, args.lines)
    if truth is not None:
        print()
        print(f"generated {gen_out} with {args.gen}: {json.dumps(truth)}")
        matcher = Matcher(LIBRARY)
        ok = (
            compare(
                gen_out,
                args.lines,
                matcher,
                library_ere(),
                args.runs,
                int(str(truth["alert_lines"])),
            )
            and ok
        )
        per: Dict[str, int] = {}
        ours(gen_out, Matcher(LIBRARY), per)
        cats = truth["per_category"]
        assert isinstance(cats, dict)
        print(f"  {'category':10}{'truth':>7}{'ours':>7}  patterns")
        for cat, names in CATEGORIES.items():
            if not names:
                continue
            want = int(cats.get(cat, 0)) + (int(cats.get("ro", 0)) if cat == "fs" else 0)
            got = sum(per.get(n, 0) for n in names)
            flag = "" if want == got else "   MISMATCH"
            ok = ok and want == got
            label = "fs+ro" if cat == "fs" else cat
            print(f"  {label:10}{want:>7}{got:>7}  {', '.join(names)}{flag}")
    if not ok:
        sys.exit("MISMATCH")


if __name__ == "__main__":
    main()
