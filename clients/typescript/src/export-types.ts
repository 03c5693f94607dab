// Bodies of the event export routes (PROTOCOL.md §12), written by hand until the gateway's
// Rust types for them exist and `gen-ts` emits them into `generated/types.ts`.
// TODO(export): replace with the generated declarations once §12 is merged.

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
  next: string | null;
}

/** `GET /tenants/{t}/webhook/dead-letters`: events whose delivery gave up. */
export interface DeadLetters {
  events: ExportEvent[];
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
