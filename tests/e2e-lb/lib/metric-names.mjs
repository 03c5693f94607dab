// Every metric name that the operations side depends on: the Grafana dashboard's
// queries and the alert rules' expressions. The metrics test checks that a running node
// exports each of them, so a renamed metric breaks CI instead of a dashboard panel.

import { readFileSync } from "node:fs";
import path from "node:path";
import YAML from "yaml";
import { REPO } from "./cluster.mjs";

export const DASHBOARD = path.join(REPO, "deploy/grafana/dashboards/lms-realtime.json");
export const RULES = path.join(REPO, "deploy/prometheus/rules/lms-realtime.rules.yml");

// Series that Prometheus itself makes, not the gateway.
export const SYNTHETIC = new Set(["up"]);

export function expressions() {
  const out = [];
  const dash = JSON.parse(readFileSync(DASHBOARD, "utf8"));
  const walk = (ps) => ps.forEach((p) => {
    for (const t of p.targets ?? []) out.push({ where: `dashboard panel "${p.title}"`, expr: t.expr });
    if (p.panels) walk(p.panels);
  });
  walk(dash.panels ?? []);
  for (const v of dash.templating?.list ?? []) {
    const q = typeof v.query === "string" ? v.query : v.query?.query;
    if (q) out.push({ where: `dashboard variable ${v.name}`, expr: q });
  }
  for (const g of YAML.parse(readFileSync(RULES, "utf8")).groups) {
    for (const r of g.rules) out.push({ where: `rule ${r.alert ?? r.record}`, expr: r.expr });
  }
  return out;
}

// PromQL function names, keywords and label names that may precede "(" or "{"
// and are not metric names.
const NOT_METRICS = new Set([
  "sum", "min", "max", "avg", "count", "topk", "bottomk", "by", "without", "on", "ignoring",
  "group_left", "group_right", "and", "or", "unless", "rate", "irate", "increase", "delta",
  "histogram_quantile", "vector", "absent", "clamp_min", "clamp_max", "label_values",
  "avg_over_time", "max_over_time", "min_over_time", "sum_over_time", "bool", "offset",
]);

// Metric names in an expression: identifiers followed by a selector, a range, or
// standing alone as an argument. All of ours start with lms_; anything else must be a
// known synthetic series.
export function metricNames(expr) {
  const names = new Set();
  const stripped = expr
    .replace(/\blabel_values\(\s*([^,)]+?)\s*,[^)]*\)/g, "$1") // Grafana: label_values(metric, label)
    .replace(/\{[^}]*\}/g, "{}")
    .replace(/"[^"]*"/g, '""');
  for (const m of stripped.matchAll(/\b([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()/g)) {
    const id = m[1];
    if (NOT_METRICS.has(id)) continue;
    if (/^\d/.test(id)) continue;
    // label names inside by (...) / on (...) lists were kept: filter by context below
    names.add(id);
  }
  // Drop label names: those that appear only inside by(...)/without(...)/on(...) lists.
  const labelLists = [...stripped.matchAll(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)/g)]
    .flatMap((m) => m[1].split(",").map((s) => s.trim()));
  for (const l of labelLists) names.delete(l);
  // Durations like 5m / 1h and Grafana variables are not identifiers we want.
  for (const n of [...names]) if (/^(\$|__)/.test(n) || /^[0-9]+[smhdwy]$/.test(n)) names.delete(n);
  return names;
}

export function requiredMetricNames() {
  const byName = new Map();
  for (const { where, expr } of expressions()) {
    for (const n of metricNames(expr)) {
      if (!byName.has(n)) byName.set(n, []);
      byName.get(n).push(where);
    }
  }
  return byName;
}
