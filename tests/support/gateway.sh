# Sourced by the script suites that drive one built gateway ($LMS_BIN) over HTTP.
#
#   start_gateway <port>   starts it on 127.0.0.1:<port> (a random JWT_SECRET unless one
#                          is exported), waits for /healthz, and stops it when the script
#                          exits; its output is in $GATEWAY_LOG.
start_gateway() {
  local port=$1
  export JWT_SECRET=${JWT_SECRET:-$(od -An -tx1 -N32 /dev/urandom | tr -d " \n")}
  GATEWAY_LOG=$(mktemp)
  PORT=$port HOST=127.0.0.1 RUST_LOG=warn "$LMS_BIN" >"$GATEWAY_LOG" 2>&1 &
  GATEWAY_PID=$!
  trap 'kill $GATEWAY_PID 2>/dev/null || true; wait $GATEWAY_PID 2>/dev/null || true; rm -f "$GATEWAY_LOG"' EXIT
  for _ in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "the gateway did not answer /healthz on port $port" >&2
  cat "$GATEWAY_LOG" >&2
  return 1
}
