//! Extractor for an event's first argument as plain JSON.
//!
//! socketioxide's `Data<T>` cannot tell "no argument" (`socket.emit("notification:count", ack)`)
//! from "an argument that does not decode", and the contract needs the first to mean `{}`
//! and the second to be an `INVALID_PAYLOAD` naming the field. So we read the packet's
//! JSON array ourselves: `["event", arg, ...]`.

use std::convert::Infallible;
use std::sync::Arc;

use socketioxide::adapter::Adapter;
use socketioxide::handler::{FromMessageParts, Value};
use socketioxide::socket::Socket;

use crate::error::AppError;

/// The first argument (`{}` when there is none or it is `null`), or why it is unreadable.
pub struct FirstArg(pub Result<serde_json::Value, AppError>);

impl<A: Adapter> FromMessageParts<A> for FirstArg {
    type Error = Infallible;
    fn from_message_parts(
        _: &Arc<Socket<A>>,
        v: &mut Value,
        _: &Option<i64>,
    ) -> Result<Self, Infallible> {
        Ok(Self(first_arg(v)))
    }
}

fn first_arg(v: &Value) -> Result<serde_json::Value, AppError> {
    let raw = match v {
        Value::Str(s, None) => s.as_str(),
        _ => return Err(AppError::invalid("binary payloads are not supported")),
    };
    let args: Vec<serde_json::Value> = serde_json::from_str(raw)
        .map_err(|e| AppError::invalid(format!("payload is not valid JSON: {e}")))?;
    Ok(match args.into_iter().nth(1) {
        None | Some(serde_json::Value::Null) => serde_json::Value::Object(Default::default()),
        Some(arg) => arg,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn arg(raw: &str) -> Result<serde_json::Value, AppError> {
        first_arg(&Value::Str(raw.to_owned().into(), None))
    }

    #[test]
    fn no_argument_or_null_counts_as_an_empty_object() {
        assert_eq!(arg(r#"["notification:count"]"#).unwrap(), json!({}));
        assert_eq!(arg(r#"["notification:count",null]"#).unwrap(), json!({}));
    }

    #[test]
    fn the_first_argument_is_taken_as_is() {
        assert_eq!(arg(r#"["course:join","c1"]"#).unwrap(), json!("c1"));
        assert_eq!(arg(r#"["e",{"a":1},2]"#).unwrap(), json!({"a": 1}));
        assert_eq!(arg(r#"["e",[1,2]]"#).unwrap(), json!([1, 2]));
    }
}
