// §10 Presence with the official client: instructors hear a user's first tab come online
// and its last one go away, once per user (tabs spread over the nodes in cluster mode),
// debounced; enrolling or unenrolling an online user through the service API changes its
// presence at once; students get the count and not the list; the service API answers for
// its own tenant only.

import assert from "node:assert/strict";
import { test } from "node:test";

import { rejected } from "./lib/api.js";
import { type Conn, uid } from "./lib/client.js";
import { QUIET_MS, sleep } from "./lib/gateway.js";
import { errAck, harness, okAck } from "./lib/harness.js";
import { token } from "./lib/jwt.js";

const DEBOUNCE_MS = 800;
const h = harness({ env: { PRESENCE_DEBOUNCE_MS: String(DEBOUNCE_MS) } });

/** A tenant with course c1: instructor i1, students s1 and s2. */
async function course(): Promise<string> {
  const t = uid("t");
  await h.service(t).setCourseMember(t, "c1", "i1", "instructor");
  await h.service(t).setCourseMember(t, "c1", "s1", "student");
  await h.service(t).setCourseMember(t, "c1", "s2", "student");
  return t;
}

const about = (user: string) => (p: { userId: string }) => p.userId === user;

/** Polls the course count until it is `n` (presence is written off the connect path). */
async function countIs(c: Conn, n: number): Promise<void> {
  let last = -1;
  for (let i = 0; i < 50; i++) {
    last = okAck(await c.call("presence:count", { courseId: "c1" })).count;
    if (last === n) return;
    await sleep(100);
  }
  assert.fail(`presence:count stayed ${last}, expected ${n}`);
}

test("instructors hear a user's first tab and its last, not the tabs in between", async () => {
  const t = await course();
  const instructor = await h.clients.connect(token("i1", t, "instructor"), { node: 0 });
  const tab1 = await h.clients.connect(token("s1", t, "student"), { node: 1 });
  const joined = await instructor.next("presence:join", about("s1"));
  assert.deepEqual({ ...joined, at: undefined }, { courseId: "c1", userId: "s1", role: "student", at: undefined });
  assert.match(joined.at, /Z$/);

  const tab2 = await h.clients.connect(token("s1", t, "student"), { node: 2 });
  await countIs(instructor, 2);
  tab1.close();
  await sleep(DEBOUNCE_MS);
  assert.deepEqual(await instructor.quiet("presence:join", about("s1")), [], "the second tab is not announced");
  assert.deepEqual(await instructor.quiet("presence:leave", about("s1")), [], "s1 is still online");

  tab2.close();
  const left = await instructor.next("presence:leave", about("s1"), 5000);
  assert.equal(left.role, "student");
  await countIs(instructor, 1);
});

test("a flapping connection is announced once", async () => {
  const t = await course();
  const instructor = await h.clients.connect(token("i1", t, "instructor"), { node: 0 });
  let tab = await h.clients.connect(token("s2", t, "student"), { node: 1 });
  await instructor.next("presence:join", about("s2"));
  for (let i = 0; i < 3; i++) {
    tab.close();
    await sleep(80);
    tab = await h.clients.connect(token("s2", t, "student"), { node: i });
  }
  await sleep(DEBOUNCE_MS + QUIET_MS);
  assert.deepEqual(await instructor.quiet("presence:join", about("s2")), []);
  assert.deepEqual(await instructor.quiet("presence:leave", about("s2")), [], "the flap ended online");
});

test("students get the count, instructors and admins the list", async () => {
  const t = await course();
  const s1 = await h.clients.connect(token("s1", t, "student"), { node: 0 });
  await h.clients.connect(token("s2", t, "student"), { node: 1 });
  const instructor = await h.clients.connect(token("i1", t, "instructor"), { node: 2 });
  const admin = await h.clients.connect(token("a1", t, "admin"), { node: 1 });
  const outsider = await h.clients.connect(token("x1", t, "student"), { node: 0 });

  await countIs(s1, 3);
  errAck(await s1.call("presence:list", { courseId: "c1" }), "FORBIDDEN");
  errAck(await outsider.call("presence:count", { courseId: "c1" }), "FORBIDDEN");
  for (const c of [instructor, admin]) {
    const list = okAck(await c.call("presence:list", { courseId: "c1" }));
    assert.equal(list.count, 3);
    assert.deepEqual(list.users.map((u) => u.userId).sort(), ["i1", "s1", "s2"]);
    for (const u of list.users) assert.ok(!Number.isNaN(Date.parse(u.since)), u.since);
  }
});

test("the service API answers presence for its own tenant only", async () => {
  const t = await course();
  const other = await course();
  const s1 = await h.clients.connect(token("s1", t, "student"), { node: 0 });
  await h.clients.connect(token("s1", other, "student"), { node: 1 });
  await countIs(s1, 1);

  const listed = await h.service(t, 1).coursePresence(t, "c1");
  assert.deepEqual({ ...listed, users: listed.users.map((u) => u.userId) }, { courseId: "c1", users: ["s1"], count: 1 });
  await rejected(h.service(other).coursePresence(t, "c1"), 403, "TENANT_MISMATCH");
  assert.deepEqual(await h.platform(2).tenantPresence(t), { count: 1 });
  const theirs = await h.service(other).tenantPresence(other, { list: true });
  assert.deepEqual(theirs.users?.map((u) => u.userId), ["s1"]);
});

test("an online user enrolled or unenrolled through the service API (on another node) is present or gone at once", async () => {
  const t = await course();
  const instructor = await h.clients.connect(token("i1", t, "instructor"), { node: 0 });
  // s3 is online on node 1 before it is a member, with a second tab on node 2.
  await h.clients.connect(token("s3", t, "student"), { node: 1 });
  await h.clients.connect(token("s3", t, "student"), { node: 2 });
  await countIs(instructor, 1);

  await h.service(t, 2).setCourseMember(t, "c1", "s3", "student");
  const joined = await instructor.next("presence:join", about("s3"));
  assert.equal(joined.role, "student");
  await countIs(instructor, 2);

  await sleep(DEBOUNCE_MS);
  await h.service(t, 1).removeCourseMember(t, "c1", "s3");
  await instructor.next("presence:leave", about("s3"), 5000);
  await countIs(instructor, 1);
  assert.deepEqual(await instructor.quiet("presence:join", about("s3")), [], "one join for two tabs");
});
