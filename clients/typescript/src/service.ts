// A typed client for the gateway's service API (PROTOCOL.md §5, §10, §11, §12), for LMS
// backends on Node >= 20 (or anything with `fetch`). One method per route; bodies typed by
// the declarations generated from the Rust types; every failure is an `ApiError`.

import { ApiError } from "./api-error.js";
import type { DeadLetters, EventsPage, Replayed, Webhook, WebhookConfig, WebhookStatus } from "./export-types.js";
import type {
  BroadcastRequest,
  ClusterStats,
  CourseEventRequest,
  CoursePresence,
  CourseRole,
  CourseUpdated,
  Disconnected,
  Member,
  MembersReplaced,
  RevocationRequest,
  Revoked,
  SendNotificationRequest,
  SendNotificationResponse,
  SystemAlert,
  SystemAlertRequest,
  TenantPresence,
  UnreadCount,
} from "./generated/types.js";

/** A token, or a function that returns one (called for every request, so it may rotate). */
export type TokenSource = string | (() => string | Promise<string>);

export interface ServiceClientOptions {
  /** The gateway's base URL, e.g. `https://realtime.example.edu` (without `/api/v1`). */
  baseUrl: string;
  /** A `service` token of the tenant (or a `super_admin` token). */
  token: TokenSource;
  /** Per-request timeout; default 10 s. */
  timeoutMs?: number;
  /** The `fetch` to use; default the global one. */
  fetch?: typeof fetch;
}

/** Ids may be numbers on the way in (the gateway treats them as their decimal string). */
type Id = string | number;

/** Query of `GET /tenants/{t}/events`. */
export interface EventsQuery {
  /** The `next` cursor of the previous page; omitted for the oldest retained event. */
  after?: string;
  limit?: number;
}

/** The service API of one gateway, called with one token source. */
export class ServiceClient {
  private readonly baseUrl: string;
  private readonly timeoutMs: number;
  private readonly fetchImpl: typeof fetch;

  constructor(private readonly options: ServiceClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, "");
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.fetchImpl = options.fetch ?? globalThis.fetch.bind(globalThis);
  }

  // §5 notifications, broadcasts, alerts

  /** `POST /notifications`: stored per recipient and delivered live; idempotent on `notification.id`. */
  sendNotification(body: SendNotificationRequest): Promise<SendNotificationResponse> {
    return this.call("POST", "/notifications", body);
  }

  /** `POST /tenants/{t}/broadcast`: live to every socket of the tenant, not stored. */
  broadcast(tenant: Id, body: BroadcastRequest): Promise<{ id: string }> {
    return this.call("POST", `/tenants/${seg(tenant)}/broadcast`, body);
  }

  /** `POST /system/alerts` (super_admin only): `system:alert` to every socket. */
  systemAlert(body: SystemAlertRequest): Promise<SystemAlert> {
    return this.call("POST", "/system/alerts", body);
  }

  // §5 courses

  /** `PUT /tenants/{t}/courses/{c}/members/{u}`: live sockets of the user join at once. */
  setCourseMember(tenant: Id, course: Id, user: Id, role: CourseRole): Promise<Member> {
    return this.call("PUT", `${coursePath(tenant, course)}/members/${seg(user)}`, { role });
  }

  /** `DELETE /tenants/{t}/courses/{c}/members/{u}`: `NOT_FOUND` when the user was no member. */
  async removeCourseMember(tenant: Id, course: Id, user: Id): Promise<void> {
    await this.call("DELETE", `${coursePath(tenant, course)}/members/${seg(user)}`);
  }

  /** `PUT /tenants/{t}/courses/{c}/members`: replaces the whole membership. */
  replaceCourseMembers(tenant: Id, course: Id, members: Member[]): Promise<MembersReplaced> {
    return this.call("PUT", `${coursePath(tenant, course)}/members`, { members });
  }

  /** `POST /tenants/{t}/courses/{c}/events`: `course:updated` to the course room. */
  publishCourseEvent(tenant: Id, course: Id, body: CourseEventRequest): Promise<CourseUpdated> {
    return this.call("POST", `${coursePath(tenant, course)}/events`, body);
  }

  // §5 reads

  /** `GET /tenants/{t}/users/{u}/unread`. */
  unreadCount(tenant: Id, user: Id): Promise<UnreadCount> {
    return this.call("GET", `/tenants/${seg(tenant)}/users/${seg(user)}/unread`);
  }

  /** `GET /stats` (super_admin only): cluster-wide connection and room counts. */
  stats(): Promise<ClusterStats> {
    return this.call("GET", "/stats");
  }

  // §10 presence

  /** `GET /tenants/{t}/courses/{c}/presence`. */
  coursePresence(tenant: Id, course: Id): Promise<CoursePresence> {
    return this.call("GET", `${coursePath(tenant, course)}/presence`);
  }

  /** `GET /tenants/{t}/presence`; `list: true` adds the users (at most 1000). */
  tenantPresence(tenant: Id, { list = false }: { list?: boolean } = {}): Promise<TenantPresence> {
    return this.call("GET", `/tenants/${seg(tenant)}/presence${list ? "?list=1" : ""}`);
  }

  // §11 operator control

  /** `DELETE /tenants/{t}/users/{u}/sockets`: disconnects every socket of the user, cluster-wide. */
  disconnectUser(tenant: Id, user: Id): Promise<Disconnected> {
    return this.call("DELETE", `/tenants/${seg(tenant)}/users/${seg(user)}/sockets`);
  }

  /** `POST /tenants/{t}/revocations`: refuses a user's older tokens, or one `jti`. */
  revoke(tenant: Id, body: RevocationRequest): Promise<Revoked> {
    return this.call("POST", `/tenants/${seg(tenant)}/revocations`, body);
  }

  // §12 event export

  /** `PUT /tenants/{t}/webhook`. */
  setWebhook(tenant: Id, config: WebhookConfig): Promise<Webhook> {
    return this.call("PUT", webhookPath(tenant), config);
  }

  /** `GET /tenants/{t}/webhook` (the secret is never returned). */
  getWebhook(tenant: Id): Promise<Webhook> {
    return this.call("GET", webhookPath(tenant));
  }

  /** `DELETE /tenants/{t}/webhook`. */
  async deleteWebhook(tenant: Id): Promise<void> {
    await this.call("DELETE", webhookPath(tenant));
  }

  /** `GET /tenants/{t}/webhook/status`. */
  webhookStatus(tenant: Id): Promise<WebhookStatus> {
    return this.call("GET", `${webhookPath(tenant)}/status`);
  }

  /** `GET /tenants/{t}/webhook/dead-letters`. */
  deadLetters(tenant: Id): Promise<DeadLetters> {
    return this.call("GET", `${webhookPath(tenant)}/dead-letters`);
  }

  /** `POST /tenants/{t}/webhook/dead-letters/replay`: re-queues the dead letters. */
  replayDeadLetters(tenant: Id): Promise<Replayed> {
    return this.call("POST", `${webhookPath(tenant)}/dead-letters/replay`);
  }

  /** `GET /tenants/{t}/events?after=&limit=`: the pull API, one page. */
  events(tenant: Id, { after, limit }: EventsQuery = {}): Promise<EventsPage> {
    const query = new URLSearchParams();
    if (after !== undefined) query.set("after", after);
    if (limit !== undefined) query.set("limit", String(limit));
    const qs = query.toString();
    return this.call("GET", `/tenants/${seg(tenant)}/events${qs ? `?${qs}` : ""}`);
  }

  /** One request under `/api/v1`: the parsed JSON body on 2xx, an `ApiError` otherwise. */
  private async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const token = typeof this.options.token === "function" ? await this.options.token() : this.options.token;
    const headers: Record<string, string> = { authorization: `Bearer ${token}`, accept: "application/json" };
    if (body !== undefined) headers["content-type"] = "application/json";
    let res: Response;
    try {
      res = await this.fetchImpl(`${this.baseUrl}/api/v1${path}`, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (cause) {
      const reason = cause instanceof Error ? cause.message : String(cause);
      throw new ApiError(0, "NETWORK_ERROR", `${method} ${path}: ${reason}`, { cause });
    }
    if (!res.ok) throw await ApiError.fromResponse(res);
    const text = await res.text();
    if (text === "") return undefined as T;
    try {
      return JSON.parse(text) as T;
    } catch (cause) {
      throw new ApiError(res.status, "HTTP_ERROR", `${method} ${path}: the response is not JSON`, { cause });
    }
  }
}

/** One path segment: ids may hold characters that mean something in a URL. */
const seg = (id: Id): string => encodeURIComponent(String(id));
const coursePath = (tenant: Id, course: Id): string => `/tenants/${seg(tenant)}/courses/${seg(course)}`;
const webhookPath = (tenant: Id): string => `/tenants/${seg(tenant)}/webhook`;
