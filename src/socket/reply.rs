//! The ack envelope: every handler returns a `Result`, and this one place turns it into
//! `{ ok: true, ... }` / `{ ok: false, error }` — or, when the client sent no ack
//! callback, into an `error` event `{ code, message, event }` for failures.

use std::convert::Infallible;
use std::sync::Arc;

use serde::Serialize;
use serde_json::{Map, Value};
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
        Ok(Self {
            ack,
            socket: s.clone(),
            wants_ack: ack_id.is_some(),
        })
    }
}

/// `{ ok: true }` merged with the fields of a successful result.
pub fn ok_body<T: Serialize>(value: &T) -> Value {
    let mut body = match serde_json::to_value(value) {
        Ok(Value::Object(map)) => map,
        Ok(Value::Null) => Map::new(),
        Ok(other) => {
            let mut m = Map::new();
            m.insert("data".into(), other);
            m
        }
        Err(e) => {
            tracing::error!(error = %e, "could not serialize an ack body");
            return err_body(&AppError::internal());
        }
    };
    body.insert("ok".into(), Value::Bool(true));
    Value::Object(body)
}

/// `{ ok: false, error: { code, message } }`.
pub fn err_body(e: &AppError) -> Value {
    serde_json::json!({ "ok": false, "error": e })
}

impl<A: Adapter> Reply<A> {
    /// Answers with the handler's result.
    pub fn send<T: Serialize>(self, event: &str, result: &Result<T, AppError>) {
        let outcome = match (result, self.wants_ack) {
            (Ok(v), true) => self.ack.send(&ok_body(v)),
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
    use super::*;
    use crate::error::ErrorCode;

    #[test]
    fn a_success_merges_ok_true_into_the_result_fields() {
        let v = ok_body(&serde_json::json!({ "unread": 3 }));
        assert_eq!(v, serde_json::json!({ "ok": true, "unread": 3 }));
        assert_eq!(ok_body(&()), serde_json::json!({ "ok": true }));
    }

    #[test]
    fn a_failure_carries_the_code_and_message() {
        let v = err_body(&AppError::new(ErrorCode::Forbidden, "nope"));
        assert_eq!(
            v,
            serde_json::json!({ "ok": false, "error": { "code": "FORBIDDEN", "message": "nope" } })
        );
    }
}
