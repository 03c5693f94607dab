// Event export (§12) through the typed service client: a webhook receiver checks each
// batch's signature, the pull API serves the same events, and the webhook's own routes
// never return its secret. Single node and cluster alike.

import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { test } from "node:test";

import type { ExportEvent } from "@lms-realtime/client-types";
import { until } from "./lib/gateway.js";
import { uid } from "./lib/client.js";
import { harness, okAck } from "./lib/harness.js";
import { token } from "./lib/jwt.js";

const h = harness({ env: { WEBHOOK_POLL_INTERVAL_MS: "100" } });

/** A webhook receiver on a free port that keeps the events of correctly signed batches. */
async function receiver(secret: string) {
  const events: ExportEvent[] = [];
  let badSignatures = 0;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8");
      const ts = String(req.headers["x-lms-timestamp"] ?? "");
      const expected = "sha256=" + createHmac("sha256", secret).update(`${ts}.${body}`).digest("hex");
      if (req.headers["x-lms-signature"] !== expected) {
        badSignatures += 1;
        res.writeHead(401).end();
        return;
      }
      events.push(...(JSON.parse(body) as { events: ExportEvent[] }).events);
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`;
  return { url, events, bad: () => badSignatures, close: () => server.close() };
}

test("progress reaches a signed webhook and the pull API, and the secret is never returned", async () => {
  const [t, c, s] = [uid("t"), uid("c"), uid("stud")];
  const api = h.service(t);
  const secret = "e2e-webhook-secret-0123456789abcdef";
  const hook = await receiver(secret);
  try {
    const stored = await api.setWebhook(t, { url: hook.url, secret, events: ["progress"] });
    assert.deepEqual(stored, { url: hook.url, events: ["progress"] });
    assert.equal(JSON.stringify(await api.getWebhook(t)).includes(secret), false);

    await api.setCourseMember(t, c, s, "student");
    const stud = await h.clients.connect(token(s, t, "student"));
    okAck(await stud.call("progress:content", { courseId: c, contentId: "lesson-1", progress: 0.5, completed: false }));

    await until("the webhook to receive the progress event", () => hook.events.length >= 1, 10_000);
    const [event] = hook.events;
    assert.equal(event.type, "progress:content");
    assert.equal(event.tenantId, t);
    assert.equal(hook.bad(), 0, "every batch carries a valid signature");

    const page = await api.events(t, { limit: 10 });
    assert.ok(page.events.some((e) => e.id === event.id), "the pull API serves the same event");
    const after = await api.events(t, { after: page.next });
    assert.equal(after.events.length, 0, "nothing after the last cursor");

    const status = await api.webhookStatus(t);
    assert.equal(status.configured, true);
    assert.equal((await api.deadLetters(t)).count, 0);
    await api.deleteWebhook(t);
    assert.equal((await api.webhookStatus(t)).configured, false);
  } finally {
    hook.close();
  }
});
