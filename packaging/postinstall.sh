#!/bin/sh
# camotp's own system user and its data directory (systemd keeps it so:
# StateDirectory=camotp).
set -e
mkdir -p /var/lib/camotp
if ! getent group camotp >/dev/null; then
	addgroup --system camotp >/dev/null
fi
if ! getent passwd camotp >/dev/null; then
	adduser --system --ingroup camotp --home /var/lib/camotp --no-create-home \
		--shell /usr/sbin/nologin --gecos "camotp service" camotp >/dev/null
fi
chown camotp:camotp /var/lib/camotp
chmod 0700 /var/lib/camotp
# The service reads its settings file; only root and the service see them.
chown root:camotp /etc/camotp /etc/camotp/camotp.env /etc/camotp/camotp.toml
chmod 0750 /etc/camotp
chmod 0640 /etc/camotp/camotp.env /etc/camotp/camotp.toml
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload || true
fi
