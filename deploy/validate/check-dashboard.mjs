// Sanity checks for the provisioned Grafana dashboard (there is no official offline
// validator): unique panel ids, grid positions inside 24 columns and not overlapping,
// every panel on the provisioned datasource uid, and every PromQL expression parsed by
// promtool (written out as recording rules after substituting Grafana's variables).
//
//   node deploy/validate/check-dashboard.mjs [dashboard.json ...]

import { readFileSync, writeFileSync, mkdtempSync, rmSync } from "node:fs";
import { spawnSync } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import YAML from "yaml";

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, "..", "..");
const files = process.argv.slice(2).length
  ? process.argv.slice(2)
  : [path.join(repo, "deploy", "grafana", "dashboards", "lms-realtime.json")];

const provisioned = YAML.parse(readFileSync(path.join(repo, "deploy/grafana/provisioning/datasources/prometheus.yml"), "utf8"));
const dsUids = new Set(provisioned.datasources.map((d) => d.uid));

const errors = [];
const fail = (file, msg) => errors.push(`${path.relative(repo, file)}: ${msg}`);

// Grafana's built-in and template variables, replaced by something PromQL accepts.
function substitute(expr, templating) {
  let e = expr
    .replaceAll("$__rate_interval", "1m")
    .replaceAll("$__interval", "1m")
    .replaceAll("$__range", "1h");
  for (const v of templating) e = e.replaceAll(`$${v.name}`, ".*").replaceAll(`\${${v.name}}`, ".*");
  if (/\$/.test(e)) throw new Error(`unknown variable left in: ${e}`);
  return e;
}

const rules = [];
for (const file of files) {
  const d = JSON.parse(readFileSync(file, "utf8"));
  const templating = d.templating?.list ?? [];
  if (!d.uid) fail(file, "dashboard has no uid");

  const all = [];
  const walk = (ps) => ps.forEach((p) => { all.push(p); if (p.panels) walk(p.panels); });
  walk(d.panels ?? []);

  const ids = new Map();
  for (const p of all) {
    if (typeof p.id !== "number") fail(file, `panel "${p.title}" has no numeric id`);
    if (ids.has(p.id)) fail(file, `panel id ${p.id} used by "${ids.get(p.id)}" and "${p.title}"`);
    ids.set(p.id, p.title);
    const g = p.gridPos;
    if (!g || ![g.x, g.y, g.w, g.h].every(Number.isInteger)) fail(file, `panel "${p.title}" has no integer gridPos`);
    else if (g.x < 0 || g.w < 1 || g.x + g.w > 24 || g.h < 1) fail(file, `panel "${p.title}" gridPos ${JSON.stringify(g)} outside 24 columns`);
    if (p.type !== "row") {
      if (!p.datasource || !dsUids.has(p.datasource.uid)) fail(file, `panel "${p.title}" datasource ${JSON.stringify(p.datasource)} not provisioned`);
      if (!p.targets?.length) fail(file, `panel "${p.title}" has no query`);
      const refs = new Set();
      for (const t of p.targets ?? []) {
        if (refs.has(t.refId)) fail(file, `panel "${p.title}" repeats refId ${t.refId}`);
        refs.add(t.refId);
        if (t.datasource && !dsUids.has(t.datasource.uid)) fail(file, `panel "${p.title}" target datasource not provisioned`);
        try {
          rules.push({ record: `dashboard:panel_${p.id}_${t.refId}`, expr: substitute(t.expr, templating) });
        } catch (e) {
          fail(file, `panel "${p.title}": ${e.message}`);
        }
      }
    }
  }
  // Overlap: no two panels share a grid cell.
  const cells = new Map();
  for (const p of all) {
    const g = p.gridPos;
    if (!g) continue;
    for (let yy = g.y; yy < g.y + g.h; yy++) {
      for (let xx = g.x; xx < g.x + g.w; xx++) {
        const k = `${xx},${yy}`;
        if (cells.has(k)) { fail(file, `panels "${cells.get(k)}" and "${p.title}" overlap at ${k}`); yy = Infinity; break; }
        cells.set(k, p.title);
      }
    }
  }
  for (const v of templating) {
    if (v.datasource && !dsUids.has(v.datasource.uid)) fail(file, `variable ${v.name} datasource not provisioned`);
  }
}

// Every expression through promtool's PromQL parser.
const tmp = mkdtempSync("/tmp/lms-ops-dash-");
try {
  const rulesFile = path.join(tmp, "dashboard-exprs.rules.yml");
  writeFileSync(rulesFile, YAML.stringify({ groups: [{ name: "dashboard", rules }] }));
  const r = spawnSync("promtool", ["check", "rules", rulesFile], { encoding: "utf8" });
  if (r.error) errors.push(`promtool: ${r.error.message}`);
  else if (r.status !== 0) errors.push(`promtool rejected a dashboard expression:\n${r.stdout}${r.stderr}`);
} finally {
  rmSync(tmp, { recursive: true, force: true });
}

if (errors.length) {
  console.error(errors.join("\n"));
  process.exit(1);
}
console.log(`dashboard OK: ${files.length} file(s), ${rules.length} expressions parsed by promtool`);
