//! Server → client events (PROTOCOL §4): each name spelled once, with the type of its
//! payload, so the emitting code, the TypeScript event map and docs/api.md's event list all
//! read the same table. It depends on the wire types only: emitters need the names, not the
//! service layer.

/// One server → client event, as the generated declarations and docs list it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerEvent {
    pub name: &'static str,
    /// The payload's TypeScript type (a declaration of `types.ts`).
    pub payload: &'static str,
}

/// One line an event: `CONSTANT = "wire:name" => PayloadType`. Defines the constant and
/// adds the event to [`SERVER_EVENTS`]. `PayloadType [composed]` names a declaration that
/// `typescript.rs` composes by hand because the Rust type is generic.
macro_rules! server_events {
    ($($(#[$doc:meta])* $konst:ident = $name:literal => $payload:ident $([$composed:ident])?,)*) => {
        $($(#[$doc])* pub const $konst: &str = $name;)*

        /// Every server → client event, in the order the contract lists them.
        pub const SERVER_EVENTS: &[ServerEvent] = &[
            $(ServerEvent { name: $konst, payload: stringify!($payload) },)*
        ];

        /// Visits every event's payload type, so the TypeScript declarations include a new
        /// event's type without a list of their own.
        pub fn visit_wire_types(v: &mut impl ts_rs::TypeVisitor) {
            $(server_events!(@visit v $payload $($composed)?);)*
        }
    };
    (@visit $v:ident $payload:ident) => { $v.visit::<crate::types::$payload>() };
    (@visit $v:ident $payload:ident composed) => { () };
}

server_events! {
    /// A notification was stored for the user, or a tenant/role broadcast was sent.
    NOTIFICATION_NEW = "notification:new" => Notification,
    /// The user's unread count changed, and on every connect (zero included).
    NOTIFICATION_COUNT = "notification:count" => UnreadCount,
    /// Another socket of the user read a notification.
    NOTIFICATION_READ = "notification:read" => NotificationRef,
    /// A socket of the user dismissed a notification.
    NOTIFICATION_DISMISSED = "notification:dismissed" => NotificationRef,
    COURSE_UPDATED = "course:updated" => CourseUpdated,
    COURSE_ENROLLMENT = "course:enrollment" => CourseEnrollment,
    /// A student's progress, forwarded to instructors and the student's other sockets.
    PROGRESS_CONTENT = "progress:content" => ProgressContentEvent [composed],
    PROGRESS_VIDEO = "progress:video" => ProgressVideoEvent [composed],
    SYSTEM_ALERT = "system:alert" => SystemAlert,
    /// Sent just before a socket whose token expired is disconnected.
    AUTH_EXPIRED = "auth:expired" => AuthExpired,
    /// A user's first socket in the course came online (to the course's instructors).
    PRESENCE_JOIN = "presence:join" => PresenceChange,
    /// A user's last socket in the course went away (to the course's instructors).
    PRESENCE_LEAVE = "presence:leave" => PresenceChange,
    /// An error that has no ack to travel in (or a notice before a disconnect).
    ERROR = "error" => ErrorEvent,
}
