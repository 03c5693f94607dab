// The public entry point: the generated payload types and event maps, the token-refreshing
// socket (`connect`) and the service API client (`ServiceClient`).
export type * from "./generated/types.js";
export type * from "./generated/events.js";
export type * from "./export-types.js";
export { connect, type ConnectOptions, type LmsSocket } from "./connect.js";
export { ServiceClient, type EventsQuery, type ServiceClientOptions, type TokenSource } from "./service.js";
export { ApiError, type ApiErrorCode } from "./api-error.js";
export { tokenExpiry } from "./jwt.js";
