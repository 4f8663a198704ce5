"""Syslog files followed like ``tail -F``, polled on the clock (no inotify needed).

Per path, each poll:

- **rename rotation** (the path now names another inode): the old file is read
  to its end and kept open for ``grace`` seconds more (a writer may still
  append before it reopens — rsyslog does until its HUP), then closed; the new
  file is read from its start.
- **copytruncate** (same inode, size below our offset — or the bytes just
  before our offset changed, i.e. truncated and refilled): the lines written
  since the last poll exist only in logrotate's copy, so the copy is looked for
  (``<path>.1`` first, then other uncompressed ``<path>.*``: the one holding the
  bytes we read, at the same offset) and its unread tail is read first; then the
  file is read from 0. (A copy compressed at once, without ``delaycompress``,
  cannot be read: those lines are lost, as logrotate's manual warns.)
- **deleted** (no file at the path): the open file is still read; when the
  path reappears it is a rotation.
- **created later** (no file at start): read from its start once it appears.
- a **partial last line** is kept until its newline arrives (or its file is
  rotated away, or it exceeds :data:`MAX_LINE`); **invalid UTF-8** becomes U+FFFD.

Positions are saved in ``<data_dir>/files.state``: per path the device, inode,
offset of the end of the last complete line and a fingerprint of the bytes
before it. A restart continues there — in the rotated file if the path was
rotated meanwhile (found among ``<path>*`` by inode). First start with no
saved position: from the end (old lines are history, not news).

Reading is chunked (:data:`CHUNK`) and handed to the matcher without splitting
lines; at most :data:`SLICE` bytes are read before yielding to the event loop.

Size: following a file through every kind of rotation (rename, copytruncate
with the rotated copy, delete and recreate, rotation while stopped) is one
state machine per file, kept together so its invariants are in one place.
"""

from __future__ import annotations

import asyncio
import errno
import glob
import logging
import os
from typing import Any, Callable, Dict, List, Optional, Tuple

from sysops_agent.clock import Clock, until_next
from sysops_agent.fsutil import StrPath
from sysops_agent.logwatch.config import LogConfig
from sysops_agent.logwatch.patterns import Matcher, parse_syslog_header, permits
from sysops_agent.logwatch.source import Deliver, SourceContext
from sysops_agent.logwatch.state import load_state, save_state
from sysops_agent.throttle import ThrottledWarnings

log = logging.getLogger("sysops_agent.logwatch")

#: bytes per read: 64-256 KiB measured fastest for the matcher (stays in the CPU cache)
CHUNK = 256 * 1024
#: bytes read from one file before giving other tasks a turn
SLICE = 8 * 1024 * 1024
#: a "line" without a newline this long is delivered as it is (bounded memory)
MAX_LINE = 64 * 1024
#: bytes before the offset compared to tell a truncated-and-refilled file from ours
FINGERPRINT = 64
#: seconds a rotated-away file is still read after rotation
ROTATE_GRACE = 5.0
#: rotated copies with these suffixes are compressed: never read
COMPRESSED = (".gz", ".xz", ".bz2", ".zst", ".lz4", ".Z")


class _Handle:
    """One open file and how far we have read it."""

    def __init__(self, fd: int, st: os.stat_result, offset: int) -> None:
        self.fd = fd
        self.dev = st.st_dev
        self.ino = st.st_ino
        self.offset = offset  # bytes read (complete lines + partial)
        self.partial = b""
        self.tail = b""  # up to FINGERPRINT bytes before ``offset``
        self.rotated_at: Optional[float] = None

    @property
    def committed(self) -> int:
        """Offset just after the last complete line."""
        return self.offset - len(self.partial)

    def same_file(self, st: os.stat_result) -> bool:
        return (st.st_dev, st.st_ino) == (self.dev, self.ino)

    def close(self) -> None:
        os.close(self.fd)


def _stat(path: str) -> Optional[os.stat_result]:
    try:
        return os.stat(path)
    except OSError:
        return None


def _read_at(fd: int, offset: int, n: int) -> bytes:
    try:
        return os.pread(fd, n, offset)
    except OSError:
        return b""


def _parse_positions(
    saved: Optional[Dict[str, Any]], path: str
) -> List[Tuple[Tuple[int, int], int, bytes]]:
    """Saved ((dev, inode), offset, fingerprint) entries; damaged ones are left out (logged)."""
    entries = saved.get("files") if saved else None
    out = []
    for entry in entries if isinstance(entries, list) else []:
        try:
            key = (int(entry["dev"]), int(entry["ino"]))
            out.append((key, int(entry["offset"]), bytes.fromhex(str(entry.get("fp", "")))))
        except (TypeError, KeyError, ValueError):
            log.warning("ignoring a damaged saved position for %s: %r", path, entry)
    return out


#: how often a path that does not exist is looked for (when no followed file exists)
ABSENT_POLL_SECS = 10.0


class FileFollower:
    """Follows one path. :meth:`poll` does one round; it returns True when data is pending."""

    def __init__(
        self,
        path: str,
        matcher: Matcher,
        deliver: Deliver,
        clock: Clock,
        saved: Optional[Dict[str, Any]] = None,
        *,
        grace: float = ROTATE_GRACE,
        kernel_lines: Callable[[], bool] = lambda: True,
    ) -> None:
        self.path = path
        self.kernel_lines = kernel_lines
        self.matcher = matcher
        self.deliver = deliver
        self.clock = clock
        self.saved = saved
        self.grace = grace
        self.cur: Optional[_Handle] = None
        self.draining: List[_Handle] = []
        self.started = False
        self.bytes_read = 0
        self.rotations = 0
        self.truncations = 0
        #: rotated copies whose unread tail was read after a copytruncate
        self.copies_read = 0
        self.open_error: Optional[str] = None
        #: a file that keeps failing (or flaps) is one line per 10 minutes, with a count
        self.warnings = ThrottledWarnings(log, monotonic=clock.monotonic)

    # -- opening --------------------------------------------------------------

    def _open(self, st_hint: Optional[os.stat_result] = None) -> Optional[_Handle]:
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as e:
            error = str(e.strerror or e)
            if st_hint is not None and error != self.open_error:
                hint = (
                    " (needs CAP_DAC_READ_SEARCH or the adm group)"
                    if e.errno == errno.EACCES
                    else ""
                )
                self.warnings.warning(
                    "open", "cannot open %s: %s%s; retrying quietly", self.path, error, hint
                )
            self.open_error = error
            return None
        self.open_error = None
        return _Handle(fd, os.fstat(fd), 0)

    def _resume(self, h: _Handle, offset: int, fp: bytes) -> bool:
        """Position ``h`` at a saved offset if the file still holds what we read."""
        size = os.fstat(h.fd).st_size
        if offset > size:
            return False
        if fp and _read_at(h.fd, offset - len(fp), len(fp)) != fp:
            return False
        h.offset = offset
        h.tail = fp
        return True

    def _start(self, st: os.stat_result) -> None:
        """First poll: continue from the saved positions, or start at the end."""
        h = self._open(st)
        if h is None:
            return
        self.cur = h
        positions = _parse_positions(self.saved, self.path)
        if not positions:
            size = os.fstat(h.fd).st_size
            h.offset = size
            h.tail = _read_at(h.fd, max(0, size - FINGERPRINT), min(size, FINGERPRINT))
            return
        # saved oldest first: rotated files we had not finished, then the file at the path;
        # a file at the path that is not among them is newer than all: read from its start
        for key, offset, fp in positions:
            if key == (h.dev, h.ino):
                if not self._resume(h, offset, fp):
                    # truncated meanwhile (copytruncate): the copy's unread tail first
                    saved = _Handle(h.fd, os.fstat(h.fd), offset)
                    saved.tail = fp
                    self._read_copy(saved)
                    log.info("%s changed while the agent was stopped; reading it all", self.path)
                break
            old = self._find_rotated(key)
            if old is None:
                continue
            if self._resume(old, offset, fp):
                old.rotated_at = self.clock.monotonic()
                self.draining.append(old)
            else:
                old.close()

    def _find_rotated(self, key: Tuple[int, int]) -> Optional[_Handle]:
        for cand in sorted(glob.glob(glob.escape(self.path) + "*")):
            if cand == self.path:
                continue
            st = _stat(cand)
            if st is None or (st.st_dev, st.st_ino) != key:
                continue
            try:
                fd = os.open(cand, os.O_RDONLY | os.O_CLOEXEC)
            except OSError:
                return None
            log.info("%s was rotated while the agent was stopped; finishing %s", self.path, cand)
            return _Handle(fd, os.fstat(fd), 0)
        return None

    # -- polling --------------------------------------------------------------

    @property
    def absent(self) -> bool:
        """Nothing open and nothing to finish: the path does not exist (yet)."""
        return self.started and self.cur is None and not self.draining

    def poll(self) -> bool:
        """Read what is new; True when a file still has unread data (call again soon)."""
        st = _stat(self.path)
        if not self.started:
            self.started = True
            if st is not None:
                self._start(st)
        elif self.cur is None:
            if st is not None:
                self.cur = self._open(st)  # created (again) since: all of it is new
        elif st is not None and not self.cur.same_file(st):
            # rename rotation (or delete + recreate): old file to its end first
            self._read(self.cur, SLICE * 64)
            self.cur.rotated_at = self.clock.monotonic()
            self.draining.append(self.cur)
            self.rotations += 1
            self.cur = self._open(st)
        pending = False
        for old in list(self.draining):
            n = self._read(old, SLICE)
            if n >= SLICE:
                pending = True
            elif n == 0 and self.clock.monotonic() - (old.rotated_at or 0.0) >= self.grace:
                self._finish(old)
                self.draining.remove(old)
        if self.cur is not None:
            self._check_truncated(self.cur)
            if self._read(self.cur, SLICE) >= SLICE:
                pending = True
        return pending

    def _check_truncated(self, h: _Handle) -> None:
        try:
            size = os.fstat(h.fd).st_size
        except OSError:
            return
        if size >= h.offset and (
            not h.tail or _read_at(h.fd, h.offset - len(h.tail), len(h.tail)) == h.tail
        ):
            return
        self.truncations += 1
        self._read_copy(h)
        self._flush_partial(h)
        h.offset = 0
        h.tail = b""

    def _read_copy(self, h: _Handle) -> bool:
        """After a copytruncate: read the unread tail of the copy that holds what we read."""
        if h.offset <= 0 or not h.tail:
            return False
        others = sorted(glob.glob(glob.escape(self.path) + ".*"))
        first = self.path + ".1"
        for cand in [first, *(c for c in others if c != first)]:
            if cand.endswith(COMPRESSED):
                continue
            st = _stat(cand)
            if st is None or h.same_file(st) or st.st_size < h.offset:
                continue
            try:
                fd = os.open(cand, os.O_RDONLY | os.O_CLOEXEC)
            except OSError:
                continue
            copy = _Handle(fd, os.fstat(fd), h.offset)
            if _read_at(fd, h.offset - len(h.tail), len(h.tail)) != h.tail:
                copy.close()
                continue
            copy.tail, copy.partial, h.partial = h.tail, h.partial, b""
            n = self._read(copy, 1 << 62)
            self._finish(copy)  # the copy is complete: its last partial line too
            self.copies_read += 1
            log.info(
                "%s was truncated (copytruncate): read %d unread bytes of %s", self.path, n, cand
            )
            return True
        return False

    def _read(self, h: _Handle, budget: int) -> int:
        total = 0
        while total < budget:
            chunk = _read_at(h.fd, h.offset, CHUNK)
            if not chunk:
                break
            total += len(chunk)
            h.offset += len(chunk)
            h.tail = (h.tail + chunk[-FINGERPRINT:])[-FINGERPRINT:]
            buf = h.partial + chunk if h.partial else chunk
            cut = buf.rfind(b"\n") + 1
            if cut:
                self._scan(buf[:cut] if cut < len(buf) else buf)
                h.partial = buf[cut:]
            else:
                h.partial = buf
            if len(h.partial) > MAX_LINE:
                self._flush_partial(h)
        self.bytes_read += total
        return total

    def _flush_partial(self, h: _Handle) -> None:
        if h.partial:
            self._scan(h.partial)
            h.partial = b""

    def _finish(self, h: _Handle) -> None:
        """A rotated file nobody writes to any more: its last partial line is complete."""
        self._flush_partial(h)
        h.close()

    def _scan(self, buf: bytes) -> None:
        for hit in self.matcher.scan(buf):
            header = parse_syslog_header(hit.line)
            ident = header.get("ident")
            # the tag is whatever the writer said (``logger -t kernel``): a kernel line here
            # proves little, so it serves only when kmsg is not reading (and never as trusted)
            kernel = ident == "kernel" and self.kernel_lines()
            if not permits(hit.spec, self.path, kernel=kernel, ident=ident):
                continue
            meta: Dict[str, str] = {}
            if ident is not None:
                meta["ident"] = ident
            if "pid" in header:
                meta["log_pid"] = header["pid"]
            self.deliver(self.path, hit, meta)

    # -- state ----------------------------------------------------------------

    def state(self) -> Optional[Dict[str, Any]]:
        """Where to continue after a restart: every file still being read, oldest first."""
        if not self.started:
            return self.saved
        files = []
        for h in [*self.draining, *([self.cur] if self.cur is not None else [])]:
            committed = h.committed
            n = min(committed, FINGERPRINT)
            fp = _read_at(h.fd, committed - n, n)
            files.append({"dev": h.dev, "ino": h.ino, "offset": committed, "fp": fp.hex()})
        return {"files": files} if files else None

    def close(self) -> None:
        for h in self.draining:
            h.close()
        self.draining.clear()
        if self.cur is not None:
            self.cur.close()
            self.cur = None


class TailSource:
    name = "files"

    def __init__(
        self,
        paths: List[str],
        state_path: StrPath,
        matcher: Matcher,
        deliver: Deliver,
        clock: Clock,
        *,
        poll_interval: float = 1.0,
        grace: float = ROTATE_GRACE,
        kernel_lines: Callable[[], bool] = lambda: True,
    ) -> None:
        self.state_path = os.fspath(state_path)
        self.clock = clock
        self.poll_interval = poll_interval
        saved = load_state(self.state_path) or {}
        self.followers = [
            FileFollower(
                p,
                matcher,
                deliver,
                clock,
                saved.get(p) if isinstance(saved.get(p), dict) else None,
                grace=grace,
                kernel_lines=kernel_lines,
            )
            for p in dict.fromkeys(paths)
        ]
        self._saved: Dict[str, Any] = {}
        self._failing: Dict[str, str] = {}

    def poll_all(self) -> bool:
        pending = False
        for f in self.followers:
            try:
                pending = f.poll() or pending
                self._failing.pop(f.path, None)
            except OSError as e:
                msg = str(e.strerror or e)
                if self._failing.get(f.path) != msg:
                    log.warning("following %s: %s", f.path, msg)
                    self._failing[f.path] = msg
        return pending

    async def run(self) -> None:
        """Poll until cancelled; files stay open so that :meth:`save_state` still works."""
        while True:
            while self.poll_all():
                await asyncio.sleep(0)
            every = self.poll_interval
            if all(f.absent for f in self.followers):
                # no file to follow (a journald-only host): a file created later is read
                # from its start, so looking for it less often loses nothing but time
                every = max(every, ABSENT_POLL_SECS)
            # on the grid of the clock (with the log watcher's ticker and the collectors)
            await self.clock.sleep(until_next(self.clock, every))

    def save_state(self) -> None:
        state = {}
        for f in self.followers:
            entry = f.state()
            if entry is not None:
                state[f.path] = entry
        if state != self._saved and save_state(self.state_path, state):
            self._saved = state

    def close(self) -> None:
        for f in self.followers:
            f.close()


def create(config: LogConfig, ctx: SourceContext) -> Optional[TailSource]:
    """``files = [...]`` (empty: the distro's syslog files)."""
    paths = list(config.files) or list(ctx.syslog_paths)
    if not paths:
        return None
    return TailSource(
        paths,
        os.path.join(ctx.data_dir, "files.state"),
        ctx.matcher,
        ctx.deliver,
        ctx.clock,
        poll_interval=config.poll_interval_secs,
        kernel_lines=ctx.files_serve_kernel,
    )
