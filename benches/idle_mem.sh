#!/usr/bin/env bash
# Memory per idle authenticated socket on one in-memory release node (issue 15): starts a
# fresh node on port 4171 (RUST_LOG=warn, per-IP caps lifted), opens N sockets with
# `lms-loadgen connect`, prints the JSON's `connect.rss_bytes_per_connection`, and stops the
# node.
#
#   benches/idle_mem.sh                    # 10k sockets at 2,000/s, held 10 s
#   HEAPTRACK=1 benches/idle_mem.sh        # the node under heaptrack, 5k sockets at 700/s;
#                                          # prints the heap per socket by site
#                                          # (benches/support/heap_sites.py)
#   REDIS=1 benches/idle_mem.sh            # the node in cluster mode: its own redis-server
#                                          # (port 6404), so the figure (the node's RSS only)
#                                          # and the heap sites are a cluster node's (with
#                                          # HEAPTRACK: the heap still allocated when the
#                                          # node is killed during the hold)
#
# Needs the release binaries (cargo build --release --bin lms-realtime --bin lms-loadgen).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
B=${B:-${CARGO_TARGET_DIR:-$here/../target}/release}
PORT=${PORT:-4171}
OUT=${OUT:-$(mktemp -d /tmp/lms-idle-mem.XXXXXX)}
if [ -n "${HEAPTRACK:-}" ]; then
  N=${N:-5000} RATE=${RATE:-700}
else
  N=${N:-10000} RATE=${RATE:-2000}
fi
HOLD=${HOLD:-10}
mkdir -p "$OUT"
# shellcheck source=lib/one_node.sh
. "$here/lib/one_node.sh"
if [ -n "${REDIS:-}" ]; then
  REDIS_PORT=${REDIS_PORT:-6404}
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
    --pidfile "$OUT/redis.pid" --logfile "$OUT/redis.log"
  trap 'cleanup; kill "$(cat "$OUT/redis.pid")" 2>/dev/null || true' EXIT INT TERM
  for _ in $(seq 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
  export REDIS_URL=redis://127.0.0.1:$REDIS_PORT
fi
start_one_node "$PORT" idle-mem "$OUT/node.log" ${HEAPTRACK:+"$OUT/heap"}
connect() {
  "$B/lms-loadgen" connect --url "http://127.0.0.1:$PORT" --pids "$pid" -n "$N" -t 10 \
    --connect-rate "$RATE" --duration "$HOLD" --quiet >"$OUT/connect.json" 2>"$OUT/connect.err"
}
cost=peak
if [ -n "${HEAPTRACK:-}" ] && [ -n "${REDIS:-}" ]; then
  # A cluster node's disconnects do Redis work whose buffers outgrow the held sockets' heap:
  # kill the node while the sockets are held, and count what is still allocated then.
  connect &
  gen=$!
  sleep $((N / RATE + HOLD / 2))
  kill -KILL "$pid" 2>/dev/null || true
  wait "$gen" 2>/dev/null || true
  cost=leaked
else
  connect
  jq -c '{accepted: .connections.accepted, failed: .connections.failed,
          rss_bytes_per_connection: .connect.rss_bytes_per_connection}' "$OUT/connect.json"
fi
if [ -n "${HEAPTRACK:-}" ]; then
  kill -INT "$pid" 2>/dev/null || true
  wait "$node" 2>/dev/null || true
  node=
  f=$(ls "$OUT"/heap* 2>/dev/null | head -1)
  heaptrack_print --flamegraph-cost-type "$cost" -F "$OUT/stacks.txt" "$f" >/dev/null
  python3 "$here/support/heap_sites.py" "$OUT/stacks.txt" "$N"
fi
echo "output in $OUT" >&2
