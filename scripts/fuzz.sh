#!/usr/bin/env bash
# `npm run fuzz`: the long run of the fuzz suite (test/integration/fuzz.test.ts): FUZZ_RUNS per property
# (default 1500; `npm test` runs 40), counts written to test-artifacts/fuzz-counts.json. Set-up and the
# test FerretDB as for `npm test` (scripts/test.sh); FUZZ_SEED replays a failed run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export FUZZ_RUNS="${FUZZ_RUNS:-1500}"
export FUZZ_COUNTS_FILE="${FUZZ_COUNTS_FILE:-test-artifacts/fuzz-counts.json}"
exec bash scripts/test.sh dist/test/integration/fuzz.test.js
