// Generates deploy/grafana/dashboards/lms-realtime.json, the provisioned Grafana
// dashboard. Written as code so that ids, grid positions and the datasource are
// consistent by construction; the JSON is committed (Grafana provisions it as is) and
// .ci/ops-checks.sh fails when it is not what this script generates.
//
//   node deploy/grafana/build-dashboard.mjs          # rewrite the JSON
//   node deploy/grafana/build-dashboard.mjs --check  # exit 1 when it differs
//
// Only the metric names of PROTOCOL.md section 6 and the gateway's adapter/Redis
// metrics are used; tests/e2e-lb/metrics.test.mjs checks that a running node exports
// every one of them.

import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const OUT = path.join(here, "dashboards", "lms-realtime.json");

// Must match deploy/grafana/provisioning/datasources/prometheus.yml.
const DS = { type: "prometheus", uid: "lms-prometheus" };
const SEL = 'instance=~"$instance"';

let nextId = 1;
let y = 0;

function row(title) {
  const p = { type: "row", id: nextId++, title, collapsed: false, gridPos: { h: 1, w: 24, x: 0, y }, panels: [] };
  y += 1;
  return p;
}

// Lays out a line of panels of the given widths (summing to <= 24) at the current y.
function line(h, ...panels) {
  let x = 0;
  const out = panels.map(({ w, ...p }) => {
    const placed = { ...p, id: nextId++, gridPos: { h, w, x, y } };
    x += w;
    return placed;
  });
  if (x > 24) throw new Error(`line wider than 24 columns: ${panels.map((p) => p.title)}`);
  y += h;
  return out;
}

function targets(exprs) {
  return exprs.map(([expr, legendFormat], i) => ({
    datasource: DS,
    refId: String.fromCharCode(65 + i),
    expr,
    legendFormat: legendFormat ?? "__auto",
    range: true,
  }));
}

function ts(title, description, unit, exprs, { w = 12, stack = false, min = 0 } = {}) {
  return {
    w,
    type: "timeseries",
    title,
    description,
    datasource: DS,
    targets: targets(exprs),
    fieldConfig: {
      defaults: {
        unit,
        min,
        custom: { drawStyle: "line", lineWidth: 1, fillOpacity: stack ? 30 : 10, stacking: { mode: stack ? "normal" : "none", group: "A" } },
      },
      overrides: [],
    },
    options: { legend: { displayMode: "table", placement: "right", calcs: ["lastNotNull", "max"] }, tooltip: { mode: "multi", sort: "desc" } },
  };
}

function stat(title, description, unit, expr, thresholds, w = 6) {
  return {
    w,
    type: "stat",
    title,
    description,
    datasource: DS,
    targets: targets([[expr, title]]),
    fieldConfig: {
      defaults: {
        unit,
        thresholds: { mode: "absolute", steps: thresholds },
        color: { mode: "thresholds" },
      },
      overrides: [],
    },
    options: { reduceOptions: { calcs: ["lastNotNull"], fields: "", values: false }, colorMode: "background", graphMode: "area", textMode: "auto" },
  };
}

const green = { color: "green", value: null };
const panels = [
  row("Overview"),
  ...line(
    4,
    stat("Connections", "Open sockets, all nodes.", "short", `sum(lms_socket_connections{${SEL}})`, [green]),
    stat("Ready nodes", "Nodes scraped whose store answered its last check (lms_store_up == 1).", "short",
      `count(lms_store_up{${SEL}} == 1) or vector(0)`, [{ color: "red", value: null }, { color: "orange", value: 1 }, { color: "green", value: 2 }]),
    stat("Notifications stored /s", "Inbox entries written (one per recipient).", "reqps",
      `sum(rate(lms_notifications_stored_total{${SEL}}[$__rate_interval]))`, [green]),
    stat("Adapter drops /s", "Messages dropped for full send buffers; should be 0.", "reqps",
      `sum(rate(lms_adapter_dropped_total{${SEL}}[$__rate_interval])) or vector(0)`, [green, { color: "red", value: 0.001 }]),
  ),

  row("Connections"),
  ...line(
    8,
    ts("Connections per node", "lms_socket_connections by node: should stay balanced behind the sticky LB.", "short",
      [[`sum by (node) (lms_socket_connections{${SEL}})`, "{{node}}"]], { stack: true }),
    ts("Connections per tenant (top 20)", "lms_tenant_connections, summed over nodes.", "short",
      [[`topk(20, sum by (tenant) (lms_tenant_connections{${SEL}}))`, "{{tenant}}"]]),
  ),
  ...line(
    8,
    ts("Connects by outcome", "accepted, or the refusal code (UNAUTHORIZED, TOKEN_EXPIRED, INVALID_TOKEN, ...).", "cps",
      [[`sum by (outcome) (rate(lms_socket_connects_total{${SEL}}[$__rate_interval]))`, "{{outcome}}"]]),
    ts("Disconnects by reason", "Client-side reasons (transport close, ping timeout) and server-side ones.", "cps",
      [[`sum by (reason) (rate(lms_socket_disconnects_total{${SEL}}[$__rate_interval]))`, "{{reason}}"]]),
  ),

  row("Rooms"),
  ...line(
    8,
    ts("Room members by kind", "Sum of members over the rooms of each kind.", "short",
      [[`sum by (kind) (lms_room_members{${SEL}})`, "{{kind}}"]]),
    ts("Rooms by kind", "Number of rooms of each kind.", "short",
      [[`sum by (kind) (lms_rooms{${SEL}})`, "{{kind}}"]]),
  ),

  row("Events"),
  ...line(
    8,
    ts("Events received by event and outcome", "Client-to-server events; outcome ok or the error code.", "reqps",
      [[`sum by (event, outcome) (rate(lms_events_received_total{${SEL}}[$__rate_interval]))`, "{{event}} {{outcome}}"]]),
    ts("Events emitted by event", "Server-to-client emits (one per emit call, not per recipient).", "reqps",
      [[`sum by (event) (rate(lms_events_emitted_total{${SEL}}[$__rate_interval]))`, "{{event}}"]]),
  ),
  ...line(
    8,
    ts("Event latency p99 by event", "Handling time of client events, p99 (alert at 250 ms).", "s",
      [[`histogram_quantile(0.99, sum by (le, event) (rate(lms_event_duration_seconds_bucket{${SEL}}[$__rate_interval])))`, "{{event}}"]]),
    ts("Event latency p50 by event", "Median handling time; mean from _sum/_count as a dashed reference.", "s",
      [
        [`histogram_quantile(0.5, sum by (le, event) (rate(lms_event_duration_seconds_bucket{${SEL}}[$__rate_interval])))`, "p50 {{event}}"],
        [`sum by (event) (rate(lms_event_duration_seconds_sum{${SEL}}[$__rate_interval])) / sum by (event) (rate(lms_event_duration_seconds_count{${SEL}}[$__rate_interval]))`, "mean {{event}}"],
      ]),
  ),

  row("Security"),
  ...line(
    8,
    ts("Security events by kind", "auth_failed, tenant_mismatch, forbidden, rate_limited (alert above 1/s per kind).", "reqps",
      [[`sum by (kind) (rate(lms_security_events_total{${SEL}}[$__rate_interval]))`, "{{kind}}"]], { w: 24 }),
  ),
  ...line(
    8,
    ts("Sockets kicked and revoked tokens refused", "Sockets disconnected by a kick or a revocation (cause), and revoked tokens refused at connect or refresh (docs/operations.md, kicking and revoking).", "ops",
      [
        [`sum by (cause) (rate(lms_kicked_sockets_total{${SEL}}[$__rate_interval]))`, "kicked ({{cause}})"],
        [`sum by (at) (rate(lms_revoked_tokens_refused_total{${SEL}}[$__rate_interval]))`, "refused at {{at}}"],
      ]),
    ts("JWKS fetches by outcome", "Background refreshes and re-fetches on an unknown kid; only errors for 10 minutes raises LmsRealtimeJwksRefreshFailing.", "ops",
      [[`sum by (outcome) (rate(lms_jwks_refreshes_total{${SEL}}[$__rate_interval]))`, "{{outcome}}"]]),
  ),

  row("Presence"),
  ...line(
    8,
    ts("Online users per tenant (top 20)", "lms_presence_online_users: users with a socket on any node, cluster-wide (every node reports the tenants it has users of; max over nodes). Capped tenant labels, the rest as other.", "short",
      [[`topk(20, max by (tenant) (lms_presence_online_users{${SEL}}))`, "{{tenant}}"]]),
    ts("Presence join/leave by outcome", "presence:join / presence:leave sent to instructors (announced) or held back by PRESENCE_DEBOUNCE_MS (debounced); store failures raise LmsRealtimePresenceStoreFailures.", "ops",
      [
        [`sum by (event, outcome) (rate(lms_presence_events_total{${SEL}}[$__rate_interval]))`, "{{event}} {{outcome}}"],
        [`sum(rate(lms_presence_store_failures_total{${SEL}}[$__rate_interval]))`, "store failures"],
      ]),
  ),

  row("Store (Redis)"),
  ...line(
    8,
    ts("Store latency p99 by op", "Notification store and membership cache operations.", "s",
      [[`histogram_quantile(0.99, sum by (le, op) (rate(lms_store_operation_duration_seconds_bucket{${SEL}}[$__rate_interval])))`, "{{op}}"]]),
    ts("Store operations and errors by op", "Operations per second and errors per second.", "reqps",
      [
        [`sum by (op) (rate(lms_store_operation_duration_seconds_count{${SEL}}[$__rate_interval]))`, "ops {{op}}"],
        [`sum by (op) (rate(lms_store_errors_total{${SEL}}[$__rate_interval]))`, "errors {{op}}"],
      ]),
  ),
  ...line(
    6,
    ts("Store up per node", "1 when the node's store (Redis) answered its last check; 0 = node not ready.", "short",
      [[`lms_store_up{${SEL}}`, "{{instance}}"]], { min: 0 }),
    ts("Redis reconnects and adapter resubscribes", "Reconnections per node and Redis client; channel resubscriptions after them, by outcome.", "short",
      [
        [`sum by (instance, client) (increase(lms_redis_reconnects_total{${SEL}}[$__rate_interval]))`, "reconnect {{instance}} {{client}}"],
        [`sum by (instance, outcome) (increase(lms_adapter_resubscribes_total{${SEL}}[$__rate_interval]))`, "resubscribe {{instance}} {{outcome}}"],
      ]),
  ),

  row("Cluster adapter"),
  ...line(
    8,
    ts("Adapter messages by direction", "Cluster messages published (out) and received (in) over Redis pub/sub.", "reqps",
      [[`sum by (instance, direction) (rate(lms_adapter_messages_total{${SEL}}[$__rate_interval]))`, "{{instance}} {{direction}}"]]),
    ts("Adapter drops", "Messages dropped (full send buffers, saturated node); should be 0.", "reqps",
      [[`sum by (instance) (rate(lms_adapter_dropped_total{${SEL}}[$__rate_interval]))`, "{{instance}}"]]),
  ),

  row("HTTP"),
  ...line(
    8,
    ts("HTTP requests by route and status", "Service API, health and metrics endpoints.", "reqps",
      [[`sum by (route, status) (rate(lms_http_requests_total{${SEL}}[$__rate_interval]))`, "{{route}} {{status}}"]], { w: 24 }),
  ),
];

const dashboard = {
  uid: "lms-realtime",
  title: "lms-realtime",
  description: "Socket.IO gateway: connections, rooms, events, security, presence, store, cluster adapter, HTTP. Runbook: docs/operations.md",
  tags: ["lms-realtime"],
  timezone: "browser",
  editable: true,
  graphTooltip: 1,
  refresh: "30s",
  schemaVersion: 39,
  version: 1,
  time: { from: "now-1h", to: "now" },
  annotations: { list: [] },
  links: [],
  templating: {
    list: [
      {
        type: "query",
        name: "instance",
        label: "Node",
        datasource: DS,
        query: { query: "label_values(lms_socket_connections, instance)", refId: "instance" },
        definition: "label_values(lms_socket_connections, instance)",
        includeAll: true,
        multi: true,
        allValue: ".*",
        current: { selected: true, text: ["All"], value: ["$__all"] },
        refresh: 2,
        sort: 1,
      },
    ],
  },
  panels,
};

const json = JSON.stringify(dashboard, null, 2) + "\n";
if (process.argv.includes("--check")) {
  const current = readFileSync(OUT, "utf8");
  if (current !== json) {
    console.error(`${path.relative(process.cwd(), OUT)} is not what build-dashboard.mjs generates; run: node deploy/grafana/build-dashboard.mjs`);
    process.exit(1);
  }
  console.log("dashboard JSON up to date");
} else {
  writeFileSync(OUT, json);
  console.log(`wrote ${OUT}`);
}
