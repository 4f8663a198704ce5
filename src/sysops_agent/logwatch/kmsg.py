"""``/dev/kmsg``: the kernel ring buffer, one record per ``read()`` (PLATFORMS.md).

A record is ``prio,seq,usec,flags[,more];message\\n`` followed by optional
continuation lines that start with a space (``SUBSYSTEM=…``, ``DEVICE=…``).
``EPIPE`` means records were overwritten before we read them; the next read
returns the oldest record left, and the jump in ``seq`` tells how many were
lost. The fd is non-blocking and watched with the event loop's ``add_reader``.

Position. The last sequence number read is saved (with the boot id, since
sequence numbers restart at boot) in ``<data_dir>/kmsg.state``. First start:
the records already in the buffer are read and skipped (that also tells us
the current sequence number). Restart in the same boot: every record up to
the saved number is skipped, so nothing is replayed, and a gap to the first
record left is counted as lost. After a reboot: the whole buffer is new and
is read (the errors that happened while the agent was not running yet).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
from typing import Callable, Dict, List, NamedTuple, Optional

from sysops_agent.clock import Clock
from sysops_agent.fsutil import StrPath
from sysops_agent.logwatch.config import LogConfig
from sysops_agent.logwatch.patterns import Hit, Matcher, permits
from sysops_agent.logwatch.source import SourceContext
from sysops_agent.logwatch.state import load_state, save_state
from sysops_agent.throttle import ThrottledWarnings

log = logging.getLogger("sysops_agent.logwatch")

#: one read returns one whole record or fails with EINVAL: the kernel caps a record
#: at ~1 KiB of text plus its dictionary (CONSOLE_EXT_LOG_MAX = 8 KiB); 16 KiB is ample
READ_SIZE = 16384
#: records handled per readiness callback before yielding to the event loop
BATCH = 256
LEVELS = ("emerg", "alert", "crit", "err", "warning", "notice", "info", "debug")


class KmsgRecord(NamedTuple):
    facility: int
    level: int
    seq: int
    usec: int
    message: str
    #: continuation lines (``KEY=value``)
    extra: Dict[str, str]


def parse_record(raw: bytes) -> Optional[KmsgRecord]:
    """Parse one record; None when it is malformed."""
    text = raw.decode("utf-8", "replace")
    head, sep, rest = text.partition(";")
    if not sep:
        return None
    parts = head.split(",")
    if len(parts) < 4:
        return None
    try:
        prio, seq, usec = int(parts[0]), int(parts[1]), int(parts[2])
    except ValueError:
        return None
    lines = rest.split("\n")
    extra: Dict[str, str] = {}
    for cont in lines[1:]:
        if cont.startswith(" "):
            k, _, v = cont[1:].partition("=")
            extra[k] = v
    return KmsgRecord(prio >> 3, prio & 7, seq, usec, lines[0], extra)


def read_boot_id(path: str) -> str:
    try:
        with open(path, encoding="ascii", errors="replace") as f:
            return f.read().strip()
    except OSError:
        return ""


class KmsgSource:
    name = "kmsg"

    def __init__(
        self,
        path: str,
        state_path: StrPath,
        matcher: Matcher,
        deliver: Callable[[str, Hit, Dict[str, str]], None],
        clock: Clock,
        *,
        boot_id_path: str = "/proc/sys/kernel/random/boot_id",
        poll_interval: float = 1.0,
    ) -> None:
        self.path = path
        self.state_path = os.fspath(state_path)
        self.matcher = matcher
        self.deliver = deliver
        self.clock = clock
        self.boot_id_path = boot_id_path
        self.poll_interval = poll_interval
        self.fd: Optional[int] = None
        self.boot_id = ""
        self.last_seq: Optional[int] = None
        self.saved_seq: Optional[int] = None
        self.skip_upto = -1
        self.skipping_existing = False
        self.records = 0
        self.lost = 0
        #: "records were overwritten": the first at once, then one line per 10 minutes
        self._warnings = ThrottledWarnings(log, monotonic=clock.monotonic)
        self._lost_unreported = 0
        self.error: Optional[str] = None
        self._done: Optional[asyncio.Future[None]] = None
        self._reader = False

    def _open(self) -> bool:
        try:
            self.fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as e:
            hint = (
                " (needs CAP_SYSLOG or kernel.dmesg_restrict=0)"
                if e.errno
                in (
                    errno.EPERM,
                    errno.EACCES,
                )
                else ""
            )
            log.warning("kmsg source off: cannot open %s: %s%s", self.path, e.strerror, hint)
            return False
        if self.last_seq is not None:  # re-opened after an error: continue in memory
            self.skip_upto = self.last_seq
            return True
        self.boot_id = read_boot_id(self.boot_id_path)
        state = load_state(self.state_path)
        seq = state.get("seq") if state else None
        if state and isinstance(seq, int) and state.get("boot_id") == self.boot_id:
            self.skip_upto = seq
            self.last_seq = seq
            log.info("kmsg: continuing after record %d", seq)
        elif state:
            log.info("kmsg: new boot since the last run; reading the whole buffer")
        else:
            self.skipping_existing = True
        return True

    async def run(self) -> None:
        self.error = None
        if not self._open():
            return
        assert self.fd is not None
        loop = asyncio.get_running_loop()
        self._done = loop.create_future()
        try:
            loop.add_reader(self.fd, self.read_available)
            self._reader = True
        except (OSError, NotImplementedError, ValueError):
            self._reader = False  # not pollable (unusual kernels, tests): poll on the clock
        try:
            if self._reader:
                self.read_available()
                await self._done
            else:
                while not self._done.done():
                    self.read_available()
                    await self.clock.sleep(self.poll_interval)
        finally:
            self.close()
        if self.error:
            raise OSError(f"kmsg: {self.error}")  # the analyzer restarts the source

    def read_available(self) -> None:
        """Read the records available now (at most :data:`BATCH`; the loop calls again)."""
        if self.fd is None:
            return
        for _ in range(BATCH):
            try:
                raw = os.read(self.fd, READ_SIZE)
            except BlockingIOError:
                self._caught_up()
                return
            except BrokenPipeError:
                continue  # overwritten records; the seq jump of the next one counts them
            except OSError as e:
                self.error = f"read failed: {e.strerror or e}"
                self.close()
                return
            if not raw:
                self._caught_up()
                return
            try:
                self._handle(raw)
            except Exception:  # one bad record must not stop the kernel log
                log.exception("kmsg: cannot handle record %r", raw[:200])

    def _caught_up(self) -> None:
        if self.skipping_existing:
            self.skipping_existing = False
            log.info("kmsg: skipped the records already there; following after %s", self.last_seq)

    def _handle(self, raw: bytes) -> None:
        rec = parse_record(raw)
        if rec is None:
            return
        if rec.seq <= self.skip_upto:
            return
        if self.last_seq is not None and rec.seq > self.last_seq + 1:
            gap = rec.seq - self.last_seq - 1
            self.lost += gap
            self._lost_unreported += gap
            if self._warnings.warning(
                "overwritten",
                "kmsg: %d records were overwritten before they could be read "
                "(total %d; said at most every 10 minutes)",
                self._lost_unreported,
                self.lost,
                count=False,
            ):
                self._lost_unreported = 0
        self.last_seq = rec.seq
        if self.skipping_existing:
            return
        self.records += 1
        # every record is the kernel's own: the one source kernel patterns can trust fully
        meta = {"level": LEVELS[rec.level], "transport": "kernel"}
        hits: List[Hit] = self.matcher.scan_text(rec.message)
        for hit in hits:
            if permits(hit.spec, self.name, kernel=True, ident=None):
                self.deliver(self.name, hit, meta)

    @property
    def reading(self) -> bool:
        """Open and reading: syslog files' kernel lines are then left to this source."""
        return self.fd is not None and self.error is None

    def save_state(self) -> None:
        if self.last_seq is None or self.last_seq == self.saved_seq:
            return
        if save_state(self.state_path, {"boot_id": self.boot_id, "seq": self.last_seq}):
            self.saved_seq = self.last_seq

    def close(self) -> None:
        if self.fd is not None:
            if self._reader:
                with contextlib.suppress(RuntimeError, ValueError, OSError):
                    asyncio.get_running_loop().remove_reader(self.fd)
                self._reader = False
            os.close(self.fd)
            self.fd = None
        if self._done is not None and not self._done.done():
            self._done.set_result(None)


def create(config: LogConfig, ctx: SourceContext) -> Optional[KmsgSource]:
    """``kmsg = true``: the kernel ring buffer."""
    if not config.kmsg:
        return None
    return KmsgSource(
        ctx.kmsg_path,
        os.path.join(ctx.data_dir, "kmsg.state"),
        ctx.matcher,
        ctx.deliver,
        ctx.clock,
        boot_id_path=ctx.boot_id_path,
        poll_interval=config.poll_interval_secs,
    )
