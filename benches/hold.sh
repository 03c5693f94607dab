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
# Then the mass disconnect: the generators exit together, closing every socket within a
# second; for AFTER seconds (default 20) the servers' RSS is sampled every second, and the
# script reports the peak rise per closed socket and what the nodes had not yet given back
# to Redis at the end (user connection counts left, recovery sessions still on their
# connected lease rather than the window).
#
# Needs the release binaries (cargo build --release --bin lms-realtime --bin lms-loadgen).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
B=${CARGO_TARGET_DIR:-$here/../target}/release
N=${N:-18000} PROCS=${PROCS:-3} NODES=${NODES:-3} HOLD=${HOLD:-40} RATE=${RATE:-1500} AFTER=${AFTER:-20}
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
rss_of() { local r=${1#rss_kb=}; echo "${r%% *}"; }
recent=() # the last samples while every generator was running: the held plateau
while kill -0 "${gens[0]}" 2>/dev/null; do
  sleep 5; t=$((t + 5)); line=$(sample); echo "t=${t}s $line"
  recent+=("$(rss_of "$line")"); [ ${#recent[@]} -le 3 ] || recent=("${recent[@]:1}")
done
# The generators close their sockets at the end of their hold (within a second of each
# other): the last samples may already see it, so the held RSS is the least of the last 3.
held=$(printf '%s\n' "${recent[@]}" | sort -n | head -1)
peak=$(printf '%s\n' "${recent[@]}" | sort -n | tail -1)
for p in "${gens[@]}"; do wait "$p" || true; done
closed=0
for i in $(seq "$PROCS"); do closed=$((closed + $(jq '.connections.accepted' "$OUT/gen-$i.json"))); done
r=$held
for s in $(seq "$AFTER"); do
  sleep 1; line=$(sample); r=$(rss_of "$line")
  [ "$r" -gt "$peak" ] && peak=$r
  echo "after close +${s}s $line"
done
redis-cli -p 6403 --scan --pattern '*:user:*:conns' >"$OUT/counts-left.txt"
redis-cli -p 6403 --scan --pattern '*:rs:pid:*' >"$OUT/sessions.txt"
sed -n '1,2000s/^/PTTL /p' "$OUT/sessions.txt" | redis-cli -p 6403 >"$OUT/sessions-pttl.txt"
per=$(( (peak - held) * 1024 / (closed > 0 ? closed : 1) ))
echo "mass disconnect: $closed sockets closed; servers' RSS $held KB held, peak $peak KB" \
  "(+$per B per closed socket), $r KB ${AFTER} s after;" \
  "user connection counts left: $(wc -l <"$OUT/counts-left.txt");" \
  "of $(wc -l <"$OUT/sessions-pttl.txt") recovery sessions sampled," \
  "$(awk '$1 > 180000' "$OUT/sessions-pttl.txt" | wc -l) still on the connected lease"
for i in $(seq "$PROCS"); do
  jq -c '{accepted: .connections.accepted, refused: .connections.refused, failed: .connections.failed,
          dropped: .connections.unexpected_disconnects, connect_p99_ms: .connect_latency.p99_ms}' "$OUT/gen-$i.json"
done
echo "results in $OUT"
