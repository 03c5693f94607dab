//! Every payload on the wire: the single source of truth, one module a domain.
//!
//! Client→server payloads, server→client events, the Notification and its enums and the
//! service API bodies are Rust types here; `typescript.rs` generates the TypeScript
//! declarations from them, so a rename on one side breaks the build, not a user. Content
//! several bodies share is declared once (`with_notification_content!`). Incoming
//! payloads validate when parsed ([`parse_payload`]), with a message naming the offending
//! field.

/// Declares a request body that carries a notification's content (title, message, type,
/// priority, data) after fields of its own, and `into_content` to take the content out.
/// Not `#[serde(flatten)]`: `serde_path_to_error` cannot see into flattened fields, and a
/// bad value must stay named in the error (`notification.type: unknown variant …`).
macro_rules! with_notification_content {
    ($(#[$attr:meta])* pub struct $name:ident { $($(#[$fattr:meta])* pub $field:ident: $ty:ty,)* }) => {
        $(#[$attr])*
        pub struct $name {
            $($(#[$fattr])* pub $field: $ty,)*
            pub title: String,
            pub message: String,
            #[serde(rename = "type", default)]
            #[ts(optional)]
            pub kind: Option<NotificationType>,
            #[serde(default)]
            #[ts(optional)]
            pub priority: Option<Priority>,
            #[serde(default)]
            #[ts(optional)]
            pub data: Option<serde_json::Value>,
        }

        impl $name {
            /// The notification content, without this body's own fields.
            pub fn into_content(self) -> NotificationContent {
                NotificationContent {
                    title: self.title,
                    message: self.message,
                    kind: self.kind,
                    priority: self.priority,
                    data: self.data,
                }
            }
        }
    };
}

mod broadcast;
mod console;
mod course;
mod delivery;
mod export;
mod inbox;
mod json_data;
mod notification;
mod parse;
mod presence;
mod progress;
mod session;
mod stats;

pub use broadcast::*;
pub use console::*;
pub use course::*;
pub use delivery::*;
pub use export::*;
pub use inbox::*;
pub use json_data::JsonData;
pub use notification::*;
pub use parse::*;
pub use presence::*;
pub use progress::*;
pub use session::*;
pub use stats::*;
