// Generates k8s/base/prometheusrule.yaml from deploy/prometheus/rules/lms-realtime.rules.yml,
// the single source of the alert rules (docker-compose's Prometheus loads that file,
// promtool checks and unit-tests it). The rule groups are copied verbatim under `spec:`.
//
//   node deploy/validate/gen-prometheusrule.mjs          # rewrite
//   node deploy/validate/gen-prometheusrule.mjs --check  # exit 1 when out of date

import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { isDeepStrictEqual } from "node:util";
import YAML from "yaml";

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const SRC = path.join(repo, "deploy/prometheus/rules/lms-realtime.rules.yml");
const OUT = path.join(repo, "k8s/base/prometheusrule.yaml");

const src = readFileSync(SRC, "utf8");
const body = src.split("\n");
const start = body.findIndex((l) => l.startsWith("groups:"));
if (start < 0) throw new Error(`${SRC}: no top-level groups:`);

const out = [
  "# GENERATED from deploy/prometheus/rules/lms-realtime.rules.yml by",
  "# deploy/validate/gen-prometheusrule.mjs: edit that file, then re-run the script.",
  "apiVersion: monitoring.coreos.com/v1",
  "kind: PrometheusRule",
  "metadata:",
  "  name: lms-realtime",
  "  labels:",
  "    release: prometheus",
  "spec:",
  ...body.slice(start).map((l) => (l ? `  ${l}` : l)),
].join("\n").replace(/\n*$/, "\n");

// The copy must mean exactly what the source means.
if (!isDeepStrictEqual(YAML.parse(out).spec, YAML.parse(src))) throw new Error("generated spec differs from the rules file");

if (process.argv.includes("--check")) {
  if (readFileSync(OUT, "utf8") !== out) {
    console.error("k8s/base/prometheusrule.yaml is out of date; run: node deploy/validate/gen-prometheusrule.mjs");
    process.exit(1);
  }
  console.log("PrometheusRule up to date with the rules file");
} else {
  writeFileSync(OUT, out);
  console.log(`wrote ${path.relative(repo, OUT)}`);
}
