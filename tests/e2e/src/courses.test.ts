// Courses: course:join needs membership, the service API's membership PUT/DELETE moves live
// sockets (on any node) in and out of the course room, course:update reaches the room.

import assert from "node:assert/strict";
import { test } from "node:test";

import { rejected } from "./lib/api.js";
import { uid } from "./lib/client.js";
import { errAck, harness, okAck } from "./lib/harness.js";
import { token } from "./lib/jwt.js";

const h = harness();

function ids() {
  return { t: uid("t"), c: uid("c"), s: uid("stud"), i: uid("inst") };
}

test("course:join before enrollment is FORBIDDEN; after it, allowed", async () => {
  const { t, c, s } = ids();
  const stud = await h.clients.connect(token(s, t, "student"), { node: 0 });
  errAck(await stud.call("course:join", c), "FORBIDDEN");
  errAck(await stud.call("course:join", { courseId: c }), "FORBIDDEN");
  await h.service(t, 1).setCourseMember(t, c, s, "student");
  assert.deepEqual(okAck(await stud.call("course:join", { courseId: c })), { ok: true, courseId: c });
  assert.deepEqual(okAck(await stud.call("course:leave", c)), { ok: true, courseId: c });
});

test("a numeric course id joins as its decimal string", async () => {
  const t = uid("t");
  const s = uid("stud");
  await h.service(t).setCourseMember(t, "101", s, "student");
  const stud = await h.clients.connect(token(s, t, "student"));
  assert.equal(okAck(await stud.call("course:join", 101)).courseId, "101");
});

test("a tenant admin may join any course of the tenant", async () => {
  const { t, c } = ids();
  const admin = await h.clients.connect(token(uid("adm"), t, "admin"));
  okAck(await admin.call("course:join", c));
});

test("PUT membership moves a live socket into the course room and tells it", async () => {
  const { t, c, s, i } = ids();
  const api = h.service(t, 2);
  await api.setCourseMember(t, c, i, "instructor");
  const inst = await h.clients.connect(token(i, t, "instructor"), { node: 0 });
  const stud = await h.clients.connect(token(s, t, "student"), { node: 1 });
  const other = await h.clients.connect(token(uid("other"), t, "student"), { node: 2 });

  const member = await api.setCourseMember(t, c, s, "student");
  assert.deepEqual(member, { userId: s, role: "student" });
  const enrolled = await stud.next("course:enrollment");
  assert.deepEqual(enrolled, { courseId: c, userId: s, action: "enrolled", role: "student" });

  // No course:join: the PUT alone put the student's socket in the room.
  const ack = okAck(await inst.call("course:update", { courseId: c, changes: { title: "Algebra II", week: 3 } }));
  assert.deepEqual({ courseId: ack.courseId, changes: ack.changes, updatedBy: ack.updatedBy }, { courseId: c, changes: { title: "Algebra II", week: 3 }, updatedBy: i });
  const got = await stud.next("course:updated");
  assert.deepEqual(got, { courseId: c, changes: { title: "Algebra II", week: 3 }, updatedBy: i });
  await inst.next("course:updated", (p) => p.courseId === c);
  assert.deepEqual(await other.quiet("course:updated"), [], "a non-member hears nothing");
});

test("a course event from the service API reaches the room", async () => {
  const { t, c, s } = ids();
  const stud = await h.clients.connect(token(s, t, "student"), { node: 1 });
  await h.service(t).setCourseMember(t, c, s, "student");
  await stud.next("course:enrollment");
  const ev = await h.service(t, 2).publishCourseEvent(t, c, { changes: { published: true } });
  assert.equal(ev.courseId, c);
  const got = await stud.next("course:updated");
  assert.deepEqual(got.changes, { published: true });
  assert.equal(got.updatedBy, ev.updatedBy);
});

test("DELETE membership takes the live socket out of the room", async () => {
  const { t, c, s, i } = ids();
  const api = h.service(t);
  await api.setCourseMember(t, c, i, "instructor");
  await api.setCourseMember(t, c, s, "student");
  // Connected after the PUT: joined from the membership cache at connect.
  const stud = await h.clients.connect(token(s, t, "student"), { node: 2 });
  const inst = await h.clients.connect(token(i, t, "instructor"), { node: 0 });
  okAck(await inst.call("course:update", { courseId: c, changes: { n: 1 } }));
  await stud.next("course:updated", (p) => p.changes.n === 1);

  await h.service(t, 1).removeCourseMember(t, c, s);
  const un = await stud.next("course:enrollment");
  assert.deepEqual(un, { courseId: c, userId: s, action: "unenrolled", role: "student" });
  okAck(await inst.call("course:update", { courseId: c, changes: { n: 2 } }));
  await inst.next("course:updated", (p) => p.changes.n === 2);
  assert.deepEqual(await stud.quiet("course:updated"), [], "removed: no more course events");
  errAck(await stud.call("course:join", c), "FORBIDDEN");
  await rejected(api.removeCourseMember(t, c, s), 404, "NOT_FOUND");
});

test("course:leave stops the course's events", async () => {
  const { t, c, s, i } = ids();
  const api = h.service(t);
  await api.setCourseMember(t, c, i, "instructor");
  await api.setCourseMember(t, c, s, "student");
  const stud = await h.clients.connect(token(s, t, "student"), { node: 1 });
  const inst = await h.clients.connect(token(i, t, "instructor"), { node: 2 });
  okAck(await stud.call("course:leave", { courseId: c }));
  okAck(await inst.call("course:update", { courseId: c, changes: { x: 1 } }));
  assert.deepEqual(await stud.quiet("course:updated"), []);
});

test("course:update by a student or another course's instructor is FORBIDDEN", async () => {
  const { t, c, s, i } = ids();
  const api = h.service(t);
  await api.setCourseMember(t, c, s, "student");
  await api.setCourseMember(t, uid("other-course"), i, "instructor");
  const stud = await h.clients.connect(token(s, t, "student"));
  const inst = await h.clients.connect(token(i, t, "instructor"));
  errAck(await stud.call("course:update", { courseId: c, changes: { title: "x" } }), "FORBIDDEN");
  errAck(await inst.call("course:update", { courseId: c, changes: { title: "x" } }), "FORBIDDEN");
  assert.deepEqual(await stud.quiet("course:updated"), []);
});

test("a tenant admin may update any course", async () => {
  const { t, c, s } = ids();
  await h.service(t).setCourseMember(t, c, s, "student");
  const stud = await h.clients.connect(token(s, t, "student"), { node: 1 });
  const admin = await h.clients.connect(token(uid("adm"), t, "admin"), { node: 0 });
  okAck(await admin.call("course:update", { courseId: c, changes: { locked: true } }));
  assert.deepEqual((await stud.next("course:updated")).changes, { locked: true });
});

test("PUT of the whole membership applies the difference live", async () => {
  const { t, c } = ids();
  const [a, b, d] = [uid("a"), uid("b"), uid("d")];
  const api = h.service(t);
  await api.setCourseMember(t, c, a, "student");
  await api.setCourseMember(t, c, b, "student");
  const ca = await h.clients.connect(token(a, t, "student"), { node: 0 });
  const cd = await h.clients.connect(token(d, t, "student"), { node: 1 });
  const res = await api.replaceCourseMembers(t, c, [{ userId: b, role: "student" }, { userId: d, role: "student" }]);
  assert.deepEqual(res, { members: 2, added: 1, removed: 1 });
  assert.equal((await ca.next("course:enrollment")).action, "unenrolled");
  assert.equal((await cd.next("course:enrollment")).action, "enrolled");
  await api.publishCourseEvent(t, c, { changes: { v: 1 } });
  await cd.next("course:updated");
  assert.deepEqual(await ca.quiet("course:updated"), []);
});
