#!/usr/bin/env bash
# make test, after the one build: runs the whole suite without rebuilding and keeps its full
# output in .build/test-output.log; shows the suites, what the tests measured, every failure
# with its details, and the summary last. Exits with swift test's status.
set -uo pipefail
cd "$(dirname "$0")/.."
LOG=.build/test-output.log
mkdir -p .build
# The tests' sandboxes (spools, ledgers, throwaway PostgreSQL clusters) go in a directory of this
# run's own: what earlier runs left (their process gone) is removed first, and a passing run
# removes its own (a failing one keeps it to look at).
# The name is short: Dovecot's and PostgreSQL's Unix sockets live in the sandboxes, and a socket's
# path may not exceed 107 bytes.
base="${TMPDIR:-/tmp}"
for old in "$base"/rt-*; do
  [ -d "$old" ] || continue
  kill -0 "${old##*-}" 2>/dev/null || rm -rf "$old"
done
export TMPDIR="$base/rt-$$"
mkdir -p "$TMPDIR" && chmod 755 "$TMPDIR"
echo "running the tests (full output in $LOG, sandboxes in $TMPDIR)…"
swift test --skip-build "$@" > "$LOG" 2>&1
status=$?
[ $status -ne 0 ] || rm -rf "$TMPDIR"
# Suites, measurements the tests print, failures and their details (↳ lines after a ✘).
awk '
  /^✘/ { print; detail = 1; next }
  /^↳/ && detail { print; next }
  { detail = 0 }
  /^✔ Suite / { print; next }
  /^(chaos|cancellation race|payment race|simulated year|simulation|fuzz)[ :]/ { print; next }
' "$LOG" | grep -v "^✔ Test run"
echo
if [ $status -ne 0 ]; then
  echo "FAILED (swift test exited $status); the failures are above, the whole output in $LOG"
  grep -E "^✘ Test run|^error:|Fatal error" "$LOG" | tail -5
else
  grep -E "^✔ Test run" "$LOG" | tail -1
fi
exit $status
