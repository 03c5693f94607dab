#!/usr/bin/env bash
# The operator console in a real headless browser: Debian's chromium driven by
# playwright-core (which downloads no browser of its own), against the built binary.
#
#   cargo build --bin lms-realtime && bash tests/console/run.sh
#
# Environment: LMS_BIN (the gateway binary, relative to tests/console; default
# ../../target/debug/lms-realtime), CHROMIUM (default /usr/bin/chromium; installed with
# apt-get when absent and running as root), CONSOLE_RUST_LOG (the node's RUST_LOG).
set -euo pipefail
cd "$(dirname "$0")"

export LMS_BIN="${LMS_BIN:-../../target/debug/lms-realtime}"
if [[ ! -x "$LMS_BIN" ]]; then
  echo "console: gateway binary $LMS_BIN not found; run \`cargo build --bin lms-realtime\`" >&2
  exit 1
fi
export CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
if [[ ! -x "$CHROMIUM" ]]; then
  if [[ "$(id -u)" == 0 ]]; then
    echo "console: apt-get install chromium"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
  else
    echo "console: $CHROMIUM not found: apt-get install chromium" >&2
    exit 1
  fi
fi
if [[ ! -d node_modules ]]; then
  echo "console: npm ci"
  npm ci --no-audit --no-fund --prefer-offline
fi
node --test --test-concurrency=1 --test-timeout=60000 --test-reporter=spec console.test.mjs
