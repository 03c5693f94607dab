// §11 One key set per issuer (JWT_ISSUERS), with the official client: two tenants' LMSs,
// each an issuer with its own JWKS served from a local HTTP server. A token is verified
// only with the keys of the issuer it names, so one tenant's signing key cannot mint
// tokens the gateway accepts as the other's; every node in cluster mode.

import assert from "node:assert/strict";
import { after, test } from "node:test";

import { uid } from "./lib/client.js";
import { sleep } from "./lib/gateway.js";
import { alive, harness } from "./lib/harness.js";
import { KeyServer, makeKey, signWith, type TestKey } from "./lib/jwks.js";

const [serverA, serverB] = await Promise.all([KeyServer.start(), KeyServer.start()]);
const issA = `https://lms-a.test/${uid("iss")}`;
const issB = `https://lms-b.test/${uid("iss")}`;
const keyA = makeKey(uid("ka"), "RS256");
const keyB = makeKey(uid("kb"), "ES256");
serverA.published = [keyA];
serverB.published = [keyB];

// Re-fetches on an unknown kid at most once a second per set and node.
const MIN_REFETCH_MS = 1000;
const h = harness({
  env: {
    JWT_ISSUERS: JSON.stringify({ [issA]: serverA.url, [issB]: serverB.url }),
    JWT_JWKS_MIN_REFETCH_SECS: String(MIN_REFETCH_MS / 1000),
  },
  unset: ["JWT_SECRET"],
});
after(() => Promise.all([serverA.close(), serverB.close()]));

const tenantA = uid("ta");
const tenantB = uid("tb");
const nodes = (): number[] => h.gw.nodes.map((_, i) => i);
/** A student token naming issuer `iss`, signed with `key` (announced as `kid`). */
const student = (key: TestKey, iss: string, tenant: string, kid = key.kid): string =>
  signWith(key, { sub: uid("u"), tenantId: tenant, role: "student", iss }, kid);

test("each issuer's tokens connect with its own key, on every node", async () => {
  for (const node of nodes()) {
    await alive(await h.clients.connect(student(keyA, issA, tenantA), { node }));
    await alive(await h.clients.connect(student(keyB, issB, tenantB), { node }));
  }
});

test("a token of issuer A signed with issuer B's key is refused, however it names the key", async () => {
  for (const node of nodes()) {
    // B's kid: A's set does not hold it (a re-fetch of A's set does not find it either).
    assert.equal(await h.clients.refused({ token: student(keyB, issA, tenantA), node }), "INVALID_TOKEN");
    // A's kid, B's signature: the key A publishes under that kid does not verify it.
    assert.equal(await h.clients.refused({ token: student(keyB, issA, tenantA, keyA.kid), node }), "INVALID_TOKEN");
    // And the other way round.
    assert.equal(await h.clients.refused({ token: student(keyA, issB, tenantB), node }), "INVALID_TOKEN");
  }
});

test("an issuer the gateway is not configured with is refused, even with a known key", async () => {
  for (const node of nodes()) {
    const token = student(keyA, `https://elsewhere.test/${uid("iss")}`, tenantA);
    assert.equal(await h.clients.refused({ token, node }), "INVALID_TOKEN");
  }
});

test("one issuer's key server failing leaves the other issuer untouched", async () => {
  await serverB.set("error");
  try {
    await sleep(MIN_REFETCH_MS + 200);
    const [fetchesA, fetchesB] = [serverA.fetches, serverB.fetches];
    const unknownB = makeKey(uid("kb"), "ES256");
    for (const node of nodes()) {
      // An unknown kid of B makes the node fetch B's set, which fails: refused.
      assert.equal(await h.clients.refused({ token: student(unknownB, issB, tenantB), node }), "INVALID_TOKEN");
      await alive(await h.clients.connect(student(keyA, issA, tenantA), { node }));
      // B's cached key still verifies B's tokens while B's server fails.
      await alive(await h.clients.connect(student(keyB, issB, tenantB), { node }));
    }
    assert.ok(serverB.fetches > fetchesB, "the nodes asked B's failing server");
    assert.equal(serverA.fetches, fetchesA, "A's set was not fetched for B's tokens");
  } finally {
    await serverB.set("ok");
  }
});
