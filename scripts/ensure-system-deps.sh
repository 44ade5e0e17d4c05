#!/usr/bin/env bash
# The Debian packages the test suite runs for real: Chromium (browser end-to-end tests),
# redis-server and PostgreSQL (scale-out tests), HAProxy (the load-balancer topology test,
# the balancer compose.yaml uses). Installs what is missing when it can (root, or a sudo that
# needs no password, e.g. on CI runners; then apt-get); otherwise says what to install and fails.
set -euo pipefail

missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
# Debian puts it in /usr/sbin, which is not on every user's PATH.
command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || missing+=(haproxy)

[ ${#missing[@]} -eq 0 ] && exit 0

as_root=()
if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  as_root=(sudo -n)
fi

if { [ "$(id -u)" = 0 ] || [ ${#as_root[@]} -gt 0 ]; } && command -v apt-get >/dev/null 2>&1; then
  echo "Installing Debian packages for the test suite: ${missing[*]}"
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # The packages' own services are not used: each test starts its own instance on a free port.
  if command -v service >/dev/null 2>&1; then
    for svc in redis-server postgresql haproxy; do "${as_root[@]}" service "$svc" stop >/dev/null 2>&1 || true; done
  fi
else
  echo "The test suite needs these Debian packages: ${missing[*]}" >&2
  echo "Install them with: sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
