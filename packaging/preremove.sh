#!/bin/sh
# Stop the service before its binary goes; the data in /var/lib/camotp and
# the settings in /etc/camotp stay (purge removes the settings).
set -e
if [ -d /run/systemd/system ]; then
	systemctl stop camotp.service >/dev/null 2>&1 || true
	systemctl disable camotp.service >/dev/null 2>&1 || true
fi
