//! The client event table (PROTOCOL §3): one line an event, naming its handler, its
//! payload type and its ack result type. Socket dispatch, the TypeScript event map
//! (`typescript.rs`) and the event list of docs/api.md (`event_list.rs`) are all generated
//! from it, so a new client event is one line here plus its handler (and its payload type,
//! which the declarations pick up from here).

use socketioxide::adapter::Adapter;

use super::{EventCx, Incoming, admin, connect, courses, notifications, presence, progress, run};
use crate::error::AppError;
use crate::types::*;

/// One client → server event, as the generated declarations and docs list it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientEvent {
    pub name: &'static str,
    /// The payload's type; `None` when the event is sent without one (an optional payload
    /// is still accepted, and the handler's type says which).
    pub payload: Option<&'static str>,
    /// The ack result's type (`()` is a bare `{ ok: true }`).
    pub ack: &'static str,
}

/// `"name" => module::handler(Payload) -> Ack,`; `(Payload?)` marks an event sent with no
/// payload. The types are checked against the handler's signature.
macro_rules! client_events {
    ($($name:literal => $module:ident :: $handler:ident ($payload:ident $($bare:tt)?) -> $ack:ty,)*) => {
        /// Every client event, in the order the contract lists them.
        pub const CLIENT_EVENTS: &[ClientEvent] = &[
            $(ClientEvent {
                name: $name,
                payload: client_events!(@payload $payload $($bare)?),
                ack: stringify!($ack),
            },)*
        ];

        /// Visits every event's payload and ack type, so the TypeScript declarations
        /// (`typescript.rs`) include a new event's types without a list of their own.
        pub fn visit_wire_types(v: &mut impl ts_rs::TypeVisitor) {
            $(v.visit::<$payload>(); v.visit::<$ack>();)*
        }

        /// Routes one incoming event to its handler through [`run`].
        pub(super) async fn dispatch<A: Adapter>(name: &str, i: Incoming<A>) {
            match name {
                $($name => run::<A, $payload, $ack, _, _>($name, i, $module::$handler).await,)*
                _ => run("unknown", i, unknown).await,
            }
        }
    };
    (@payload $payload:ident) => { Some(stringify!($payload)) };
    (@payload $payload:ident ?) => { None };
}

client_events! {
    "notification:read" => notifications::read(ReadPayload) -> UnreadCount,
    "notification:read_all" => notifications::read_all(OwnerPayload) -> UnreadCount,
    "notification:dismiss" => notifications::dismiss(DismissPayload) -> UnreadCount,
    "notification:count" => notifications::count(OwnerPayload?) -> UnreadCount,
    "notification:list" => notifications::list(ListPayload) -> NotificationPage,
    "course:join" => courses::join(CourseRef) -> Joined,
    "course:leave" => courses::leave(CourseRef) -> Joined,
    "course:update" => courses::update(CourseUpdatePayload) -> CourseUpdated,
    "progress:content" => progress::content(ProgressContentPayload) -> (),
    "progress:video" => progress::video(ProgressVideoPayload) -> Throttled,
    "admin:broadcast" => admin::broadcast(AdminBroadcastPayload) -> Notification,
    "admin:system_alert" => admin::system_alert(SystemAlertPayload) -> SystemAlert,
    "auth:refresh" => connect::refresh(RefreshPayload) -> Refreshed,
    "presence:list" => presence::list(PresenceQuery) -> CoursePresence,
    "presence:count" => presence::count(PresenceQuery) -> PresenceCount,
}

async fn unknown<A: Adapter>(_: EventCx<A>, _: serde_json::Value) -> Result<(), AppError> {
    Err(AppError::invalid("unknown event"))
}
