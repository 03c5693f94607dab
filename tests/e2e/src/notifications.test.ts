// Notifications: POST /api/v1/notifications → notification:new + notification:count on every
// socket of the user (spread over the nodes in cluster mode), idempotency on the id, and the
// owner's read / read_all / dismiss / count / list with sync to the user's other sockets.

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import type { NotificationInput, SendNotificationResponse } from "@lms-realtime/client-types";

import { type Conn, uid } from "./lib/client.js";
import { errAck, harness, okAck } from "./lib/harness.js";
import { token } from "./lib/jwt.js";

const h = harness();

interface User {
  t: string;
  u: string;
  /** Two sockets of the user, on different nodes in cluster mode. */
  a: Conn;
  b: Conn;
}

async function user(): Promise<User> {
  const [t, u] = [uid("t"), uid("u")];
  const tok = token(u, t, "student");
  const a = await h.clients.connect(tok, { node: 0 });
  const b = await h.clients.connect(tok, { node: 1 });
  return { t, u, a, b };
}

async function send(x: User, input: Partial<NotificationInput> = {}, node = 2): Promise<SendNotificationResponse> {
  return h.service(x.t, node).sendNotification({
    tenantId: x.t,
    target: { userId: x.u },
    notification: { title: "Assignment due", message: "Essay 1 is due tomorrow", ...input },
  });
}

/** Sends and waits until both sockets have it, consuming the new + count events. */
async function delivered(x: User, input: Partial<NotificationInput> = {}): Promise<string> {
  const { id } = await send(x, input);
  for (const c of [x.a, x.b]) {
    await c.next("notification:new", (p) => p.id === id);
    await c.next("notification:count");
  }
  return id;
}

describe("delivery", () => {
  test("a notification reaches every socket of the user with its unread count", async () => {
    const x = await user();
    const res = await send(x, {
      id: uid("n"),
      type: "ASSIGNMENT_DUE",
      priority: "HIGH",
      data: { assignmentId: 7, tags: ["essay"], late: false, extra: null },
    });
    assert.equal(res.recipients, 1);
    for (const c of [x.a, x.b]) {
      const n = await c.next("notification:new", (p) => p.id === res.id);
      assert.deepEqual(
        { tenantId: n.tenantId, userId: n.userId, type: n.type, priority: n.priority, status: n.status },
        { tenantId: x.t, userId: x.u, type: "ASSIGNMENT_DUE", priority: "HIGH", status: "UNREAD" },
      );
      assert.equal(n.title, "Assignment due");
      assert.deepEqual(n.data, { assignmentId: 7, tags: ["essay"], late: false, extra: null });
      assert.ok(!Number.isNaN(Date.parse(n.createdAt)), `createdAt ${n.createdAt}`);
      assert.equal((await c.next("notification:count")).unread, 1);
    }
    assert.equal((await h.service(x.t).unreadCount(x.t, x.u)).unread, 1);
  });

  test("every connect is told the unread count, zero included", async () => {
    const x = await user();
    assert.deepEqual(x.a.connectCount, { unread: 0 });
    const id = await delivered(x);
    const again = await h.clients.connect(token(x.u, x.t, "student"), { node: 1 });
    assert.deepEqual(again.connectCount, { unread: 1 });
    okAck(await x.a.call("notification:read", { notificationId: id }));
    // A count that went to zero is sent too, so a badge never stays stale after a crash.
    const later = await h.clients.connect(token(x.u, x.t, "student"), { node: 2 });
    assert.deepEqual(later.connectCount, { unread: 0 });
  });

  test("defaults: type GENERAL, priority NORMAL, a generated id", async () => {
    const x = await user();
    const { id } = await send(x);
    assert.ok(id.length > 0);
    const n = await x.a.next("notification:new", (p) => p.id === id);
    assert.equal(n.type, "GENERAL");
    assert.equal(n.priority, "NORMAL");
  });

  test("the same id twice stores, counts and delivers it once", async () => {
    const x = await user();
    const id = uid("n");
    const first = await send(x, { id });
    assert.equal(first.id, id);
    await x.a.next("notification:new", (p) => p.id === id);
    const again = await send(x, { id, title: "changed" }, 1);
    assert.equal(again.id, id);
    assert.deepEqual(await x.a.quiet("notification:new"), [], "no second notification:new");
    assert.equal((await h.service(x.t).unreadCount(x.t, x.u)).unread, 1);
    const page = okAck(await x.b.call("notification:list", {}));
    assert.equal(page.items.filter((n) => n.id === id).length, 1);
    assert.equal(page.items[0]?.title, "Assignment due");
  });

  test("userIds and courseId targets store one entry per recipient", async () => {
    const t = uid("t");
    const [u1, u2, u3] = [uid("u"), uid("u"), uid("u")];
    const c1 = await h.clients.connect(token(u1, t, "student"), { node: 0 });
    const c2 = await h.clients.connect(token(u2, t, "student"), { node: 1 });
    const c3 = await h.clients.connect(token(u3, t, "student"), { node: 2 });
    const api = h.service(t);
    const many = await api.sendNotification({ tenantId: t, target: { userIds: [u1, u2, u1] }, notification: { title: "a", message: "b" } });
    assert.equal(many.recipients, 2);
    await c1.next("notification:new", (p) => p.id === many.id);
    await c2.next("notification:new", (p) => p.id === many.id);
    assert.deepEqual(await c3.quiet("notification:new"), []);

    const course = uid("c");
    await api.setCourseMember(t, course, u2, "student");
    await api.setCourseMember(t, course, u3, "instructor");
    const toCourse = await api.sendNotification({ tenantId: t, target: { courseId: course }, notification: { title: "c", message: "d" } });
    assert.equal(toCourse.recipients, 2);
    await c2.next("notification:new", (p) => p.id === toCourse.id);
    await c3.next("notification:new", (p) => p.id === toCourse.id);
    assert.deepEqual(await c1.quiet("notification:new", (p) => p.id === toCourse.id), []);
    assert.equal((await api.unreadCount(t, u2)).unread, 2);
    assert.equal((await api.unreadCount(t, u3)).unread, 1);
  });

  test("a role target is delivered live to that role only, with recipients 0", async () => {
    const t = uid("t");
    const inst = await h.clients.connect(token(uid("i"), t, "instructor"), { node: 1 });
    const stud = await h.clients.connect(token(uid("s"), t, "student"), { node: 2 });
    const res = await h.service(t).sendNotification({ tenantId: t, target: { role: "instructor" }, notification: { title: "r", message: "m" } });
    assert.equal(res.recipients, 0);
    await inst.next("notification:new", (p) => p.id === res.id);
    assert.deepEqual(await stud.quiet("notification:new"), []);
  });
});

describe("the owner's inbox events", () => {
  test("notification:read marks it read once and syncs the user's other sockets", async () => {
    const x = await user();
    const id = await delivered(x);
    const ack = okAck(await x.a.call("notification:read", { notificationId: id }));
    assert.equal(ack.unread, 0);
    assert.deepEqual(await x.b.next("notification:read"), { notificationId: id });
    assert.equal((await x.b.next("notification:count")).unread, 0);
    assert.equal((await x.a.next("notification:count")).unread, 0);
    assert.deepEqual(x.a.all("notification:read"), [], "the reading socket is not told again");
    // Idempotent: a second read changes nothing and tells nobody.
    assert.equal(okAck(await x.b.call("notification:read", { notificationId: id })).unread, 0);
    assert.deepEqual(await x.a.quiet("notification:read"), []);
    assert.deepEqual(await x.a.quiet("notification:count"), []);
    const page = okAck(await x.a.call("notification:list", {}));
    assert.equal(page.items.find((n) => n.id === id)?.status, "READ");
  });

  test("notification:read of an unknown id is NOT_FOUND", async () => {
    const x = await user();
    errAck(await x.a.call("notification:read", { notificationId: "no-such-notification" }), "NOT_FOUND");
  });

  test("notification:read_all zeroes the count and syncs", async () => {
    const x = await user();
    for (let i = 0; i < 3; i++) await delivered(x);
    assert.equal(okAck(await x.b.call("notification:read_all", {})).unread, 0);
    assert.equal((await x.a.next("notification:count")).unread, 0);
    assert.equal((await x.b.next("notification:count")).unread, 0);
    assert.equal((await h.service(x.t).unreadCount(x.t, x.u)).unread, 0);
    const page = okAck(await x.a.call("notification:list", { status: "UNREAD" }));
    assert.deepEqual(page.items, []);
  });

  test("notification:dismiss tells every socket of the user", async () => {
    const x = await user();
    const keep = await delivered(x);
    const gone = await delivered(x);
    assert.equal(okAck(await x.a.call("notification:dismiss", { notificationId: gone })).unread, 1);
    for (const c of [x.a, x.b]) {
      assert.deepEqual(await c.next("notification:dismissed"), { notificationId: gone });
      assert.equal((await c.next("notification:count")).unread, 1);
    }
    const dismissed = okAck(await x.b.call("notification:list", { status: "DISMISSED" }));
    assert.deepEqual(dismissed.items.map((n) => n.id), [gone]);
    const unread = okAck(await x.b.call("notification:list", { status: "UNREAD" }));
    assert.deepEqual(unread.items.map((n) => n.id), [keep]);
  });

  test("notification:read with status DISMISSED dismisses", async () => {
    const x = await user();
    const id = await delivered(x);
    assert.equal(okAck(await x.a.call("notification:read", { notificationId: id, status: "DISMISSED" })).unread, 0);
    assert.deepEqual(await x.b.next("notification:dismissed"), { notificationId: id });
  });

  test("notification:count with no payload acks the unread count", async () => {
    const x = await user();
    await delivered(x);
    await delivered(x);
    // The contract's call: `socket.emit("notification:count", ack)`, no payload.
    assert.equal(okAck(await x.a.call("notification:count")).unread, 2);
  });

  test("notification:count with an empty object acks the unread count", async () => {
    const x = await user();
    await delivered(x);
    const untyped = x.a.socket as unknown as { timeout(ms: number): { emitWithAck(e: string, p: object): Promise<unknown> } };
    const ack = (await untyped.timeout(5000).emitWithAck("notification:count", {})) as { ok: boolean; unread?: number };
    assert.deepEqual(ack, { ok: true, unread: 1 });
  });

  test("notification:list pages newest first with a cursor", async () => {
    const x = await user();
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push(await delivered(x, { title: `n${i}` }));
    const newest = [...ids].reverse();
    const p1 = okAck(await x.a.call("notification:list", { limit: 2 }));
    assert.deepEqual(p1.items.map((n) => n.id), newest.slice(0, 2));
    assert.equal(typeof p1.nextCursor, "string");
    const p2 = okAck(await x.a.call("notification:list", { limit: 2, before: p1.nextCursor ?? undefined }));
    assert.deepEqual(p2.items.map((n) => n.id), newest.slice(2, 4));
    const p3 = okAck(await x.a.call("notification:list", { limit: 2, before: p2.nextCursor ?? undefined }));
    assert.deepEqual(p3.items.map((n) => n.id), newest.slice(4));
    assert.equal(p3.nextCursor, null);
    const all = okAck(await x.b.call("notification:list", {}));
    assert.deepEqual(all.items.map((n) => n.id), newest, "default limit 20 holds all five");
    for (const n of all.items) assert.equal(n.userId, x.u);
  });

  test("notification:list refuses a bad limit or cursor", async () => {
    const x = await user();
    assert.match(errAck(await x.a.call("notification:list", { limit: 0 }), "INVALID_PAYLOAD").message, /limit/);
    assert.match(errAck(await x.a.call("notification:list", { limit: 101 }), "INVALID_PAYLOAD").message, /limit/);
    assert.match(errAck(await x.a.call("notification:list", { before: "garbage" }), "INVALID_PAYLOAD").message, /before/);
  });

  test("a payload without its required field is INVALID_PAYLOAD naming the field", async () => {
    const x = await user();
    const untyped = x.a.socket as unknown as { timeout(ms: number): { emitWithAck(e: string, p: object): Promise<unknown> } };
    const ack = (await untyped.timeout(5000).emitWithAck("notification:read", {})) as Parameters<typeof errAck>[0];
    assert.match(errAck(ack, "INVALID_PAYLOAD").message, /notificationId/);
  });

  test("without an ack callback a failure comes back as an error event", async () => {
    const x = await user();
    x.a.fire("notification:read", { notificationId: "no-such-notification" });
    const e = await x.a.next("error");
    assert.equal(e.code, "NOT_FOUND");
    assert.equal(e.event, "notification:read");
    assert.ok(e.message.length > 0);
  });

  test("a socket may not act on another user's notifications: FORBIDDEN", async () => {
    const x = await user();
    const id = await delivered(x);
    errAck(await x.a.call("notification:read", { notificationId: id, userId: "someone-else" }), "FORBIDDEN");
    errAck(await x.a.call("notification:read_all", { userId: "someone-else" }), "FORBIDDEN");
    errAck(await x.a.call("notification:dismiss", { notificationId: id, userId: "someone-else" }), "FORBIDDEN");
    // Naming oneself is fine.
    assert.equal(okAck(await x.a.call("notification:read", { notificationId: id, userId: x.u, tenantId: x.t })).unread, 0);
  });
});
