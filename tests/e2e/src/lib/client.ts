// Typed socket.io-client helpers. Everything a test sends or receives goes through the
// generated event maps, so a rename on the Rust side breaks `tsc`, not a user.

import { io, type Socket } from "socket.io-client";

import type { ClientToServerEvents, ConnectErrorMessage, ServerToClientEvents } from "@lms-realtime/client-types";

import { EVENT_TIMEOUT_MS, type Gateway, QUIET_MS, sleep } from "./gateway.js";

/** A socket typed with the generated event maps, exactly as the package README says. */
export type Client = Socket<ServerToClientEvents, ClientToServerEvents>;

export type ServerEvent = keyof ServerToClientEvents;
export type ClientEvent = keyof ClientToServerEvents;
export type Payload<E extends ServerEvent> = Parameters<ServerToClientEvents[E]>[0];

type Params<E extends ClientEvent> = Parameters<ClientToServerEvents[E]>;
type Last<T extends unknown[]> = T extends [...unknown[], infer L] ? L : never;
type AllButLast<T extends unknown[]> = T extends [...infer H, unknown] ? H : never;
/** What the ack callback of a client event receives. */
export type AckOf<E extends ClientEvent> = Last<Params<E>> extends (response: infer R) => void ? R : never;

/** Every server event, at run time; the check below fails to compile if one is missing. */
export const SERVER_EVENTS = [
  "notification:new",
  "notification:count",
  "notification:read",
  "notification:dismissed",
  "course:updated",
  "course:enrollment",
  "progress:content",
  "progress:video",
  "system:alert",
  "auth:expired",
  "presence:join",
  "presence:leave",
  "error",
] as const satisfies readonly ServerEvent[];
type MissingServerEvents = Exclude<ServerEvent, (typeof SERVER_EVENTS)[number]>;
const everyServerEventListed: [MissingServerEvents] extends [never] ? true : MissingServerEvents = true;
void everyServerEventListed;

export type TokenPlace = "auth" | "query" | "header";

export interface ConnectOptions {
  /** The JWT, or none at all. */
  token?: string;
  /** Where the token travels in the handshake (default: `auth.token`). */
  via?: TokenPlace;
  transports?: ("websocket" | "polling")[];
  upgrade?: boolean;
  /** Which node (modulo the node count) to connect to. */
  node?: number;
  /** Extra handshake query parameters and headers (to test the token precedence). */
  query?: Record<string, string>;
  headers?: Record<string, string>;
}

interface Recorded {
  event: ServerEvent;
  payload: unknown;
  seen: boolean;
}

/** A connected client plus everything it has received. */
export class Conn {
  readonly received: Recorded[] = [];
  /** The `notification:count` a tenant user's socket gets on every connect (consumed). */
  connectCount?: Payload<"notification:count">;
  private waiters: Array<() => void> = [];

  constructor(readonly socket: Client) {
    for (const event of SERVER_EVENTS) {
      // Registering in a loop loses the per-event listener type; the recorder stores raw payloads.
      (socket as unknown as Socket).on(event, (payload: unknown) => {
        this.received.push({ event, payload, seen: false });
        for (const w of this.waiters.splice(0)) w();
      });
    }
  }

  /** Sends a client event and resolves with its (typed) acknowledgement. */
  call<E extends ClientEvent>(event: E, ...args: AllButLast<Params<E>>): Promise<AckOf<E>> {
    // socket.io-client types `timeout().emitWithAck` as `any`; the return type comes from the map.
    const withTimeout = this.socket.timeout(EVENT_TIMEOUT_MS) as unknown as {
      emitWithAck(event: string, ...args: unknown[]): Promise<AckOf<E>>;
    };
    return withTimeout.emitWithAck(event, ...args);
  }

  /** Sends a client event WITHOUT an ack callback (failures then come as `error` events). */
  fire<E extends ClientEvent>(event: E, ...args: AllButLast<Params<E>>): void {
    (this.socket as unknown as Socket).emit(event, ...args);
  }

  /** The first not-yet-consumed `event` matching `pred`, waiting for it if need be. */
  async next<E extends ServerEvent>(
    event: E,
    pred: (p: Payload<E>) => boolean = () => true,
    timeoutMs = EVENT_TIMEOUT_MS,
  ): Promise<Payload<E>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.received.find((r) => !r.seen && r.event === event && pred(r.payload as Payload<E>));
      if (hit) {
        hit.seen = true;
        return hit.payload as Payload<E>;
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        const got = this.received.filter((r) => r.event === event).map((r) => JSON.stringify(r.payload));
        throw new Error(`${this.label()}: no matching "${event}" within ${timeoutMs} ms (got ${got.length}: ${got.join(", ")})`);
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Every `event` received so far that matches `pred` (consumed or not). */
  all<E extends ServerEvent>(event: E, pred: (p: Payload<E>) => boolean = () => true): Payload<E>[] {
    return this.received.filter((r) => r.event === event && pred(r.payload as Payload<E>)).map((r) => r.payload as Payload<E>);
  }

  /** Waits the quiet period, then returns the unconsumed `event`s matching `pred` (expected: none). */
  async quiet<E extends ServerEvent>(event: E, pred: (p: Payload<E>) => boolean = () => true): Promise<Payload<E>[]> {
    await sleep(QUIET_MS);
    return this.received
      .filter((r) => !r.seen && r.event === event && pred(r.payload as Payload<E>))
      .map((r) => r.payload as Payload<E>);
  }

  /** Marks everything received so far as consumed. */
  drain(): void {
    for (const r of this.received) r.seen = true;
  }

  close(): void {
    this.socket.disconnect();
  }

  private label(): string {
    return `socket ${this.socket.id ?? "(disconnected)"}`;
  }
}

/**
 * Time given to a freshly connected socket before a test emits on it. None by default: the
 * gateway registers its event handlers before it sends CONNECT (connect-race.test.ts checks
 * exactly that). E2E_CONNECT_SETTLE_MS adds a pause, to tell a regression from a test bug.
 */
const CONNECT_SETTLE_MS = Number(process.env.E2E_CONNECT_SETTLE_MS ?? 0);

/** Opens sockets and closes every one of them after each test. */
export class Clients {
  private open = new Set<Conn>();

  constructor(private readonly gw: Gateway) {}

  /** The raw, unconnected socket (for refusal tests). */
  socket(opts: ConnectOptions = {}): Client {
    const via = opts.via ?? "auth";
    const base = this.gw.url(opts.node ?? 0);
    const query: Record<string, string> = { ...opts.query };
    if (opts.token && via === "query") query.token = opts.token;
    const headers: Record<string, string> = { ...opts.headers };
    if (opts.token && via === "header") headers.Authorization = `Bearer ${opts.token}`;
    const socket: Client = io(base, {
      forceNew: true,
      reconnection: false,
      timeout: EVENT_TIMEOUT_MS,
      transports: opts.transports ?? ["websocket"],
      upgrade: opts.upgrade ?? true,
      auth: opts.token && via === "auth" ? { token: opts.token } : {},
      query,
      extraHeaders: headers,
    });
    return socket;
  }

  /** Connects and resolves once the server accepted the socket. */
  async connect(token: string, opts: Omit<ConnectOptions, "token"> = {}): Promise<Conn> {
    const socket = this.socket({ ...opts, token });
    const conn = new Conn(socket);
    this.open.add(conn);
    await new Promise<void>((resolve, reject) => {
      socket.once("connect", () => resolve());
      socket.once("connect_error", (err) => reject(new Error(`connect refused: ${err.message}`)));
    });
    // Every tenant user's socket is told its unread count on connect, zero included; it is
    // consumed here, so a test's next count is one its own action caused.
    if (tenantOf(token) !== undefined) conn.connectCount = await conn.next("notification:count");
    if (CONNECT_SETTLE_MS > 0) await sleep(CONNECT_SETTLE_MS);
    return conn;
  }

  /** Connects expecting a refusal; resolves with the `connect_error` message. */
  async refused(opts: ConnectOptions): Promise<string> {
    const socket = this.socket(opts);
    try {
      return await new Promise<string>((resolve, reject) => {
        socket.once("connect", () => reject(new Error("the gateway accepted a connection it should refuse")));
        socket.once("connect_error", (err) => resolve(err.message));
      });
    } finally {
      socket.disconnect();
    }
  }

  closeAll(): void {
    for (const c of this.open) c.close();
    this.open.clear();
  }
}

/** The `tenantId` claim of a JWT, read without verifying it (the test minted it). */
function tenantOf(token: string): string | undefined {
  const payload = token.split(".")[1];
  if (payload === undefined) return undefined;
  try {
    const claims = JSON.parse(Buffer.from(payload, "base64url").toString("utf8")) as { tenantId?: unknown };
    return typeof claims.tenantId === "string" ? claims.tenantId : undefined;
  } catch {
    return undefined;
  }
}

/** The refusal messages a client may see, from the generated declarations. */
export const refusal = (m: ConnectErrorMessage): ConnectErrorMessage => m;

let seq = 0;
/** A fresh id, so tests sharing one gateway never see each other's data. */
export function uid(prefix: string): string {
  seq += 1;
  return `${prefix}-${process.pid}-${seq}`;
}
