#!/usr/bin/env bash
# What `make bench` needs, installed idempotently: Postfix (smtp-sink, smtp-source and the private
# relay), nginx (the SMS gateway stub), wrk, curl, sqlite3, script(1) and PostgreSQL (a throwaway
# cluster for the `cluster` group) from Debian; requests from
# PyPI. The packages' system services are never started: a policy-rc.d that refuses is in place
# for the install (only if none is there), and Postfix is preseeded "No configuration".
set -euo pipefail
need=()
command -v smtp-sink >/dev/null 2>&1 || need+=(postfix)
command -v nginx >/dev/null 2>&1 || need+=(nginx-light)
command -v wrk >/dev/null 2>&1 || need+=(wrk)
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v sqlite3 >/dev/null 2>&1 || need+=(sqlite3)
command -v script >/dev/null 2>&1 || need+=(bsdutils)
[ -x /usr/bin/time ] || need+=(time)
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || need+=(postgresql)
if ((${#need[@]})); then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "bench: installing ${need[*]}" >&2
  made_policy=
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null && $sudo chmod 755 /usr/sbin/policy-rc.d
    made_policy=1
  fi
  echo "postfix postfix/main_mailer_type select No configuration" | $sudo debconf-set-selections
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null \
    || { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null; }
  [ -z "$made_policy" ] || $sudo rm -f /usr/sbin/policy-rc.d
fi
if ! python3 -c "import requests" >/dev/null 2>&1; then
  echo "bench: installing requests from PyPI" >&2
  python3 -m pip install --quiet --disable-pip-version-check requests 2>/dev/null \
    || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages requests
fi
