#!/usr/bin/env bash
# make bench: N reminders (default 10,000) through `relance serve --once` (release build), once by
# email to Postfix's smtp-sink and once by SMS to the gateway simulator (Twilio profile), both on
# loopback; prints messages per second and peak RSS (/usr/bin/time -v) for each.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${BENCH_REMINDERS:-10000}
CONNECTIONS=${BENCH_CONNECTIONS:-8}
if ! command -v smtp-sink >/dev/null || [ ! -x /usr/bin/time ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postfix time >/dev/null
fi
BIN=.build/release/relance
dir=$(mktemp -d /tmp/relance-bench.XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
smtp-sink -u nobody 127.0.0.1:"$port" 256 &
sink=$!
trap 'kill $sink 2>/dev/null || true; rm -rf "$dir"' EXIT
spool() {  # spool DIR CHANNEL
python3 - "$1" "$N" "$2" <<'PY'
import json, os, sys
d, n, channel = sys.argv[1], int(sys.argv[2]), sys.argv[3]
os.makedirs(d + "/spool/incoming", exist_ok=True)
# Numbers whose last four digits ask the simulator for a failure are skipped: this measures sends.
special = {"0000", "0001", "0429", "0500", "0999", "0013"}
phones = (p for p in ("+336%08d" % k for k in range(12340002, 99999999)) if p[-4:] not in special)
with open(d + "/spool/incoming/bench.jsonl", "w") as f:
    for i in range(n):
        f.write(json.dumps({"id": "B-%06d" % i, "stage": ["pre_due", "reminder_1", "reminder_2", "final_notice"][i % 4], "channels": [channel],
            "debtor": {"id": "C-%06d" % i, "name": "Débiteur %d" % i, "email": "d%d@example.org" % i, "phone": next(phones),
                       "locale": "fr-FR" if i % 3 else "en-GB", "timezone": "Europe/Paris", "kind": "business" if i % 2 else "consumer"},
            "invoices": [{"number": "F-%06d" % i, "amount": "%d.%02d" % (100 + i % 9000, i % 100), "currency": "EUR", "issued_on": "2026-09-01", "due_on": "2026-10-01"}]},
            ensure_ascii=False) + "\n")
PY
}
spool "$dir" email
cat > "$dir/relance.yaml" <<YAML
spool: { root: "$dir/spool" }
store: { path: "$dir/ledger.sqlite" }
templates: { path: "$(pwd)/templates" }
email:
  transport: smtp
  from: "Exemple SAS <relances@example.fr>"
  smtp: { url: "smtp://127.0.0.1:$port", starttls: none, connections: $CONNECTIONS }
delivery: { concurrency: $((CONNECTIONS * 2)) }
log: { level: warning }
# Throughput, not restraint: the contact policy would hold everything outside office hours.
policy: { windows: { sms: always, email: always }, holidays: none, caps: { per_day: none, per_7_days: none, per_30_days: none } }
YAML
report() {  # report DIR LABEL START END
  local sent rss
  sent=$("$BIN" receipts --config "$1/relance.yaml" --status sent --format csv | tail -n +2 | wc -l)
  rss=$(awk -F: '/Maximum resident set size/ {gsub(/ /,"",$2); print $2}' "$1/time.log")
  python3 - "$3" "$4" "$sent" "$N" "$rss" "$2" <<'PY'
import sys
start, end, sent, n, rss, label = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
elapsed = end - start
print("bench %s: %d reminders, %d sent in %.2f s: %.0f messages/s (intake, render, send, ledger); peak RSS %.1f MiB"
      % (label, n, sent, elapsed, sent / elapsed, rss / 1024))
PY
}
sleep 0.5
start=$(date +%s.%N)
/usr/bin/time -v "$BIN" serve --once --config "$dir/relance.yaml" 2> "$dir/time.log"
end=$(date +%s.%N)
report "$dir" "email over SMTP ($CONNECTIONS connections)" "$start" "$end"

# SMS through the gateway simulator (Twilio profile).
sms=$(mktemp -d /tmp/relance-bench-sms.XXXXXX)
spool "$sms" sms
.build/release/relance-gateway-sim --port 0 > "$sms/sim.log" 2>&1 &
sim=$!
trap 'kill $sink $sim 2>/dev/null || true; rm -rf "$dir" "$sms"' EXIT
for _ in $(seq 1 100); do grep -q READY "$sms/sim.log" && break; sleep 0.1; done
simport=$(awk '/READY/ {print $2}' "$sms/sim.log")
cat > "$sms/relance.yaml" <<YAML
spool: { root: "$sms/spool" }
store: { path: "$sms/ledger.sqlite" }
templates: { path: "$(pwd)/templates" }
sms:
  provider: twilio
  sender: EXEMPLE
  base_url: "http://127.0.0.1:$simport"
  connections: $CONNECTIONS
  twilio: { account_sid: AC00000000000000000000000000000000, auth_token: twilio-test-token }
delivery: { concurrency: $((CONNECTIONS * 2)) }
log: { level: warning }
# Throughput, not restraint: the contact policy would hold everything outside office hours.
policy: { windows: { sms: always, email: always }, holidays: none, caps: { per_day: none, per_7_days: none, per_30_days: none } }
YAML
start=$(date +%s.%N)
/usr/bin/time -v "$BIN" serve --once --config "$sms/relance.yaml" 2> "$sms/time.log"
end=$(date +%s.%N)
report "$sms" "SMS through the simulator ($CONNECTIONS connections)" "$start" "$end"

# Webhooks: signed Twilio status callbacks against the daemon (each one recorded durably in the
# ledger), and the same load against a bare Hummingbird endpoint (the simulator's /bare).
if ! command -v wrk >/dev/null; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq wrk >/dev/null
fi
hooks=$(mktemp -d /tmp/relance-bench-hooks.XXXXXX)
hport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$hooks/spool/incoming"
cat > "$hooks/relance.yaml" <<YAML
spool: { root: "$hooks/spool" }
store: { path: "$hooks/ledger.sqlite" }
templates: { path: "$(pwd)/templates" }
sms:
  provider: twilio
  sender: EXEMPLE
  base_url: "http://127.0.0.1:$simport"
  twilio: { account_sid: AC00000000000000000000000000000000, auth_token: twilio-test-token }
webhooks: { listen: "127.0.0.1:$hport", public_base_url: "http://127.0.0.1:$hport" }
log: { level: warning }
# Throughput, not restraint: the contact policy would hold everything outside office hours.
policy: { windows: { sms: always, email: always }, holidays: none, caps: { per_day: none, per_7_days: none, per_30_days: none } }
YAML
printf '{"id":"H-1","stage":"reminder_1","channels":["sms"],"debtor":{"id":"C","name":"N","phone":"+33612345678","locale":"fr-FR","timezone":"Europe/Paris","kind":"consumer"},"invoices":[{"number":"F","amount":"10.00","currency":"EUR","issued_on":"2026-01-01","due_on":"2026-02-01"}]}\n' > "$hooks/spool/incoming/h.jsonl"
"$BIN" serve --config "$hooks/relance.yaml" 2> "$hooks/daemon.log" &
daemon=$!
trap 'kill $sink $sim $daemon 2>/dev/null || true; rm -rf "$dir" "$sms" "$hooks"' EXIT
for _ in $(seq 1 100); do
  sid=$("$BIN" receipts --config "$hooks/relance.yaml" --format csv 2>/dev/null | awk -F, 'NR==2 {print $10}' || true)
  [ -n "$sid" ] && break; sleep 0.1
done
python3 - "$hport" "$sid" > "$hooks/callback.lua" <<'PY'
import base64, hashlib, hmac, sys, urllib.parse
port, sid = sys.argv[1], sys.argv[2]
params = [("AccountSid", "AC00000000000000000000000000000000"), ("MessageSid", sid), ("MessageStatus", "delivered"), ("To", "+33612345678")]
url = "http://127.0.0.1:%s/webhooks/twilio" % port
sig = base64.b64encode(hmac.new(b"twilio-test-token", (url + "".join(k + v for k, v in sorted(params))).encode(), hashlib.sha1).digest()).decode()
print('wrk.method = "POST"')
print('wrk.body = "%s"' % urllib.parse.urlencode(params))
print('wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"')
print('wrk.headers["X-Twilio-Signature"] = "%s"' % sig)
PY
for target in "http://127.0.0.1:$hport/webhooks/twilio" "http://127.0.0.1:$simport/bare"; do
  wrk -t2 -c16 -d10s -s "$hooks/callback.lua" "$target" > "$hooks/wrk.txt"
  rps=$(awk '/Requests\/sec/ {print $2}' "$hooks/wrk.txt")
  non2xx=$(awk '/Non-2xx/ {print $NF}' "$hooks/wrk.txt")
  echo "bench webhooks: $target: $rps requests/s (2 threads, 16 connections, 10 s${non2xx:+, $non2xx non-2xx})"
done
echo "bench webhooks: callbacks recorded in the ledger: $(sqlite3 "$hooks/ledger.sqlite" 'SELECT COUNT(*) FROM callback' 2>/dev/null || echo '?')"
