#!/usr/bin/env bash
# Fair sharing (issue 10): a noisy tenant floods the service API and its sockets while
# victim tenants receive notifications; lms-loadgen's `noisy` scenario reports the victims'
# notification p99 without and with the noise, and their ratio (target: at most 2x).
#
#   benches/noisy.sh            # one node (memory), then two nodes + a private redis-server
#   MODES=cluster benches/noisy.sh
#   SERVER_CPUS=0 LOADGEN_CPUS=1 benches/noisy.sh   # pin with taskset, so the generator's
#                                                   # own CPU does not compete with the server
#   NICE=-10 benches/noisy.sh   # run everything at a higher priority than a build sharing the box
#   RT=10 benches/noisy.sh      # the servers, Redis and the generator in the real-time class
#                               # (chrt -f 10): a build or test sharing the box then cannot hold
#                               # a core for a time slice while a bench process waits to run
#                               # (the noise process stays in the normal class, see NOISE_NICE);
#                               # on a quiet box it is no help: one process's SCHED_FIFO threads
#                               # do not time-slice among themselves
#   NOISE_NICE=19 benches/noisy.sh   # the noise process at the lowest priority, so that on a box
#                                    # where it shares a core with the victims' clients its CPU
#                                    # does not delay their timestamps (default: 19 when
#                                    # LOADGEN_CPUS is set, i.e. when both are pinned to one core)
#   NOISE_IDLE=1 benches/noisy.sh   # the noise process in the idle class (SCHED_IDLE) instead
#   NOISE_CPUS=0 benches/noisy.sh   # the noise process's CPUs (taskset -c). Default when pinned
#                                   # (SERVER_CPUS and LOADGEN_CPUS set): the server's CPUs, in the
#                                   # idle class, so that it takes only the server's idle time and
#                                   # none of the victims' clients' (on the clients' core it delays
#                                   # their receive timestamps: the ratio then measures the
#                                   # generator's core, not the server). NOISE_CPUS= (empty) keeps
#                                   # it beside the clients, at NOISE_NICE.
#   VICTIM_RATE=100 DURATION=20 benches/noisy.sh   # more victim samples (default 20/s for 15 s:
#                                                  # 300 per phase, so p99 is the 3rd worst)
#
# Needs the release binaries (cargo build --release --bins). Loopback only, bounded in time
# (about 2 minutes per mode). Prints one JSON line per mode; extra loadgen flags via NOISY_ARGS.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
B=${CARGO_TARGET_DIR:-$repo/target}/release
MODES=${MODES:-"single cluster"}
NOISE_CPUS=${NOISE_CPUS-${LOADGEN_CPUS:+${SERVER_CPUS:-}}}
if [ -n "$NOISE_CPUS" ]; then NOISE_IDLE=${NOISE_IDLE-1}; fi
NOISE_NICE=${NOISE_NICE-${LOADGEN_CPUS:+19}}
JWT_SECRET=${JWT_SECRET:-$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')}
export JWT_SECRET
OUT=$(mktemp -d)
REDIS_PORT=6404
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  pids=()
}
trap cleanup EXIT INT TERM

start_node() { # port [redis-url]
  # The load generator's sockets all come from 127.0.0.1: lift the per-IP caps.
  ${NICE:+nice -n $NICE} ${RT:+chrt -f $RT} ${SERVER_CPUS:+taskset -c $SERVER_CPUS} env PORT=$1 HOST=127.0.0.1 NODE_ID=noisy-$1 RUST_LOG=warn ${2:+REDIS_URL=$2} \
    MAX_CONNECTIONS_PER_IP=1000000 MAX_PENDING_SESSIONS_PER_IP=1000000 \
    "$B/lms-realtime" >"$OUT/node-$1.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do
    curl -fs "http://127.0.0.1:$1/healthz" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "node on $1 did not start (log: $OUT/node-$1.log)" >&2
  return 1
}

run() { # urls pids
  ${NICE:+nice -n $NICE} ${RT:+chrt -f $RT} ${LOADGEN_CPUS:+taskset -c $LOADGEN_CPUS} "$B/lms-loadgen" noisy --url "$1" --jwt-secret "$JWT_SECRET" --pids "$2" \
    -n 200 -t 4 -r "${VICTIM_RATE:-20}" --duration "${DURATION:-15}" --drain 10 --quiet \
    ${NOISE_NICE:+--noise-nice $NOISE_NICE} ${NOISE_IDLE:+--noise-idle} ${NOISE_CPUS:+--noise-cpus $NOISE_CPUS} ${NOISY_ARGS:-}
}

for mode in $MODES; do
  case "$mode" in
    single)
      start_node 4177
      run http://127.0.0.1:4177 "${pids[0]}"
      ;;
    cluster)
      ${NICE:+nice -n $NICE} ${RT:+chrt -f $RT} ${SERVER_CPUS:+taskset -c $SERVER_CPUS} redis-server --port $REDIS_PORT --bind 127.0.0.1 --save '' --appendonly no \
        --logfile "$OUT/redis.log" &
      pids+=($!)
      for _ in $(seq 50); do redis-cli -p $REDIS_PORT ping >/dev/null 2>&1 && break; sleep 0.1; done
      start_node 4177 redis://127.0.0.1:$REDIS_PORT
      start_node 4178 redis://127.0.0.1:$REDIS_PORT
      run http://127.0.0.1:4177,http://127.0.0.1:4178 "${pids[1]},${pids[2]},${pids[0]}"
      # Where Redis's time went, per command (calls, usec, usec_per_call), on stderr.
      redis-cli -p $REDIS_PORT info commandstats | tr -d '\r' | grep '^cmdstat' | sort -t= -k3 -rn >&2 || true
      ;;
    *) echo "unknown mode $mode" >&2; exit 2 ;;
  esac
  cleanup
done
