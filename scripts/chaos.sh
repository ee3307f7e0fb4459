#!/usr/bin/env bash
# `npm run chaos` (issue 13 part 1): the roles as separate processes on private engines, under load and
# faults, then checked; rewrites RELIABILITY.md. Knobs: see the head of bench/chaos.ts (CHAOS_JOBS...).
# It starts its own PostgreSQL cluster, redis-server, RabbitMQ node and FerretDB (never the machine's).
# About ten to twenty minutes at the default 10,000 jobs on two cores.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/setup.sh
setup_project
node dist/scripts/check-engines.js
exec nice -n 10 node dist/bench/chaos.js
