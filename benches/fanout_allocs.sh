#!/usr/bin/env bash
# Heap allocations per delivery on the fan-out path (issue 15: "no allocation per socket on
# the fanout path; a heap profile shows it"). Runs one in-memory release node under
# heaptrack twice with the same sockets and the same broadcasts, once over 1 tenant (every
# broadcast reaches all N sockets) and once over 10 (N/10 each), and prints the difference in
# allocations divided by the difference in deliveries: what one more socket in a room costs
# the allocator. Everything else (connects, the broadcasts' own encoding, the API calls) is
# the same in both runs and cancels out. Allocation counts do not depend on the box's load.
#
#   benches/fanout_allocs.sh              # N=1000 sockets, 10 broadcasts/s for 10 s
#   N=4000 RATE=10 benches/fanout_allocs.sh
#
# Needs heaptrack and the release binaries (cargo build --release --bin lms-realtime
# --bin lms-loadgen). Prints one JSON line; the top allocation sites of the 1-tenant run by
# count are in $OUT/sites-1.txt.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
B=${B:-${CARGO_TARGET_DIR:-$here/../target}/release}
PORT=${PORT:-4172} N=${N:-1000} RATE=${RATE:-10} DURATION=${DURATION:-10}
OUT=${OUT:-$(mktemp -d /tmp/lms-fanout-allocs.XXXXXX)}
mkdir -p "$OUT"
# shellcheck source=lib/one_node.sh
. "$here/lib/one_node.sh"

one_run() { # tenants -> prints "allocations deliveries"
  local t=$1
  start_one_node "$PORT" fanout-allocs "$OUT/node-$t.log" "$OUT/heap-$t"
  "$B/lms-loadgen" fanout --url "http://127.0.0.1:$PORT" --pids "$pid" -n "$N" -t "$t" \
    --connect-rate 500 -r "$RATE" --duration "$DURATION" --quiet >"$OUT/fanout-$t.json" 2>"$OUT/fanout-$t.err"
  kill -INT "$pid" 2>/dev/null || true
  wait "$node" 2>/dev/null || true
  node=
  local f
  f=$(ls "$OUT"/heap-"$t"* | head -1)
  heaptrack_print --flamegraph-cost-type allocations -F "$OUT/stacks-$t.txt" "$f" >/dev/null
  python3 "$here/support/heap_sites.py" "$OUT/stacks-$t.txt" 1 --min 1 >"$OUT/sites-$t.txt"
  local allocs delivered
  allocs=$(awk '{n += $NF} END {printf "%d", n}' "$OUT/stacks-$t.txt")
  delivered=$(jq -r '.streams.broadcast.delivered' "$OUT/fanout-$t.json")
  echo "$allocs $delivered"
}

read -r a1 d1 < <(one_run 1)
read -r a10 d10 < <(one_run 10)
python3 - "$a1" "$d1" "$a10" "$d10" <<'PY'
import json, sys
a1, d1, a10, d10 = map(int, sys.argv[1:])
dd = d1 - d10
print(json.dumps({
    "allocations_1_tenant": a1, "deliveries_1_tenant": d1,
    "allocations_10_tenants": a10, "deliveries_10_tenants": d10,
    "allocations_per_extra_delivery": round((a1 - a10) / dd, 4) if dd > 0 else None,
}))
PY
echo "output in $OUT" >&2
