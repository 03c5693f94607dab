#!/usr/bin/env bash
# The machine's floor (issue 15): what one idle websocket and one delivery cost a server that
# does nothing else. For each server mode (raw: bare streams written from one loop; tasks:
# a tokio-tungstenite stream and a task per socket), starts `lms-floor serve`, opens N sockets
# with `lms-floor connect`, and prints the server's JSON line (RSS per connection; CPU-s per
# 1M deliveries at RATE frames/s to every socket) and the client's (frames received).
#
#   benches/floor.sh                      # 10k sockets, 8 frames/s each (80k deliveries/s), 20 s
#   N=5000 RATE=16 DURATION=10 MODES=raw benches/floor.sh
#   SERVER_CPUS=0 LOADGEN_CPUS=1 benches/floor.sh   # server and client pinned apart (taskset -c)
#   TENANTS=10 benches/floor.sh           # the sockets in 10 groups written one at a time, 10 × RATE
#                                         #   times a second: the 10-tenant fan-out's shape
#
# The client reports the frames' latency (the server stamps each with the time it starts
# writing it). With TENANTS=1 a tick writes every socket, so the last ones wait for the rest.
#
# Needs the release binary (cargo build --release --bin lms-floor). CPU figures depend on what
# else runs on the box: say so when quoting them.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
B=${CARGO_TARGET_DIR:-$here/../target}/release
N=${N:-10000} RATE=${RATE:-8} DURATION=${DURATION:-20} PORT=${PORT:-4190}
MODES=${MODES:-raw tasks} FRAME=${FRAME:-160} TENANTS=${TENANTS:-1} CONNECT_RATE=${CONNECT_RATE:-2000}
ulimit -n 65535 2>/dev/null || ulimit -n "$(ulimit -Hn)"
server=
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null || true; }
trap cleanup EXIT INT TERM
for mode in $MODES; do
  out=$(mktemp)
  ${SERVER_CPUS:+taskset -c "$SERVER_CPUS"} "$B/lms-floor" serve --port "$PORT" -n "$N" --mode "$mode" -r "$RATE" -g "$TENANTS" \
    --duration "$DURATION" --frame-bytes "$FRAME" >"$out" &
  server=$!
  for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done
  # The client holds until the server has written for DURATION s (connect, 2 s settle, write).
  hold=$((N / CONNECT_RATE + DURATION + 6))
  client=$(${LOADGEN_CPUS:+taskset -c "$LOADGEN_CPUS"} "$B/lms-floor" connect --addr "127.0.0.1:$PORT" -n "$N" \
    --connect-rate "$CONNECT_RATE" --duration "$hold" --frame-bytes "$FRAME")
  wait "$server" || true
  server=
  echo "server $(cat "$out")"
  echo "client $client"
  rm -f "$out"
done
