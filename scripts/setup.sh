# Idempotent project set-up, sourced by bin/resultity and scripts/test.sh. Each step runs only when its
# output is missing or older than its inputs, so the second run costs a few stat calls.
setup_project() {
  local root
  root="$(pwd)"
  if ! command -v node >/dev/null; then echo "Node.js 20+ is required" >&2; return 1; fi

  # npm dependencies, exactly as locked.
  if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    echo "setup: installing npm dependencies" >&2
    npm ci --no-audit --no-fund --loglevel=error
  fi

  # TypeScript build when any source is newer than the last build.
  if [ ! -f dist/.built ] || [ -n "$(find src test bench scripts tsconfig.json package-lock.json -newer dist/.built -print -quit 2>/dev/null)" ]; then
    echo "setup: compiling TypeScript" >&2
    npx tsc -p tsconfig.json
    touch dist/.built
  fi

  # The web app (web/: the explorer and the consoles, served under /app): type-checked against the API's
  # types in src/ and built by Vite into web/dist when it or those types changed.
  if [ ! -f web/dist/.built ] || [ -n "$(find web/src web/index.html web/vite.config.ts web/tsconfig.json src package-lock.json -newer web/dist/.built -print -quit 2>/dev/null)" ]; then
    echo "setup: building the web app (web/)" >&2
    npx tsc -p web/tsconfig.json || return 1
    npx vite build web --logLevel warn || return 1
    touch web/dist/.built
  fi

  # The embedded FerretDB (only used when MONGODB_URL is unset, but cheap to have).
  if [ -z "${MONGODB_URL:-}" ] && { [ ! -x .bin/ferretdb ] || [ -n "$(find ferretdb -newer .bin/ferretdb -print -quit)" ]; }; then
    if ! command -v go >/dev/null && [ -x /usr/local/go/bin/go ]; then export PATH="$PATH:/usr/local/go/bin"; fi
    if ! command -v go >/dev/null; then echo "Go is required to build the embedded FerretDB (or set MONGODB_URL to a MongoDB server)" >&2; return 1; fi
    echo "setup: building FerretDB from ferretdb/ (first time: about a minute)" >&2
    (cd ferretdb && go build -o "$root/.bin/ferretdb" .)
  fi

  # Kubo (IPFS), for the snapshot store's tests against a real daemon (kubo/: v0.43.1 from the Go module
  # proxy; the first build takes about ten minutes on two cores). Needed only by `npm test` and by
  # SNAPSHOT_STORE=kubo setups that have no Kubo of their own.
  if [ "${SETUP_KUBO:-1}" = 1 ] && { [ ! -x .bin/ipfs ] || [ -n "$(find kubo -newer .bin/ipfs -print -quit)" ]; }; then
    if ! command -v go >/dev/null && [ -x /usr/local/go/bin/go ]; then export PATH="$PATH:/usr/local/go/bin"; fi
    if ! command -v go >/dev/null; then echo "Go is required to build Kubo for the snapshot store's tests" >&2; return 1; fi
    echo "setup: building Kubo (IPFS) from kubo/ (first time: about ten minutes)" >&2
    (cd kubo && go build -o "$root/.bin/ipfs" .)
  fi
}
