# sysops-agent .rpm %postun: $1 = 0 when erased, 1+ after an upgrade. RPM has no
# purge and its convention is to keep data: /var/lib/sysops-agent stays after
# `dnf remove` (delete it by hand); a modified config is kept as .rpmsave.
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || :
fi
exit 0
