#!/usr/bin/env bash
# `npm run bench`: the benchmarks, NOT tests. Installs and builds what is missing (scripts/setup.sh),
# checks the engines, then runs, one after the other:
#   - e2e (bench/e2e.ts): the backbone alone, from outside: `resultity serve` in its own process, the
#     simulated nodes (0 ms) in a second and the load in a third; jobs/s, p50/p99, added latency, CPU per
#     job by process group and round trips per job (GET /metrics and the engines' counters) against the
#     budget, at C=1, 8, 64, beside the naive floor pipeline and BullMQ bare, plus a streaming run and a run
#     with 100,000 payloads stored; starts a FerretDB of its own on PostgreSQL unless TEST_MONGODB_URL
#     names a MongoDB (about five minutes);
#   - ledger (bench/ledger.ts): credit holds and settlements per second, naive and group-committed,
#     beside pgbench on the same PostgreSQL (about two minutes);
#   - fleet (bench/fleet.ts): 10,000 simulated nodes on one io gateway: registration time, gateway memory
#     per node, heartbeats acknowledged per second, reservation latency beside raw Redis operations and
#     redis-benchmark (about three minutes; needs a MongoDB like e2e, and two open files per node);
#   - snapshots (bench/snapshots.ts): snapshot export MB/s beside sha256sum of the same CAR, restore rows/s
#     beside psql \copy of the same rows (about a minute; PostgreSQL only);
#   - space (bench/space.ts): payload writes/s through the batched path beside bare insertMany, export
#     beside a bare cursor read, and one expiry pass as the store grows tenfold (about two minutes; MongoDB
#     or the FerretDB started here).
# Not in `all`: profile (`npm run bench:profile`): e2e at one concurrency (BENCH_PROFILE_CONCURRENCY, 8)
# with the backbone under `node --cpu-prof`, then bench/cpu-profile.ts: where the backbone process's CPU
# goes, by engine client, package and folder (the `profile` section of BENCHMARKS.md; about a minute).
# Each prints a table and rewrites its part of BENCHMARKS.md. `scripts/bench.sh e2e`, `... ledger` or
# `... fleet` (`npm run bench:ledger`, `npm run bench:fleet`) runs one. Knobs: see the head of each bench file; BENCH_NODE_FLAGS passes flags
# to node (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof").
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
which="${1:-all}"
case "$which" in all | e2e | ledger | fleet | snapshots | space | profile) ;; *) echo "usage: scripts/bench.sh [all|e2e|ledger|fleet|snapshots|space|profile]" >&2; exit 2 ;; esac
source scripts/setup.sh
setup_project

ferret_pid=""
cleanup() { if [ -n "$ferret_pid" ]; then kill "$ferret_pid" 2>/dev/null || true; wait "$ferret_pid" 2>/dev/null || true; fi; }
trap cleanup EXIT

# Engines: PostgreSQL, Redis and RabbitMQ must be running; say what to run when one is not.
node dist/scripts/check-engines.js

# The stack helper's log level: warnings only, so that the table stays readable.
export TEST_LOG_LEVEL="${TEST_LOG_LEVEL:-warn}"
status=0

if [ "$which" != ledger ] && [ "$which" != snapshots ] && [ -z "${TEST_MONGODB_URL:-}" ]; then
  # Its own port, so that a concurrent `npm test` is not disturbed.
  port="${BENCH_FERRETDB_PORT:-27019}"
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "bench: port $port is already in use; set BENCH_FERRETDB_PORT or TEST_MONGODB_URL" >&2
    exit 1
  fi
  # FerretDB stores on a PostgreSQL cluster of its own, as a MongoDB in production is a server of its own:
  # the backbone's cluster then flushes its WAL for the backbone alone, and pg_stat_wal says so. Made here
  # with the server's own binaries (initdb, pg_ctl), fsync on, on a free port; removed on exit.
  pg_bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
  [ -n "$pg_bin" ] || pg_bin="$(dirname "$(command -v pg_ctl || command -v initdb || echo /usr/bin/pg_ctl)")"
  ferret_pg_dir="$(mktemp -d /tmp/resultity-bench-ferretdb-pg.XXXXXX)"
  ferret_pg_port="$(node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")"
  as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
  [ "$(id -u)" = 0 ] && chown postgres "$ferret_pg_dir"
  as_pg "$pg_bin/initdb" -D "$ferret_pg_dir/data" -U postgres -A trust >/dev/null
  as_pg "$pg_bin/pg_ctl" -D "$ferret_pg_dir/data" -l "$ferret_pg_dir/log" -w -o "-p $ferret_pg_port -k $ferret_pg_dir -c listen_addresses=127.0.0.1 -c cluster_name=resultity-bench-ferretdb -c shared_buffers=128MB" start >/dev/null
  cleanup_pg() { as_pg "$pg_bin/pg_ctl" -D "$ferret_pg_dir/data" -m fast -w stop >/dev/null 2>&1 || true; rm -rf "$ferret_pg_dir"; }
  trap 'cleanup; cleanup_pg' EXIT
  .bin/ferretdb -listen "127.0.0.1:$port" -postgresql-url "postgres://postgres@127.0.0.1:$ferret_pg_port/postgres?pool_max_conns=20" -log-level error &
  ferret_pid=$!
  for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
  export TEST_MONGODB_URL="mongodb://127.0.0.1:$port/"
  export BENCH_FERRETDB_BACKEND="PostgreSQL backend, on a PostgreSQL cluster of its own"
  BENCH_FERRETDB_VERSION="$(grep -o 'github.com/FerretDB/FerretDB v[0-9][0-9.]*' ferretdb/go.mod | head -1 | cut -d" " -f2)"
  export BENCH_FERRETDB_VERSION
  export BENCH_FERRETDB_PG_URL="postgres://postgres@127.0.0.1:$ferret_pg_port/postgres" BENCH_FERRETDB_PG_CLUSTER="resultity-bench-ferretdb" BENCH_FERRETDB_PG_DIR="$ferret_pg_dir" BENCH_FERRETDB_PORT_USED="$port"
fi

if [ "$which" = all ] || [ "$which" = e2e ]; then
  # shellcheck disable=SC2086 # BENCH_NODE_FLAGS is a list of flags
  node ${BENCH_NODE_FLAGS:-} dist/bench/e2e.js || status=$?
fi
if [ "$which" = profile ]; then
  # The profiled run's own figures are not written (the profiler slows the process it samples); only the
  # summary of its profile is.
  prof_dir="$(mktemp -d /tmp/resultity-bench-profile.XXXXXX)"
  c="${BENCH_PROFILE_CONCURRENCY:-8}"
  BENCH_CONCURRENCY="$c" BENCH_REFERENCES="" BENCH_STREAM=0 BENCH_STORED_PAYLOADS=0 BENCH_OUTPUT=- \
    BENCH_BACKBONE_NODE_FLAGS="--cpu-prof --cpu-prof-dir=$prof_dir ${BENCH_BACKBONE_NODE_FLAGS:-}" \
    node dist/bench/e2e.js || status=$?
  node dist/bench/cpu-profile.js "$prof_dir" BENCHMARKS.md \
    "Profiled run $(date -u +%Y-%m-%dT%H:%M:%SZ): bench/e2e.ts, synchronous jobs at C=$c (${BENCH_WARMUP_S:-2} s warm-up, ${BENCH_DURATION_S:-10} s measured), the backbone as \`resultity serve\` under \`node --cpu-prof\`, nodes and load in processes of their own." || status=$?
  rm -rf "$prof_dir"
fi
if [ "$which" = all ] || [ "$which" = ledger ]; then
  # shellcheck disable=SC2086
  node ${BENCH_NODE_FLAGS:-} dist/bench/ledger.js || status=$?
fi
if [ "$which" = all ] || [ "$which" = fleet ]; then
  # Every simulated node is a socket in a generator and another in the gateway process: raise the soft
  # limit on open files to the hard one (the gateway needs BENCH_FLEET_NODES plus a few hundred).
  ulimit -n "$(ulimit -Hn)" 2>/dev/null || echo "bench: could not raise the open-files limit above $(ulimit -n)" >&2
  # shellcheck disable=SC2086
  node ${BENCH_NODE_FLAGS:-} dist/bench/fleet.js || status=$?
fi
if [ "$which" = all ] || [ "$which" = snapshots ]; then
  # shellcheck disable=SC2086
  node ${BENCH_NODE_FLAGS:-} dist/bench/snapshots.js || status=$?
fi
if [ "$which" = all ] || [ "$which" = space ]; then
  # shellcheck disable=SC2086
  node ${BENCH_NODE_FLAGS:-} dist/bench/space.js || status=$?
fi
exit "$status"
