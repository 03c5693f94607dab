// §11 Operator control through the service API: kicking a user and revoking tokens, with
// the official client. In cluster mode the user's sockets are spread over the nodes and
// the API is called on another node than some of them.

import assert from "node:assert/strict";
import { test } from "node:test";

import { failed, rejected, request } from "./lib/api.js";
import { type Conn, uid } from "./lib/client.js";
import { alive, errAck, harness } from "./lib/harness.js";
import { serviceToken, sign, token } from "./lib/jwt.js";

const h = harness();
const now = (): number => Math.floor(Date.now() / 1000);

/** Resolves with the disconnect reason the client sees. */
const disconnected = (c: Conn): Promise<string> => new Promise((resolve) => c.socket.once("disconnect", (reason) => resolve(reason)));

/** The socket is told UNAUTHORIZED, then disconnected by the server (no reconnect). */
async function kicked(c: Conn, gone: Promise<string>): Promise<void> {
  const err = await c.next("error");
  assert.equal(err.code, "UNAUTHORIZED");
  assert.equal(await gone, "io server disconnect");
}

test("a kick disconnects every socket of the user on every node, and nobody else", async () => {
  const t = uid("t");
  const u = uid("u");
  const a = await h.clients.connect(token(u, t, "student"), { node: 0 });
  const b = await h.clients.connect(token(u, t, "student"), { node: 1 });
  const bystander = await h.clients.connect(token(uid("v"), t, "student"), { node: 2 });
  const [goneA, goneB] = [disconnected(a), disconnected(b)];

  await rejected(h.service(uid("other")).disconnectUser(t, u), 403, "TENANT_MISMATCH");
  const res = await h.service(t, 1).disconnectUser(t, u);
  assert.equal(res.disconnected, 2);
  await kicked(a, goneA);
  await kicked(b, goneB);
  await alive(bystander);
  assert.deepEqual(await bystander.quiet("error"), []);
  // Nobody left to kick.
  assert.equal((await h.platform().disconnectUser(t, u)).disconnected, 0);
});

test("a user revocation refuses older tokens at connect and refresh on every node", async () => {
  const t = uid("t");
  const u = uid("u");
  const old = sign({ sub: u, tenantId: t, role: "student", iat: now() - 60 });
  const live = await h.clients.connect(old, { node: 2 });
  const gone = disconnected(live);

  const res = await h.service(t).revoke(t, { userId: u, before: now() - 10 });
  assert.equal(res.disconnected, 1);
  assert.equal(typeof res.expiresAt, "number");
  await kicked(live, gone);

  for (const node of [0, 1, 2]) {
    assert.equal(await h.clients.refused({ token: old, node }), "UNAUTHORIZED");
  }
  const fresh = await h.clients.connect(sign({ sub: u, tenantId: t, role: "student" }), { node: 1 });
  errAck(await fresh.call("auth:refresh", { token: old }), "UNAUTHORIZED");
  await alive(fresh);
});

test("a jti revocation refuses that token only and disconnects its sockets", async () => {
  const t = uid("t");
  const u = uid("u");
  const revoked = sign({ sub: u, tenantId: t, role: "student", jti: uid("jti") });
  const other = sign({ sub: u, tenantId: t, role: "student", jti: uid("jti") });
  const a = await h.clients.connect(revoked, { node: 0 });
  const b = await h.clients.connect(other, { node: 1 });
  const gone = disconnected(a);

  const jti = JSON.parse(Buffer.from(revoked.split(".")[1], "base64url").toString()).jti as string;
  assert.equal((await h.service(t, 2).revoke(t, { jti })).disconnected, 1);
  await kicked(a, gone);
  await alive(b);
  assert.equal(await h.clients.refused({ token: revoked, node: 2 }), "UNAUTHORIZED");
  await h.clients.connect(other, { node: 2 });
});

test("a revocation without a target, or for another tenant, is refused", async () => {
  const t = uid("t");
  await rejected(h.service(t).revoke(t, {}), 422, "INVALID_PAYLOAD");
  await rejected(h.service(uid("other")).revoke(t, { userId: "u1" }), 403, "TENANT_MISMATCH");
  const res = await request(h.gw, { method: "POST", path: `/api/v1/tenants/${t}/revocations`, token: serviceToken(t), body: { userId: "u1", nope: 1 } });
  failed(res, 422, "INVALID_PAYLOAD");
});
