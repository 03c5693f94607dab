// The load balancer, tested for real: deploy/nginx/lms-realtime.conf (the file
// docker-compose mounts) in front of three gateway nodes sharing one Redis, driven by
// the official socket.io-client with polling+websocket and with polling only.
//
// What it proves: the cookie affinity spreads loopback clients over the nodes and keeps
// every request of a session on one node (checked from nginx's own access log, not
// inferred from the clients staying up); the websocket upgrade passes through; events
// flow both ways; a notification POSTed to one node reaches clients on the others; and
// when a node dies, its clients reconnect through nginx to a surviving node, recover their
// session there (what was broadcast meanwhile arrives once), and work.

import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import path from "node:path";
import { io } from "socket.io-client";
import { Cluster, REPO, signJwt, serviceToken, http, waitFor } from "./lib/cluster.mjs";

const TENANT = "t-lb";
// The Node baseline (development only) has no connection state recovery with its adapter.
const baselineTarget = (process.env.LMS_E2E_TARGET || "binary") === "baseline";
const RUN = Date.now().toString(36);

function client(url, user, transports, { cookies = true } = {}) {
  const token = signJwt({ sub: user, tenantId: TENANT, role: "student" });
  const socket = io(url, {
    transports,
    // Send nginx's affinity cookie back (the Node client keeps a jar only then).
    // Websocket-only clients need no affinity: one request per session.
    withCredentials: cookies,

    auth: { token },
    forceNew: true,
    reconnectionDelay: 200,
    reconnectionDelayMax: 1000,
    timeout: 5000,
  });
  const c = { user, transports, socket, events: [], connects: 0, disconnects: [] };
  socket.on("connect", () => c.connects++);
  socket.on("disconnect", (reason) => c.disconnects.push(reason));
  socket.onAny((event, ...args) => c.events.push({ event, args }));
  return c;
}

const engineSid = (c) => c.socket.io.engine?.id;
const transportName = (c) => c.socket.io.engine?.transport?.name;

function received(c, event, pred = () => true) {
  return c.events.some((e) => e.event === event && pred(e.args[0]));
}

describe("nginx sticky load balancer in front of three nodes", { timeout: 180000 }, () => {
  let cluster;
  const clients = [];

  before(async () => {
    cluster = await new Cluster({ nodes: 3, name: "lb" }).start();
  });

  after(async () => {
    for (const c of clients) c.socket.close();
    if (cluster) {
      if (process.env.LMS_E2E_KEEP) console.log(`runtime dir kept: ${cluster.dir}`);
      await cluster.stop();
    }
  });

  // Which node serves a client, from nginx's access log: the upstream of its sid.
  // Websocket-only sessions are one request, logged by nginx only when it ends: their
  // node is not known while they are open (and they need no affinity anyway).
  const tracked = (c) => c.transports[0] === "polling";
  function nodeOf(c) {
    const sid = engineSid(c);
    const ups = new Set(cluster.accessEntries().filter((e) => e.sid === sid).map((e) => e.upstream));
    assert.equal(ups.size, 1, `session ${sid} of ${c.user} served by ${[...ups].join(", ") || "nothing"}`);
    const port = [...ups][0].split(":").pop();
    return cluster.nodeByPort(port);
  }

  it("answers the compose health check on /lb-health and hides /metrics", async () => {
    const r = spawnSync("bash", [path.join(REPO, "deploy/docker/healthcheck.sh"), "/lb-health"], {
      env: { ...process.env, PORT: String(cluster.lbPort) }, encoding: "utf8",
    });
    assert.equal(r.status, 0, r.stderr);
    assert.equal((await http("GET", `${cluster.lbUrl}/metrics`)).status, 404);
    assert.equal((await http("GET", `${cluster.lbUrl}/healthz`)).status, 200);
  });

  it("connects clients over polling+websocket and polling only, spread over the nodes, each session on one node", async () => {
    for (let i = 0; i < 8; i++) clients.push(client(cluster.lbUrl, `u-ws-${i}`, ["polling", "websocket"]));
    for (let i = 0; i < 8; i++) clients.push(client(cluster.lbUrl, `u-poll-${i}`, ["polling"]));
    for (let i = 0; i < 4; i++) clients.push(client(cluster.lbUrl, `u-wsonly-${i}`, ["websocket"], { cookies: false }));
    await waitFor("all clients connected", () => clients.every((c) => c.socket.connected));
    await waitFor("polling+websocket clients upgraded", () =>
      clients.filter((c) => c.transports.length === 2).every((c) => transportName(c) === "websocket"));
    for (const c of clients.filter((c) => c.transports.length === 1)) assert.equal(transportName(c), c.transports[0]);

    // A few round trips so that polling sessions make many requests.
    for (const c of clients) {
      const ack = await c.socket.timeout(5000).emitWithAck("notification:count");
      assert.equal(ack.ok, true, JSON.stringify(ack));
    }

    // Stickiness, as nginx saw it: every sid went to exactly one upstream.
    const bySid = new Map();
    for (const e of cluster.accessEntries()) {
      if (!e.sid) continue;
      if (!bySid.has(e.sid)) bySid.set(e.sid, new Set());
      bySid.get(e.sid).add(e.upstream);
    }
    for (const c of clients.filter(tracked)) {
      assert.ok(bySid.has(engineSid(c)), `no request of ${c.user} with its sid in the access log`);
    }
    for (const [sid, ups] of bySid) assert.equal(ups.size, 1, `sid ${sid} split over ${[...ups].join(", ")}`);
    // No request was refused by a node for an unknown session.
    const unknown = cluster.accessEntries().filter((e) => e.sid && e.status === 400);
    assert.deepEqual(unknown, [], "requests answered 400 (session unknown on that node)");

    // Spread: 20 random affinity keys over 3 nodes all landing on one is ~1e-9.
    const used = new Set(clients.filter(tracked).map((c) => nodeOf(c).id));
    assert.ok(used.size >= 2, `all clients on ${[...used]}`);
  });

  it("delivers events both ways, and a notification POSTed to one node reaches clients on all nodes", async () => {
    const entry = cluster.nodes[0];
    const onOthers = clients.filter(tracked).filter((c) => nodeOf(c).id !== entry.id);
    assert.ok(onOthers.length > 0, "every client is on the node the notification is posted to");

    const ids = new Map();
    for (const c of clients) {
      const id = `n-${RUN}-${c.user}`;
      ids.set(c.user, id);
      const res = await http("POST", `${entry.url}/api/v1/notifications`, {
        token: serviceToken(TENANT),
        body: {
          tenantId: TENANT,
          target: { userId: c.user },
          notification: { id, title: "Graded", message: `hello ${c.user}`, type: "ASSIGNMENT_GRADED", priority: "NORMAL" },
        },
      });
      assert.equal(res.status, 202, res.text);
    }
    await waitFor("every client got its notification:new", () =>
      clients.every((c) => received(c, "notification:new", (n) => n?.id === ids.get(c.user))));
    await waitFor("every client got notification:count", () =>
      clients.every((c) => received(c, "notification:count", (n) => n?.unread >= 1)));

    // Client -> server with an ack, on every transport.
    for (const c of clients) {
      const ack = await c.socket.timeout(5000).emitWithAck("notification:read", { notificationId: ids.get(c.user) });
      assert.equal(ack.ok, true, `${c.user}: ${JSON.stringify(ack)}`);
      assert.equal(ack.unread, 0);
    }

    // A tenant broadcast posted to another node reaches everyone.
    const res = await http("POST", `${cluster.nodes[1].url}/api/v1/tenants/${TENANT}/broadcast`, {
      token: serviceToken(TENANT),
      body: { title: `broadcast-${RUN}`, message: "to all" },
    });
    assert.ok(res.status >= 200 && res.status < 300, `${res.status} ${res.text}`);
    await waitFor("broadcast delivered to every client", () =>
      clients.every((c) => received(c, "notification:new", (n) => n?.title === `broadcast-${RUN}`)));
  });

  it("when a node dies, its clients reconnect through nginx to the others, recover their sessions and keep working", async () => {
    // Kill the node holding the most clients, without warning (SIGKILL: a crash).
    const counts = new Map();
    for (const c of clients.filter(tracked)) counts.set(nodeOf(c).id, (counts.get(nodeOf(c).id) || 0) + 1);
    const [victimId] = [...counts].sort((a, b) => b[1] - a[1])[0];
    const victim = cluster.nodes.find((n) => n.id === victimId);
    const orphans = clients.filter(tracked).filter((c) => nodeOf(c).id === victimId);
    const before = new Map(orphans.map((c) => [c.user, c.connects]));
    await cluster.kill(victimId, "SIGKILL");
    // A tenant broadcast sent at once, while the orphans are down or reconnecting: connection
    // state recovery (PROTOCOL §9) gives it to them on whichever survivor nginx picks.
    const gap = `gap-${RUN}`;
    const sentInGap = await http("POST", `${cluster.nodes.find((n) => n.id !== victimId).url}/api/v1/tenants/${TENANT}/broadcast`, {
      token: serviceToken(TENANT),
      body: { title: gap, message: "sent while a node was dying" },
    });
    assert.ok(sentInGap.status >= 200 && sentInGap.status < 300, `${sentInGap.status} ${sentInGap.text}`);

    await waitFor("orphaned clients noticed the loss", () => orphans.every((c) => c.disconnects.length > 0), { timeoutMs: 60000 });
    await waitFor("orphaned clients reconnected", () =>
      orphans.every((c) => c.socket.connected && c.connects > before.get(c.user)), { timeoutMs: 60000 });
    if (!baselineTarget) {
      for (const c of orphans) assert.equal(c.socket.recovered, true, `${c.user} did not recover its session on a survivor`);
    }
    await waitFor("the broadcast sent during the failover reached every client, orphans included", () =>
      clients.every((c) => received(c, "notification:new", (n) => n?.title === gap)));
    for (const c of clients) {
      const copies = c.events.filter((e) => e.event === "notification:new" && e.args[0]?.title === gap).length;
      assert.equal(copies, 1, `${c.user} got the failover broadcast ${copies} times`);
    }
    await waitFor("reconnected websocket clients upgraded again", () =>
      orphans.filter((c) => c.transports.length === 2).every((c) => transportName(c) === "websocket"));

    await waitFor("every client connected", () => clients.every((c) => c.socket.connected), { timeoutMs: 60000 });
    // Some round trips (several polls per polling session), then check where they went.
    for (let round = 0; round < 3; round++) {
      for (const c of clients) {
        const ack = await c.socket.timeout(5000).emitWithAck("notification:count");
        assert.equal(ack.ok, true, `${c.user}: ${JSON.stringify(ack)}`);
      }
    }
    for (const c of orphans) {
      const n = nodeOf(c); // also asserts the new session is on one node only
      assert.notEqual(n.id, victimId, `${c.user} still on the dead node`);
    }

    // A notification posted to a survivor reaches everyone, the orphans included.
    const survivor = cluster.nodes.find((n) => n.id !== victim.id);
    const id = `n-${RUN}-after-kill`;
    for (const c of clients) {
      const res = await http("POST", `${survivor.url}/api/v1/notifications`, {
        token: serviceToken(TENANT),
        body: {
          tenantId: TENANT,
          target: { userId: c.user },
          notification: { id: `${id}-${c.user}`, title: "After", message: "failover", type: "GENERAL", priority: "HIGH" },
        },
      });
      assert.equal(res.status, 202, res.text);
    }
    await waitFor("notification after failover delivered to every client", () =>
      clients.every((c) => received(c, "notification:new", (n) => n?.id === `${id}-${c.user}`)));
  });

  it("draining a node (SIGTERM, as in a rolling deploy) moves its clients to the last node", async () => {
    const alive = cluster.nodes.filter((n) => cluster.children.has(n.id));
    assert.equal(alive.length, 2);
    const [drained, last] = alive;
    const movers = clients.filter(tracked).filter((c) => nodeOf(c).id === drained.id);
    const before = new Map(movers.map((c) => [c.user, c.connects]));
    const child = cluster.children.get(drained.id);
    const t0 = Date.now();
    const exited = new Promise((r) => child.once("exit", r));
    child.kill("SIGTERM");
    // DRAIN_TIMEOUT_SECS=2 in the test: the process must be gone well before a
    // Kubernetes terminationGracePeriod would SIGKILL it.
    await Promise.race([exited, new Promise((_, rej) => setTimeout(() => rej(new Error("node did not exit within 10 s of SIGTERM")), 10000))]);
    cluster.children.delete(drained.id);
    console.log(`${drained.id} drained and exited in ${Date.now() - t0} ms; ${movers.length} clients moved`);

    await waitFor("drained clients reconnected", () =>
      movers.every((c) => c.socket.connected && c.connects > before.get(c.user)), { timeoutMs: 60000 });
    await waitFor("every client connected", () => clients.every((c) => c.socket.connected), { timeoutMs: 60000 });
    for (const c of clients) {
      const ack = await c.socket.timeout(5000).emitWithAck("notification:count");
      assert.equal(ack.ok, true, `${c.user}: ${JSON.stringify(ack)}`);
    }
    for (const c of clients.filter(tracked)) assert.equal(nodeOf(c).id, last.id, `${c.user} not on the last node`);
  });
});
