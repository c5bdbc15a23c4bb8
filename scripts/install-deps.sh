#!/usr/bin/env bash
# Installs what building and testing Relance needs, idempotently: Debian packages for libcurl and
# SQLite headers, and aiosmtpd (a real SMTP server for the integration tests) from PyPI.
set -euo pipefail
need=()
for pkg in libcurl4-openssl-dev libsqlite3-dev python3 openssl; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing Debian packages: ${need[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi
if ! python3 -c "import aiosmtpd" >/dev/null 2>&1; then
  echo "installing aiosmtpd from PyPI"
  python3 -m pip install --quiet --disable-pip-version-check aiosmtpd 2>/dev/null \
    || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages aiosmtpd
fi
