#!/usr/bin/env bash
# Connection state recovery after a node crash (issue 12): two release nodes and their own
# redis-server; N sockets on the first node receive tenant broadcasts sent through the
# second; the first node gets SIGKILL after KILL_AFTER seconds and every socket reconnects to
# the second with its pid and last offset (`lms-loadgen recovery`). Prints the result line:
# sockets recovered vs new, time from the kill until each was back, events replayed, loss
# and duplicates, and the survivor's and Redis's CPU.
#
#   benches/recovery.sh                       # 10,000 sockets, 10 tenants, 20 broadcasts/s
#   N=1000 DUR=10 benches/recovery.sh         # smaller
#   SKIP_BUILD=1 benches/recovery.sh          # use the release binaries already built
#
# Output: $OUT (default target/bench/recovery-<UTC time>/): result.json, progress, node and
# Redis logs. Ports: gateways 4151-4152, Redis on a free port in 20000-29999. Everything it
# starts is stopped on exit.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
target=${CARGO_TARGET_DIR:-$repo/target}
N=${N:-10000} TENANTS=${TENANTS:-10} DUR=${DUR:-20} RATE=${RATE:-20} KILL_AFTER=${KILL_AFTER:-5}
OUT=${OUT:-$target/bench/recovery-$(date -u +%Y%m%dT%H%M%SZ)}
JWT_SECRET=${JWT_SECRET:-$(od -An -tx1 -N32 /dev/urandom | tr -d " \n")}
export JWT_SECRET
mkdir -p "$OUT"
ulimit -n 40000 2>/dev/null || ulimit -n 20000 2>/dev/null || true

[ -n "${SKIP_BUILD:-}" ] || (cd "$repo" && cargo build --release --bin lms-realtime --bin lms-loadgen)

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

. "$here/lib/redis.sh"
start_redis "$OUT/redis.log"

node() { # node <port>: starts one gateway, prints its pid
  PORT=$1 HOST=127.0.0.1 RUST_LOG=warn REDIS_URL="redis://127.0.0.1:$port" NODE_ID="rec-$1" \
    MAX_CONNECTIONS_PER_IP=1000000 MAX_PENDING_SESSIONS_PER_IP=1000000 \
    API_RATE_PER_SEC=100000 API_BURST=100000 \
    "$target/release/lms-realtime" > "$OUT/node-$1.log" 2>&1 &
  echo $!
}
first=$(node 4151); pids+=("$first")
second=$(node 4152); pids+=("$second")
for p in 4151 4152; do until curl -sf "http://127.0.0.1:$p/readyz" >/dev/null; do sleep 0.1; done; done

"$target/release/lms-loadgen" recovery --url http://127.0.0.1:4151,http://127.0.0.1:4152 \
  --pids "$second,$redis_pid" --kill-pid "$first" --kill-after "$KILL_AFTER" \
  -n "$N" -t "$TENANTS" --connect-rate 2000 --duration "$DUR" --rate "$RATE" \
  > "$OUT/result.json" 2> "$OUT/progress"
cat "$OUT/result.json"
echo "results in $OUT" >&2
