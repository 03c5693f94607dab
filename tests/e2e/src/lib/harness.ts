// One gateway (or cluster) per test file, sockets closed after every test, and small
// assertions on the ack envelope.

import assert from "node:assert/strict";
import { after, afterEach, before } from "node:test";

import { type AppError, type ErrorCode, ServiceClient } from "@lms-realtime/client-types";

import { type Conn, Clients } from "./client.js";
import { Gateway, type GatewayOptions } from "./gateway.js";
import { serviceToken, superAdminToken } from "./jwt.js";

export interface Harness {
  gw: Gateway;
  clients: Clients;
  /** The package's service API client with a service token of `tenant`, through node `node`. */
  service(tenant: string, node?: number): ServiceClient;
  /** The service API client with a super_admin token. */
  platform(node?: number): ServiceClient;
}

export function harness(opts: GatewayOptions = {}): Harness {
  const h = {
    service(tenant: string, node = 0) {
      return new ServiceClient({ baseUrl: h.gw.url(node), token: serviceToken(tenant) });
    },
    platform(node = 0) {
      return new ServiceClient({ baseUrl: h.gw.url(node), token: superAdminToken() });
    },
  } as Harness;
  before(async () => {
    h.gw = await Gateway.start(opts);
    h.clients = new Clients(h.gw);
  });
  afterEach(() => h.clients?.closeAll());
  after(async () => {
    h.clients?.closeAll();
    await h.gw?.stop();
  });
  return h;
}

type Envelope = { ok: true } | { ok: false; error: AppError };

/** Asserts a successful ack and narrows it. */
export function okAck<A extends Envelope>(ack: A): Extract<A, { ok: true }> {
  assert.equal(ack.ok, true, `expected { ok: true }, got ${JSON.stringify(ack)}`);
  return ack as Extract<A, { ok: true }>;
}

/** Asserts a failed ack with `code` and a message; returns the error. */
export function errAck(ack: Envelope, code: ErrorCode): AppError {
  assert.equal(ack.ok, false, `expected { ok: false, error: ${code} }, got ${JSON.stringify(ack)}`);
  const { error } = ack as { ok: false; error: AppError };
  assert.equal(error.code, code, `expected ${code}, got ${JSON.stringify(error)}`);
  assert.ok(error.message.length > 0, "an error carries a message");
  return error;
}

/**
 * Proves a socket is connected and served: a round trip that needs no data.
 * (`notification:list`, not `notification:count`: see the count tests for why.)
 */
export async function alive(c: Conn): Promise<void> {
  okAck(await c.call("notification:list", { limit: 1 }));
}
