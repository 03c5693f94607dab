// Signing keys and a local JWKS server for the key-set tests: the tests publish, rotate
// and break the set the gateway reads, and count the gateway's fetches.

import { generateKeyPairSync, type KeyObject, sign as cryptoSign } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";

export interface TestKey {
  kid: string;
  alg: "RS256" | "ES256";
  privateKey: KeyObject;
  jwk: Record<string, unknown>;
}

export function makeKey(kid: string, alg: "RS256" | "ES256"): TestKey {
  const { privateKey, publicKey } =
    alg === "RS256"
      ? generateKeyPairSync("rsa", { modulusLength: 2048 })
      : generateKeyPairSync("ec", { namedCurve: "P-256" });
  return { kid, alg, privateKey, jwk: { ...publicKey.export({ format: "jwk" }), kid, alg, use: "sig" } };
}

/** A token signed with `key`, naming it by `kid` (or by `kid` when given, to lie about it). */
export function signWith(key: TestKey, claims: Record<string, unknown>, kid = key.kid): string {
  const b64 = (v: object): string => Buffer.from(JSON.stringify(v)).toString("base64url");
  const now = Math.floor(Date.now() / 1000);
  const input = `${b64({ alg: key.alg, typ: "JWT", kid })}.${b64({ iat: now, exp: now + 3600, ...claims })}`;
  // ES256 signatures in a JWT are r||s (IEEE P1363), not DER.
  const sig = cryptoSign("sha256", Buffer.from(input), { key: key.privateKey, dsaEncoding: "ieee-p1363" });
  return `${input}.${sig.toString("base64url")}`;
}

/** How the key server answers: the set, an HTTP 500, or not at all (its port closed). */
export type ServerState = "ok" | "error" | "down";

/** A JWKS endpoint on loopback whose keys and health the test controls. */
export class KeyServer {
  /** The keys served while `ok`. */
  published: TestKey[] = [];
  /** Requests that reached the server (answered or failed with 500). */
  fetches = 0;
  private state: ServerState = "ok";
  private server: http.Server;
  private port = 0;

  private constructor() {
    this.server = this.create();
  }

  private create(): http.Server {
    return http.createServer((_req, res) => {
      this.fetches++;
      if (this.state === "error") {
        res.writeHead(500, { "content-type": "text/plain" });
        res.end("key server failure");
        return;
      }
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ keys: this.published.map((k) => k.jwk) }));
    });
  }

  private listen(port: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(port, "127.0.0.1", () => {
        this.port = (this.server.address() as AddressInfo).port;
        resolve();
      });
    });
  }

  static async start(): Promise<KeyServer> {
    const s = new KeyServer();
    await s.listen(0);
    return s;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}/jwks.json`;
  }

  /** Changes how the server answers; `down` closes its port, `ok`/`error` reopen it. */
  async set(state: ServerState): Promise<void> {
    if (state === "down" && this.state !== "down") {
      await this.close();
    } else if (state !== "down" && this.state === "down") {
      this.server = this.create();
      await this.listen(this.port);
    }
    this.state = state;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}
