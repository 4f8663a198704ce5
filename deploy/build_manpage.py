#!/usr/bin/env python3
"""Write the man page sysops-agent(1) from the CLI's argparse definitions.

    python3 deploy/build_manpage.py OUT.1

Every command, option, default and exit status comes from the parser that the
program itself uses (``sysops_agent.cli.build_parser``), so the page cannot
drift from ``--help``. Why not argparse-manpage: it would be one more build
dependency for ~150 lines of code, and it has no place for what this page needs
beyond the options (each command's exit status from its epilog, FILES,
ENVIRONMENT with systemd's NOTIFY_SOCKET/WATCHDOG_USEC). The date is
SOURCE_DATE_EPOCH's when set (reproducible builds), else the package version's
release is not known and today's date is used.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import List

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "src"))

from sysops_agent import __version__, cli  # noqa: E402

FILES = [
    ("/etc/sysops-agent/sysops-agent.toml", "the configuration (TOML, mode 0600)"),
    ("/var/lib/sysops-agent/", "the data directory: SQLite history, log cursors"),
    ("/usr/lib/systemd/system/sysops-agent.service", "the systemd unit (Type=notify)"),
    ("/usr/share/doc/sysops-agent/README.md", "the full documentation"),
]
ENVIRONMENT = [
    (
        "NOTIFY_SOCKET",
        "set by systemd for Type=notify: the agent sends READY=1 after the first "
        "collection, STATUS= with the number of firing alerts and STOPPING=1. "
        "A path, or @name for a socket in the abstract namespace.",
    ),
    (
        "WATCHDOG_USEC, WATCHDOG_PID",
        "set by systemd for WatchdogSec=: the event loop sends WATCHDOG=1 every "
        "half period, so a stuck agent is restarted.",
    ),
    ("COLUMNS", "the width of --help output."),
]


def esc(text: str) -> str:
    """Escape text for roff: backslashes, hyphens, and a leading dot or quote."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    if text.startswith((".", "'")):
        text = "\\&" + text
    return text


def one_line(text: str) -> str:
    return " ".join((text or "").split())


def lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


def option_lines(action: argparse.Action) -> List[str]:
    if action.option_strings:
        metavar = action.metavar or (action.dest.upper() if action.nargs != 0 else None)
        forms = []
        for opt in action.option_strings:
            form = f"\\fB{esc(opt)}\\fR"
            if action.nargs != 0 and metavar:
                form += f" \\fI{esc(str(metavar))}\\fR"
            forms.append(form)
        head = ", ".join(forms)
    else:
        head = f"\\fI{esc(str(action.metavar or action.dest))}\\fR"
    text = one_line(action.help or "")
    if action.help and "%(default)" in action.help:
        text = text.replace("%(default)s", str(action.default))
    choices = action.choices or ()
    if action.option_strings and not all(str(c) in text for c in choices):
        text += " (one of: " + ", ".join(str(c) for c in choices) + ")"
    if action.required and action.option_strings:
        text = text.rstrip(".") + ". Required."
    return [".TP", head, esc(text)]


def subcommands(
    parser: argparse.ArgumentParser,
) -> argparse._SubParsersAction[argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    raise SystemExit("build_manpage: the parser has no sub-commands")


def render(date: str) -> str:
    parser = cli.build_parser()
    sub = subcommands(parser)
    helps = {a.dest: one_line(a.help or "") for a in sub._choices_actions}
    out = [
        f'.TH SYSOPS\\-AGENT 1 "{date}" "sysops\\-agent {__version__}" "System administration"',
        ".nh",  # no hyphenation: option names and paths stay whole
        ".ad l",
        ".SH NAME",
        "sysops\\-agent \\- " + esc(lower_first(one_line(parser.description or "").rstrip("."))),
        ".SH SYNOPSIS",
        "\\fBsysops\\-agent\\fR [\\fB\\-\\-version\\fR] \\fICOMMAND\\fR [\\fIOPTIONS\\fR]",
    ]
    for name in sub.choices:
        out += [".br", f"\\fBsysops\\-agent {esc(name)}\\fR [\\fIOPTIONS\\fR]"]
    out += [
        ".SH DESCRIPTION",
        esc(one_line(parser.description or "")),
        "It reads /proc and /sys, keeps recent samples in memory and their history in "
        "SQLite, watches the logs, and sends alerts through its channels; "
        "\\fBsysops\\-agent run\\fR is the daemon, usually started by systemd.",
        ".SH COMMANDS",
    ]
    for name, command in sub.choices.items():
        out += [
            ".SS " + f"\\fBsysops\\-agent {esc(name)}\\fR",
            esc(one_line(command.description or helps.get(name, ""))),
        ]
        for action in command._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            out += option_lines(action)
        if command.epilog:
            out += [".PP", esc(one_line(command.epilog))]
    out += [
        ".SH EXIT STATUS",
        esc(one_line(parser.epilog or "")),
        "Each command's own codes are listed with it above.",
    ]
    out += [".SH FILES"]
    for path, what in FILES:
        out += [".TP", f"\\fI{esc(path)}\\fR", esc(what)]
    out += [".SH ENVIRONMENT"]
    for name, what in ENVIRONMENT:
        out += [".TP", f"\\fB{esc(name)}\\fR", esc(what)]
    out += [
        ".SH SEE ALSO",
        "\\fBsystemd.service\\fR(5), \\fBsd_notify\\fR(3), \\fBsystemctl\\fR(1)",
    ]
    return "\n".join(out) + "\n"


def main(argv: List[str]) -> int:
    if len(argv) != 1:
        print("usage: build_manpage.py OUT.1", file=sys.stderr)
        return 2
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    stamp = int(epoch) if epoch and epoch.isdigit() else int(time.time())
    date = time.strftime("%Y-%m-%d", time.gmtime(stamp))
    os.environ["COLUMNS"] = "80"
    text = render(date)
    out = argv[0]
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w", encoding="utf-8") as f:
        f.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
