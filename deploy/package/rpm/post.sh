# sysops-agent .rpm %post: $1 = 1 on the first install, 2+ on an upgrade
install -d -m 0750 -o sysops-agent -g sysops-agent /var/lib/sysops-agent
# The modules' bytecode for the interpreter the launcher runs (#!/usr/bin/python3),
# written here as root: the service user cannot write under /usr/lib, so without
# this Python would compile every module from source at every start (~0.1 s of CPU,
# ~1.5 MiB more RSS). -f: on an upgrade, rewrite even bytecode that looks current
# (its check is the source's mtime and size, which two builds of one commit share);
# %preun deletes it all on the final erase. A failure only costs that compile at
# start: not fatal.
/usr/bin/python3 -m compileall -q -f --invalidation-mode timestamp \
    -d /usr/lib/sysops-agent /usr/lib/sysops-agent || :
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || :
fi
if [ "$1" -eq 1 ]; then
    # first install: enabled, not started
    systemctl enable sysops-agent.service >/dev/null 2>&1 || :
    echo "sysops-agent: review /etc/sysops-agent/sysops-agent.toml, then: systemctl start sysops-agent"
else
    systemctl try-restart sysops-agent.service >/dev/null 2>&1 || :
fi
exit 0
