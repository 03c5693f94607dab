// `connect()`: a socket.io-client socket typed with the generated event maps that keeps its
// JWT fresh. Before the token's `exp` it asks the application for a new one and sends
// `auth:refresh` (PROTOCOL.md §3); when the gateway ends the session for an expired token
// (`auth:expired`, §4) or refuses a (re)connect with `TOKEN_EXPIRED` / `INVALID_TOKEN`, it
// connects again with a fresh token. Every CONNECT asks `auth` through socket.io-client's
// callback form, so a reconnect never replays a stale token.

import { io, type ManagerOptions, type Socket, type SocketOptions } from "socket.io-client";

import type { Ack, ServerToClientEvents, ClientToServerEvents } from "./generated/events.js";
import type { Refreshed } from "./generated/types.js";
import { tokenExpiry } from "./jwt.js";

/** The gateway's socket, typed with the generated event maps. */
export type LmsSocket = Socket<ServerToClientEvents, ClientToServerEvents>;

export interface ConnectOptions extends Omit<Partial<ManagerOptions & SocketOptions>, "auth"> {
  /** Returns a JWT for the user: called at connect, before expiry, and after an expiry. */
  getToken: () => string | Promise<string>;
  /**
   * Refresh this long before `exp` (default 60 s); for a token that lives shorter, at
   * three quarters of its remaining life.
   */
  refreshMarginSeconds?: number;
  /** Connect attempts in a row with a fresh token after the gateway refused one (default 5). */
  authRetries?: number;
  /** Time to wait for the `auth:refresh` ack (default 10 s). */
  ackTimeoutMs?: number;
  /** `false` opts out of connection state recovery (PROTOCOL.md §9). */
  recovery?: boolean;
  /** Told when `getToken` fails or the gateway refuses a refreshed token. */
  onAuthError?: (error: Error) => void;
}

/** Refusals that a fresh token may cure; `UNAUTHORIZED` (no token, revoked user) is final. */
const TOKEN_REFUSALS = new Set(["TOKEN_EXPIRED", "INVALID_TOKEN"]);
/** `setTimeout` takes at most 2^31 - 1 ms. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Opens a socket to the gateway at `url` that renews its token by itself. */
export function connect(url: string, options: ConnectOptions): LmsSocket {
  const {
    getToken,
    refreshMarginSeconds = 60,
    authRetries = 5,
    ackTimeoutMs = 10_000,
    recovery,
    onAuthError,
    ...socketOptions
  } = options;
  const report = (err: unknown): void => onAuthError?.(err instanceof Error ? err : new Error(String(err)));
  const marginMs = refreshMarginSeconds * 1000;
  const retryDelayMs = socketOptions.reconnectionDelay ?? 1000;
  const retryDelayMaxMs = socketOptions.reconnectionDelayMax ?? 5000;

  let current: string | undefined;
  /** The gateway said the current token is no good: the next CONNECT asks for a new one. */
  let stale = false;
  /** The last `getToken` at connect failed: a refusal then is worth another try. */
  let tokenFailed = false;
  let refusals = 0;
  let refreshTimer: ReturnType<typeof setTimeout> | undefined;
  let retryTimer: ReturnType<typeof setTimeout> | undefined;
  let closed = false;

  const msUntilExpiry = (token: string): number | undefined => {
    const exp = tokenExpiry(token);
    return exp === undefined ? undefined : exp * 1000 - Date.now();
  };

  async function tokenForConnect(): Promise<string | undefined> {
    const left = current === undefined ? undefined : msUntilExpiry(current);
    const usable = current !== undefined && !stale && (left === undefined || left > Math.min(marginMs, 1000));
    if (usable) return current;
    try {
      current = await getToken();
      stale = false;
      tokenFailed = false;
    } catch (err) {
      tokenFailed = true;
      report(err);
    }
    return current;
  }

  const socket: LmsSocket = io(url, {
    ...socketOptions,
    auth: (cb) => {
      void tokenForConnect().then((token) => {
        const auth: Record<string, unknown> = token === undefined ? {} : { token };
        if (recovery === false) auth.recovery = false;
        cb(auth);
      });
    },
  });

  function clearRefresh(): void {
    if (refreshTimer !== undefined) clearTimeout(refreshTimer);
    refreshTimer = undefined;
  }

  function scheduleRefresh(token: string): void {
    clearRefresh();
    const left = msUntilExpiry(token);
    if (left === undefined) return; // no `exp`: nothing to renew
    const delay = left - Math.min(marginMs, left / 4);
    refreshTimer = setTimeout(() => void refresh(), Math.min(Math.max(delay, 0), MAX_TIMER_MS));
  }

  /** After a failed refresh: try again while the token lives; past `exp` the reconnect takes over. */
  function retryRefresh(): void {
    const left = current === undefined ? undefined : msUntilExpiry(current);
    if (!socket.connected || left === undefined || left < 1000) return;
    clearRefresh();
    refreshTimer = setTimeout(() => void refresh(), Math.min(left / 2, 30_000));
  }

  async function refresh(): Promise<void> {
    refreshTimer = undefined;
    if (!socket.connected) return;
    let next: string;
    try {
      next = await getToken();
    } catch (err) {
      report(err);
      return retryRefresh();
    }
    const had = current === undefined ? undefined : tokenExpiry(current);
    const got = tokenExpiry(next);
    if (had !== undefined && got !== undefined && got <= had) {
      // An application cache that hands back the same token would otherwise be asked again
      // and again as `exp` nears.
      report(new Error("getToken returned no token that lives longer than the current one"));
      return retryRefresh();
    }
    try {
      // socket.io-client types `timeout().emitWithAck` as `any`; the map gives the ack's type.
      const ack = (await socket.timeout(ackTimeoutMs).emitWithAck("auth:refresh", { token: next })) as Ack<Refreshed>;
      if (ack.ok) {
        current = next;
        if (socket.connected) scheduleRefresh(next);
        return;
      }
      report(new Error(`auth:refresh refused: ${ack.error.code}: ${ack.error.message}`));
    } catch (err) {
      report(err);
    }
    retryRefresh();
  }

  socket.on("connect", () => {
    refusals = 0;
    if (current !== undefined) scheduleRefresh(current);
  });

  socket.on("auth:expired", () => {
    stale = true;
  });

  socket.on("disconnect", (reason) => {
    clearRefresh();
    // The gateway ends an expired session itself ("io server disconnect"), which
    // socket.io-client never retries; a kick or revocation does not set `stale`.
    if (reason === "io server disconnect" && stale && !closed) socket.connect();
  });

  socket.on("connect_error", (err) => {
    // `active` is false when the gateway refused the CONNECT (socket.io-client then gives
    // up); transport errors are retried by the manager and need nothing from us.
    if (socket.active || closed) return;
    const curable = TOKEN_REFUSALS.has(err.message) || tokenFailed;
    if (!curable || refusals >= authRetries) return;
    if (TOKEN_REFUSALS.has(err.message)) stale = true;
    const delay = Math.min(retryDelayMs * 2 ** refusals, retryDelayMaxMs);
    refusals += 1;
    retryTimer = setTimeout(() => {
      retryTimer = undefined;
      if (!closed) socket.connect();
    }, delay);
  });

  // The application's `disconnect()` / `close()` ends the timers too (and `connect()` /
  // `open()` starts them again), also while the
  // socket waits between attempts (when socket.io-client fires no event).
  const disconnect = socket.disconnect.bind(socket);
  const reconnect = socket.connect.bind(socket);
  socket.disconnect = () => {
    closed = true;
    clearRefresh();
    if (retryTimer !== undefined) clearTimeout(retryTimer);
    return disconnect();
  };
  socket.connect = () => {
    closed = false;
    return reconnect();
  };
  return socket;
}
