# sysops-agent .rpm %preun: $1 = 0 when the package is erased (not upgraded)
if [ "$1" -eq 0 ]; then
    systemctl disable --now sysops-agent.service >/dev/null 2>&1 || :
    # the bytecode %post wrote, owned by no package: rpm would leave it and the
    # directories holding it. Not on an upgrade: the new %post (which runs before
    # this old %preun) has just compiled the new modules. Bytecode of a module the
    # new version dropped stays until then, never used (Python ignores a
    # __pycache__ file whose source is gone).
    find /usr/lib/sysops-agent -depth -type d -name __pycache__ -exec rm -rf {} + 2>/dev/null || :
fi
exit 0
