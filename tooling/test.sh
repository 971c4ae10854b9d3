#!/usr/bin/env bash
# The whole test suite (the README's second command runs this through `pnpm test`).
# 1. System packages that tests need (Debian's Chromium for the playground's browser test, Fashion-MNIST),
#    installed with apt-get when missing and when we are root; 2. vitest over every package and app;
# 3. a final plain line "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
bash tooling/system-deps.sh || echo "warning: could not install system packages; tests that need them will fail"
mkdir -p .turbo
report=.turbo/vitest-report.json
rm -f "$report"
npx vitest run --reporter=default --reporter=json --outputFile.json="$report" "$@"
status=$?
node tooling/summarize-vitest.mjs "$report" "$status"
