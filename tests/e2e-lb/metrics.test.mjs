// The dashboard and the alerts must match the code: every metric name used by
// deploy/grafana/dashboards/lms-realtime.json and deploy/prometheus/rules/ (and every
// name in PROTOCOL.md section 6, when shared/ is beside the repository) must be exported
// by a running node after some traffic. Histograms are checked by the series the
// queries use (_bucket, _sum, _count).
//
// The traffic covers what the panels show: accepted and refused connections, client
// events with ok and error outcomes, security events, stored notifications, a
// cross-node broadcast (adapter in/out), HTTP requests, a disconnect, and a Redis
// outage (store errors, redis_up 0, a reconnect), which also exercises /readyz.
//
// Runs only against the gateway binary (the Node baseline has no /metrics).

import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { spawnSync } from "node:child_process";
import path from "node:path";
import { io } from "socket.io-client";
import { Cluster, REPO, signJwt, serviceToken, http, waitFor } from "./lib/cluster.mjs";
import { requiredMetricNames, SYNTHETIC } from "./lib/metric-names.mjs";

const TENANT = "t-metrics";
const baseline = (process.env.LMS_E2E_TARGET || "binary") === "baseline";
// LMS_E2E_EMBEDDED=1: one node without Redis (for a build without cluster mode). The
// adapter/Redis metrics and the outage step are then out of scope and not required.
const embedded = process.env.LMS_E2E_EMBEDDED === "1";
const CLUSTER_ONLY = /^lms_(adapter_|redis_|store_errors_total$)/;

function connect(url, claims, opts = {}) {
  const socket = io(url, {
    transports: ["websocket"],
    auth: { token: signJwt({ tenantId: TENANT, ...claims }) },
    forceNew: true,
    reconnection: false,
    timeout: 5000,
    ...opts,
  });
  return new Promise((resolve, reject) => {
    socket.once("connect", () => resolve(socket));
    socket.once("connect_error", (e) => {
      socket.close();
      reject(e);
    });
  });
}

// Names in the §6 table of the contract, when shared/PROTOCOL.md is reachable.
function contractNames() {
  const file = [path.join(REPO, "..", "shared", "PROTOCOL.md"), "/work/shared/PROTOCOL.md"].find(existsSync);
  if (!file) return new Map();
  const text = readFileSync(file, "utf8");
  const section = text.split(/^## /m).find((s) => s.startsWith("6."));
  const out = new Map();
  for (const m of section?.matchAll(/^\|\s*`(lms_[a-z0-9_]+)`\s*\|\s*(\w+)/gm) ?? []) {
    const [, name, type] = m;
    for (const n of type === "histogram" ? [`${name}_bucket`, `${name}_sum`, `${name}_count`] : [name]) {
      out.set(n, ["PROTOCOL.md section 6"]);
    }
  }
  return out;
}

// Metric names present in a Prometheus text exposition.
function exported(text) {
  const names = new Set();
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)/.exec(line);
    if (m) names.add(m[1]);
  }
  return names;
}

describe("every metric used by the dashboard and the alerts is exported", { skip: baseline && "the Node baseline has no /metrics", timeout: 180000 }, () => {
  let cluster;
  const sockets = [];
  const scrapes = new Map(); // node id -> exposition text

  before(async () => {
    cluster = await new Cluster({
      nodes: embedded ? 1 : 2, nginx: false, name: "metrics", embedded,
      // The per-tenant storage gauges are set by the retention sweep (15 min by default).
      env: { RETENTION_SWEEP_INTERVAL: "1s" },
    }).start();
  });

  after(async () => {
    for (const s of sockets) s.close();
    if (cluster) await cluster.stop();
  });

  it("the container health check script passes against a live node", () => {
    const r = spawnSync("bash", [path.join(REPO, "deploy/docker/healthcheck.sh")], {
      env: { ...process.env, PORT: String(cluster.nodes[0].port) }, encoding: "utf8",
    });
    assert.equal(r.status, 0, r.stderr);
  });

  it("generates traffic on two nodes", async () => {
    const [n1, n2 = cluster.nodes[0]] = cluster.nodes;
    const svc = serviceToken(TENANT);

    // Accepted connections of every role on both nodes.
    const student1 = await connect(n1.url, { sub: "s1", role: "student" });
    const student2 = await connect(n2.url, { sub: "s2", role: "student" });
    const instructor = await connect(n2.url, { sub: "i1", role: "instructor" });
    const admin = await connect(n1.url, { sub: "a1", role: "admin" });
    sockets.push(student1, student2, instructor, admin);

    // Refused connections: bad signature and expired token (security: auth_failed).
    await assert.rejects(connect(n1.url, {}, { auth: { token: signJwt({ sub: "x", tenantId: TENANT, role: "student" }, "wrong-key") } }));
    await assert.rejects(connect(n2.url, {}, { auth: { token: signJwt({ sub: "x", tenantId: TENANT, role: "student", exp: 1000 }) } }));

    // Every step runs even when an earlier one fails, so that the metric-name check below
    // sees all the traffic it can; the failures are reported together at the end.
    const problems = [];
    const step = async (what, fn) => {
      try {
        await fn();
      } catch (e) {
        problems.push(`${what}: ${e.message}`);
      }
    };
    const ok = (r) => assert.ok(r.status < 300, `${r.status} ${r.text}`);
    const ack = (s, ev, payload) => (payload === undefined ? s.timeout(5000).emitWithAck(ev) : s.timeout(5000).emitWithAck(ev, payload));
    const acked = async (s, ev, payload, expectOk = true) => {
      const a = await ack(s, ev, payload);
      assert.equal(a?.ok, expectOk, `${ev} ack ${JSON.stringify(a)}`);
    };

    // Memberships through the service API on one node, live on the other.
    await step("PUT member s2", async () => ok(await http("PUT", `${n1.url}/api/v1/tenants/${TENANT}/courses/c1/members/s2`, { token: svc, body: { role: "student" } })));
    await step("PUT member i1", async () => ok(await http("PUT", `${n1.url}/api/v1/tenants/${TENANT}/courses/c1/members/i1`, { token: svc, body: { role: "instructor" } })));

    // Stored notifications (store ops, notifications_stored, emitted events).
    await step("POST notifications", async () => {
      const r = await http("POST", `${n1.url}/api/v1/notifications`, {
        token: svc,
        body: { tenantId: TENANT, target: { userIds: ["s1", "s2"] }, notification: { id: `m-${Date.now()}`, title: "t", message: "m", type: "GENERAL", priority: "LOW" } },
      });
      assert.equal(r.status, 202, r.text);
    });
    // Cross-node broadcast: adapter out on node1, in on node2.
    await step("POST broadcast", async () => ok(await http("POST", `${n1.url}/api/v1/tenants/${TENANT}/broadcast`, { token: svc, body: { title: "b", message: "all" } })));
    // Cluster-wide stats span tenants: a super_admin token (allowed by PROTOCOL 5 in any case).
    const admin0 = signJwt({ sub: "ops", role: "super_admin" });
    await step("GET stats", async () => ok(await http("GET", `${n2.url}/api/v1/stats`, { token: admin0 })));
    await step("GET unread", async () => ok(await http("GET", `${n1.url}/api/v1/tenants/${TENANT}/users/s1/unread`, { token: svc })));

    // Client events: ok outcomes and error outcomes (security events).
    await step("notification:count (no payload, PROTOCOL 3)", () => acked(student1, "notification:count"));
    await step("notification:list", () => acked(student2, "notification:list", { limit: 5 }));
    await step("course:join c1", () => acked(student2, "course:join", "c1"));
    await step("progress:content", () => acked(student2, "progress:content", { courseId: "c1", contentId: "k1", progress: 0.5 }));
    await step("course:update", () => acked(instructor, "course:update", { courseId: "c1", changes: { title: "new" } }));
    await step("course:join not enrolled (FORBIDDEN)", () => acked(student1, "course:join", "c-not-enrolled", false));
    await step("notification:read other tenant (TENANT_MISMATCH)", () =>
      acked(student1, "notification:read", { notificationId: "n", tenantId: "someone-else" }, false));
    await step("admin:broadcast", () => acked(admin, "admin:broadcast", { title: "hello", message: "tenant" }));

    // A disconnect.
    const leaver = await connect(n2.url, { sub: "s3", role: "student" });
    leaver.close();

    assert.deepEqual(problems, [], `traffic steps failed:\n  ${problems.join("\n  ")}`);
  });

  it("survives a Redis outage with store errors and a reconnect", { skip: embedded && "embedded mode has no Redis" }, async () => {
    const [n1] = cluster.nodes;
    await cluster.stopRedis();
    await waitFor("node1 /readyz 503 without Redis", async () => (await http("GET", `${n1.url}/readyz`)).status === 503, { timeoutMs: 30000 });
    const r = await http("POST", `${n1.url}/api/v1/notifications`, {
      token: serviceToken(TENANT),
      body: { tenantId: TENANT, target: { userId: "s1" }, notification: { title: "t", message: "m", type: "GENERAL", priority: "LOW" } },
      timeoutMs: 15000,
    });
    assert.equal(r.status, 503, `a write without Redis must be 503, got ${r.status} ${r.text}`);
    await cluster.restartRedis();
    await Promise.all(cluster.nodes.map((n) => cluster.waitReady(n)));
  });

  it("exports every metric name the dashboard, the alerts and the contract use", async () => {
    await new Promise((r) => setTimeout(r, 1500)); // periodic gauges (rooms, tenants) refresh
    for (const n of cluster.nodes) {
      const res = await http("GET", `${n.url}/metrics`);
      assert.equal(res.status, 200);
      scrapes.set(n.id, res.text);
    }
    const have = new Set([...scrapes.values()].flatMap((t) => [...exported(t)]));
    const required = requiredMetricNames();
    for (const [n, where] of contractNames()) if (!required.has(n)) required.set(n, where);

    const missing = [];
    for (const [name, where] of required) {
      if (SYNTHETIC.has(name)) continue;
      if (embedded && CLUSTER_ONLY.test(name)) continue;
      assert.ok(name.startsWith("lms_"), `unexpected non-lms metric ${name} in ${where.join(", ")}`);
      if (!have.has(name)) missing.push(`${name} (used by ${[...new Set(where)].join(", ")})`);
    }
    assert.deepEqual(missing, [], `metrics not exported by any node after traffic:\n  ${missing.join("\n  ")}`);
  });

  it("the exposition parses (promtool check metrics)", () => {
    for (const [id, text] of scrapes) {
      const file = path.join(cluster.dir, `${id}.metrics.txt`);
      writeFileSync(file, text);
      const r = spawnSync("promtool", ["check", "metrics"], { input: text, encoding: "utf8" });
      if (r.error) return; // promtool absent: the static checks need it, not this test
      const out = `${r.stdout}${r.stderr}`;
      assert.ok(!/error while linting|text format parsing error/i.test(out), `${id}: ${out}`);
      if (out.trim()) console.log(`promtool lint notes for ${id}:\n${out}`);
    }
  });
});
