// The public entry point: every payload type and the typed event maps.
export type * from "./generated/types.js";
export type * from "./generated/events.js";
