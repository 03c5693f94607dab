// §11 Keys from a JWKS, with the official client: the gateway (every node in cluster mode)
// is keyed only by a key set that this file serves from a local HTTP server and rotates.
// Rotation by `kid` with overlap refuses no connect; a burst of tokens naming an unknown
// `kid` costs one re-fetch per node, not one per connect; a key server that fails or is
// down leaves the cached keys working and refuses only what they cannot verify.
// Per-issuer sets (JWT_ISSUERS) are in jwks-issuers.test.ts.

import assert from "node:assert/strict";
import { after, test } from "node:test";

import { request } from "./lib/api.js";
import { uid } from "./lib/client.js";
import { sleep } from "./lib/gateway.js";
import { alive, harness } from "./lib/harness.js";
import { KeyServer, makeKey, signWith, type TestKey } from "./lib/jwks.js";

// The key set the gateway reads; the tests change `keys.published` to rotate.
const keys = await KeyServer.start();

const k1 = makeKey(uid("k1"), "RS256");
const k2 = makeKey(uid("k2"), "ES256");
keys.published = [k1];

// Re-fetches on an unknown kid at most once a second per node, so the test waits that long
// after publishing a key: as an identity provider does, it publishes before it signs.
const MIN_REFETCH_MS = 1000;
const h = harness({
  env: { JWT_JWKS_URL: keys.url, JWT_JWKS_MIN_REFETCH_SECS: String(MIN_REFETCH_MS / 1000) },
  unset: ["JWT_SECRET"],
});
after(() => keys.close());

const student = (key: TestKey, t: string): string => signWith(key, { sub: uid("u"), tenantId: t, role: "student" });
const nodes = (): number[] => h.gw.nodes.map((_, i) => i);

test("a rotation by kid, with both keys published for a while, refuses no connect", async () => {
  const t = uid("t");
  for (const node of nodes()) await alive(await h.clients.connect(student(k1, t), { node }));

  keys.published = [k1, k2];
  await sleep(MIN_REFETCH_MS + 200);
  // Old and new tokens side by side on every node: the first k2 token makes each node fetch.
  for (const node of nodes()) {
    await alive(await h.clients.connect(student(k2, t), { node }));
    await alive(await h.clients.connect(student(k1, t), { node }));
  }

  keys.published = [k2];
  await sleep(MIN_REFETCH_MS + 200);
  for (const node of nodes()) await alive(await h.clients.connect(student(k2, t), { node }));
});

test("a burst of tokens with an unknown kid costs one fetch per node, and is refused", async () => {
  const t = uid("t");
  const unknown = makeKey(uid("k3"), "RS256");
  await sleep(MIN_REFETCH_MS + 200);
  const before = keys.fetches;
  const refusals = await Promise.all(
    Array.from({ length: 12 }, (_, i) => h.clients.refused({ token: student(unknown, t), node: i })),
  );
  assert.deepEqual(new Set(refusals), new Set(["INVALID_TOKEN"]));
  const extra = keys.fetches - before;
  assert.ok(extra >= 1 && extra <= h.gw.nodes.length, `${extra} fetches for 12 connects on ${h.gw.nodes.length} node(s)`);
  // Tokens of the published key still connect.
  await alive(await h.clients.connect(student(k2, t), { node: 0 }));
});

/** `lms_jwks_refreshes_total{outcome="error"}` of node `node`. */
async function failedFetches(node: number): Promise<number> {
  const res = await request<string>(h.gw, { method: "GET", path: "/metrics", node });
  const line = res.body
    .split("\n")
    .find((l) => l.startsWith("lms_jwks_refreshes_total{") && l.includes('outcome="error"'));
  return line ? Number(line.split(" ").pop()) : 0;
}

for (const failure of ["error", "down"] as const) {
  test(`a key server that is ${failure === "error" ? "answering 500" : "down"}: cached kids still connect, an unknown kid is refused, no node crashes`, async () => {
    const t = uid("t");
    keys.published = [k2];
    await keys.set("ok");
    await sleep(MIN_REFETCH_MS + 200);
    for (const node of nodes()) await alive(await h.clients.connect(student(k2, t), { node }));

    await keys.set(failure);
    const failedBefore = await Promise.all(nodes().map(failedFetches));
    const seenBefore = keys.fetches;
    await sleep(MIN_REFETCH_MS + 200);
    const unknown = makeKey(uid("k4"), "ES256");
    for (const node of nodes()) {
      assert.equal(await h.clients.refused({ token: student(unknown, t), node }), "INVALID_TOKEN");
      // The cached key keeps verifying while the set cannot be fetched.
      await alive(await h.clients.connect(student(k2, t), { node }));
    }
    // Every node tried to fetch the set for the unknown kid and counted the failure.
    const failedAfter = await Promise.all(nodes().map(failedFetches));
    for (const node of nodes()) {
      assert.ok(failedAfter[node]! > failedBefore[node]!, `node ${node}: a failed fetch is counted (${failedBefore[node]} -> ${failedAfter[node]})`);
    }
    if (failure === "error") assert.ok(keys.fetches > seenBefore, "the nodes asked the failing server");
    for (const n of h.gw.nodes) assert.equal(n.child.exitCode, null, `${n.id} is still running`);

    // Once the server is back, a newly published key becomes usable without a restart.
    await keys.set("ok");
    keys.published = [k2, unknown];
    await sleep(MIN_REFETCH_MS + 200);
    for (const node of nodes()) await alive(await h.clients.connect(student(unknown, t), { node }));
  });
}
