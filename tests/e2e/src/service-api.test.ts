// The service API's refusals: every error is `{ error: { code, message } }` with its status.

import assert from "node:assert/strict";
import { test } from "node:test";

import type { ApiErrorBody, Member, SendNotificationRequest, SendNotificationResponse } from "@lms-realtime/client-types";

import { failed, ok, rejected, request } from "./lib/api.js";
import { uid } from "./lib/client.js";
import { harness } from "./lib/harness.js";
import { badSignatureToken, expiredToken, serviceToken, token } from "./lib/jwt.js";

const h = harness();

const body = (t: string): SendNotificationRequest => ({
  tenantId: t,
  target: { userId: "u1" },
  notification: { title: "t", message: "m" },
});

// The typed client resolves with the body only; the statuses themselves are checked here.
test("2xx: 202 for a stored notification, 200 for a membership, 204 for its removal", async () => {
  const t = uid("t");
  const call = <T>(method: string, path: string, b?: unknown) =>
    request<T>(h.gw, { method, path: `/api/v1${path}`, token: serviceToken(t), body: b });
  assert.equal(ok(await call<SendNotificationResponse>("POST", "/notifications", body(t)), 202).recipients, 1);
  assert.deepEqual(ok(await call<Member>("PUT", `/tenants/${t}/courses/c1/members/u1`, { role: "student" }), 200), { userId: "u1", role: "student" });
  const removed = await call("DELETE", `/tenants/${t}/courses/c1/members/u1`);
  assert.equal(removed.status, 204);
  assert.equal(removed.body, undefined);
});

test("401: no bearer token, a bad or expired token", async () => {
  const t = uid("t");
  const post = (tok?: string) => request<ApiErrorBody>(h.gw, { method: "POST", path: "/api/v1/notifications", token: tok, body: body(t) });
  failed(await post(), 401, "UNAUTHORIZED");
  failed(await post(badSignatureToken("svc", t)), 401, "INVALID_TOKEN");
  failed(await post("garbage"), 401, "INVALID_TOKEN");
  failed(await post(expiredToken("svc", t)), 401, "TOKEN_EXPIRED");
});

test("403: a user token, another tenant, a platform call with a service token", async () => {
  const t = uid("t");
  for (const role of ["student", "instructor", "admin"] as const) {
    const res = await request(h.gw, { method: "POST", path: "/api/v1/notifications", token: token("u", t, role), body: body(t) });
    failed(res, 403, "FORBIDDEN");
  }
  await rejected(h.service(t).sendNotification(body(uid("other"))), 403, "TENANT_MISMATCH");
  await rejected(h.service(t).stats(), 403, "FORBIDDEN");
  await rejected(h.service(t).systemAlert({ title: "t", message: "m" }), 403, "FORBIDDEN");
});

test("a super_admin token may act on any tenant", async () => {
  const t = uid("t");
  const res = await h.platform().sendNotification(body(t));
  assert.equal(res.recipients, 1);
  assert.equal((await h.platform().unreadCount(t, "u1")).unread, 1);
});

test("404: unknown route, unknown member", async () => {
  const t = uid("t");
  failed(await request(h.gw, { method: "GET", path: "/api/v1/nope", token: serviceToken(t) }), 404, "NOT_FOUND");
  await rejected(h.service(t).removeCourseMember(t, "c1", "nobody"), 404, "NOT_FOUND");
});

test("413: a body over the limit", async () => {
  const t = uid("t");
  const huge = { ...body(t), notification: { title: "t", message: "m", data: { blob: "x".repeat(300 * 1024) } } };
  const res = await request(h.gw, { method: "POST", path: "/api/v1/notifications", token: serviceToken(t), body: huge });
  failed(res, 413, "INVALID_PAYLOAD");
});

test("415: a body that is not declared as JSON", async () => {
  const t = uid("t");
  const res = await request(h.gw, {
    method: "POST",
    path: "/api/v1/notifications",
    token: serviceToken(t),
    body: JSON.stringify(body(t)),
    contentType: "text/plain",
  });
  failed(res, 415, "INVALID_PAYLOAD");
});

test("422: a body that does not validate names the field", async () => {
  const t = uid("t");
  const api = h.service(t);
  const post = (b: unknown) => request(h.gw, { method: "POST", path: "/api/v1/notifications", token: serviceToken(t), body: b });
  assert.match(failed(await post({ tenantId: t, target: { userId: "u1" } }), 422, "INVALID_PAYLOAD").error.message, /notification/);
  assert.match(
    failed(await post({ tenantId: t, target: { userId: "u1", role: "student" }, notification: { title: "t", message: "m" } }), 422, "INVALID_PAYLOAD").error.message,
    /target/,
  );
  assert.match(
    failed(await post({ tenantId: t, target: { userId: "u1" }, notification: { title: "t", message: "m", type: "NOPE" } }), 422, "INVALID_PAYLOAD").error.message,
    /type/,
  );
  assert.match(
    failed(await post({ tenantId: t, target: { userId: "u1" }, notification: { title: "", message: "m" } }), 422, "INVALID_PAYLOAD").error.message,
    /title/,
  );
  const role = await request(h.gw, { method: "PUT", path: `/api/v1/tenants/${t}/courses/c1/members/u1`, token: serviceToken(t), body: { role: "admin" } });
  assert.match(failed(role, 422, "INVALID_PAYLOAD").error.message, /role/);
  const dup = api.replaceCourseMembers(t, "c1", [
    { userId: "u1", role: "student" },
    { userId: "u1", role: "instructor" },
  ]);
  await rejected(dup, 422, "INVALID_PAYLOAD");
});

test("400: malformed JSON or an id that is not an id", async () => {
  const t = uid("t");
  failed(await request(h.gw, { method: "POST", path: "/api/v1/notifications", token: serviceToken(t), body: "{not json" }), 400, "INVALID_PAYLOAD");
  failed(await request(h.gw, { method: "GET", path: `/api/v1/tenants/${t}/users/a%3Ab/unread`, token: serviceToken(t) }), 400, "INVALID_PAYLOAD");
});

test("healthz, readyz and metrics answer", async () => {
  const health = await request<{ status: string }>(h.gw, { method: "GET", path: "/healthz" });
  assert.equal(health.status, 200);
  const ready = await request<{ status: string }>(h.gw, { method: "GET", path: "/readyz" });
  assert.equal(ready.status, 200);
  assert.equal(ready.body.status, "ready");
  const metrics = await request<string>(h.gw, { method: "GET", path: "/metrics" });
  assert.equal(metrics.status, 200);
  assert.match(metrics.body, /lms_socket_connections/);
});
