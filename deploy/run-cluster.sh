#!/usr/bin/env bash
# Runs a local cluster: one redis-server and three gateway nodes on ports 3001-3003.
#
#   deploy/run-cluster.sh                 # Redis on a free port, fresh JWT secret
#   REDIS_PORT=6380 deploy/run-cluster.sh # Redis on a given port
#   REDIS_URL=redis://host:6379 deploy/run-cluster.sh   # use an existing Redis (>= 7)
#
# Environment: JWT_SECRET (default: a random one, printed), LMS_BIN (default: builds and
# uses target/release/lms-realtime), NODE_PORTS (default "3001 3002 3003"), RUST_LOG.
# Ctrl-C stops everything this script started (and only that).
set -euo pipefail

cd "$(dirname "$0")/.."

NODE_PORTS=${NODE_PORTS:-"3001 3002 3003"}
pids=()
workdir=$(mktemp -d)

cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$workdir"
}
trap cleanup EXIT INT TERM

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if [[ -z "${REDIS_URL:-}" ]]; then
  command -v redis-server >/dev/null || { echo "redis-server not found (apt-get install redis-server, Redis >= 7)" >&2; exit 1; }
  if [[ -z "${REDIS_PORT:-}" ]]; then
    for _ in $(seq 1 200); do
      candidate=$((20000 + RANDOM % 20000))
      if port_free "$candidate"; then REDIS_PORT=$candidate; break; fi
    done
  fi
  [[ -n "${REDIS_PORT:-}" ]] || { echo "no free port for redis-server" >&2; exit 1; }
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$workdir" --logfile "$workdir/redis.log" &
  pids+=($!)
  for _ in $(seq 1 50); do
    redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break
    sleep 0.1
  done
  REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
  echo "redis-server on port $REDIS_PORT (log: $workdir/redis.log)"
fi

if [[ -z "${JWT_SECRET:-}" ]]; then
  JWT_SECRET=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
  echo "JWT_SECRET=$JWT_SECRET"
fi

if [[ -z "${LMS_BIN:-}" ]]; then
  cargo build --release --bin lms-realtime
  LMS_BIN=target/release/lms-realtime
fi

export REDIS_URL JWT_SECRET
i=0
for port in $NODE_PORTS; do
  i=$((i + 1))
  PORT=$port NODE_ID="node-$i" "$LMS_BIN" &
  pids+=($!)
done

for port in $NODE_PORTS; do
  for _ in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
    sleep 0.1
  done
done

cat <<MSG

Cluster up: $(for p in $NODE_PORTS; do printf 'http://127.0.0.1:%s ' "$p"; done)
  tokens:  $LMS_BIN token --sub u1 --tenant t1 --role student
           $LMS_BIN token --sub backend --tenant t1 --role service
  stats:   curl -H "Authorization: Bearer \$($LMS_BIN token --sub root --role super_admin)" http://127.0.0.1:3001/api/v1/stats
Ctrl-C stops the nodes and the redis-server started here.
MSG
wait
