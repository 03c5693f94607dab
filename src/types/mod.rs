//! Every payload on the wire: the single source of truth, one module a domain.
//!
//! Client→server payloads, server→client events, the Notification and its enums and the
//! service API bodies are Rust types here; `typescript.rs` generates the TypeScript
//! declarations from them, so a rename on one side breaks the build, not a user. Content
//! several bodies share is one type flattened into each (`#[serde(flatten)]`). Incoming
//! payloads validate when parsed ([`parse_payload`]), with a message naming the offending
//! field.

mod broadcast;
mod course;
mod delivery;
mod inbox;
mod notification;
mod parse;
mod progress;
mod session;
mod stats;

pub use broadcast::*;
pub use course::*;
pub use delivery::*;
pub use inbox::*;
pub use notification::*;
pub use parse::*;
pub use progress::*;
pub use session::*;
pub use stats::*;
