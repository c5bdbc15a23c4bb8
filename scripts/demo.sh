#!/usr/bin/env bash
# make demo: runs the daemon on the embedded default (outbox transports, SQLite) over a sample
# spool generated for today, then shows what happened.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.build/debug/relance
STATE="$(pwd)/demo-data"
mkdir -p .build
LOG=.build/demo-build.log
printf "building relance (a first build takes a few minutes; log in %s)… " "$LOG"
if ! swift build > "$LOG" 2>&1; then
  echo "failed:"
  tail -n 40 "$LOG"
  exit 1
fi
echo "done"
rm -rf "$STATE"
python3 scripts/make_demo_spool.py "$STATE"
export STATE_DIRECTORY="$STATE"
# Who the demo's messages come from, and where a debtor's reply goes ("répondez à ce message").
export RELANCE_EMAIL_FROM="Exemple SAS <relances@example.fr>"
export RELANCE_EMAIL_REPLY_TO="Service comptabilité <comptabilite@example.fr>"
echo
echo "== relance check"
$BIN check
echo
SATURDAY_NIGHT=$(TZ=Europe/Paris date -d "next saturday 23:00" +%Y-%m-%dT%H:%M:%S%:z)
echo "== relance serve --dry-run --now $SATURDAY_NIGHT"
echo "   (the shipped contact policy, as of next Saturday night: everything waits for Monday's windows)"
$BIN serve --dry-run --now "$SATURDAY_NIGHT" 2>/dev/null | grep -E "^(policy|not now|would|DRY RUN: [0-9])" | head -8
echo "   …"
$BIN serve --dry-run --now "$SATURDAY_NIGHT" 2>/dev/null | tail -1
# So that the demo sends whatever the day and hour it runs, it lifts the windows, holidays and
# caps through environment overrides. Never do this for real debtors.
export RELANCE_POLICY_WINDOWS_SMS=always RELANCE_POLICY_WINDOWS_EMAIL=always RELANCE_POLICY_HOLIDAYS=none
export RELANCE_POLICY_CAPS_PER_DAY=none RELANCE_POLICY_CAPS_PER_7_DAYS=none RELANCE_POLICY_CAPS_PER_30_DAYS=none
echo
echo "== relance serve --dry-run (now, with the demo's RELANCE_POLICY_* overrides: windows always, no caps)"
$BIN serve --dry-run 2>/dev/null
echo
echo "== relance serve --once"
$BIN serve --once
echo
echo "== quarantined files (spool/failed/)"
for f in "$STATE"/spool/failed/*.error.json; do
  echo "--- $(basename "$f")"
  python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); [print("line %d %s: %s" % (e["line"], e["field"], e["reason"])) for e in r["errors"]]' "$f"
done
echo
echo "== outbox: $(ls "$STATE"/outbox/mail/new | wc -l) emails in $STATE/outbox/mail/new, $(wc -l < "$STATE"/outbox/sms.jsonl) SMS in $STATE/outbox/sms.jsonl"
first=$(grep -l "F2026-0012-FN" "$STATE"/outbox/mail/new/* | head -1)
echo "--- one of them, decoded ($first):"
python3 - "$first" <<'PY'
import email, email.policy, sys
msg = email.message_from_bytes(open(sys.argv[1], "rb").read(), policy=email.policy.default)
for h in ("From", "To", "Reply-To", "Subject", "Date", "Message-ID"):
    print("%s: %s" % (h, msg[h]))
print()
print(msg.get_body(preferencelist=("plain",)).get_content())
PY
echo "--- SMS:"
head -2 "$STATE"/outbox/sms.jsonl
echo
echo "== relance status"
$BIN status
echo
echo "== relance receipts"
$BIN receipts
echo
echo "== relance import $STATE/receivables.jsonl   (the receivables feed: one bad line is rejected with its field)"
$BIN import "$STATE/receivables.jsonl" || true
echo
echo "== relance import --format fec Tests/Fixtures/sample-fec.txt   (an accounting export: invoices, credit notes, lettered payments)"
$BIN import --format fec Tests/Fixtures/sample-fec.txt
echo
echo "== relance receivables   (outstanding amounts derived from invoices, payments, credit notes)"
$BIN receivables
echo
echo "== relance plan   (a preview: what the dunning ladder would send today, and why the rest is held)"
$BIN plan
echo
echo "== relance plan --commit, then relance serve --once   (the planned reminders go out through the policy, templates and outbox)"
$BIN plan --commit
$BIN serve --once 2>/dev/null
$BIN receipts | awk 'NR == 1 || /plan-/'
echo
echo "== relance report   (aging, DSO, CEI, recovery per stage, deliveries per channel: CSV summary and aging here, the page in $STATE/report.html)"
$BIN report --format html --out "$STATE/report.html"
$BIN report --format csv | awk '/^section,/ { table++ } table <= 2 && NF'
echo
echo "== the demo's data stays in $STATE; look at it with the CLI, e.g.:"
echo "   STATE_DIRECTORY=$STATE $BIN receipts --format csv"
echo "   STATE_DIRECTORY=$STATE $BIN receipts --reminder F2026-0012-FN"
echo "   STATE_DIRECTORY=$STATE $BIN status"
echo "   STATE_DIRECTORY=$STATE $BIN plan --format json"
echo "   STATE_DIRECTORY=$STATE $BIN report --format html --locale en --out report-en.html"
