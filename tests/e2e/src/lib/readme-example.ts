// The usage snippet of clients/typescript/README.md, kept here so `tsc` checks it against
// the generated declarations. Never run.

import { io, type Socket } from "socket.io-client";

import type { ClientToServerEvents, ConnectErrorMessage, Notification, ServerToClientEvents } from "@lms-realtime/client-types";

declare const jwt: string;
declare function setBadge(unread: number): void;
declare function render(items: Notification[], cursor: string | null): void;
declare function showNotEnrolled(): void;

export async function readmeExample(): Promise<ConnectErrorMessage | undefined> {
  let refused: ConnectErrorMessage | undefined;
  const socket: Socket<ServerToClientEvents, ClientToServerEvents> = io("https://realtime.example.edu", {
    auth: { token: jwt }, // or ?token=… in the URL, or an `Authorization: Bearer` header
  });

  socket.on("connect_error", (err) => {
    refused = err.message as ConnectErrorMessage; // UNAUTHORIZED, TOKEN_EXPIRED, INVALID_TOKEN, …
  });

  socket.on("notification:new", (n) => console.log(n.title, n.priority)); // n: Notification
  socket.on("notification:count", ({ unread }) => setBadge(unread));

  // Every client event takes an ack: { ok: true, ...result } or { ok: false, error }.
  const res = await socket.emitWithAck("notification:list", { limit: 20 });
  if (res.ok) render(res.items, res.nextCursor);
  else console.warn(res.error.code, res.error.message);

  socket.emit("course:join", "course-42", (ack) => {
    if (!ack.ok && ack.error.code === "FORBIDDEN") showNotEnrolled();
  });
  return refused;
}
