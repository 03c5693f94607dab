// A client may emit from its `connect` callback, as socket.io-client users commonly do
// (`socket.on("connect", () => socket.emit("course:join", id, ack))`): the gateway must
// answer that first event, every time.

import assert from "node:assert/strict";
import { test } from "node:test";

import type { Ack, NotificationPage } from "@lms-realtime/client-types";

import { uid } from "./lib/client.js";
import { harness } from "./lib/harness.js";
import { token } from "./lib/jwt.js";

const h = harness();

const SOCKETS = 100;

/** Connects one socket that emits as soon as it is connected; says what came back. */
function firstEventOutcome(tok: string, node: number): Promise<string> {
  const socket = h.clients.socket({ token: tok, node });
  return new Promise<string>((resolve) => {
    const timer = setTimeout(() => resolve("no ack within 2 s"), 2000);
    socket.once("connect_error", (e) => resolve(`connect_error ${e.message}`));
    socket.once("connect", () => {
      socket.emit("notification:list", { limit: 1 }, (ack: Ack<NotificationPage>) => {
        clearTimeout(timer);
        resolve(ack.ok ? "ok" : `error ${ack.error.code}`);
      });
    });
  }).finally(() => socket.disconnect());
}

test("an event emitted from the connect callback is always answered", async () => {
  const t = uid("t");
  const outcomes: string[] = [];
  // One after another: a dropped first event shows up in a few percent of connects.
  for (let i = 0; i < SOCKETS; i++) outcomes.push(await firstEventOutcome(token(uid("u"), t, "student"), i));
  const failures = outcomes.filter((o) => o !== "ok");
  assert.deepEqual(
    failures,
    [],
    `${failures.length} of ${SOCKETS} first events were never answered (dropped before the gateway registered its handlers)`,
  );
});
