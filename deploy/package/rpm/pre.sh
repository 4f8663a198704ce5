# sysops-agent .rpm %pre: the system user (the config file is installed owned by it)
getent group sysops-agent >/dev/null || groupadd --system sysops-agent
getent passwd sysops-agent >/dev/null || \
    useradd --system --no-create-home --home-dir /var/lib/sysops-agent \
        --shell /sbin/nologin --gid sysops-agent --comment "SysOps Agent" sysops-agent
exit 0
