// Progress: an enrolled student's progress reaches the course's instructors and the
// student's other sockets; progress:video is throttled per video per socket.

import assert from "node:assert/strict";
import { test } from "node:test";

import { uid } from "./lib/client.js";
import { errAck, harness, okAck } from "./lib/harness.js";
import { token } from "./lib/jwt.js";

// A long throttle window, so the "second report is throttled" check cannot race the clock.
const h = harness({ env: { PROGRESS_VIDEO_INTERVAL_MS: "60000" } });

async function course() {
  const [t, c, s, i] = [uid("t"), uid("c"), uid("stud"), uid("inst")];
  const api = h.service(t);
  await api.setCourseMember(t, c, s, "student");
  await api.setCourseMember(t, c, i, "instructor");
  const studTok = token(s, t, "student");
  const stud = await h.clients.connect(studTok, { node: 0 });
  const studTab = await h.clients.connect(studTok, { node: 1 });
  const inst = await h.clients.connect(token(i, t, "instructor"), { node: 2 });
  // Enrolled as a student, so in the course room but not the instructors' room.
  const classmate = uid("mate");
  await api.setCourseMember(t, c, classmate, "student");
  const mate = await h.clients.connect(token(classmate, t, "student"), { node: 1 });
  return { t, c, s, i, stud, studTab, inst, mate };
}

test("progress:content reaches the instructors and the student's other sockets only", async () => {
  const x = await course();
  const ack = okAck(await x.stud.call("progress:content", { courseId: x.c, contentId: "lesson-1", progress: 0.5, completed: false }));
  assert.deepEqual(ack, { ok: true });
  for (const c of [x.inst, x.studTab]) {
    const p = await c.next("progress:content");
    assert.deepEqual(
      { courseId: p.courseId, contentId: p.contentId, progress: p.progress, completed: p.completed, userId: p.userId },
      { courseId: x.c, contentId: "lesson-1", progress: 0.5, completed: false, userId: x.s },
    );
    assert.ok(!Number.isNaN(Date.parse(p.at)), `at ${p.at}`);
  }
  assert.deepEqual(await x.mate.quiet("progress:content"), [], "classmates do not see it");
  assert.deepEqual(x.stud.all("progress:content"), [], "the sender is not echoed");
});

test("progress:video is forwarded once per video per interval, the rest acked throttled", async () => {
  const x = await course();
  const report = (pos: number, videoId = "v1") =>
    x.stud.call("progress:video", { courseId: x.c, videoId, positionSeconds: pos, durationSeconds: 600 });
  assert.deepEqual(okAck(await report(10)), { ok: true, throttled: false });
  assert.deepEqual(okAck(await report(11)), { ok: true, throttled: true });
  assert.deepEqual(okAck(await report(12)), { ok: true, throttled: true });
  const p = await x.inst.next("progress:video");
  assert.equal(p.positionSeconds, 10);
  assert.equal(p.userId, x.s);
  // Another video is its own window.
  assert.deepEqual(okAck(await report(5, "v2")), { ok: true, throttled: false });
  assert.equal((await x.inst.next("progress:video")).videoId, "v2");
  assert.deepEqual(await x.inst.quiet("progress:video"), [], "throttled reports are not forwarded");
  // The window is per socket: the student's other tab may report v1 now.
  assert.deepEqual(
    okAck(await x.studTab.call("progress:video", { courseId: x.c, videoId: "v1", positionSeconds: 20, durationSeconds: 600 })),
    { ok: true, throttled: false },
  );
});

test("progress from a non-enrolled student or an instructor is FORBIDDEN", async () => {
  const x = await course();
  const outsider = await h.clients.connect(token(uid("out"), x.t, "student"));
  errAck(await outsider.call("progress:content", { courseId: x.c, contentId: "l", progress: 1 }), "FORBIDDEN");
  errAck(await x.inst.call("progress:content", { courseId: x.c, contentId: "l", progress: 1 }), "FORBIDDEN");
  assert.deepEqual(await x.inst.quiet("progress:content"), []);
});

test("progress outside 0..1 or a negative position is INVALID_PAYLOAD", async () => {
  const x = await course();
  assert.match(errAck(await x.stud.call("progress:content", { courseId: x.c, contentId: "l", progress: 1.5 }), "INVALID_PAYLOAD").message, /progress/);
  assert.match(
    errAck(await x.stud.call("progress:video", { courseId: x.c, videoId: "v", positionSeconds: -1, durationSeconds: 10 }), "INVALID_PAYLOAD").message,
    /positionSeconds/,
  );
});
