"""The systemd journal, followed through ``journalctl -f -o json``.

No library binding: the Python ``systemd`` package needs a compiler and
libsystemd headers. ``journalctl`` prints one JSON object per entry;
``MESSAGE`` is a string, or a list of byte values when it is not valid UTF-8
(or null when too large). The ``__CURSOR`` of the last entry handled is saved
in ``<data_dir>/journal.state`` and passed as ``--after-cursor`` on the next
start (``--cursor-file`` would need systemd 242; CentOS 7 has 219), so a
restart neither replays nor loses entries. First start: ``-n 0`` (only new
entries); a restart before any entry arrived asks ``--since`` the first start.
When journalctl exits, it is restarted with exponential backoff (1 s doubling
to 60 s, back to 1 s after a minute of good running). When there
is no journalctl the source is off, with one info line.

No journald, no child: journalctl (7 MiB of RSS) is started only while journald's
socket (``/run/systemd/journal/socket``) exists. Without it the source idles, says
so once, and looks again every hour (:data:`SOCKET_RECHECK`), and before each restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections import deque
from typing import Any, Callable, Deque, Dict, List, Optional

from sysops_agent.clock import Clock
from sysops_agent.fsutil import StrPath
from sysops_agent.logwatch.config import LogConfig
from sysops_agent.logwatch.patterns import Hit, Matcher, permits
from sysops_agent.logwatch.source import SourceContext
from sysops_agent.logwatch.state import load_state, save_state

log = logging.getLogger("sysops_agent.logwatch")

BACKOFF_INITIAL = 1.0
BACKOFF_MAX = 60.0
#: a journalctl that ran this long was healthy: the next restart waits BACKOFF_INITIAL again
HEALTHY_SECS = 60.0
#: where systemd-journald listens: no socket, no journal to follow
JOURNALD_SOCKET = "/run/systemd/journal/socket"
#: seconds between looks for the socket while it is missing
SOCKET_RECHECK = 3600.0
#: longest JSON line accepted from journalctl (a MESSAGE may be large)
LINE_LIMIT = 4 * 1024 * 1024


def message_text(value: Any) -> Optional[str]:
    """MESSAGE as text: str, a list of byte values (invalid UTF-8 kept as U+FFFD), or None."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        try:
            return bytes(v for v in value if isinstance(v, int)).decode("utf-8", "replace")
        except ValueError:
            return None
    return None


def entry_meta(entry: Dict[str, Any]) -> Dict[str, str]:
    """Labels from a journal entry: who logged it."""
    meta: Dict[str, str] = {}
    for key, label in (
        ("SYSLOG_IDENTIFIER", "ident"),
        ("_SYSTEMD_UNIT", "systemd_unit"),
        ("_PID", "log_pid"),
    ):
        value = entry.get(key)
        if isinstance(value, (str, int)) and value != "":
            meta[label] = str(value)
    return meta


class JournalSource:
    name = "journal"

    def __init__(
        self,
        journalctl: str,
        state_path: StrPath,
        matcher: Matcher,
        deliver: Callable[[str, Hit, Dict[str, str]], None],
        clock: Clock,
        *,
        backoff_initial: float = BACKOFF_INITIAL,
        backoff_max: float = BACKOFF_MAX,
        socket_path: str = JOURNALD_SOCKET,
    ) -> None:
        self.journalctl = journalctl
        self.socket_path = socket_path
        self.waiting_for_journald = False
        self.state_path = os.fspath(state_path)
        self.matcher = matcher
        self.deliver = deliver
        self.clock = clock
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        state = load_state(self.state_path)
        cursor = state.get("cursor") if state else None
        self.cursor: Optional[str] = cursor if isinstance(cursor, str) and cursor else None
        self.saved_cursor = self.cursor
        #: wall time of the first journalctl start (for a restart before any entry arrived)
        self.first_start: Optional[float] = None
        self.entries = 0
        self.starts = 0
        self.bad_lines = 0
        self.proc: Optional[asyncio.subprocess.Process] = None
        self._stderr: Deque[str] = deque(maxlen=5)

    def command(self, exe: str) -> List[str]:
        args = [exe, "--follow", "--output=json", "--no-pager"]
        if self.cursor:
            args.append(f"--after-cursor={self.cursor}")
        elif self.first_start is not None:
            # died before the first entry: nothing written since we first started is lost
            args.append(f"--since=@{int(self.first_start)}")
        else:
            args.append("--lines=0")
        return args

    async def run(self) -> None:
        backoff = self.backoff_initial
        while True:
            await self._wait_for_journald()
            started = self.clock.monotonic()
            try:
                # exec looks journalctl up in PATH (no shutil.which: shutil costs 0.5 MiB)
                rc = await self._run_once(self.journalctl)
            except FileNotFoundError:
                log.info("journal source off: %s not found", self.journalctl)
                return
            if self.clock.monotonic() - started >= HEALTHY_SECS:
                backoff = self.backoff_initial
            why = "; ".join(self._stderr) or "no message"
            log.warning(
                "journalctl exited with status %s (%s); restarting in %g s", rc, why, backoff
            )
            await self.clock.sleep(backoff)
            backoff = min(backoff * 2, self.backoff_max)

    async def _wait_for_journald(self) -> None:
        """Return once journald's socket exists (at once when it does: the usual case)."""
        if os.path.exists(self.socket_path):
            return
        log.info(
            "journal source idle: %s is missing (no systemd-journald); looking again every %g s",
            self.socket_path,
            SOCKET_RECHECK,
        )
        self.waiting_for_journald = True
        try:
            while not os.path.exists(self.socket_path):
                await self.clock.sleep(SOCKET_RECHECK)
        finally:
            self.waiting_for_journald = False
        log.info("journal source: %s appeared; following the journal", self.socket_path)

    async def _run_once(self, exe: str) -> Optional[int]:
        args = self.command(exe)
        if self.first_start is None:
            self.first_start = self.clock.time()
        self._stderr.clear()
        self.starts += 1
        try:
            proc = await asyncio.create_subprocess_exec(
                *args,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                limit=LINE_LIMIT,
            )
        except FileNotFoundError:
            raise
        except OSError as e:
            self._stderr.append(str(e.strerror or e))
            return None
        self.proc = proc
        assert proc.stdout is not None and proc.stderr is not None
        err_task = asyncio.ensure_future(self._read_stderr(proc.stderr))
        try:
            while True:
                try:
                    line = await proc.stdout.readline()
                except ValueError:  # a line above LINE_LIMIT: skipped
                    self.bad_lines += 1
                    continue
                if not line:
                    break
                self.handle_line(line)
            return await proc.wait()
        finally:
            await self._terminate(proc)
            err_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await err_task
            self.proc = None

    async def _read_stderr(self, stream: asyncio.StreamReader) -> None:
        while True:
            line = await stream.readline()
            if not line:
                return
            text = line.decode("utf-8", "replace").strip()
            if text:
                self._stderr.append(text[:300])

    async def _terminate(self, proc: asyncio.subprocess.Process) -> None:
        if proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        try:
            await asyncio.wait_for(asyncio.shield(proc.wait()), 2.0)
        except asyncio.TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()

    def handle_line(self, line: bytes) -> None:
        try:
            entry = json.loads(line)
        except ValueError:
            self.bad_lines += 1
            return
        if not isinstance(entry, dict):
            self.bad_lines += 1
            return
        self.entries += 1
        cursor = entry.get("__CURSOR")
        if isinstance(cursor, str) and cursor:
            self.cursor = cursor
        text = message_text(entry.get("MESSAGE"))
        if not text:
            return
        hits = self.matcher.scan_text(text)
        if hits:
            meta = entry_meta(entry)
            # journald sets _TRANSPORT itself (a client cannot): "kernel" proves the origin
            kernel = entry.get("_TRANSPORT") == "kernel"
            if kernel:
                meta["transport"] = "kernel"
            ident = meta.get("ident")
            for hit in hits:
                if permits(hit.spec, self.name, kernel=kernel, ident=ident):
                    self.deliver(self.name, hit, meta)

    def save_state(self) -> None:
        if (
            self.cursor
            and self.cursor != self.saved_cursor
            and save_state(self.state_path, {"cursor": self.cursor})
        ):
            self.saved_cursor = self.cursor

    def close(self) -> None:
        """Synchronous part of stopping: the process is terminated by the task's cancellation."""
        if self.proc is not None and self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.terminate()


def create(config: LogConfig, ctx: SourceContext) -> Optional[JournalSource]:
    """``journal = true``: the systemd journal, while journald runs."""
    if not config.journal:
        return None
    return JournalSource(
        ctx.journalctl,
        os.path.join(ctx.data_dir, "journal.state"),
        ctx.matcher,
        ctx.deliver,
        ctx.clock,
        backoff_initial=ctx.journal_backoff,
        socket_path=ctx.journald_socket,
    )
