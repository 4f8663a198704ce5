# sysops-agent .rpm %post: $1 = 1 on the first install, 2+ on an upgrade
install -d -m 0750 -o sysops-agent -g sysops-agent /var/lib/sysops-agent
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
