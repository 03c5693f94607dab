// Tenant isolation: two tenants with the SAME user and course ids never see each other's
// events, and a payload or service token naming another tenant is refused.

import assert from "node:assert/strict";
import { test } from "node:test";

import { rejected } from "./lib/api.js";
import { type Conn, uid } from "./lib/client.js";
import { errAck, harness, okAck } from "./lib/harness.js";
import { token } from "./lib/jwt.js";

const h = harness();

// The same ids in both tenants, on purpose.
const STUDENT = "u1";
const INSTRUCTOR = "i1";
const COURSE = "c1";

interface Side {
  t: string;
  stud: Conn;
  inst: Conn;
  admin: Conn;
}

async function side(t: string, node: number, enrolled: boolean): Promise<Side> {
  const api = h.service(t, node);
  await api.setCourseMember(t, COURSE, INSTRUCTOR, "instructor");
  if (enrolled) await api.setCourseMember(t, COURSE, STUDENT, "student");
  return {
    t,
    stud: await h.clients.connect(token(STUDENT, t, "student"), { node }),
    inst: await h.clients.connect(token(INSTRUCTOR, t, "instructor"), { node: node + 1 }),
    admin: await h.clients.connect(token("adm", t, "admin"), { node: node + 2 }),
  };
}

async function pair(): Promise<[Side, Side]> {
  return [await side(uid("tenantA"), 0, true), await side(uid("tenantB"), 1, true)];
}

const all = (s: Side): Conn[] => [s.stud, s.inst, s.admin];

test("a notification for u1 of tenant A never reaches u1 of tenant B", async () => {
  const [a, b] = await pair();
  const res = await h.service(a.t).sendNotification({ tenantId: a.t, target: { userId: STUDENT }, notification: { title: "A only", message: "m" } });
  await a.stud.next("notification:new", (p) => p.id === res.id);
  assert.deepEqual(await b.stud.quiet("notification:new"), []);
  assert.deepEqual(await b.stud.quiet("notification:count"), []);
  assert.equal((await h.service(b.t).unreadCount(b.t, STUDENT)).unread, 0);
  // B's socket cannot even find A's notification.
  errAck(await b.stud.call("notification:read", { notificationId: res.id }), "NOT_FOUND");
});

test("course c1 of tenant A is not course c1 of tenant B", async () => {
  const [a, b] = await pair();
  okAck(await a.inst.call("course:update", { courseId: COURSE, changes: { title: "A's c1" } }));
  await a.stud.next("course:updated");
  for (const c of all(b)) assert.deepEqual(await c.quiet("course:updated"), []);
  await h.service(a.t).publishCourseEvent(a.t, COURSE, { changes: { from: "api" } });
  await a.stud.next("course:updated", (p) => p.changes.from === "api");
  assert.deepEqual(await b.stud.quiet("course:updated"), []);
});

test("progress in tenant A reaches only tenant A's instructor", async () => {
  const [a, b] = await pair();
  okAck(await a.stud.call("progress:content", { courseId: COURSE, contentId: "x", progress: 1, completed: true }));
  await a.inst.next("progress:content");
  assert.deepEqual(await b.inst.quiet("progress:content"), []);
});

test("broadcasts stay inside the tenant", async () => {
  const [a, b] = await pair();
  const ack = okAck(await a.admin.call("admin:broadcast", { title: "A", message: "only" }));
  for (const c of all(a)) await c.next("notification:new", (p) => p.id === ack.id);
  for (const c of all(b)) assert.deepEqual(await c.quiet("notification:new"), []);
});

test("enrollment in tenant A does not let u1 of tenant B join c1", async () => {
  const a = await side(uid("tenantA"), 0, true);
  const b = await side(uid("tenantB"), 1, false);
  okAck(await a.stud.call("course:join", COURSE));
  errAck(await b.stud.call("course:join", COURSE), "FORBIDDEN");
  errAck(await b.stud.call("progress:content", { courseId: COURSE, contentId: "x", progress: 0.1 }), "FORBIDDEN");
});

test("a payload naming another tenant is TENANT_MISMATCH", async () => {
  const [a, b] = await pair();
  const res = await h.service(a.t).sendNotification({ tenantId: a.t, target: { userId: STUDENT }, notification: { title: "t", message: "m" } });
  await a.stud.next("notification:new");
  errAck(await a.stud.call("notification:read", { notificationId: res.id, tenantId: b.t }), "TENANT_MISMATCH");
  errAck(await a.stud.call("notification:dismiss", { notificationId: res.id, tenantId: b.t }), "TENANT_MISMATCH");
  errAck(await a.stud.call("notification:read_all", { tenantId: b.t }), "TENANT_MISMATCH");
  errAck(await a.admin.call("admin:broadcast", { title: "t", message: "m", tenantId: b.t }), "TENANT_MISMATCH");
  // Nothing changed.
  assert.equal((await h.service(a.t).unreadCount(a.t, STUDENT)).unread, 1);
});

test("a service token of tenant A is refused on tenant B with TENANT_MISMATCH", async () => {
  const [a, b] = await pair();
  const api = h.service(a.t);
  await rejected(api.sendNotification({ tenantId: b.t, target: { userId: STUDENT }, notification: { title: "t", message: "m" } }), 403, "TENANT_MISMATCH");
  await rejected(api.setCourseMember(b.t, COURSE, "intruder", "student"), 403, "TENANT_MISMATCH");
  await rejected(api.removeCourseMember(b.t, COURSE, STUDENT), 403, "TENANT_MISMATCH");
  await rejected(api.publishCourseEvent(b.t, COURSE, { changes: {} }), 403, "TENANT_MISMATCH");
  await rejected(api.unreadCount(b.t, STUDENT), 403, "TENANT_MISMATCH");
  await rejected(api.replaceCourseMembers(b.t, COURSE, []), 403, "TENANT_MISMATCH");
  assert.deepEqual(await b.stud.quiet("notification:new"), []);
  assert.deepEqual(await b.stud.quiet("course:enrollment"), []);
});
