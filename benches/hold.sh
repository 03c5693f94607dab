#!/usr/bin/env bash
# Many concurrent connections on NODES cluster nodes, beyond what one load-generator process
# can open (the hard `ulimit -n` here is 20000 per process): starts its own redis-server
# (port 6403) and NODES release nodes (4151, 4152, ...), runs PROCS `lms-loadgen connect`
# processes of N sockets each against all of them, samples the servers' total RSS and CPU
# from /proc every 5 s while they hold, and stops everything it started.
#
#   benches/hold.sh                        # 3 nodes, 3 x 18000 = 54k sockets, held 40 s
#   N=19000 PROCS=3 HOLD=600 benches/hold.sh   # 57k for 10 minutes (RSS-flat check)
#   NODES=6 N=17000 PROCS=6 HOLD=600 benches/hold.sh   # 102k on 6 nodes for 10 minutes
#
# Needs the release binaries (cargo build --release --bin lms-realtime --bin lms-loadgen).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
B=${CARGO_TARGET_DIR:-$here/../target}/release
N=${N:-18000} PROCS=${PROCS:-3} NODES=${NODES:-3} HOLD=${HOLD:-40} RATE=${RATE:-1500}
OUT=${OUT:-$(mktemp -d /tmp/lms-hold.XXXXXX)}
mkdir -p "$OUT"
export JWT_SECRET=${JWT_SECRET:-$(od -An -tx1 -N32 /dev/urandom | tr -d " \n")}
ulimit -n 65535 2>/dev/null || ulimit -n "$(ulimit -Hn)"
started=()
cleanup() {
  for p in "${started[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$OUT/redis.pid" ] && kill "$(cat "$OUT/redis.pid")" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM
redis-server --port 6403 --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
  --pidfile "$OUT/redis.pid" --logfile "$OUT/redis.log"
for _ in $(seq 50); do redis-cli -p 6403 ping >/dev/null 2>&1 && break; sleep 0.1; done
ports=$(seq 4151 $((4150 + NODES)))
urls=$(for p in $ports; do printf 'http://127.0.0.1:%s,' "$p"; done)
urls=${urls%,}
nodes=()
for p in $ports; do
  PORT=$p HOST=127.0.0.1 NODE_ID=hold-$p REDIS_URL=redis://127.0.0.1:6403 RUST_LOG=warn \
    MAX_CONNECTIONS_PER_IP=1000000 MAX_PENDING_SESSIONS_PER_IP=1000000 \
    "$B/lms-realtime" >"$OUT/node-$p.log" 2>&1 &
  started+=($!) nodes+=($!)
done
for p in $ports; do
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$p/healthz" >/dev/null && break; sleep 0.1; done
done
all=$(IFS=,; echo "${nodes[*]}"),$(cat "$OUT/redis.pid")
sample() { # total RSS (KB) and CPU (ticks) of the servers
  local r=0 c=0
  for p in ${all//,/ }; do
    r=$((r + $(awk '/VmRSS/ {print $2}' "/proc/$p/status"))); c=$((c + $(awk '{print $14 + $15}' "/proc/$p/stat")))
  done
  echo "rss_kb=$r cpu_ticks=$c"
}
echo "t=0s $(sample) (before)"
gens=()
for i in $(seq "$PROCS"); do
  "$B/lms-loadgen" connect --url "$urls" \
    --pids "$all" -n "$N" -t 10 --connect-rate "$RATE" --duration "$HOLD" --quiet >"$OUT/gen-$i.json" 2>"$OUT/gen-$i.err" &
  gens+=($!)
done
t=0
while kill -0 "${gens[0]}" 2>/dev/null; do sleep 5; t=$((t + 5)); echo "t=${t}s $(sample)"; done
for p in "${gens[@]}"; do wait "$p" || true; done
for i in $(seq "$PROCS"); do
  jq -c '{accepted: .connections.accepted, refused: .connections.refused, failed: .connections.failed,
          dropped: .connections.unexpected_disconnects, connect_p99_ms: .connect_latency.p99_ms}' "$OUT/gen-$i.json"
done
echo "results in $OUT"
