// The compose stack from the outside, as a user's clients see it: the official
// socket.io-client through the stack's nginx (LMS_LB_URL) to three gateway nodes in
// containers. Run by .ci/containers.sh once the stack is up; not part of `npm test`.
//
// What it checks:
// - every node is reachable through nginx, and a client's affinity cookie keeps all of
//   its requests on one node (polling sessions would fail with "session unknown" on
//   another node): clients with a cookie nginx minted and clients with a chosen one;
// - a notification POSTed to the service API through nginx reaches its user's clients,
//   over websocket (after the upgrade), over polling only, and websocket only;
// - a node stopped with SIGTERM (LMS_STOP_NODE_CMD, NODE=<name>): its clients reconnect
//   through nginx to the other nodes, the others are not disturbed, and nothing is lost:
//   notifications sent while they were away arrive (replayed, or found with
//   notification:list) and those sent after arrive live.
//
//   LMS_LB_URL=http://127.0.0.1:8080 JWT_SECRET=... LMS_STOP_NODE_CMD='docker stop x-$NODE-1' \
//     node tests/e2e-lb/compose-stack.mjs

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { io } from "socket.io-client";
import { signJwt, http, waitFor } from "./lib/cluster.mjs";

const LB = process.env.LMS_LB_URL;
const SECRET = process.env.JWT_SECRET;
const STOP_CMD = process.env.LMS_STOP_NODE_CMD;
if (!LB || !SECRET || !STOP_CMD) {
  console.error("LMS_LB_URL, JWT_SECRET and LMS_STOP_NODE_CMD are required");
  process.exit(2);
}
const TENANT = "t-compose";
const RUN = Date.now().toString(36);
const NODES = 3;
// iss and aud only when the stack is configured with them (compose reads the same variables).
const extraClaims = {
  ...(process.env.JWT_ISSUER ? { iss: process.env.JWT_ISSUER } : {}),
  ...(process.env.JWT_AUDIENCE ? { aud: process.env.JWT_AUDIENCE } : {}),
};
const token = (claims) => signJwt({ ...extraClaims, ...claims }, SECRET);
const serviceToken = token({ sub: "ci-backend", role: "service", tenantId: TENANT });

const log = (...a) => console.log("  ", ...a);
// Everything below is bounded by waitFor's timeouts; this is the overall guard.
setTimeout(() => {
  console.error("compose-stack: overall timeout (240 s)");
  process.exit(1);
}, 240000).unref();

// Which node nginx sends a given affinity key to: /readyz names the node.
async function nodeForKey(key) {
  const res = await fetch(`${LB}/readyz`, { headers: { cookie: `lms_lb=${key}` }, signal: AbortSignal.timeout(5000) });
  const body = await res.json();
  assert.equal(res.status, 200, JSON.stringify(body));
  return body.node;
}

// kind: "ws" (polling then websocket), "poll" (polling only), "wsonly" (no cookie).
// key: a chosen affinity cookie; otherwise nginx mints one and the client keeps it.
function client(user, kind, key) {
  const transports = { ws: ["polling", "websocket"], poll: ["polling"], wsonly: ["websocket"] }[kind];
  const socket = io(LB, {
    transports,
    withCredentials: kind !== "wsonly" && !key, // the Node client keeps a cookie jar only then
    extraHeaders: key ? { cookie: `lms_lb=${key}` } : {},
    auth: { token: token({ sub: user, tenantId: TENANT, role: "student" }) },
    forceNew: true,
    reconnectionDelay: 200,
    reconnectionDelayMax: 1000,
    timeout: 5000,
  });
  const c = { user, kind, key, socket, notes: new Set(), connects: 0, disconnects: [], errors: [], node: null };
  socket.on("connect", () => c.connects++);
  socket.on("connect_error", (e) => c.errors.push(e.message));
  socket.on("disconnect", (reason) => c.disconnects.push(reason));
  socket.on("notification:new", (n) => n?.id && c.notes.add(n.id));
  return c;
}
const transportOf = (c) => c.socket.io.engine?.transport?.name;
const expectedTransport = (c) => (c.kind === "poll" ? "polling" : "websocket");

// retry: while a node is going away, nginx may answer 502 for a POST it already sent to
// it (it never resends a non-idempotent request), or take its connect timeout (5 s) to
// find the node gone before trying the next; a backend retries that, so do we.
async function notify(user, id, title, { retry = false } = {}) {
  for (let attempt = 1; ; attempt++) {
    let res;
    try {
      res = await http("POST", `${LB}/api/v1/notifications`, {
        token: serviceToken,
        timeoutMs: retry ? 15000 : 5000,
        body: {
          tenantId: TENANT,
          target: { userId: user },
          notification: { id, title, message: `for ${user}`, type: "GENERAL", priority: "NORMAL" },
        },
      });
    } catch (e) {
      if (!retry || attempt >= 3) throw new Error(`POST /api/v1/notifications for ${user}: ${e.message}`);
      log(`POST for ${user} failed during the stop (${e.message}); retrying`);
      continue;
    }
    if (retry && attempt < 3 && (res.status === 502 || res.status === 503)) {
      log(`POST for ${user} answered ${res.status} during the stop; retrying`);
      continue;
    }
    assert.equal(res.status, 202, `POST /api/v1/notifications for ${user}: ${res.status} ${res.text}`);
    return;
  }
}

async function roundTrips(clients, rounds) {
  for (let r = 0; r < rounds; r++) {
    for (const c of clients) {
      const ack = await c.socket.timeout(5000).emitWithAck("notification:count");
      assert.equal(ack.ok, true, `${c.user}: ${JSON.stringify(ack)}`);
    }
  }
}

const clients = [];
try {
  // 1. Affinity keys chosen so that each node gets two polling+websocket and two
  //    polling-only clients: every node is exercised, and the stopped one has clients.
  const keysByNode = new Map();
  for (let i = 0; i < 200 && [...keysByNode.values()].filter((k) => k.length >= 4).length < NODES; i++) {
    const key = randomBytes(16).toString("hex");
    const node = await nodeForKey(key);
    if (!keysByNode.has(node)) keysByNode.set(node, []);
    if (keysByNode.get(node).length < 4) keysByNode.get(node).push(key);
  }
  assert.equal(keysByNode.size, NODES, `nginx reaches ${[...keysByNode.keys()].join(", ")}, expected ${NODES} nodes`);
  log(`nginx reaches ${[...keysByNode.keys()].sort().join(", ")}`);
  for (const [node, keys] of keysByNode) {
    keys.forEach((key, i) => {
      const c = client(`u-${node}-${i}`, i % 2 ? "poll" : "ws", key);
      c.node = node;
      clients.push(c);
    });
  }
  // Cookies minted by nginx (as browsers get them), and websocket-only without cookies.
  for (let i = 0; i < 2; i++) clients.push(client(`u-minted-ws-${i}`, "ws"));
  for (let i = 0; i < 2; i++) clients.push(client(`u-minted-poll-${i}`, "poll"));
  for (let i = 0; i < 2; i++) clients.push(client(`u-wsonly-${i}`, "wsonly"));

  await waitFor("every client connected through nginx", () => clients.every((c) => c.socket.connected), { timeoutMs: 30000 });
  await waitFor("polling+websocket clients upgraded to websocket", () =>
    clients.every((c) => transportOf(c) === expectedTransport(c)), { timeoutMs: 30000 });

  // 2. Stickiness: many requests per polling session, none refused as unknown elsewhere.
  await roundTrips(clients, 3);
  for (const c of clients) assert.deepEqual(c.disconnects, [], `${c.user} (${c.kind}) was disconnected`);
  log(`${clients.length} clients connected and sticky (${clients.filter((c) => c.kind === "poll").length} polling-only, ${clients.filter((c) => c.kind === "ws").length} upgraded to websocket, ${clients.filter((c) => c.kind === "wsonly").length} websocket-only)`);

  // 3. A notification for each user, POSTed through nginx (any node), delivered live.
  for (const c of clients) await notify(c.user, `n-${RUN}-first-${c.user}`, "first");
  await waitFor("every client got its notification:new", () =>
    clients.every((c) => c.notes.has(`n-${RUN}-first-${c.user}`)), { timeoutMs: 20000 });
  log("notifications delivered over websocket and polling");

  // 4. Stop a node with SIGTERM (the drain): its clients must come back through nginx.
  const victim = [...keysByNode.keys()].sort()[1];
  const orphans = clients.filter((c) => c.node === victim);
  const others = clients.filter((c) => c.node && c.node !== victim);
  const connectsBefore = new Map(clients.map((c) => [c.user, c.connects]));
  log(`stopping ${victim} (holding ${orphans.map((c) => c.user).join(", ")} among others)`);
  const stop = spawn("bash", ["-c", STOP_CMD], { env: { ...process.env, NODE: victim }, stdio: ["ignore", "ignore", "pipe"] });
  let stopErr = "";
  stop.stderr.on("data", (d) => (stopErr += d));
  const stopped = new Promise((resolve) => stop.on("exit", (code) => resolve(code)));
  await waitFor(`${victim}'s clients disconnected`, () => orphans.every((c) => c.disconnects.length > 0), { timeoutMs: 30000 });
  // Sent while the victim drains and its clients reconnect.
  for (const c of clients) await notify(c.user, `n-${RUN}-gap-${c.user}`, "gap", { retry: true });
  const stopCode = await Promise.race([stopped, new Promise((r) => setTimeout(() => r("timeout"), 60000))]);
  assert.equal(stopCode, 0, `stop command for ${victim}: ${stopCode}\n${stopErr}`);
  if (process.env.LMS_STOPPED_FILE) writeFileSync(process.env.LMS_STOPPED_FILE, victim);

  await waitFor(`${victim}'s clients reconnected through nginx`, () =>
    orphans.every((c) => c.socket.connected && c.connects > connectsBefore.get(c.user)), { timeoutMs: 60000 });
  await waitFor("every client connected, on its transport", () =>
    clients.every((c) => c.socket.connected && transportOf(c) === expectedTransport(c)), { timeoutMs: 60000 });
  for (const c of orphans) {
    const now = await nodeForKey(c.key);
    assert.notEqual(now, victim, `${c.user}'s key still goes to ${victim}`);
  }
  // Consistent hashing: the other nodes' clients were not moved.
  for (const c of others) assert.deepEqual(c.disconnects, [], `${c.user} on ${c.node} was disconnected by ${victim}'s stop`);
  await roundTrips(clients, 2);
  log(`${orphans.length} clients of ${victim} reconnected to other nodes (state recovered: ${orphans.filter((c) => c.socket.recovered).length}); the others undisturbed`);

  // 5. Nothing lost: the gap notifications arrived (replayed on recovery or live), or at
  //    worst are stored and listed; every notification sent now arrives live.
  for (const c of clients) {
    const id = `n-${RUN}-gap-${c.user}`;
    if (c.notes.has(id)) continue;
    const ack = await c.socket.timeout(5000).emitWithAck("notification:list", { limit: 50 });
    assert.equal(ack.ok, true, `${c.user}: notification:list ${JSON.stringify(ack)}`);
    assert.ok(ack.items.some((n) => n.id === id), `${c.user} lost ${id}: neither delivered nor listed`);
    log(`${c.user}: the notification sent during the stop was not pushed but is listed`);
  }
  for (const c of clients) await notify(c.user, `n-${RUN}-after-${c.user}`, "after");
  await waitFor("every client got the notification sent after the stop", () =>
    clients.every((c) => c.notes.has(`n-${RUN}-after-${c.user}`)), { timeoutMs: 20000 });
  log("nothing lost: notifications sent during and after the stop all arrived");
} catch (e) {
  console.error(`compose-stack: ${e.message}`);
  for (const c of clients) {
    console.error(`   ${c.user} ${c.kind} node=${c.node ?? "?"} connected=${c.socket.connected} transport=${transportOf(c)} connects=${c.connects} disconnects=${JSON.stringify(c.disconnects)} notes=${c.notes.size} connect_errors=${JSON.stringify(c.errors.slice(-3))}`);
  }
  process.exitCode = 1;
} finally {
  for (const c of clients) c.socket.close();
}
process.exit(process.exitCode ?? 0);
