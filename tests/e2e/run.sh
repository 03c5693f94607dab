#!/usr/bin/env bash
# End-to-end suite: the official socket.io-client against the built lms-realtime binary.
#
#   tests/e2e/run.sh                 # single node (default; or E2E_MODE=cluster)
#   tests/e2e/run.sh cluster         # 3 nodes + a private redis-server per test file
#   tests/e2e/run.sh all             # single, then cluster
#   tests/e2e/run.sh single auth     # only dist/auth.test.js (any file-name filter)
#
# Environment: LMS_BIN (gateway binary, relative to tests/e2e; default
# ../../target/debug/lms-realtime), E2E_RUST_LOG (the nodes' RUST_LOG, default warn),
# E2E_KEEP_LOGS=1 (keep the nodes' logs), E2E_CONNECT_SETTLE_MS (see src/lib/client.ts).
#
# Steps: `npm ci` when node_modules is absent (here and in clients/typescript; offline once
# the npm cache holds the locked packages), build the client package (tsc to its dist/),
# type-check the suite against it, compile, run with node's test runner; exits non-zero on
# any failure.
set -euo pipefail

cd "$(dirname "$0")"

modes=()
case "${1:-${E2E_MODE:-single}}" in
  single) modes=(single) ;;
  cluster) modes=(cluster) ;;
  all|both) modes=(single cluster) ;;
  *) echo "usage: $0 [single|cluster|all] [file-filter]" >&2; exit 2 ;;
esac
filter="${2:-}"

export LMS_BIN="${LMS_BIN:-../../target/debug/lms-realtime}"
if [[ ! -x "$LMS_BIN" ]]; then
  echo "e2e: gateway binary $LMS_BIN not found; run \`cargo build\` first (or set LMS_BIN)" >&2
  exit 1
fi

# The suite imports the client package's build (dist/), as an application would.
pkg=../../clients/typescript
if [[ ! -d "$pkg/node_modules" ]]; then
  echo "e2e: npm ci (client package)"
  (cd "$pkg" && npm ci --no-audit --no-fund --prefer-offline)
fi
echo "e2e: build the client package"
(cd "$pkg" && npm run --silent build)

if [[ ! -d node_modules ]]; then
  echo "e2e: npm ci"
  npm ci --no-audit --no-fund --prefer-offline
fi

echo "e2e: type-check"
./node_modules/.bin/tsc -p tsconfig.json --noEmit

echo "e2e: compile"
rm -rf dist
./node_modules/.bin/tsc -p tsconfig.json

files=()
for f in dist/*.test.js; do
  [[ -z "$filter" || "$f" == *"$filter"* ]] && files+=("$f")
done
if [[ ${#files[@]} -eq 0 ]]; then
  echo "e2e: no test file matches '$filter'" >&2
  exit 2
fi

status=0
for mode in "${modes[@]}"; do
  if [[ "$mode" == cluster ]]; then
    if ! command -v redis-server >/dev/null; then
      echo "e2e: cluster mode needs redis-server (>= 7) on PATH" >&2
      status=1
      continue
    fi
  fi
  echo "e2e: mode=$mode binary=$LMS_BIN files=${#files[@]}"
  # One file at a time: each file starts its own gateway (or 3 nodes + Redis), and the
  # machine may have two cores only.
  if ! E2E_MODE="$mode" node --test --test-concurrency=1 --test-timeout=120000 \
      --test-reporter=spec "${files[@]}"; then
    echo "e2e: mode=$mode FAILED" >&2
    status=1
  else
    echo "e2e: mode=$mode passed"
  fi
done
exit "$status"
