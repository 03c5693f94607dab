// The package's runtime against the real gateway: `connect()` renews a short-lived token
// with `auth:refresh` before it expires, connects again with a fresh token after
// `auth:expired` or a refused token, and `ServiceClient` failures are typed `ApiError`s.

import assert from "node:assert/strict";
import { afterEach, test } from "node:test";

import { connect, type ConnectOptions, type LmsSocket, ServiceClient, tokenExpiry } from "@lms-realtime/client-types";

import { rejected } from "./lib/api.js";
import { uid } from "./lib/client.js";
import { EVENT_TIMEOUT_MS, sleep, until } from "./lib/gateway.js";
import { harness, okAck } from "./lib/harness.js";
import { expiredToken, token } from "./lib/jwt.js";

const h = harness();

/** What the application saw: its `getToken` calls and the socket's life. */
interface Watched {
  socket: LmsSocket;
  getTokenCalls: number;
  connects: number;
  disconnects: string[];
  expired: number;
  refusals: string[];
  authErrors: Error[];
}

const open: LmsSocket[] = [];
afterEach(() => {
  for (const s of open.splice(0)) s.disconnect();
});

/** `connect()` to node `node` with `mint(call)` as the application's `getToken`. */
function watch(mint: (call: number, w: Watched) => string, node = 0, extra: Partial<ConnectOptions> = {}): Watched {
  const w = {} as Watched;
  Object.assign(w, { getTokenCalls: 0, connects: 0, disconnects: [], expired: 0, refusals: [], authErrors: [] });
  w.socket = connect(h.gw.url(node), {
    forceNew: true,
    transports: ["websocket"],
    reconnectionDelay: 200,
    getToken: async () => {
      w.getTokenCalls += 1;
      return mint(w.getTokenCalls, w);
    },
    onAuthError: (e) => w.authErrors.push(e),
    ...extra,
  });
  open.push(w.socket);
  w.socket.on("connect", () => (w.connects += 1));
  w.socket.on("disconnect", (reason) => w.disconnects.push(reason));
  w.socket.on("auth:expired", () => (w.expired += 1));
  w.socket.on("connect_error", (err) => w.refusals.push(err.message));
  return w;
}

/** A served round trip on the socket, and a notification the service API sent to its user. */
async function servedAs(w: Watched, t: string, u: string, node = 0): Promise<void> {
  okAck(await w.socket.timeout(EVENT_TIMEOUT_MS).emitWithAck("notification:list", { limit: 1 }));
  const got = new Promise<string>((resolve) => w.socket.once("notification:new", (n) => resolve(n.id)));
  const { id } = await h.service(t, node).sendNotification({ tenantId: t, target: { userId: u }, notification: { title: "t", message: "m" } });
  assert.equal(await got, id);
}

test("connect() refreshes a short-lived token before it expires: the socket outlives several tokens", async () => {
  const [t, u] = [uid("t"), uid("u")];
  const w = watch(() => token(u, t, "student", 3));
  await until("connect", () => w.connects === 1);
  const first = w.socket.id;
  // Three-second tokens: by now the first has long expired and its successor too.
  await sleep(7000);
  assert.equal(w.socket.connected, true, `disconnects: ${w.disconnects.join(", ")}`);
  assert.equal(w.socket.id, first, "the same session, never reconnected");
  assert.deepEqual(w.disconnects, []);
  assert.equal(w.expired, 0, "no auth:expired");
  assert.ok(w.getTokenCalls >= 3, `getToken called ${w.getTokenCalls} times (connect plus at least two refreshes)`);
  assert.deepEqual(w.authErrors, []);
  await servedAs(w, t, u, h.gw.nodes.length - 1);
});

test("after auth:expired, connect() reconnects with a fresh token from getToken", async () => {
  const [t, u] = [uid("t"), uid("u")];
  // The first token lives two seconds; the LMS is "down" (getToken throws) until the
  // gateway has expired the session, then hands out an hour-long token.
  const w = watch((call, w) => {
    if (call === 1) return token(u, t, "student", 2);
    if (w.expired === 0) throw new Error("LMS unavailable");
    return token(u, t, "student", 3600);
  });
  await until("connect", () => w.connects === 1);
  await until("auth:expired", () => w.expired === 1, 6000);
  await until("the reconnect", () => w.connects === 2);
  assert.deepEqual(w.disconnects, ["io server disconnect"]);
  assert.ok(w.authErrors.some((e) => e.message === "LMS unavailable"), "the failed refresh was reported");
  const fresh = w.getTokenCalls;
  assert.ok(fresh >= 2);
  await servedAs(w, t, u);
  // The new token is the hour-long one: no further expiry within the test.
  assert.equal(w.socket.connected, true);
  assert.equal(w.getTokenCalls, fresh, "no further getToken call while the fresh token lives");
});

test("a refresh that gets back the same token reports it and asks again before expiry", async () => {
  const [t, u] = [uid("t"), uid("u")];
  let first = "";
  // An application cache that serves its old token once more, then a new one.
  const w = watch((call) => {
    if (call === 1) first = token(u, t, "student", 8);
    return call <= 2 ? first : token(u, t, "student", 3600);
  });
  await until("connect", () => w.connects === 1);
  await until("the third getToken call", () => w.getTokenCalls === 3, 10_000);
  assert.deepEqual(
    w.authErrors.map((e) => e.message),
    ["getToken returned no token that lives longer than the current one"],
  );
  await sleep(1000);
  assert.equal(w.socket.connected, true);
  assert.equal(w.expired, 0, "refreshed in time");
  assert.equal(w.connects, 1);
  await servedAs(w, t, u);
});

test("a connect refused with TOKEN_EXPIRED is retried with a fresh token", async () => {
  const [t, u] = [uid("t"), uid("u")];
  const w = watch((call) => (call === 1 ? expiredToken(u, t) : token(u, t, "student")));
  await until("connect", () => w.connects === 1);
  assert.deepEqual(w.refusals, ["TOKEN_EXPIRED"]);
  assert.equal(w.getTokenCalls, 2);
  await servedAs(w, t, u);
});

test("a refusal a fresh token cannot cure (a service token: UNAUTHORIZED) is not retried", async () => {
  const t = uid("t");
  const w = watch(() => token("lms-backend", t, "service"));
  await until("connect_error", () => w.refusals.length === 1);
  await sleep(800);
  assert.deepEqual(w.refusals, ["UNAUTHORIZED"]);
  assert.equal(w.getTokenCalls, 1);
  assert.equal(w.connects, 0);
});

test("tokenExpiry reads exp without verifying; garbage has none", () => {
  const tok = token("u", "t", "student", 60);
  const exp = tokenExpiry(tok);
  assert.ok(exp !== undefined && Math.abs(exp - (Date.now() / 1000 + 60)) < 5, `exp ${exp}`);
  assert.equal(tokenExpiry("garbage"), undefined);
  assert.equal(tokenExpiry("a.%%%.c"), undefined);
});

test("ServiceClient: gateway errors and unreachable gateways are typed ApiErrors", async () => {
  const t = uid("t");
  const noToken = new ServiceClient({ baseUrl: h.gw.url(), token: "" });
  await rejected(noToken.unreadCount(t, "u1"), 401, "UNAUTHORIZED");
  await rejected(h.service(t).setCourseMember(t, "c1", "u1", "admin" as never), 422, "INVALID_PAYLOAD");
  const closed = new ServiceClient({ baseUrl: "http://127.0.0.1:1", token: "x", timeoutMs: 2000 });
  await rejected(closed.stats(), 0, "NETWORK_ERROR");
  // A token source is called for every request, so a backend can rotate its token.
  let calls = 0;
  const rotating = new ServiceClient({
    baseUrl: h.gw.url(),
    token: () => {
      calls += 1;
      return token("lms-backend", t, "service");
    },
  });
  await rotating.setCourseMember(t, "c1", "u1", "student");
  assert.deepEqual(await rotating.unreadCount(t, "u1"), { unread: 0 });
  assert.equal(calls, 2);
});
