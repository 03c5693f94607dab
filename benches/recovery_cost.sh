#!/usr/bin/env bash
# What connection state recovery costs on the fan-out path (issue 12): CPU-s per 1M
# deliveries with recovery on and off, in one run. Each round runs the reference fan-out of
# `benches/cluster.sh --reference` (2 release nodes + Redis, 10k sockets over 10 tenants,
# 15 s per rate) once with `RECOVERY_ENABLED=true` and once with `false`, the order
# alternating between rounds so that a drift of the box does not favour one side; then it
# prints a table: each round's figures, the means, and on ÷ off.
#
#   benches/recovery_cost.sh                       # 3 rounds at 40 and 80 broadcasts/s
#   ROUNDS=2 RATES="80" benches/recovery_cost.sh   # fewer
#
# Needs the release binaries (SKIP_BUILD semantics of cluster.sh: they are not built here).
# Output: $OUT (default /tmp/lms-reccost.XXXXXX): one cluster.sh directory per round and side.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
ROUNDS=${ROUNDS:-3} RATES=${RATES:-"40 80"}
OUT=${OUT:-$(mktemp -d /tmp/lms-reccost.XXXXXX)}
mkdir -p "$OUT"
for round in $(seq "$ROUNDS"); do
  if [ $((round % 2)) = 1 ]; then sides="true false"; else sides="false true"; fi
  for on in $sides; do
    echo "== round $round, RECOVERY_ENABLED=$on" >&2
    OUT="$OUT/r$round-$on" RECOVERY_ENABLED=$on SYSTEMS=us SKIP_BUILD=1 SCENARIOS=0 \
      REF_RATES="$RATES" "$here/cluster.sh" --reference >/dev/null 2>"$OUT/r$round-$on.log"
  done
done
python3 - "$OUT" "$ROUNDS" "$RATES" <<'EOF'
import json, sys, statistics
out, rounds, rates = sys.argv[1], int(sys.argv[2]), sys.argv[3].split()
def fig(r, on, rate):
    try:
        with open(f"{out}/r{r}-{on}/us-ref-fanout-{rate}.json") as f:
            j = json.loads(f.read().strip().splitlines()[-1])
    except (OSError, ValueError, IndexError):
        return None
    fan, b = j.get("fanout", {}), j.get("streams", {}).get("broadcast", {})
    return fan.get("cpu_s_per_1m_deliveries"), fan.get("deliveries_per_s"), b.get("lost")
print("| broadcasts/s | round | on: CPU-s per 1M deliveries | off | on ÷ off | deliveries/s on / off | lost on / off |")
print("|---:|---:|---:|---:|---:|---:|---:|")
for rate in rates:
    ons, offs = [], []
    for r in range(1, rounds + 1):
        a, b = fig(r, "true", rate), fig(r, "false", rate)
        if not a or not b or a[0] is None or b[0] is None:
            print(f"| {rate} | {r} | (missing) | | | | |")
            continue
        ons.append(a[0]); offs.append(b[0])
        print(f"| {rate} | {r} | {a[0]:.2f} | {b[0]:.2f} | {a[0] / b[0]:.3f} | {a[1]:.0f} / {b[1]:.0f} | {a[2]} / {b[2]} |")
    if ons and offs:
        mon, moff = statistics.mean(ons), statistics.mean(offs)
        print(f"| {rate} | mean | {mon:.2f} | {moff:.2f} | **{mon / moff:.3f}** | | |")
EOF
echo "results in $OUT" >&2
