#!/usr/bin/env bash
# The one build of make test: everything, tests included. The compiler's output goes to
# .build/test-build.log; errors, warnings in Relance's own code and the last line are shown.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .build
LOG=.build/test-build.log
echo "building, tests included (a first build takes a few minutes; log in $LOG)…"
if ! swift build --build-tests > "$LOG" 2>&1; then
  grep -E "error:" "$LOG" | sort -u | head -40
  echo "build FAILED; the whole log is in $LOG"
  exit 1
fi
grep -E "warning:.*/(Sources|Tests|Plugins)/" "$LOG" | sort -u || true
tail -n 1 "$LOG"
