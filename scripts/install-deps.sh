#!/usr/bin/env bash
# Installs the system programs the integration tests run for real, through
# apt-get, and only those that are missing.
set -euo pipefail

need=()
fc-list :lang=ko 2>/dev/null | grep -q . || need+=(fonts-nanum)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx)
command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] || need+=(chromium)

if [ ${#need[@]} -eq 0 ]; then
	exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
	sudo="sudo"
fi
echo "install-deps: installing ${need[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# The nginx package starts a system instance on port 80; the tests run their
# own, so stop it where a service manager did start it.
if [[ " ${need[*]} " == *" nginx "* ]]; then
	$sudo service nginx stop >/dev/null 2>&1 || true
fi
if [[ " ${need[*]} " == *" redis-server "* ]]; then
	$sudo service redis-server stop >/dev/null 2>&1 || true
fi
