#!/usr/bin/env bash
# One command for the whole-cluster benchmark: builds the release binaries, starts its own
# redis-server and 3 lms-realtime nodes, runs every lms-loadgen scenario at fixed sizes, does the
# same against the Node baseline (socket.io + redis adapter, ../shared/baseline/node) on the same
# machine in the same run, and writes a markdown table with the ratios.
#
#   benches/cluster.sh                 # full sizes (about 10 minutes on 2 cores)
#   benches/cluster.sh --quick         # small sizes, a smoke test of the whole pipeline (~3 min)
#   benches/cluster.sh --scaling       # also: cost vs connections, tenants and nodes (3 sizes each)
#   benches/cluster.sh --reference     # also: the issue's reference fanout (2 nodes, 10k sockets,
#                                      #   10 tenants) swept over REF_RATES broadcasts/s
#   SYSTEMS=us benches/cluster.sh      # only one side (us | node | "us node")
#   SKIP_BUILD=1 benches/cluster.sh    # use the release binaries already in $CARGO_TARGET_DIR
#   SCENARIOS=0 benches/cluster.sh --scaling   # only the scaling runs
#   FLOOR=0 benches/cluster.sh         # without the machine's floor (benches/floor.sh: a bare
#                                      #   websocket server holding the same sockets and writing
#                                      #   the same deliveries/s as the 80/s fanout), which is
#                                      #   otherwise run after the systems, for the us / Node /
#                                      #   floor table
#   SERVER_CPUS=0 LOADGEN_CPUS=1 benches/cluster.sh   # pin (taskset -c) the servers (nodes,
#                                      #   Redis, the floor's server) and the generators apart
#
# Output: $OUT (default target/bench/<UTC time>/): one JSON line per run (<system>-<run>.json),
# the nodes' logs, and results.md (the table). Everything listens on 127.0.0.1 only: gateway
# ports 4121-4123, Node ports 4131-4133, Redis 6401 (us) and 6402 (Node); all of it is stopped
# on exit, even on failure or Ctrl-C.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
mode=full scaling=0 reference=0
for a in "$@"; do
  case "$a" in
    --quick) mode=quick ;;
    --scaling) scaling=1 ;;
    --reference) reference=1 ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "unknown argument $a" >&2; exit 2 ;;
  esac
done
SYSTEMS=${SYSTEMS:-"us node"}
JWT_SECRET=${JWT_SECRET:-$(od -An -tx1 -N32 /dev/urandom | tr -d " \n")}
export JWT_SECRET
US_PORTS=(4121 4122 4123)
NODE_PORTS=(4131 4132 4133)
US_REDIS=6401 NODE_REDIS=6402
target=${CARGO_TARGET_DIR:-$repo/target}
OUT=${OUT:-$target/bench/$(date -u +%Y%m%dT%H%M%SZ)}
NODE_SRC=${NODE_BASELINE_DIR:-$repo/../shared/baseline/node}
mkdir -p "$OUT"
# Pinning: empty means "anywhere".
on_servers=(${SERVER_CPUS:+taskset -c "$SERVER_CPUS"})
on_loadgen=(${LOADGEN_CPUS:+taskset -c "$LOADGEN_CPUS"})
ulimit -n 65535 2>/dev/null || ulimit -n "$(ulimit -Hn)"

# Sizes: the issue's reference load is 10k sockets over 10 tenants.
if [ "$mode" = quick ]; then
  CONN=1000 TEN=10 DUR=5 FAN_RATES="40" NOTIFY_N=500 NOTIFY_RATE=100 CHURN_N=500 MIXED_N=1000
else
  CONN=10000 TEN=10 DUR=20 FAN_RATES="80 160 320" NOTIFY_N=2000 NOTIFY_RATE=200 CHURN_N=2000 MIXED_N=5000
fi
# The reference fanout: which broadcast rate each system sustains with p99 < 50 ms, no loss.
REF_RATES=${REF_RATES:-"20 40 60 80 120"}

pids_started=()
cleanup() {
  for p in "${pids_started[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids_started[@]}"; do wait "$p" 2>/dev/null || true; done
  [ -d "${node_dir:-}" ] && RUN_DIR="$OUT/node-run" "$node_dir/cluster.sh" stop 2>/dev/null || true
  for f in "$OUT"/redis-*.pid; do [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true; done
  pids_started=()
}
trap cleanup EXIT INT TERM

if [ "${SKIP_BUILD:-0}" != 1 ]; then
  echo "== building release binaries (target $target)" >&2
  (cd "$repo" && cargo build --release --bin lms-realtime --bin lms-loadgen --bin lms-floor >&2)
fi
gw=${GATEWAY_BIN:-$target/release/lms-realtime}
lg=$target/release/lms-loadgen

start_redis() { # port
  "${on_servers[@]}" redis-server --port "$1" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
    --pidfile "$OUT/redis-$1.pid" --logfile "$OUT/redis-$1.log"
  for _ in $(seq 50); do redis-cli -p "$1" ping >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "redis-server on $1 did not start" >&2; return 1
}
stop_redis() { [ -f "$OUT/redis-$1.pid" ] && kill "$(cat "$OUT/redis-$1.pid")" 2>/dev/null; rm -f "$OUT/redis-$1.pid"; sleep 0.3; }
wait_healthy() { # port...
  for p in "$@"; do
    for _ in $(seq 100); do curl -sf "http://127.0.0.1:$p/healthz" >/dev/null && break; sleep 0.1; done
    curl -sf "http://127.0.0.1:$p/healthz" >/dev/null || { echo "node on $p is not healthy" >&2; return 1; }
  done
}

# A private copy of the Node baseline with its dependencies (shared/ is read-only in CI).
prepare_node() {
  node_dir=$target/bench/node-baseline
  if ! cmp -s "$NODE_SRC/package-lock.json" "$node_dir/package-lock.json" 2>/dev/null || [ ! -d "$node_dir/node_modules" ]; then
    rm -rf "$node_dir" && mkdir -p "$node_dir"
    cp "$NODE_SRC"/*.mjs "$NODE_SRC"/package*.json "$NODE_SRC"/cluster.sh "$node_dir/"
    (cd "$node_dir" && npm ci --no-audit --no-fund >&2)
  fi
  cp "$NODE_SRC"/*.mjs "$NODE_SRC"/cluster.sh "$node_dir/"
}

# start_system us|node N: REDIS + N nodes; sets urls and pids (nodes + redis, for --pids).
start_system() {
  local sys=$1 n=$2 ports=()
  if [ "$sys" = us ]; then
    ports=("${US_PORTS[@]:0:$n}")
    start_redis $US_REDIS
    for p in "${ports[@]}"; do
      # Every load-generator socket comes from 127.0.0.1: lift the per-IP caps. The service
      # API's quotas too: they are the cluster's since session 11, and the notify scenario's
      # calls (one platform token) measure throughput, not quotas; Node has none.
      PORT=$p HOST=127.0.0.1 NODE_ID=us-$p REDIS_URL=redis://127.0.0.1:$US_REDIS RUST_LOG=warn \
        MAX_CONNECTIONS_PER_IP=1000000 MAX_PENDING_SESSIONS_PER_IP=1000000 \
        API_RATE_PER_SEC=1000000 API_BURST=1000000 \
        "${on_servers[@]}" "$gw" >"$OUT/us-$p.log" 2>&1 &
      pids_started+=($!)
    done
    wait_healthy "${ports[@]}"
    pids=$(printf '%s,' "${pids_started[@]}")$(cat "$OUT/redis-$US_REDIS.pid")
  else
    ports=("${NODE_PORTS[@]:0:$n}")
    start_redis $NODE_REDIS
    RUN_DIR="$OUT/node-run" REDIS_PORT=$NODE_REDIS "${on_servers[@]}" "$node_dir/cluster.sh" start "${ports[@]}" >&2
    pids=$(RUN_DIR="$OUT/node-run" "$node_dir/cluster.sh" pids),$(cat "$OUT/redis-$NODE_REDIS.pid")
  fi
  urls=$(printf 'http://127.0.0.1:%s,' "${ports[@]}"); urls=${urls%,}
}
stop_system() {
  local sys=$1
  if [ "$sys" = us ]; then
    for p in "${pids_started[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids_started[@]}"; do wait "$p" 2>/dev/null || true; done
    pids_started=()
    stop_redis $US_REDIS
  else
    RUN_DIR="$OUT/node-run" "$node_dir/cluster.sh" stop || true
    stop_redis $NODE_REDIS
  fi
  sleep 1
}

# run <system> <name> <scenario> [args...]: one loadgen run, its JSON line saved.
run() {
  local sys=$1 name=$2; shift 2
  echo "== $sys $name: lms-loadgen $*" >&2
  if "${on_loadgen[@]}" "$lg" "$@" --url "$urls" --pids "$pids" --quiet >"$OUT/$sys-$name.json" 2>"$OUT/$sys-$name.err"; then :; else
    echo "   (exit $?; see $OUT/$sys-$name.err)" >&2
  fi
}

scenarios() { # system
  local s=$1
  run "$s" connect connect -n "$CONN" -t "$TEN" --connect-rate 1000 --duration 5
  for r in $FAN_RATES; do
    run "$s" "fanout-$r" fanout -n "$CONN" -t "$TEN" --connect-rate 2000 -r "$r" --duration "$DUR"
  done
  run "$s" notify notify -n "$NOTIFY_N" -t "$TEN" -r "$NOTIFY_RATE" --duration "$DUR"
  run "$s" churn churn -n "$CHURN_N" -t "$TEN" -r 20 --duration "$DUR"
  run "$s" mixed mixed -n "$MIXED_N" -t "$TEN" --duration "$DUR"
}

scaling_runs() { # system
  local s=$1
  # Connections (3 sizes) at one broadcast rate, 10 tenants, 3 nodes.
  for n in 1000 3000 9000; do
    run "$s" "scale-conn-$n" fanout -n "$n" -t 10 --connect-rate 2000 -r 40 --duration 10
  done
  # Tenants (3 sizes) at 6000 sockets.
  for t in 1 10 100; do
    run "$s" "scale-tenants-$t" fanout -n 6000 -t "$t" --connect-rate 2000 -r 40 --duration 10
  done
}

machine() {
  echo "date: $(date -u +%FT%TZ)"
  echo "commit: $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$repo" diff --quiet 2>/dev/null || echo ' (work tree modified)')"
  echo "cpus: $(nproc), $(lscpu | sed -n 's/^Model name: *//p')"
  echo "memory: $(free -g | awk '/^Mem:/ {print $2 " GiB"}')"
  echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "pinning: servers on CPUs ${SERVER_CPUS:-any}, generators on ${LOADGEN_CPUS:-any}"
  echo "versions: $(redis-server --version | cut -d' ' -f3), node $(node --version)"
}
machine >"$OUT/machine.txt"
for sys in $SYSTEMS; do
  [ "$sys" = node ] && prepare_node
  start_system "$sys" 3
  [ "${SCENARIOS:-1}" = 1 ] && scenarios "$sys"
  [ "$scaling" = 1 ] && scaling_runs "$sys"
  stop_system "$sys"
  if [ "$scaling" = 1 ]; then
    # Nodes (3 sizes): the same fanout on 1, 2 and 3 nodes.
    for n in 1 2 3; do
      start_system "$sys" "$n"
      run "$sys" "scale-nodes-$n" fanout -n 6000 -t 10 --connect-rate 2000 -r 40 --duration 10
      stop_system "$sys"
    done
  fi
  if [ "$reference" = 1 ]; then
    start_system "$sys" 2
    for r in $REF_RATES; do
      run "$sys" "ref-fanout-$r" fanout -n "$CONN" -t "$TEN" --connect-rate 2000 -r "$r" --duration 15
    done
    stop_system "$sys"
  fi
done

# The floor: the same sockets and, at 8 frames/s each, the deliveries/s of the 80/s fanout
# (80 broadcasts/s to 1,000 sockets per tenant = 8 per socket per second), in its shape: the
# sockets in $TEN groups written one at a time, so that its latency compares with the fanout's.
if [ "${FLOOR:-1}" = 1 ] && [ "${SCENARIOS:-1}" = 1 ]; then
  for m in raw tasks; do
    echo "== floor $m: benches/floor.sh N=$CONN RATE=8 TENANTS=$TEN DURATION=$DUR" >&2
    N=$CONN RATE=8 TENANTS=$TEN DURATION=$DUR MODES=$m SERVER_CPUS=${SERVER_CPUS:-} LOADGEN_CPUS=${LOADGEN_CPUS:-} "$here/floor.sh" 2>"$OUT/floor-$m.err" |
      while read -r kind json; do
        case "$kind" in
          server) echo "$json" >"$OUT/floor-$m.json" ;;
          client) echo "$json" >"$OUT/floor-$m.client" ;;
        esac
      done || echo "   (floor $m failed; see $OUT/floor-$m.err)" >&2
  done
fi

echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/machine.txt"
python3 "$here/loadgen/table.py" "$OUT" >"$OUT/results.md"
cat "$OUT/results.md"
echo "results in $OUT" >&2
