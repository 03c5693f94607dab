# Sourced by the bench scripts: start_redis <log file> starts a private redis-server on a
# free port in 20000-29999 (never a standard one) and sets $port and $redis_pid, adding the
# pid to the script's $pids (stopped by its cleanup trap). With SERVER_CPUS and NICE set,
# Redis runs pinned beside the gateway, at the same priority; REDIS_CPUS pins it elsewhere
# (production runs Redis on machines of its own, not on the gateway's core).
start_redis() {
  port=0
  for _ in $(seq 200); do
    local p=$((20000 + RANDOM % 10000))
    if ! (echo > /dev/tcp/127.0.0.1/$p) 2>/dev/null; then port=$p; break; fi
  done
  [ "$port" != 0 ] || { echo "no free port for redis" >&2; exit 1; }
  local cpus=${REDIS_CPUS:-${SERVER_CPUS:-}}
  ${NICE:+nice -n $NICE} ${cpus:+taskset -c $cpus} redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no > "$1" 2>&1 &
  redis_pid=$!; pids+=("$redis_pid")
  until redis-cli -p "$port" ping >/dev/null 2>&1; do sleep 0.1; done
}
