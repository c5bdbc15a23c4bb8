#!/usr/bin/env bash
# Installs what building Relance needs, idempotently: Debian packages for libcurl and SQLite
# headers, and aiosmtpd (a real SMTP server, for the demo's and the tests' mail) from PyPI.
# With --test, also what only the tests need: Chromium from Debian (the HTML report is checked in
# a real browser, headless) and websocket-client from PyPI (to drive it over its DevTools protocol).
set -euo pipefail
packages=(libcurl4-openssl-dev libsqlite3-dev python3 openssl)
modules=(aiosmtpd:aiosmtpd)
if [ "${1:-}" = "--test" ]; then
  packages+=(chromium)
  modules+=(websocket:websocket-client)
fi
need=()
for pkg in "${packages[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing Debian packages: ${need[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi
for module in "${modules[@]}"; do
  if ! python3 -c "import ${module%%:*}" >/dev/null 2>&1; then
    echo "installing ${module##*:} from PyPI"
    python3 -m pip install --quiet --disable-pip-version-check "${module##*:}" 2>/dev/null \
      || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages "${module##*:}"
  fi
done
