// Bodies of the event export routes (PROTOCOL.md §12). They mirror `src/types/export.rs`
// (the OpenAPI document at /api/v1/openapi.json describes the same), written by hand so
// that `type` and `events` are the closed unions of §12 rather than plain strings; the
// e2e suite checks them against a running gateway (tests/e2e/src/export.test.ts).

import type { JsonValue } from "./generated/types.js";

/** The event types the gateway exports to the LMS. */
export type ExportEventType =
  | "progress:content"
  | "progress:video"
  | "notification:read"
  | "notification:dismissed"
  | "presence:join"
  | "presence:leave";

/** One exported event, as POSTed to a webhook and returned by the pull API. */
export interface ExportEvent {
  /** Unique per event: a receiver drops duplicates by it (delivery is at least once). */
  id: string;
  type: ExportEventType;
  tenantId: string;
  /** RFC 3339. */
  at: string;
  data: JsonValue;
}

/** `PUT /tenants/{t}/webhook`. */
export interface WebhookConfig {
  url: string;
  /** The HMAC-SHA256 key of `X-LMS-Signature`. */
  secret: string;
  /** Event types, or a prefix before the colon (`"progress"` means both progress types). */
  events: Array<ExportEventType | "progress" | "notification" | "presence">;
}

/** A tenant's webhook as the gateway returns it: never with the secret. */
export type Webhook = Omit<WebhookConfig, "secret">;

/** `GET /tenants/{t}/events`: one page; pass `next` as `after` for the following one. */
export interface EventsPage {
  events: ExportEvent[];
  /** The `after` of the next page (the same cursor when nothing was new). */
  next: string;
}

/** `GET /tenants/{t}/webhook/dead-letters`: events whose delivery gave up. */
export interface DeadLetters {
  events: ExportEvent[];
  /** Dead letters held in all (the page may be shorter). */
  count: number;
}

/** `POST /tenants/{t}/webhook/dead-letters/replay`. */
export interface Replayed {
  replayed: number;
}

/** `GET /tenants/{t}/webhook/status`. */
export interface WebhookStatus {
  configured: boolean;
  lagSeconds: number;
  pending: number;
  deadLetters: number;
}
