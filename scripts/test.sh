#!/usr/bin/env bash
# `npm test`: the whole suite from a fresh clone. Installs and builds what is missing (scripts/setup.sh),
# checks the engines, starts a FerretDB for the tests unless TEST_MONGODB_URL names a MongoDB, then runs
# lint, the type check (the build) and every test with node's test runner. Fails when anything fails.
# With test files as arguments (built paths under dist/), runs only those, without the lint.
# With --unit, runs only the unit and fast tiers (test/unit/: no engines needed; docs/testing.md).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/setup.sh
setup_project

if [ "${1:-}" = "--unit" ]; then
  exec node --test --test-concurrency=2 dist/test/unit/*.test.js
fi

if [ "$#" -eq 0 ]; then
  echo "lint: eslint (type-aware, zero warnings)"
  npx eslint --max-warnings 0 .
fi

ferret_pid=""
kubo_pid=""
kubo_repo=""
cleanup() {
  for pid in $ferret_pid $kubo_pid; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  if [ -n "$kubo_repo" ]; then rm -rf "$kubo_repo"; fi
}
trap cleanup EXIT

# Engines: PostgreSQL, Redis and RabbitMQ must be running; say what to run when one is not.
node dist/scripts/check-engines.js

if [ -z "${TEST_MONGODB_URL:-}" ]; then
  # A free port of the kernel's choosing, so that a running backbone, bench or other suite is never disturbed.
  port="${TEST_FERRETDB_PORT:-$(node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")}"
  psql -h 127.0.0.1 -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'resultity_test_ferretdb'" | grep -q 1 \
    || psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE resultity_test_ferretdb"
  # FerretDB's own PostgreSQL pool is capped (its default, 50, plus the suite's backbones can pass the
  # server's max_connections of 100).
  .bin/ferretdb -listen "127.0.0.1:$port" -postgresql-url "postgres://postgres@127.0.0.1:5432/resultity_test_ferretdb?pool_max_conns=20" -log-level error &
  ferret_pid=$!
  for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
  kill -0 "$ferret_pid" 2>/dev/null || { echo "FerretDB did not start (see above)" >&2; exit 1; }
  export TEST_MONGODB_URL="mongodb://127.0.0.1:$port/"
fi

# Kubo (IPFS) for the snapshot store's tests: offline, with a repository of its own made for the run
# (`--profile test`: no bootstrap peers, no MDNS), its RPC API on a free port the daemon picks itself.
if [ -z "${TEST_KUBO_API_URL:-}" ]; then
  kubo_repo="$(mktemp -d)"
  export IPFS_PATH="$kubo_repo"
  .bin/ipfs init --profile test >/dev/null
  .bin/ipfs config Addresses.API /ip4/127.0.0.1/tcp/0
  .bin/ipfs config --json Addresses.Gateway '[]'
  .bin/ipfs daemon --offline >"$kubo_repo/daemon.log" 2>&1 &
  kubo_pid=$!
  # The daemon writes the address it listens on to $IPFS_PATH/api once it is ready.
  for _ in $(seq 1 200); do [ -s "$kubo_repo/api" ] && break; sleep 0.1; done
  kill -0 "$kubo_pid" 2>/dev/null && [ -s "$kubo_repo/api" ] || { cat "$kubo_repo/daemon.log" >&2; echo "Kubo did not start (see above)" >&2; exit 1; }
  TEST_KUBO_API_URL="http://$(sed -E 's#^/ip4/([^/]+)/tcp/([0-9]+)$#\1:\2#' "$kubo_repo/api")"
  export TEST_KUBO_API_URL
  unset IPFS_PATH
fi

# Test files run two at a time (each has its own isolated stack); a file that hangs is killed. The chaos
# run's short version runs after them, alone: it starts a dozen processes and engines of its own and its
# faults are timed, so it gets the machine to itself (about two and a half minutes).
if [ "$#" -gt 0 ]; then
  node --test --test-timeout=0 "$@"
else
  status=0
  node --test --test-concurrency=2 --test-timeout=180000 $(ls dist/test/unit/*.test.js dist/test/integration/*.test.js | grep -v '/chaos-short\.test\.js$') || status=$?
  node --test --test-timeout=180000 dist/test/integration/chaos-short.test.js || status=$?
  exit "$status"
fi
