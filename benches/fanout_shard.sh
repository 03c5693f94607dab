#!/usr/bin/env bash
# Sharded fan-out (issue 17): what nodes without sockets pay for the cluster's emits, and how
# the cost per notification grows with the node count, with per-room channels on and off
# (ROOM_CHANNELS=true|false, same binary).
#
#   benches/fanout_shard.sh                 # the issue's scenario + the 1/3/6-node table
#   SKIP_BUILD=1 benches/fanout_shard.sh    # use the release binaries already built
#   MODES="true" NODES="3" benches/fanout_shard.sh
#
# Scenario A (the issue's): 3 nodes, every socket and every POST on node 1: USERS users,
# RATE notifications/s for DUR s. Scenario B (scaling): 1, 3, 6 nodes under the same total
# load, sockets and POSTs spread over every node. For each run it prints CPU-s per node (from
# /proc, measured by lms-loadgen over the notify phase), Redis CPU-s, notifications accepted
# and delivered, lost, and the adapter messages every node received (lms_adapter_messages_total
# {direction="in"}, summed over nodes) per notification.
#
# Listens on 127.0.0.1 only: nodes on ports 4161-4166, Redis on 6416; all stopped on exit.
# Output: $OUT (default target/bench/fanout-<UTC time>/): the JSON of every run, results.md.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
target=${CARGO_TARGET_DIR:-$repo/target}
OUT=${OUT:-$target/bench/fanout-$(date -u +%Y%m%dT%H%M%SZ)}
USERS=${USERS:-2000} RATE=${RATE:-1000} DUR=${DUR:-15} TEN=${TEN:-10}
MODES=${MODES:-"false true"} NODES=${NODES:-"1 3 6"}
PORTS=(4161 4162 4163 4164 4165 4166) REDIS=6416
JWT_SECRET=${JWT_SECRET:-$(od -An -tx1 -N32 /dev/urandom | tr -d " \n")}
export JWT_SECRET
mkdir -p "$OUT"
ulimit -n 65535 2>/dev/null || ulimit -n "$(ulimit -Hn)"

if [ "${SKIP_BUILD:-0}" != 1 ]; then
  (cd "$repo" && cargo build --release --bin lms-realtime --bin lms-loadgen >&2)
fi
gw=$target/release/lms-realtime lg=$target/release/lms-loadgen

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  pids=()
  [ -f "$OUT/redis.pid" ] && kill "$(cat "$OUT/redis.pid")" 2>/dev/null || true
  rm -f "$OUT/redis.pid"
}
trap cleanup EXIT INT TERM

adapter_in() { # port: lms_adapter_messages_total{direction="in"} of that node
  curl -sf "http://127.0.0.1:$1/metrics" | awk '/^lms_adapter_messages_total\{direction="in"\}/ {print $2}'
}

# one <name> <room_channels> <nodes> <spread: all|first> <lms-loadgen scenario and args...>
one() {
  local name=$1 mode=$2 n=$3 spread=$4 ports=("${PORTS[@]:0:$3}")
  shift 4
  redis-server --port $REDIS --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
    --pidfile "$OUT/redis.pid" --logfile "$OUT/redis-$name.log"
  for _ in $(seq 50); do redis-cli -p $REDIS ping >/dev/null 2>&1 && break; sleep 0.1; done
  for p in "${ports[@]}"; do
    PORT=$p HOST=127.0.0.1 NODE_ID=fan-$p REDIS_URL=redis://127.0.0.1:$REDIS RUST_LOG=warn \
      ROOM_CHANNELS=$mode MAX_CONNECTIONS_PER_IP=1000000 MAX_PENDING_SESSIONS_PER_IP=1000000 \
      TENANT_NOTIFY_RECIPIENTS_PER_SEC=1000000 TENANT_NOTIFY_RECIPIENTS_BURST=1000000 \
      API_RATE_PER_SEC=1000000 API_BURST=1000000 \
      "$gw" >"$OUT/$name-$p.log" 2>&1 &
    pids+=($!)
  done
  for p in "${ports[@]}"; do
    for _ in $(seq 100); do curl -sf "http://127.0.0.1:$p/healthz" >/dev/null && break; sleep 0.1; done
  done
  local urls
  if [ "$spread" = first ]; then urls=http://127.0.0.1:${ports[0]}
  else urls=$(printf 'http://127.0.0.1:%s,' "${ports[@]}"); urls=${urls%,}; fi
  local before=() i
  for p in "${ports[@]}"; do before+=("$(adapter_in "$p")"); done
  local redis_pid; redis_pid=$(cat "$OUT/redis.pid")
  echo "== $name: ROOM_CHANNELS=$mode, $n nodes, sockets on $spread" >&2
  "$lg" "$@" --url "$urls" \
    --pids "$(printf '%s,' "${pids[@]}")$redis_pid" --quiet >"$OUT/$name.json" 2>"$OUT/$name.err" || true
  local msgs=0
  i=0
  for p in "${ports[@]}"; do
    msgs=$(python3 -c "print(${msgs} + float('$(adapter_in "$p")' or 0) - float('${before[$i]}' or 0))")
    i=$((i + 1))
  done
  echo "$msgs" >"$OUT/$name.adapter_in"
  cleanup
  sleep 1
}

notify=(notify -n "$USERS" -t "$TEN" -r "$RATE" --duration "$DUR")
for mode in $MODES; do
  one "issue-$mode" "$mode" 3 first "${notify[@]}"
  for n in $NODES; do one "scale-$mode-$n" "$mode" "$n" all "${notify[@]}"; done
  # What subscribing costs: connects (each subscribes a user room) and reconnect storms.
  one "connect-$mode" "$mode" 3 all connect -n "$USERS" -t "$TEN" --connect-rate 500 --duration 5
  one "churn-$mode" "$mode" 3 all churn -n "$USERS" -t "$TEN" -r 20 --duration "$DUR"
done

python3 - "$OUT" "$MODES" "$NODES" <<'EOF' | tee "$OUT/results.md"
import json, sys, os
out, modes, nodes = sys.argv[1], sys.argv[2].split(), sys.argv[3].split()
def load(name):
    with open(os.path.join(out, name + ".json")) as f:
        r = json.load(f)
    with open(os.path.join(out, name + ".adapter_in")) as f:
        msgs = float(f.read().strip() or 0)
    res = r["notify"]
    cpu = {p["pid"]: p["cpu_s"] for p in res["cost"]["per_pid"]}
    pids = r["pids"]  # the nodes in port order, then Redis
    nodes_cpu, redis_cpu = [cpu.get(p, 0.0) for p in pids[:-1]], cpu.get(pids[-1], 0.0)
    stream = r["streams"]["notify"]
    return nodes_cpu, redis_cpu, stream["accepted"], stream["delivered"], stream["lost"], msgs
print("## Sharded fan-out\n")
print("### The issue's scenario: 3 nodes, every socket and POST on node 1\n")
print("| ROOM_CHANNELS | node 1 CPU-s | nodes 2, 3 CPU-s | idle / busy | Redis CPU-s | sent | delivered | lost | adapter msgs in / notification |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
for m in modes:
    try:
        c, rc, acc, dl, lost, msgs = load(f"issue-{m}")
    except Exception as e:
        print(f"| {m} | run failed: {e} |"); continue
    idle = max(c[1:])
    print(f"| {m} | {c[0]:.2f} | {', '.join(f'{x:.2f}' for x in c[1:])} | {100*idle/c[0]:.1f} % | {rc:.2f} | {acc} | {dl} | {lost} | {msgs/max(acc,1):.2f} |")
print("\n### Scaling: the same total load spread over every node\n")
print("| ROOM_CHANNELS | nodes | CPU-s per node | total CPU ms / notification | Redis CPU ms / notification | adapter msgs in / notification | delivered | lost |")
print("|---|---:|---|---:|---:|---:|---:|---:|")
for m in modes:
    for n in nodes:
        try:
            c, rc, acc, dl, lost, msgs = load(f"scale-{m}-{n}")
        except Exception as e:
            print(f"| {m} | {n} | run failed: {e} |"); continue
        a = max(acc, 1)
        print(f"| {m} | {n} | {' '.join(f'{x:.2f}' for x in c)} | {1000*sum(c)/a:.3f} | {1000*rc/a:.3f} | {msgs/a:.2f} | {dl} | {lost} |")
print("\n### Connects and reconnect storms (3 nodes, sockets spread)\n")
print("| ROOM_CHANNELS | CPU ms per connect (nodes + Redis) | churn: connects | churn: CPU ms per connect incl. traffic | churn: lost |")
print("|---|---:|---:|---:|---:|")
for m in modes:
    try:
        with open(os.path.join(out, f"connect-{m}.json")) as f:
            c = json.load(f)
        with open(os.path.join(out, f"churn-{m}.json")) as f:
            ch = json.load(f)
        lost = sum(v for k, v in ch.items() if k.endswith("_lost"))
        print(f"| {m} | {c['connect']['cpu_ms_per_connect']:.3f} | {ch['churn']['connects_during_churn']} | {ch['churn']['cost']['cpu_ms_per_connect_incl_traffic']:.3f} | {lost} |")
    except Exception as e:
        print(f"| {m} | run failed: {e} |")
EOF
