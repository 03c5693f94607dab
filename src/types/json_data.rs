//! A notification's `data`, whose JSON text is made once for all its copies.

use std::sync::OnceLock;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use serde_json::value::RawValue;

/// The JSON value and, from its first serialisation on, its text. Every recipient's copy of
/// a notification shares one (behind an `Arc`), and each copy is serialised twice (its
/// recovery entry and its emit): without the text kept, a fan-out escaped a 4 KiB `data`
/// twice per recipient (8.5 % of a noisy tenant's node CPU, docs/benchmarks.md). A
/// serialiser that is not human-readable (a binary format) gets the value itself. The text
/// is held beside the value: once per notification body, not per recipient.
#[derive(Debug, Clone)]
pub struct JsonData {
    value: Value,
    text: OnceLock<Box<RawValue>>,
}

impl JsonData {
    pub fn new(value: Value) -> Self {
        Self {
            value,
            text: OnceLock::new(),
        }
    }

    /// The value's JSON text, made at the first call.
    fn text(&self) -> &RawValue {
        self.text.get_or_init(|| {
            serde_json::value::to_raw_value(&self.value)
                .expect("a serde_json::Value always serialises")
        })
    }
}

impl PartialEq for JsonData {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}

impl From<Value> for JsonData {
    fn from(value: Value) -> Self {
        Self::new(value)
    }
}

impl Serialize for JsonData {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            self.text().serialize(s)
        } else {
            self.value.serialize(s)
        }
    }
}

impl<'de> Deserialize<'de> for JsonData {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Value::deserialize(d).map(Self::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn it_serialises_as_its_value_everywhere() {
        let value = json!({ "a": "line\nwith \"quotes\" and ünïcode", "n": [1, 2.5, null] });
        let data = JsonData::new(value.clone());
        let expected = serde_json::to_string(&value).unwrap();
        // Twice: the second from the kept text.
        assert_eq!(serde_json::to_string(&data).unwrap(), expected);
        assert_eq!(serde_json::to_string(&data).unwrap(), expected);
        assert_eq!(serde_json::to_value(&data).unwrap(), value);
        assert_eq!(
            serde_json::to_string(&(json!("e"), &data, "9")).unwrap(),
            format!(r#"["e",{expected},"9"]"#)
        );
        let back: JsonData = serde_json::from_str(&expected).unwrap();
        assert_eq!(back, data);
        // A binary format gets the value, not serde_json's raw-value token.
        let packed = rmp_serde::to_vec_named(&data).unwrap();
        let unpacked: Value = rmp_serde::from_slice(&packed).unwrap();
        assert_eq!(unpacked, value);
    }
}
