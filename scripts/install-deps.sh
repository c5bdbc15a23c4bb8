#!/usr/bin/env bash
# Installs what building Relance needs, idempotently: Debian packages for libcurl and SQLite
# headers, and aiosmtpd (a real SMTP server, for the demo's and the tests' mail) from PyPI.
# With --test, also what only the tests need: Chromium from Debian (the HTML report is checked in
# a real browser, headless) and websocket-client from PyPI (to drive it over its DevTools protocol);
# Postfix and Dovecot from Debian (bounces end to end: the tests start private instances in their
# own directories); statsmodels, scikit-learn and lifelines from PyPI (the risk score's models are
# checked against them); PostgreSQL from Debian (the tests start throwaway clusters with initdb in
# their own directories). Their system services are never started: a policy-rc.d that refuses is in
# place for the install (only if none is there), and Postfix is preseeded "No configuration".
set -euo pipefail
packages=(libcurl4-openssl-dev libsqlite3-dev python3 openssl)
modules=(aiosmtpd:aiosmtpd)
if [ "${1:-}" = "--test" ]; then
  packages+=(chromium postfix dovecot-imapd bsdutils postgresql)
  modules+=(websocket:websocket-client statsmodels:statsmodels sklearn:scikit-learn lifelines:lifelines)
fi
need=()
for pkg in "${packages[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing Debian packages: ${need[*]}"
  made_policy=
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null && $sudo chmod 755 /usr/sbin/policy-rc.d
    made_policy=1
  fi
  echo "postfix postfix/main_mailer_type select No configuration" | $sudo debconf-set-selections 2>/dev/null || true
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
  [ -z "$made_policy" ] || $sudo rm -f /usr/sbin/policy-rc.d
fi
for module in "${modules[@]}"; do
  if ! python3 -c "import ${module%%:*}" >/dev/null 2>&1; then
    echo "installing ${module##*:} from PyPI"
    python3 -m pip install --quiet --disable-pip-version-check "${module##*:}" 2>/dev/null \
      || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages "${module##*:}"
  fi
done
