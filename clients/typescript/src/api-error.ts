// The one error type of the service client, so a caller branches on `code` (the contract's
// error codes) instead of parsing messages.

import type { ErrorCode } from "./generated/types.js";

/**
 * `ErrorCode` from the gateway's error envelope; `HTTP_ERROR` when a response carried no
 * envelope (a proxy's 502, say); `NETWORK_ERROR` when no response came (status 0).
 */
export type ApiErrorCode = ErrorCode | "HTTP_ERROR" | "NETWORK_ERROR";

/** A service API call that failed: the HTTP status and the gateway's `{ code, message }`. */
export class ApiError extends Error {
  override readonly name = "ApiError";

  constructor(
    readonly status: number,
    readonly code: ApiErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  /** Builds the error from a non-2xx response, reading the `{ error: { code, message } }` envelope. */
  static async fromResponse(res: Response): Promise<ApiError> {
    const text = await res.text().catch(() => "");
    try {
      const body = JSON.parse(text) as { error?: { code?: unknown; message?: unknown } };
      const { code, message } = body.error ?? {};
      if (typeof code === "string" && typeof message === "string") {
        return new ApiError(res.status, code as ErrorCode, message);
      }
    } catch {
      // not JSON: fall through
    }
    const detail = text.length > 200 ? `${text.slice(0, 200)}…` : text;
    return new ApiError(res.status, "HTTP_ERROR", `HTTP ${res.status}${detail ? `: ${detail}` : ""}`);
  }
}
