#!/bin/sh
# Install SysOps Agent as an unprivileged systemd service.
#
#   make dist && sudo deploy/install.sh
#
# What it does (every step is idempotent: running it again gives the same result):
#   - system group and user "sysops-agent" (no home, no login shell)
#   - /usr/local/bin/sysops-agent       the single-file build (dist/sysops-agent.pyz), 0755, its
#                                       first line naming the newest python3.X (X >= 9) on PATH
#   - /etc/sysops-agent/                0750 root:sysops-agent
#   - /etc/sysops-agent/sysops-agent.toml  0600 sysops-agent, from config/sysops-agent.toml with
#                                       data_dir = /var/lib/sysops-agent; NEVER overwritten
#   - /var/lib/sysops-agent/            0750 sysops-agent:sysops-agent (the only writable path)
#   - /etc/systemd/system/sysops-agent.service, then systemctl daemon-reload and
#     enable --now (restart when it was already running, to pick up a new binary)
#
# Options (or the environment variables in brackets):
#   --destdir DIR     install below DIR, a scratch root [DESTDIR]; the user is created in
#                     DIR/etc/passwd and DIR/etc/group; systemctl is never called
#   --no-systemctl    do not call systemctl [SYSTEMCTL=:]
#   --pyz FILE        the single-file build to install [PYZ] (default dist/sysops-agent.pyz)
#   --python FILE     the Python >= 3.9 to run it with [INSTALL_PYTHON] (default: the newest
#                     python3.X on PATH; the distribution's python3 may be too old, 3.6 on RHEL 8)
#   --config FILE     the sample config to start from [CONFIG_SRC] (default config/sysops-agent.toml)
set -eu

SERVICE_USER="sysops-agent"
BIN_PATH="/usr/local/bin/sysops-agent"
CONFIG_DIR="/etc/sysops-agent"
CONFIG_PATH="/etc/sysops-agent/sysops-agent.toml"
DATA_DIR="/var/lib/sysops-agent"
UNIT_PATH="/etc/systemd/system/sysops-agent.service"

HERE=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
REPO=$(dirname -- "$HERE")

DESTDIR=${DESTDIR:-}
SYSTEMCTL=${SYSTEMCTL:-systemctl}
PYZ=${PYZ:-$REPO/dist/sysops-agent.pyz}
CONFIG_SRC=${CONFIG_SRC:-$REPO/config/sysops-agent.toml}
INSTALL_PYTHON=${INSTALL_PYTHON:-}
UNIT_SRC="$HERE/sysops-agent.service"

usage() {
    sed -n '2,/^set -eu/p' "$0" | sed -e '/^set -eu/d' -e 's/^# \{0,1\}//'
}

die() {
    echo "install.sh: $*" >&2
    exit 1
}

while [ $# -gt 0 ]; do
    case $1 in
        --destdir) [ $# -ge 2 ] || die "--destdir needs a directory"; DESTDIR=$2; shift 2 ;;
        --destdir=*) DESTDIR=${1#*=}; shift ;;
        --no-systemctl) SYSTEMCTL=:; shift ;;
        --pyz) [ $# -ge 2 ] || die "--pyz needs a file"; PYZ=$2; shift 2 ;;
        --pyz=*) PYZ=${1#*=}; shift ;;
        --python) [ $# -ge 2 ] || die "--python needs a file"; INSTALL_PYTHON=$2; shift 2 ;;
        --python=*) INSTALL_PYTHON=${1#*=}; shift ;;
        --config) [ $# -ge 2 ] || die "--config needs a file"; CONFIG_SRC=$2; shift 2 ;;
        --config=*) CONFIG_SRC=${1#*=}; shift ;;
        -h|--help) usage; exit 0 ;;
        *) die "unknown argument: $1 (see --help)" ;;
    esac
done

[ "$(id -u)" -eq 0 ] || die "must run as root (it creates a system user and sets owners)"
[ -f "$PYZ" ] || die "$PYZ not found: build it first with 'make dist' (or pass --pyz FILE)"
[ -f "$CONFIG_SRC" ] || die "sample config $CONFIG_SRC not found (pass --config FILE)"
[ -f "$UNIT_SRC" ] || die "unit file $UNIT_SRC not found"
[ "$(head -c 2 "$PYZ")" = "#!" ] || die "$PYZ does not start with a #! line: not a .pyz from 'make dist'"

# --- the interpreter ----------------------------------------------------------
# The installed file's #! line names a Python >= 3.9 by its own path (sys.executable,
# so a pyenv shim or a symlink is resolved to the interpreter it runs).
py_exe() {  # $1's sys.executable when it is a Python >= 3.9; fails otherwise
    exe=$("$1" -c 'import sys; print(sys.executable if sys.version_info >= (3, 9) else "")' \
        2>/dev/null) && [ -n "$exe" ] && echo "$exe"
}

newest_python() {  # the newest python3.X (X >= 9) on PATH that runs; empty when none
    best="" best_minor=0
    saved_ifs=$IFS
    IFS=:
    for dir in $PATH; do
        IFS=$saved_ifs
        for py in "${dir:-.}"/python3.[0-9] "${dir:-.}"/python3.[0-9][0-9]; do
            [ -x "$py" ] || continue
            minor=${py##*/python3.}
            [ "$minor" -ge 9 ] && [ "$minor" -gt "$best_minor" ] || continue
            exe=$(py_exe "$py") || continue
            best=$exe best_minor=$minor
        done
    done
    IFS=$saved_ifs
    echo "$best"
}

if [ -n "$INSTALL_PYTHON" ]; then
    python=$(py_exe "$INSTALL_PYTHON") \
        || die "--python $INSTALL_PYTHON: not a Python >= 3.9 (sysops-agent needs Python >= 3.9)"
else
    python=$(newest_python)
    if [ -z "$python" ]; then
        have=$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null) \
            || have="not found"
        die "no Python >= 3.9 on PATH (python3 is $have): sysops-agent needs Python >= 3.9;" \
            "install one (on RHEL 8: dnf install python39) or pass --python FILE"
    fi
fi
if [ -n "$DESTDIR" ]; then
    DESTDIR=$(CDPATH='' cd -- "$DESTDIR" 2>/dev/null && pwd) || die "--destdir: no such directory"
    SYSTEMCTL=:
fi

umask 077

# --- user and group ---------------------------------------------------------
nologin=/usr/sbin/nologin
[ -x "$nologin" ] || nologin=/sbin/nologin

# field 3 of NAME's line in a passwd/group file, empty when absent
file_id() {
    [ -f "$2" ] || return 0
    awk -F: -v name="$1" '$1 == name { print $3; exit }' "$2"
}

if [ -n "$DESTDIR" ]; then
    # useradd/groupadd --prefix write DESTDIR/etc/{passwd,group,shadow,gshadow}
    mkdir -p "$DESTDIR/etc"
    for f in passwd group; do
        [ -f "$DESTDIR/etc/$f" ] || { : >"$DESTDIR/etc/$f"; chmod 0644 "$DESTDIR/etc/$f"; }
    done
    set -- --prefix "$DESTDIR"
else
    set --
fi

if [ -z "$(file_id "$SERVICE_USER" "$DESTDIR/etc/group")" ] \
    && { [ -n "$DESTDIR" ] || ! getent group "$SERVICE_USER" >/dev/null 2>&1; }; then
    groupadd "$@" --system "$SERVICE_USER"
    echo "created group $SERVICE_USER"
fi
if [ -z "$(file_id "$SERVICE_USER" "$DESTDIR/etc/passwd")" ] \
    && { [ -n "$DESTDIR" ] || ! getent passwd "$SERVICE_USER" >/dev/null 2>&1; }; then
    useradd "$@" --system --no-create-home --home-dir "$DATA_DIR" --shell "$nologin" \
        --gid "$SERVICE_USER" --comment "SysOps Agent" "$SERVICE_USER"
    echo "created user $SERVICE_USER"
fi

if [ -n "$DESTDIR" ]; then
    uid=$(file_id "$SERVICE_USER" "$DESTDIR/etc/passwd")
    gid=$(file_id "$SERVICE_USER" "$DESTDIR/etc/group")
else
    uid=$(id -u "$SERVICE_USER")
    gid=$(getent group "$SERVICE_USER" | cut -d: -f3)
fi
[ -n "$uid" ] && [ -n "$gid" ] || die "could not find uid/gid of $SERVICE_USER"

# --- files ------------------------------------------------------------------
install -d -m 0755 -o 0 -g 0 "$DESTDIR/usr/local/bin" "$DESTDIR/etc/systemd/system"
install -d -m 0750 -o 0 -g "$gid" "$DESTDIR$CONFIG_DIR"
install -d -m 0750 -o "$uid" -g "$gid" "$DESTDIR$DATA_DIR"

# the binary: the archive behind a #! line naming $python (a zip archive is read
# from its end: what precedes it may change length); replaced atomically, so a
# running agent keeps its open file
{ printf '#!%s\n' "$python"; tail -n +2 "$PYZ"; } >"$DESTDIR$BIN_PATH.new"
chown 0:0 "$DESTDIR$BIN_PATH.new"
chmod 0755 "$DESTDIR$BIN_PATH.new"
mv -f "$DESTDIR$BIN_PATH.new" "$DESTDIR$BIN_PATH"
echo "installed $BIN_PATH (runs with $python)"

if [ -e "$DESTDIR$CONFIG_PATH" ]; then
    echo "kept existing $CONFIG_PATH (not overwritten)"
else
    tmp="$DESTDIR$CONFIG_PATH.new"
    # the sample keeps its data in a relative directory for 'make run'; without a
    # data_dir line the built-in default (/var/lib/sysops-agent) applies
    sed -e "s|^\\([[:space:]]*data_dir[[:space:]]*=\\).*|\\1 \"$DATA_DIR\"|" \
        "$CONFIG_SRC" >"$tmp"
    chown "$uid:$gid" "$tmp"
    chmod 0600 "$tmp"
    mv -f "$tmp" "$DESTDIR$CONFIG_PATH"
    echo "installed $CONFIG_PATH (mode 0600, owner $SERVICE_USER)"
fi

install -m 0644 -o 0 -g 0 "$UNIT_SRC" "$DESTDIR$UNIT_PATH"
echo "installed $UNIT_PATH"

# --- systemd ----------------------------------------------------------------
if [ "$SYSTEMCTL" = ":" ]; then
    exit 0
fi
if ! command -v "$SYSTEMCTL" >/dev/null 2>&1 || [ ! -d /run/systemd/system ]; then
    echo "systemd is not running here: start it with '$BIN_PATH run --config $CONFIG_PATH'"
    exit 0
fi
"$SYSTEMCTL" daemon-reload
if "$SYSTEMCTL" is-active --quiet sysops-agent.service; then
    "$SYSTEMCTL" restart sysops-agent.service
    echo "restarted sysops-agent.service"
else
    "$SYSTEMCTL" enable --now sysops-agent.service
    echo "enabled and started sysops-agent.service"
fi
