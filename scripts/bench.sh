#!/usr/bin/env bash
# make bench: N reminders (default 10,000) through `relance serve --once` (release build) to
# Postfix's smtp-sink on loopback; prints messages per second and peak RSS (/usr/bin/time -v).
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
trap 'kill $sink 2>/dev/null || true' EXIT
python3 - "$dir" "$N" <<'PY'
import json, os, sys
d, n = sys.argv[1], int(sys.argv[2])
os.makedirs(d + "/spool/incoming", exist_ok=True)
with open(d + "/spool/incoming/bench.jsonl", "w") as f:
    for i in range(n):
        f.write(json.dumps({"id": "B-%06d" % i, "stage": ["pre_due", "reminder_1", "reminder_2", "final_notice"][i % 4], "channels": ["email"],
            "debtor": {"id": "C-%06d" % i, "name": "Débiteur %d" % i, "email": "d%d@example.org" % i, "locale": "fr-FR" if i % 3 else "en-GB",
                       "timezone": "Europe/Paris", "kind": "business" if i % 2 else "consumer"},
            "invoices": [{"number": "F-%06d" % i, "amount": "%d.%02d" % (100 + i % 9000, i % 100), "currency": "EUR", "issued_on": "2026-09-01", "due_on": "2026-10-01"}]},
            ensure_ascii=False) + "\n")
PY
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
YAML
sleep 0.5
start=$(date +%s.%N)
/usr/bin/time -v "$BIN" serve --once --config "$dir/relance.yaml" 2> "$dir/time.log"
end=$(date +%s.%N)
sent=$("$BIN" receipts --config "$dir/relance.yaml" --status sent --format csv | tail -n +2 | wc -l)
rss=$(awk -F: '/Maximum resident set size/ {gsub(/ /,"",$2); print $2}' "$dir/time.log")
python3 - "$start" "$end" "$sent" "$N" "$rss" "$CONNECTIONS" <<'PY'
import sys
start, end, sent, n, rss, conns = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
elapsed = end - start
print("bench: %d reminders, %d sent over SMTP (%s connections) in %.2f s: %.0f messages/s (intake, render, MIME, SMTP, ledger); peak RSS %.1f MiB"
      % (n, sent, conns, elapsed, sent / elapsed, rss / 1024))
PY
rm -rf "$dir"
