// Raw HTTP against the gateway, for the tests of the protocol itself (status codes, error
// bodies, malformed requests); everything else calls the service API through the
// package's typed `ServiceClient` (see harness.ts), and `rejected` checks its `ApiError`s.

import assert from "node:assert/strict";

import { ApiError, type ApiErrorBody, type ApiErrorCode } from "@lms-realtime/client-types";

import type { Gateway } from "./gateway.js";

export interface Response<T> {
  status: number;
  body: T;
  headers: Headers;
}

export interface RawRequest {
  method: string;
  path: string;
  token?: string;
  /** A JSON value (sent with `content-type: application/json`) or a raw string. */
  body?: unknown;
  contentType?: string | null;
  node?: number;
}

/** One HTTP request; the body is parsed as JSON when it is JSON. */
export async function request<T = unknown>(gw: Gateway, r: RawRequest): Promise<Response<T>> {
  const headers: Record<string, string> = {};
  if (r.token) headers.authorization = `Bearer ${r.token}`;
  let body: string | undefined;
  if (r.body !== undefined) {
    body = typeof r.body === "string" ? r.body : JSON.stringify(r.body);
    const ct = r.contentType === undefined ? "application/json" : r.contentType;
    if (ct !== null) headers["content-type"] = ct;
  }
  const res = await fetch(`${gw.url(r.node ?? 0)}${r.path}`, {
    method: r.method,
    headers,
    body,
    signal: AbortSignal.timeout(10_000),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = text === "" ? undefined : JSON.parse(text);
  } catch {
    // not JSON: keep the text
  }
  return { status: res.status, body: parsed as T, headers: res.headers };
}

/** Narrows a response to its success body, failing with the error body otherwise. */
export function ok<T>(res: Response<T | ApiErrorBody | undefined>, status: number): T {
  if (res.status !== status) {
    throw new Error(`expected HTTP ${status}, got ${res.status}: ${JSON.stringify(res.body)}`);
  }
  return res.body as T;
}

/** Narrows a response to its error body, checking status and code. */
export function failed(res: Response<unknown>, status: number, code: ApiErrorBody["error"]["code"]): ApiErrorBody {
  const body = res.body as ApiErrorBody;
  if (res.status !== status || body?.error?.code !== code) {
    throw new Error(`expected HTTP ${status} ${code}, got ${res.status}: ${JSON.stringify(res.body)}`);
  }
  if (typeof body.error.message !== "string" || body.error.message.length === 0) {
    throw new Error(`error body without a message: ${JSON.stringify(res.body)}`);
  }
  return body;
}

/** Asserts that a typed client call failed with `status` and `code` (and a message). */
export async function rejected(call: Promise<unknown>, status: number, code: ApiErrorCode): Promise<ApiError> {
  const err = await call.then(
    (body) => assert.fail(`expected HTTP ${status} ${code}, got success: ${JSON.stringify(body)}`),
    (e: unknown) => e,
  );
  assert.ok(err instanceof ApiError, `expected an ApiError, got ${String(err)}`);
  assert.equal(err.status, status, `status of ${err.code}: ${err.message}`);
  assert.equal(err.code, code, `code (HTTP ${err.status}): ${err.message}`);
  assert.ok(err.message.length > 0, "an ApiError carries the gateway's message");
  return err;
}
