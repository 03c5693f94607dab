// §11 Keys from a JWKS, with the official client: the gateway (every node in cluster mode)
// is keyed only by a key set that this file serves from a local HTTP server and rotates.
// Rotation by `kid` with overlap refuses no connect; a burst of tokens naming an unknown
// `kid` costs one re-fetch per node, not one per connect.

import assert from "node:assert/strict";
import { generateKeyPairSync, type KeyObject, sign as cryptoSign } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { after, test } from "node:test";

import { uid } from "./lib/client.js";
import { sleep } from "./lib/gateway.js";
import { alive, harness } from "./lib/harness.js";

interface TestKey {
  kid: string;
  alg: "RS256" | "ES256";
  privateKey: KeyObject;
  jwk: Record<string, unknown>;
}

function makeKey(kid: string, alg: "RS256" | "ES256"): TestKey {
  const { privateKey, publicKey } =
    alg === "RS256"
      ? generateKeyPairSync("rsa", { modulusLength: 2048 })
      : generateKeyPairSync("ec", { namedCurve: "P-256" });
  return { kid, alg, privateKey, jwk: { ...publicKey.export({ format: "jwk" }), kid, alg, use: "sig" } };
}

/** A token signed with `key`, naming it by `kid`. */
function signWith(key: TestKey, claims: Record<string, unknown>): string {
  const b64 = (v: object): string => Buffer.from(JSON.stringify(v)).toString("base64url");
  const now = Math.floor(Date.now() / 1000);
  const input = `${b64({ alg: key.alg, typ: "JWT", kid: key.kid })}.${b64({ iat: now, exp: now + 3600, ...claims })}`;
  // ES256 signatures in a JWT are r||s (IEEE P1363), not DER.
  const sig = cryptoSign("sha256", Buffer.from(input), { key: key.privateKey, dsaEncoding: "ieee-p1363" });
  return `${input}.${sig.toString("base64url")}`;
}

// The key set the gateway reads; the tests change `published` to rotate.
let published: TestKey[] = [];
let fetches = 0;
const server = http.createServer((_req, res) => {
  fetches++;
  res.writeHead(200, { "content-type": "application/json" });
  res.end(JSON.stringify({ keys: published.map((k) => k.jwk) }));
});
await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
const jwksUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks.json`;

const k1 = makeKey(uid("k1"), "RS256");
const k2 = makeKey(uid("k2"), "ES256");
published = [k1];

// Re-fetches on an unknown kid at most once a second per node, so the test waits that long
// after publishing a key: as an identity provider does, it publishes before it signs.
const MIN_REFETCH_MS = 1000;
const h = harness({
  env: { JWT_JWKS_URL: jwksUrl, JWT_JWKS_MIN_REFETCH_SECS: String(MIN_REFETCH_MS / 1000) },
  unset: ["JWT_SECRET"],
});
after(() => {
  server.closeAllConnections();
  server.close();
});

const student = (key: TestKey, t: string): string => signWith(key, { sub: uid("u"), tenantId: t, role: "student" });
const nodes = (): number[] => h.gw.nodes.map((_, i) => i);

test("a rotation by kid, with both keys published for a while, refuses no connect", async () => {
  const t = uid("t");
  for (const node of nodes()) await alive(await h.clients.connect(student(k1, t), { node }));

  published = [k1, k2];
  await sleep(MIN_REFETCH_MS + 200);
  // Old and new tokens side by side on every node: the first k2 token makes each node fetch.
  for (const node of nodes()) {
    await alive(await h.clients.connect(student(k2, t), { node }));
    await alive(await h.clients.connect(student(k1, t), { node }));
  }

  published = [k2];
  await sleep(MIN_REFETCH_MS + 200);
  for (const node of nodes()) await alive(await h.clients.connect(student(k2, t), { node }));
});

test("a burst of tokens with an unknown kid costs one fetch per node, and is refused", async () => {
  const t = uid("t");
  const unknown = makeKey(uid("k3"), "RS256");
  await sleep(MIN_REFETCH_MS + 200);
  const before = fetches;
  const refusals = await Promise.all(
    Array.from({ length: 12 }, (_, i) => h.clients.refused({ token: student(unknown, t), node: i })),
  );
  assert.deepEqual(new Set(refusals), new Set(["INVALID_TOKEN"]));
  const extra = fetches - before;
  assert.ok(extra >= 1 && extra <= h.gw.nodes.length, `${extra} fetches for 12 connects on ${h.gw.nodes.length} node(s)`);
  // Tokens of the published key still connect.
  await alive(await h.clients.connect(student(k2, t), { node: 0 }));
});
