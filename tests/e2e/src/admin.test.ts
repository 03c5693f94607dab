// Admin: tenant broadcasts (socket event and service API), platform system alerts by a
// super admin, and the platform-only stats.

import assert from "node:assert/strict";
import { test } from "node:test";

import { rejected } from "./lib/api.js";
import { uid } from "./lib/client.js";
import { errAck, harness, okAck } from "./lib/harness.js";
import { superAdminToken, token } from "./lib/jwt.js";

const h = harness();

async function tenant(nodeBase = 0) {
  const t = uid("t");
  const admin = await h.clients.connect(token(uid("adm"), t, "admin"), { node: nodeBase });
  const stud = await h.clients.connect(token(uid("stud"), t, "student"), { node: nodeBase + 1 });
  const inst = await h.clients.connect(token(uid("inst"), t, "instructor"), { node: nodeBase + 2 });
  return { t, admin, stud, inst, all: [admin, stud, inst] };
}

test("admin:broadcast reaches every socket of the admin's tenant and no other", async () => {
  const a = await tenant(0);
  const b = await tenant(1);
  const ack = okAck(await a.admin.call("admin:broadcast", { title: "Snow day", message: "Campus closed", priority: "URGENT" }));
  assert.equal(ack.tenantId, a.t);
  assert.equal(ack.type, "ANNOUNCEMENT");
  assert.equal(ack.priority, "URGENT");
  for (const c of a.all) {
    const n = await c.next("notification:new", (p) => p.id === ack.id);
    assert.equal(n.title, "Snow day");
    assert.equal(n.userId, undefined, "a broadcast names no user");
  }
  for (const c of b.all) assert.deepEqual(await c.quiet("notification:new"), []);
  // Live only: not stored in anyone's inbox.
  const page = okAck(await a.stud.call("notification:list", {}));
  assert.deepEqual(page.items, []);
});

test("admin:broadcast by a student or instructor is FORBIDDEN; naming another tenant is TENANT_MISMATCH", async () => {
  const a = await tenant();
  errAck(await a.stud.call("admin:broadcast", { title: "t", message: "m" }), "FORBIDDEN");
  errAck(await a.inst.call("admin:broadcast", { title: "t", message: "m" }), "FORBIDDEN");
  errAck(await a.admin.call("admin:broadcast", { title: "t", message: "m", tenantId: "another-tenant" }), "TENANT_MISMATCH");
  okAck(await a.admin.call("admin:broadcast", { title: "t", message: "m", tenantId: a.t }));
  errAck(await a.admin.call("admin:broadcast", { title: " ", message: "m" }), "INVALID_PAYLOAD");
});

test("a super admin broadcasts to a tenant it names", async () => {
  const a = await tenant();
  const b = await tenant();
  const root = await h.clients.connect(superAdminToken(), { node: 2 });
  const ack = okAck(await root.call("admin:broadcast", { title: "Maintenance", message: "Tonight", tenantId: b.t }));
  assert.equal(ack.tenantId, b.t);
  for (const c of b.all) await c.next("notification:new", (p) => p.id === ack.id);
  assert.deepEqual(await a.stud.quiet("notification:new"), []);
  errAck(await root.call("admin:broadcast", { title: "t", message: "m" }), "INVALID_PAYLOAD");
});

test("admin:system_alert by a super admin reaches every socket of every tenant", async () => {
  const a = await tenant(0);
  const b = await tenant(1);
  const root = await h.clients.connect(superAdminToken(), { node: 2 });
  const ack = okAck(await root.call("admin:system_alert", { title: "Upgrade", message: "Read-only in 5 minutes" }));
  assert.equal(ack.priority, "HIGH", "priority defaults to HIGH");
  for (const c of [...a.all, ...b.all, root]) {
    const alert = await c.next("system:alert", (p) => p.at === ack.at);
    assert.deepEqual(alert, { title: "Upgrade", message: "Read-only in 5 minutes", priority: "HIGH", at: ack.at });
  }
  errAck(await a.admin.call("admin:system_alert", { title: "t", message: "m" }), "FORBIDDEN");
  errAck(await a.stud.call("admin:system_alert", { title: "t", message: "m" }), "FORBIDDEN");
});

test("POST /tenants/{t}/broadcast delivers live to the tenant", async () => {
  const a = await tenant();
  const b = await tenant();
  const res = await h.service(a.t, 1).broadcast(a.t, { title: "Exam week", message: "Good luck", type: "GENERAL" });
  for (const c of a.all) {
    const n = await c.next("notification:new", (p) => p.id === res.id);
    assert.equal(n.type, "GENERAL");
  }
  assert.deepEqual(await b.stud.quiet("notification:new"), []);
  await rejected(h.service(b.t).broadcast(a.t, { title: "x", message: "y" }), 403, "TENANT_MISMATCH");
});

test("POST /system/alerts needs super_admin and reaches every tenant", async () => {
  const a = await tenant();
  const b = await tenant();
  await rejected(h.service(a.t).systemAlert({ title: "x", message: "y" }), 403, "FORBIDDEN");
  const alert = await h.platform(2).systemAlert({ title: "Outage", message: "We are on it", priority: "URGENT" });
  assert.equal(alert.priority, "URGENT");
  for (const c of [...a.all, ...b.all]) await c.next("system:alert", (p) => p.at === alert.at && p.title === "Outage");
});

test("GET /stats needs super_admin and counts this run's sockets", async () => {
  const a = await tenant();
  await rejected(h.service(a.t).stats(), 403, "FORBIDDEN");
  const stats = await h.platform().stats();
  assert.ok(stats.connections >= 3, `connections ${stats.connections}`);
  assert.equal(stats.partial, false);
  assert.equal(stats.nodes.length, h.gw.nodes.length, "every node answered");
  assert.equal(
    stats.nodes.reduce((sum, n) => sum + n.connections, 0),
    stats.connections,
    "the total is the sum over the nodes",
  );
  assert.ok((stats.rooms.tenant?.members ?? 0) >= 3, JSON.stringify(stats.rooms));
});
