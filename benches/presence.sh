#!/usr/bin/env bash
# What presence costs (issue 13): one release node against its own redis-server, the
# `lms-loadgen presence` scenario run twice (PRESENCE_ENABLED=true, then false), and Redis
# memory per online user from `INFO memory` before the run and during its list phase.
#
#   benches/presence.sh                  # 10,000-student course, 20 s phases
#   N=2000 DUR=5 benches/presence.sh     # smaller
#   SKIP_BUILD=1 benches/presence.sh     # use the release binaries already built
#   SERVER_CPUS=0 LOADGEN_CPUS=1 NICE=-20 benches/presence.sh
#                                        # node and Redis on one core, the generator (which
#                                        # parses each 770 KB list) on the other, both ahead
#                                        # of anything else on the box: the figure is the server's
#   REDIS_CPUS=1 SERVER_CPUS=0 LOADGEN_CPUS=1 NICE=-20 benches/presence.sh
#                                        # the node on a core of its own, Redis beside the
#                                        # generator (production runs Redis on other machines)
#
# Output: $OUT (default target/bench/presence-<UTC time>/): on.json, off.json (one result line
# each), memory.txt, node logs. The per-IP caps are lifted (every socket comes from 127.0.0.1). Ports: gateway 4141, Redis on a free port in 20000-29999
# (never 6379 or 6400-6419). Everything it starts is stopped on exit.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
target=${CARGO_TARGET_DIR:-$repo/target}
N=${N:-10000} DUR=${DUR:-20} RATE=${RATE:-500} LIST_RATE=${LIST_RATE:-10}
OUT=${OUT:-$target/bench/presence-$(date -u +%Y%m%dT%H%M%SZ)}
JWT_SECRET=${JWT_SECRET:-$(od -An -tx1 -N32 /dev/urandom | tr -d " \n")}
export JWT_SECRET
mkdir -p "$OUT"
ulimit -n 20000 2>/dev/null || true

[ -n "${SKIP_BUILD:-}" ] || (cd "$repo" && cargo build --release --bin lms-realtime --bin lms-loadgen)

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

. "$here/lib/redis.sh"
start_redis "$OUT/redis.log"
used() { redis-cli -p "$port" info memory | awk -F: '/^used_memory:/ { print $2 }' | tr -d '\r'; }

run() { # run on|off
  local mode=$1 enabled=true
  [ "$mode" = off ] && enabled=false
  PORT=4141 HOST=127.0.0.1 RUST_LOG=warn REDIS_URL="redis://127.0.0.1:$port" NODE_ID="bench-$mode" \
    PRESENCE_ENABLED=$enabled MAX_HTTP_BODY_BYTES=4000000 \
    MAX_CONNECTIONS_PER_IP=1000000 MAX_PENDING_SESSIONS_PER_IP=1000000 \
    ${NICE:+nice -n $NICE} ${SERVER_CPUS:+taskset -c $SERVER_CPUS} "$target/release/lms-realtime" > "$OUT/node-$mode.log" 2>&1 &
  local node=$!; pids+=("$node")
  until curl -sf http://127.0.0.1:4141/readyz >/dev/null; do sleep 0.1; done
  redis-cli -p "$port" flushall >/dev/null
  sleep 1
  local before; before=$(used)
  ${NICE:+nice -n $NICE} ${LOADGEN_CPUS:+taskset -c $LOADGEN_CPUS} "$target/release/lms-loadgen" presence --url http://127.0.0.1:4141 --pids "$node,$redis_pid" \
    -n "$N" --connect-rate 2000 --duration "$DUR" --rate "$RATE" --list-rate "$LIST_RATE" \
    --run-id "pr$mode" > "$OUT/$mode.json" 2> "$OUT/$mode.progress" &
  local lg=$!
  until grep -q "presence:list" "$OUT/$mode.progress" 2>/dev/null || ! kill -0 "$lg" 2>/dev/null; do sleep 0.5; done
  local during; during=$(used)
  wait "$lg"
  echo "$mode: used_memory before=$before during_list=$during users=$((N + 1)) bytes_per_user=$(( (during - before) / (N + 1) ))" | tee -a "$OUT/memory.txt"
  kill "$node"; wait "$node" 2>/dev/null || true
}
run on
run off
echo "results in $OUT"
