//! The ack envelope: every handler returns a `Result`, and this one place turns it into
//! `{ ok: true, ... }` / `{ ok: false, error }` — or, when the client sent no ack
//! callback, into an `error` event `{ code, message, event }` for failures.

use std::convert::Infallible;
use std::sync::Arc;

use serde::Serialize;
use socketioxide::SendError;
use socketioxide::adapter::Adapter;
use socketioxide::extract::AckSender;
use socketioxide::handler::FromMessageParts;
use socketioxide::socket::Socket;

use crate::emit;
use crate::error::AppError;
use crate::server_events as events;
use crate::types::ErrorEvent;

/// Extractor: how to answer this event (ack callback or `error` event).
pub struct Reply<A: Adapter> {
    ack: AckSender<A>,
    /// Answers `INTERNAL` when the result cannot be serialized (a bug, never expected).
    fallback: AckSender<A>,
    socket: Arc<Socket<A>>,
    wants_ack: bool,
}

impl<A: Adapter> FromMessageParts<A> for Reply<A> {
    type Error = Infallible;
    fn from_message_parts(
        s: &Arc<Socket<A>>,
        v: &mut socketioxide::handler::Value,
        ack_id: &Option<i64>,
    ) -> Result<Self, Infallible> {
        let ack = AckSender::from_message_parts(s, v, ack_id)?;
        let fallback = AckSender::from_message_parts(s, v, ack_id)?;
        Ok(Self {
            ack,
            fallback,
            socket: s.clone(),
            wants_ack: ack_id.is_some(),
        })
    }
}

/// `{ ok: true }` merged with the fields of a successful result (every ack result is a
/// struct, or `()` for a bare `{ ok: true }`). Serialized straight into the packet: no
/// intermediate `serde_json::Value`, which for a 10,000-user `presence:list` was a map
/// per user built and dropped on every call.
#[derive(Serialize)]
pub struct OkBody<'a, T> {
    ok: bool,
    #[serde(flatten)]
    result: &'a T,
}

pub fn ok_body<T: Serialize>(result: &T) -> OkBody<'_, T> {
    OkBody { ok: true, result }
}

/// `{ ok: false, error: { code, message } }`.
#[derive(Serialize)]
pub struct ErrBody<'a> {
    ok: bool,
    error: &'a AppError,
}

pub fn err_body(error: &AppError) -> ErrBody<'_> {
    ErrBody { ok: false, error }
}

impl<A: Adapter> Reply<A> {
    /// Answers with the handler's result.
    pub fn send<T: Serialize>(self, event: &str, result: &Result<T, AppError>) {
        let outcome = match (result, self.wants_ack) {
            (Ok(v), true) => match self.ack.send(&ok_body(v)) {
                Err(SendError::Serialize(e)) => {
                    tracing::error!(sid = %self.socket.id, event, error = %e, "could not serialize an ack body");
                    self.fallback.send(&err_body(&AppError::internal()))
                }
                other => other,
            },
            (Err(e), true) => self.ack.send(&err_body(e)),
            (Ok(_), false) => Ok(()),
            (Err(e), false) => {
                let body = ErrorEvent {
                    code: e.code,
                    message: e.message.clone(),
                    event: Some(event.to_owned()),
                };
                emit::to_socket(&self.socket, events::ERROR, &body)
            }
        };
        if let Err(e) = outcome {
            tracing::debug!(sid = %self.socket.id, event, error = %e, "could not answer an event");
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;
    use crate::error::ErrorCode;

    fn json<T: Serialize>(v: &T) -> Value {
        serde_json::to_value(v).unwrap()
    }

    #[test]
    fn a_success_merges_ok_true_into_the_result_fields() {
        #[derive(Serialize)]
        struct Unread {
            unread: u64,
        }
        let v = json(&ok_body(&Unread { unread: 3 }));
        assert_eq!(v, serde_json::json!({ "ok": true, "unread": 3 }));
        assert_eq!(json(&ok_body(&())), serde_json::json!({ "ok": true }));
    }

    #[test]
    fn a_failure_carries_the_code_and_message() {
        let v = json(&err_body(&AppError::new(ErrorCode::Forbidden, "nope")));
        assert_eq!(
            v,
            serde_json::json!({ "ok": false, "error": { "code": "FORBIDDEN", "message": "nope" } })
        );
    }
}
