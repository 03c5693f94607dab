#!/usr/bin/env python3
"""Turns the JSON result lines of benches/cluster.sh (one file per system and run) into the
markdown table of docs/benchmarks.md: one row per measure, us beside the Node baseline, and the
ratio Node / us (above 1: we use less, or are faster for latencies; for rates, below 1 means we
went further). Runs that are missing or failed show as a dash, never as a number."""
import glob
import json
import os
import sys


def load(out):
    runs = {}
    for path in glob.glob(os.path.join(out, "*.json")):
        name = os.path.basename(path)[:-5]
        sys_, _, run = name.partition("-")
        runs[(sys_, run)] = load_line(path)
    return runs


def load_line(path):
    """The last JSON line of a file, or None."""
    try:
        with open(path) as f:
            lines = [l for l in f.read().splitlines() if l.strip()]
        return json.loads(lines[-1]) if lines else None
    except (OSError, ValueError):
        return None


def get(d, *path):
    for p in path:
        if not isinstance(d, dict) or p not in d:
            return None
        d = d[p]
    return d


def fmt(v, unit=""):
    if v is None:
        return "–"
    if isinstance(v, float):
        v = f"{v:.3g}" if abs(v) < 1000 else f"{v:,.0f}"
    return f"{v}{unit}"


def ratio(us, node):
    if us is None or node is None or not isinstance(us, (int, float)) or not isinstance(node, (int, float)) or us == 0:
        return "–"
    return f"{node / us:.2f}×"


def rows_for(runs):
    names = sorted({r for (_, r) in runs})
    rows = []

    def row(label, run, fn, unit=""):
        if run not in names:
            return
        us, node = fn(runs.get(("us", run))), fn(runs.get(("node", run)))
        rows.append((label, fmt(us, unit), fmt(node, unit), ratio(us, node)))

    kb = lambda v: None if v is None else v / 1024
    row("connect: server CPU per connect (ms)", "connect", lambda r: get(r, "connect", "cpu_ms_per_connect"))
    row("connect: server RSS per idle connection (KB, nodes + Redis)", "connect", lambda r: kb(get(r, "connect", "rss_bytes_per_connection")))
    row("connect: latency p50 (ms)", "connect", lambda r: get(r, "connect_latency", "p50_ms"))
    row("connect: latency p99 (ms)", "connect", lambda r: get(r, "connect_latency", "p99_ms"))
    row("connect: refused + failed", "connect", lambda r: r and get(r, "connections", "refused") + get(r, "connections", "failed"))
    for run in sorted((n for n in names if n.startswith("fanout-")), key=lambda n: int(n.split("-")[1])):
        rate = run.split("-")[1]
        p = f"fanout {rate}/s"
        row(f"{p}: broadcasts/s achieved", run, lambda r: get(r, "fanout", "broadcasts_per_s"))
        row(f"{p}: deliveries/s", run, lambda r: get(r, "fanout", "deliveries_per_s"))
        row(f"{p}: server CPU-s per 1M deliveries", run, lambda r: get(r, "fanout", "cpu_s_per_1m_deliveries"))
        row(f"{p}: delivery latency p50 (ms)", run, lambda r: get(r, "streams", "broadcast", "latency", "p50_ms"))
        row(f"{p}: delivery latency p99 (ms)", run, lambda r: get(r, "streams", "broadcast", "latency", "p99_ms"))
        row(f"{p}: delivery latency max (ms)", run, lambda r: get(r, "streams", "broadcast", "latency", "max_ms"))
        row(f"{p}: lost deliveries (of expected)", run, lambda r: r and f'{get(r, "streams", "broadcast", "lost")} / {get(r, "streams", "broadcast", "expected_deliveries")}')
        row(f"{p}: load generator CPU-s per 1M deliveries", run, lambda r: r and get(r, "fanout", "cost", "loadgen_cpu_s") * 1e6 / max(1, get(r, "streams", "broadcast", "delivered") or 0))
    row("notify: server CPU per stored + delivered notification (ms)", "notify", lambda r: get(r, "notify", "cpu_ms_per_notification"))
    row("notify: latency POST → socket p50 (ms)", "notify", lambda r: get(r, "streams", "notify", "latency", "p50_ms"))
    row("notify: latency POST → socket p99 (ms)", "notify", lambda r: get(r, "streams", "notify", "latency", "p99_ms"))
    row("notify: lost (of expected)", "notify", lambda r: r and f'{get(r, "streams", "notify", "lost")} / {get(r, "streams", "notify", "expected_deliveries")}')
    row("notify: unread mismatches (users checked)", "notify", lambda r: r and f'{get(r, "notify", "unread_check", "mismatches")} ({get(r, "notify", "unread_check", "users_checked")})')
    row("churn: connects/s sustained", "churn", lambda r: get(r, "churn", "connects_per_s"))
    row("churn: server CPU per connect incl. traffic (ms)", "churn", lambda r: get(r, "churn", "cost", "cpu_ms_per_connect_incl_traffic"))
    row("churn: connect latency p99 (ms)", "churn", lambda r: get(r, "connect_latency", "p99_ms"))
    row("churn: refused + failed connects", "churn", lambda r: r and get(r, "connections", "refused") + get(r, "connections", "failed"))
    row("churn: lost on stable sockets (of expected)", "churn", lambda r: r and f'{get(r, "streams", "broadcast", "lost")} / {get(r, "streams", "broadcast", "expected_deliveries")}')
    row("mixed: server CPU per operation (ms)", "mixed", lambda r: get(r, "mixed", "cost", "cpu_ms_per_operation"))
    row("mixed: progress ack p99 (ms)", "mixed", lambda r: get(r, "acks", "progress:content", "latency", "p99_ms"))
    row("mixed: progress → instructor p99 (ms)", "mixed", lambda r: get(r, "streams", "progress", "latency", "p99_ms"))
    row("mixed: lost deliveries, all streams", "mixed", lambda r: r and sum((s.get("lost") or 0) for s in (get(r, "streams") or {}).values()))
    row("mixed: refused acks, all events", "mixed", lambda r: r and sum(sum(a.get("refused", {}).values()) for a in (get(r, "acks") or {}).values()))
    for run in sorted(n for n in names if n.startswith("scale-")):
        label = run.replace("scale-", "scaling ").replace("conn-", "connections=").replace("tenants-", "tenants=").replace("nodes-", "nodes=")
        row(f"{label}: CPU-s per 1M deliveries", run, lambda r: get(r, "fanout", "cpu_s_per_1m_deliveries"))
        row(f"{label}: delivery p99 (ms)", run, lambda r: get(r, "streams", "broadcast", "latency", "p99_ms"))
        if run.startswith("scale-nodes-"):  # fresh nodes only: warm ones reuse freed memory
            row(f"{label}: RSS per connection (KB)", run, lambda r: kb(get(r, "fanout", "rss_bytes_per_connection")))
        row(f"{label}: deliveries/s achieved", run, lambda r: get(r, "fanout", "deliveries_per_s"))
        row(f"{label}: CPU per connect (ms)", run, lambda r: get(r, "fanout", "ramp_cost", "cpu_ms_per_connect"))
    ref = sorted((n for n in names if n.startswith("ref-fanout-")), key=lambda n: int(n.split("-")[2]))
    for run in ref:
        p = f"reference fanout (2 nodes) {run.split('-')[2]}/s"
        row(f"{p}: broadcasts/s achieved", run, lambda r: get(r, "fanout", "broadcasts_per_s"))
        row(f"{p}: server CPU-s per 1M deliveries", run, lambda r: get(r, "fanout", "cpu_s_per_1m_deliveries"))
        row(f"{p}: delivery latency p99 (ms)", run, lambda r: get(r, "streams", "broadcast", "latency", "p99_ms"))
        row(f"{p}: lost deliveries", run, lambda r: get(r, "streams", "broadcast", "lost"))
    if ref:
        best = lambda sys_: sustained(runs, sys_, ref)
        us, node = best("us"), best("node")
        rows.append(("reference fanout: highest rate tried with p99 < 50 ms and 0 loss (broadcasts/s)", fmt(us), fmt(node), ratio(us, node)))
    return rows


def sustained(runs, sys_, ref):
    """The highest offered rate whose run kept up (≥ 95 % of it), lost nothing and had p99 < 50 ms."""
    ok = []
    for run in ref:
        r = runs.get((sys_, run))
        rate = int(run.split("-")[2])
        achieved = get(r, "fanout", "broadcasts_per_s")
        p99 = get(r, "streams", "broadcast", "latency", "p99_ms")
        lost = get(r, "streams", "broadcast", "lost")
        if None not in (achieved, p99, lost) and achieved >= 0.95 * rate and p99 < 50 and lost == 0:
            ok.append(rate)
    return max(ok) if ok else None


def floor_rows(runs, out):
    """The per-unit costs that have a floor (benches/floor.sh): us, Node and both floors, and
    us as a multiple of each. The floor is one bare process; us and Node include Redis."""
    raw, tasks = runs.get(("floor", "raw")), runs.get(("floor", "tasks"))
    if raw is None and tasks is None:
        return []
    # The floor's client line (floor-<mode>.client): what its sockets received, and when.
    client = {m: load_line(os.path.join(out, f"floor-{m}.client")) for m in ("raw", "tasks")}
    kb = lambda v: None if v is None else v / 1024
    measures = [
        ("RSS per idle connection (KB)", "connect",
         lambda r: kb(get(r, "connect", "rss_bytes_per_connection")),
         lambda f: kb(get(f, "rss_bytes_per_connection"))),
        ("CPU-s per 1M deliveries, 80 broadcasts/s (80k deliveries/s)", "fanout-80",
         lambda r: get(r, "fanout", "cpu_s_per_1m_deliveries"),
         lambda f: get(f, "cpu_s_per_1m_deliveries")),
        ("delivery latency p99 at 80 broadcasts/s (ms)", "fanout-80",
         lambda r: get(r, "streams", "broadcast", "latency", "p99_ms"),
         lambda f: get(client[f["mode"]], "latency", "p99_ms") if f else None),
    ]
    times = lambda a, b: "–" if not isinstance(a, (int, float)) or not isinstance(b, (int, float)) or b == 0 else f"{a / b:.2f}×"
    rows = []
    for label, run, ours, floor in measures:
        us, node = ours(runs.get(("us", run))), ours(runs.get(("node", run)))
        fr, ft = floor(raw), floor(tasks)
        rows.append((label, fmt(us), fmt(node), fmt(ft), fmt(fr), times(us, node), times(us, ft), times(us, fr)))
    return rows


def main():
    out = sys.argv[1]
    runs = load(out)
    try:
        with open(os.path.join(out, "machine.txt")) as f:
            print("```\n" + f.read().strip() + "\n```\n")
    except OSError:
        pass
    print("Node ÷ us: above 1 means we use less or answer faster. Server CPU and RSS include Redis.\n")
    print("| measure | lms-realtime (us) | Node baseline | Node ÷ us |")
    print("|---|---:|---:|---:|")
    for label, us, node, r in rows_for(runs):
        print(f"| {label} | {us} | {node} | {r} |")
    floors = floor_rows(runs, out)
    if floors:
        print("\nAgainst Node and the machine's floor (us ÷ other: below 1 means we use less). Floor "
              "`tasks`: a tokio-tungstenite stream and a task per socket; `raw`: bare streams "
              "written from one loop (benches/floor.sh, one process, no Redis, the sockets in "
              "the fanout's tenant groups, written one group at a time).\n")
        print("| measure | us | Node | floor (tasks) | floor (raw) | us ÷ Node | us ÷ floor (tasks) | us ÷ floor (raw) |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
        for r in floors:
            print("| " + " | ".join(r) + " |")


if __name__ == "__main__":
    main()
