// Websocket only, long-polling only, and the default polling → websocket upgrade: events
// and acks work on each, with the official client's defaults.

import assert from "node:assert/strict";
import { test } from "node:test";

import { uid } from "./lib/client.js";
import { EVENT_TIMEOUT_MS } from "./lib/gateway.js";
import { alive, harness } from "./lib/harness.js";
import { token } from "./lib/jwt.js";

const h = harness();

async function roundTrip(t: string, u: string, c: Awaited<ReturnType<typeof h.clients.connect>>): Promise<void> {
  await alive(c);
  const { id } = await h.service(t).sendNotification({ tenantId: t, target: { userId: u }, notification: { title: "t", message: "m" } });
  const n = await c.next("notification:new", (p) => p.id === id);
  assert.equal(n.status, "UNREAD");
  const count = await c.next("notification:count");
  assert.equal(count.unread, 1);
}

test("websocket only", async () => {
  const [t, u] = [uid("t"), uid("u")];
  const c = await h.clients.connect(token(u, t, "student"), { transports: ["websocket"] });
  assert.equal(c.socket.io.engine.transport.name, "websocket");
  await roundTrip(t, u, c);
});

test("long-polling only", async () => {
  const [t, u] = [uid("t"), uid("u")];
  const c = await h.clients.connect(token(u, t, "student"), { transports: ["polling"], upgrade: false });
  assert.equal(c.socket.io.engine.transport.name, "polling");
  await roundTrip(t, u, c);
  assert.equal(c.socket.io.engine.transport.name, "polling");
});

test("polling upgrades to websocket and keeps working", async () => {
  const [t, u] = [uid("t"), uid("u")];
  const c = await h.clients.connect(token(u, t, "student"), { transports: ["polling", "websocket"], upgrade: true });
  const engine = c.socket.io.engine;
  if (engine.transport.name !== "websocket") {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("no upgrade to websocket")), EVENT_TIMEOUT_MS);
      engine.once("upgrade", () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
  assert.equal(engine.transport.name, "websocket");
  await roundTrip(t, u, c);
});

test("a polling client and a websocket client of one user both get its events", async () => {
  const [t, u] = [uid("t"), uid("u")];
  const tok = token(u, t, "student");
  const poll = await h.clients.connect(tok, { transports: ["polling"], upgrade: false, node: 0 });
  const ws = await h.clients.connect(tok, { transports: ["websocket"], node: 1 });
  const { id } = await h.service(t).sendNotification({ tenantId: t, target: { userId: u }, notification: { title: "t", message: "m" } });
  await poll.next("notification:new", (p) => p.id === id);
  await ws.next("notification:new", (p) => p.id === id);
});
