#!/bin/sh
# Remove SysOps Agent installed by deploy/install.sh.
#
#   sudo deploy/uninstall.sh            stop and disable the service, remove unit and binary
#   sudo deploy/uninstall.sh --purge    also the config, the data directory and the user/group
#
# Options (or the environment variables in brackets):
#   --destdir DIR     remove from below DIR, a scratch root [DESTDIR]; systemctl is never called
#   --no-systemctl    do not call systemctl [SYSTEMCTL=:]
#   --purge           also delete /etc/sysops-agent, /var/lib/sysops-agent and the user
# Running it again, or on a system where nothing is installed, is not an error.
set -eu

SERVICE_USER="sysops-agent"
BIN_PATH="/usr/local/bin/sysops-agent"
CONFIG_DIR="/etc/sysops-agent"
DATA_DIR="/var/lib/sysops-agent"
UNIT_PATH="/etc/systemd/system/sysops-agent.service"

DESTDIR=${DESTDIR:-}
SYSTEMCTL=${SYSTEMCTL:-systemctl}
PURGE=no

die() {
    echo "uninstall.sh: $*" >&2
    exit 1
}

while [ $# -gt 0 ]; do
    case $1 in
        --destdir) [ $# -ge 2 ] || die "--destdir needs a directory"; DESTDIR=$2; shift 2 ;;
        --destdir=*) DESTDIR=${1#*=}; shift ;;
        --no-systemctl) SYSTEMCTL=:; shift ;;
        --purge) PURGE=yes; shift ;;
        -h|--help) sed -n '2,/^set -eu/p' "$0" | sed -e '/^set -eu/d' -e 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument: $1 (see --help)" ;;
    esac
done

[ "$(id -u)" -eq 0 ] || die "must run as root"
if [ -n "$DESTDIR" ]; then
    DESTDIR=$(CDPATH='' cd -- "$DESTDIR" 2>/dev/null && pwd) || die "--destdir: no such directory"
    SYSTEMCTL=:
fi

if [ "$SYSTEMCTL" != ":" ] && command -v "$SYSTEMCTL" >/dev/null 2>&1 \
    && [ -d /run/systemd/system ]; then
    "$SYSTEMCTL" disable --now sysops-agent.service 2>/dev/null || true
fi

for f in "$UNIT_PATH" "$BIN_PATH"; do
    if [ -e "$DESTDIR$f" ]; then
        rm -f "$DESTDIR$f"
        echo "removed $f"
    fi
done

if [ "$SYSTEMCTL" != ":" ] && command -v "$SYSTEMCTL" >/dev/null 2>&1 \
    && [ -d /run/systemd/system ]; then
    "$SYSTEMCTL" daemon-reload
fi

if [ "$PURGE" = no ]; then
    [ -e "$DESTDIR$CONFIG_DIR" ] && echo "kept $CONFIG_DIR and $DATA_DIR (use --purge to delete)"
    exit 0
fi

for d in "$CONFIG_DIR" "$DATA_DIR"; do
    if [ -e "$DESTDIR$d" ]; then
        rm -rf "$DESTDIR$d"
        echo "removed $d"
    fi
done

if [ -n "$DESTDIR" ]; then
    set -- --prefix "$DESTDIR"
    in_passwd() { [ -f "$DESTDIR/etc/$1" ] && grep -q "^$SERVICE_USER:" "$DESTDIR/etc/$1"; }
else
    set --
    in_passwd() { getent "$1" "$SERVICE_USER" >/dev/null 2>&1; }
fi
if in_passwd passwd; then
    userdel "$@" "$SERVICE_USER"
    echo "removed user $SERVICE_USER"
fi
if in_passwd group; then
    groupdel "$@" "$SERVICE_USER"
    echo "removed group $SERVICE_USER"
fi
