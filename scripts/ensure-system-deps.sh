#!/usr/bin/env bash
# The Debian packages the test suite runs for real: Chromium (browser end-to-end tests),
# redis-server and PostgreSQL (scale-out tests), HAProxy (the load-balancer topology test, the
# balancer compose.yaml uses), mkcert (npm run cert's test). Installs what is missing when it
# can (root, or a sudo that needs no password, e.g. on CI runners; then apt-get). Elsewhere
# (macOS, Fedora, no root) it says what is missing and lets the run go on: npm test's runner
# (scripts/run-tests.ts) skips the suites that need it and lists them with how to get each.
# With CI set nothing may be skipped, so a missing package fails here.
set -euo pipefail

# PARLEY_TEST_WITHOUT names services the runner is told to treat as missing: nothing to install.
without=",${PARLEY_TEST_WITHOUT:-},"
missing=()
[[ $without == *,chromium,* ]] || command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || [ -x "${CHROMIUM_PATH:-}" ] || missing+=(chromium)
[[ $without == *,redis,* ]] || command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
[[ $without == *,postgres,* ]] || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || missing+=(postgresql)
# Debian puts it in /usr/sbin, which is not on every user's PATH.
[[ $without == *,haproxy,* ]] || command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || missing+=(haproxy)
[[ $without == *,mkcert,* ]] || command -v mkcert >/dev/null 2>&1 || missing+=(mkcert)

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
elif [ -n "${CI:-}" ] && [ "${CI}" != false ] && [ "${CI}" != 0 ]; then
  echo "CI is set, so no suite may be skipped, and these are missing: ${missing[*]}" >&2
  echo "Debian/Ubuntu: sudo apt-get install -y ${missing[*]}; Fedora, macOS: see the table in README.md" >&2
  exit 1
else
  echo "Not installed here: ${missing[*]}. The suites that need them are skipped; the list, and how to get each, comes at the end."
fi
