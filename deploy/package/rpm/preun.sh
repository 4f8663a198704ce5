# sysops-agent .rpm %preun: $1 = 0 when the package is erased (not upgraded)
if [ "$1" -eq 0 ]; then
    systemctl disable --now sysops-agent.service >/dev/null 2>&1 || :
fi
exit 0
