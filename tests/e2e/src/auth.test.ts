// §1 Connecting: the three token locations, every refusal message, expiry and refresh.

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { type TokenPlace, uid } from "./lib/client.js";
import { sleep } from "./lib/gateway.js";
import { alive, errAck, harness, okAck } from "./lib/harness.js";
import {
  algNoneToken,
  badSignatureToken,
  expiredToken,
  hs384Token,
  rs256Token,
  serviceToken,
  sign,
  token,
} from "./lib/jwt.js";

const h = harness();

describe("the token is found in each of its three places", () => {
  const places: TokenPlace[] = ["auth", "query", "header"];
  for (const via of places) {
    for (const transport of ["websocket", "polling"] as const) {
      test(`${via} over ${transport}`, async () => {
        const t = uid("t");
        const u = uid("u");
        const c = await h.clients.connect(token(u, t, "student"), { via, transports: [transport], upgrade: false });
        assert.equal(c.socket.io.engine.transport.name, transport);
        // The socket is this user's: a notification for the user reaches it.
        const { id } = await h.service(t).sendNotification({ tenantId: t, target: { userId: u }, notification: { title: "hi", message: "there" } });
        const n = await c.next("notification:new", (p) => p.id === id);
        assert.equal(n.userId, u);
        assert.equal(n.tenantId, t);
      });
    }
  }

  test("auth.token wins over the query, the query over the header", async () => {
    const t = uid("t");
    const good = token(uid("u"), t, "student");
    const bad = badSignatureToken("x", t);
    // auth.token good, query bad: accepted.
    const c = await h.clients.connect(good, { query: { token: bad } });
    await alive(c);
    // query bad, header good: the query is read first, so refused.
    const msg = await h.clients.refused({ token: bad, via: "query", headers: { Authorization: `Bearer ${good}` } });
    // no auth, no query, good header: accepted.
    await h.clients.connect(good, { via: "header" });
    assert.equal(msg, "INVALID_TOKEN");
  });

  test("tenant_id is accepted as an alias and ids may be numbers", async () => {
    const t = uid("t");
    const c = await h.clients.connect(sign({ sub: 4242, tenant_id: t, role: "student" }));
    const { id } = await h.service(t).sendNotification({ tenantId: t, target: { userId: 4242 }, notification: { title: "n", message: "m" } });
    const n = await c.next("notification:new", (p) => p.id === id);
    assert.equal(n.userId, "4242");
  });
});

describe("a refused connection says why in connect_error", () => {
  const t = "t-refusals";
  const cases: Array<[string, () => string | undefined, string]> = [
    ["no token at all", () => undefined, "UNAUTHORIZED"],
    ["an expired token", () => expiredToken("u1", t), "TOKEN_EXPIRED"],
    ["a bad signature", () => badSignatureToken("u1", t), "INVALID_TOKEN"],
    ["alg none", () => algNoneToken("u1", t), "INVALID_TOKEN"],
    ["HS384 instead of HS256", () => hs384Token("u1", t), "INVALID_TOKEN"],
    ["RS256 instead of HS256", () => rs256Token("u1", t), "INVALID_TOKEN"],
    ["not a JWT", () => "not-a-jwt", "INVALID_TOKEN"],
    ["a student without tenantId", () => sign({ sub: "u1", role: "student" }), "INVALID_TOKEN"],
    ["an unknown role", () => sign({ sub: "u1", tenantId: t, role: "teacher" }), "INVALID_TOKEN"],
    ["a service token (HTTP API only)", () => serviceToken(t), "UNAUTHORIZED"],
  ];
  for (const [name, make, expected] of cases) {
    test(`${name}: ${expected}`, async () => {
      const msg = await h.clients.refused({ token: make() });
      assert.equal(msg, expected);
    });
  }

  test("refusals are the same over long-polling and in the header", async () => {
    assert.equal(await h.clients.refused({ transports: ["polling"] }), "UNAUTHORIZED");
    assert.equal(await h.clients.refused({ token: expiredToken("u1", t), transports: ["polling"] }), "TOKEN_EXPIRED");
    assert.equal(await h.clients.refused({ token: algNoneToken("u1", t), via: "header" }), "INVALID_TOKEN");
    assert.equal(await h.clients.refused({ token: serviceToken(t), via: "query", transports: ["polling"] }), "UNAUTHORIZED");
  });
});

describe("expiry and auth:refresh", () => {
  test("a socket whose token expires gets auth:expired and is disconnected", async () => {
    const t = uid("t");
    const c = await h.clients.connect(token(uid("u"), t, "student", 2));
    const disconnected = new Promise<string>((r) => c.socket.once("disconnect", (reason) => r(reason)));
    await c.next("auth:expired", () => true, 6000);
    assert.equal(await disconnected, "io server disconnect");
  });

  test("a refreshed socket outlives its first token", async () => {
    const t = uid("t");
    const u = uid("u");
    const c = await h.clients.connect(token(u, t, "student", 2));
    const ack = okAck(await c.call("auth:refresh", { token: token(u, t, "student", 3600) }));
    assert.ok(ack.expiresAt > Date.now() / 1000 + 3000, `expiresAt ${ack.expiresAt}`);
    await sleep(3500);
    assert.equal(c.socket.connected, true);
    assert.equal(c.all("auth:expired").length, 0);
    await alive(c);
  });

  test("a refresh for another user, tenant or role, or with a bad token, is UNAUTHORIZED", async () => {
    const t = uid("t");
    const u = uid("u");
    const c = await h.clients.connect(token(u, t, "student"));
    errAck(await c.call("auth:refresh", { token: token("someone-else", t, "student") }), "UNAUTHORIZED");
    errAck(await c.call("auth:refresh", { token: token(u, "other-tenant", "student") }), "UNAUTHORIZED");
    errAck(await c.call("auth:refresh", { token: token(u, t, "admin") }), "UNAUTHORIZED");
    errAck(await c.call("auth:refresh", { token: badSignatureToken(u, t) }), "UNAUTHORIZED");
    errAck(await c.call("auth:refresh", { token: expiredToken(u, t) }), "UNAUTHORIZED");
    // The socket keeps working with its original token.
    await alive(c);
  });
});
