// The usage snippets of clients/typescript/README.md, kept here so `tsc` checks them against
// the built package. Never run.

import { io, type Socket } from "socket.io-client";

import {
  ApiError,
  type ClientToServerEvents,
  connect,
  type ConnectErrorMessage,
  type LmsSocket,
  type Notification,
  type ServerToClientEvents,
  ServiceClient,
} from "@lms-realtime/client-types";

declare const jwt: string;
declare const url: string;
declare function setBadge(unread: number): void;
declare function render(items: Notification[], cursor: string | null): void;
declare function mintServiceToken(): string;

export async function readmeConnect(): Promise<ConnectErrorMessage | undefined> {
  let refused: ConnectErrorMessage | undefined;
  const socket: LmsSocket = connect("https://realtime.example.edu", {
    getToken: () => fetch("/lms/realtime-token").then((r) => r.text()),
    onAuthError: (err) => console.warn("realtime token:", err.message),
  });

  socket.on("connect_error", (err) => {
    refused = err.message as ConnectErrorMessage;
  });
  socket.on("notification:new", (n) => console.log(n.title, n.priority));
  socket.on("notification:count", ({ unread }) => setBadge(unread));

  const res = await socket.emitWithAck("notification:list", { limit: 20 });
  if (res.ok) render(res.items, res.nextCursor);
  else console.warn(res.error.code, res.error.message);
  return refused;
}

export async function readmeService(): Promise<void> {
  const api = new ServiceClient({
    baseUrl: "https://realtime.example.edu",
    token: () => mintServiceToken(),
    timeoutMs: 10_000,
  });
  try {
    const { id, recipients } = await api.sendNotification({
      tenantId: "t1",
      target: { courseId: "c42" },
      notification: { id: "grade-123", title: "Graded", message: "Essay 1", type: "ASSIGNMENT_GRADED" },
    });
    console.log(id, recipients);
    await api.setCourseMember("t1", "c42", "u7", "student");
  } catch (err) {
    if (err instanceof ApiError && err.code === "TENANT_MISMATCH") console.log(err.status);
    throw err;
  }
}

export function readmeTypesOnly(): Socket<ServerToClientEvents, ClientToServerEvents> {
  return io(url, { auth: { token: jwt } });
}
