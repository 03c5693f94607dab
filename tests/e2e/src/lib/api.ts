// The service API over real HTTP, with request and response bodies typed by the
// generated declarations.

import type {
  ApiErrorBody,
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
} from "@lms-realtime/client-types";

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

/** The typed service API of one gateway, called with one token. */
export class Api {
  constructor(
    private readonly gw: Gateway,
    private readonly token: string,
    private readonly node = 0,
  ) {}

  private req<T>(method: string, path: string, body?: unknown): Promise<Response<T>> {
    return request<T>(this.gw, { method, path: `/api/v1${path}`, token: this.token, body, node: this.node });
  }

  notify(body: SendNotificationRequest): Promise<Response<SendNotificationResponse | ApiErrorBody>> {
    return this.req("POST", "/notifications", body);
  }

  broadcast(tenant: string, body: BroadcastRequest): Promise<Response<{ id: string } | ApiErrorBody>> {
    return this.req("POST", `/tenants/${tenant}/broadcast`, body);
  }

  systemAlert(body: SystemAlertRequest): Promise<Response<SystemAlert | ApiErrorBody>> {
    return this.req("POST", "/system/alerts", body);
  }

  setMember(tenant: string, course: string, user: string, role: CourseRole): Promise<Response<Member | ApiErrorBody>> {
    return this.req("PUT", `/tenants/${tenant}/courses/${course}/members/${user}`, { role });
  }

  removeMember(tenant: string, course: string, user: string): Promise<Response<ApiErrorBody | undefined>> {
    return this.req("DELETE", `/tenants/${tenant}/courses/${course}/members/${user}`);
  }

  replaceMembers(tenant: string, course: string, members: Member[]): Promise<Response<MembersReplaced | ApiErrorBody>> {
    return this.req("PUT", `/tenants/${tenant}/courses/${course}/members`, { members });
  }

  courseEvent(tenant: string, course: string, body: CourseEventRequest): Promise<Response<CourseUpdated | ApiErrorBody>> {
    return this.req("POST", `/tenants/${tenant}/courses/${course}/events`, body);
  }

  unread(tenant: string, user: string): Promise<Response<UnreadCount | ApiErrorBody>> {
    return this.req("GET", `/tenants/${tenant}/users/${user}/unread`);
  }

  stats(): Promise<Response<ClusterStats | ApiErrorBody>> {
    return this.req("GET", "/stats");
  }

  kick(tenant: string, user: string): Promise<Response<Disconnected | ApiErrorBody>> {
    return this.req("DELETE", `/tenants/${tenant}/users/${user}/sockets`);
  }

  revoke(tenant: string, body: RevocationRequest): Promise<Response<Revoked | ApiErrorBody>> {
    return this.req("POST", `/tenants/${tenant}/revocations`, body);
  }

  coursePresence(tenant: string, course: string): Promise<Response<CoursePresence | ApiErrorBody>> {
    return this.req("GET", `/tenants/${tenant}/courses/${course}/presence`);
  }

  tenantPresence(tenant: string, list = false): Promise<Response<TenantPresence | ApiErrorBody>> {
    return this.req("GET", `/tenants/${tenant}/presence${list ? "?list=1" : ""}`);
  }
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
