# Sourced by the one-node bench scripts (idle_mem.sh, fanout_allocs.sh): a JWT secret for
# the node and the generator, the descriptor limit raised, a trap that stops the node, and
# start_one_node, which starts an in-memory release node from $B (per-IP caps lifted: every
# generator socket comes from 127.0.0.1) and waits for /healthz.
export JWT_SECRET=${JWT_SECRET:-$(od -An -tx1 -N32 /dev/urandom | tr -d " \n")}
ulimit -n 65535 2>/dev/null || ulimit -n "$(ulimit -Hn)"
node=
cleanup() { [ -n "$node" ] && kill "$node" 2>/dev/null; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

# start_one_node <port> <node id> <log file> [heaptrack output]: sets $node (what to wait
# for) and $pid (the node's own process, which heaptrack runs as its child).
start_one_node() {
  local run=("$B/lms-realtime")
  [ -n "${4:-}" ] && run=(heaptrack -o "$4" "$B/lms-realtime")
  PORT=$1 HOST=127.0.0.1 NODE_ID=$2 RUST_LOG=warn \
    MAX_CONNECTIONS_PER_IP=1000000 MAX_PENDING_SESSIONS_PER_IP=1000000 \
    "${run[@]}" >"$3" 2>&1 &
  node=$!
  for _ in $(seq 300); do curl -sf "http://127.0.0.1:$1/healthz" >/dev/null && break; sleep 0.1; done
  pid=$node
  if [ -n "${4:-}" ]; then pid=$(pgrep -P "$node" -f lms-realtime | head -1 || echo "$node"); fi
}
