//! How packet data travels between nodes (the Redis adapter encodes it with MessagePack):
//! as one byte string, not one integer per byte, and still readable from nodes that wrote
//! the older encoding (docs/vendor.md, the socketioxide-core patch).

use std::collections::VecDeque;

use bytes::Bytes;
use socketioxide_core::{Str, Value};

/// A notification-sized event packet: 4 KB of JSON with bytes above 127, which MessagePack
/// writes as two bytes each when they are integers.
fn packet() -> String {
    format!(r#"2["notification:new",{{"data":"{}"}}]"#, "é".repeat(2048))
}

#[test]
fn packet_data_is_encoded_as_one_byte_string() {
    let text = packet();
    let value = Value::Str(Str::from(text.clone()), None);
    let encoded = rmp_serde::to_vec(&value).expect("encodes");
    // A byte string costs its length plus a 5-byte header, the tuple and the variant 3 more.
    assert!(
        encoded.len() <= text.len() + 16,
        "{} bytes for {} bytes of data",
        encoded.len(),
        text.len()
    );
    let decoded: Value = rmp_serde::from_slice(&encoded).expect("decodes");
    assert_eq!(decoded, value);
}

#[test]
fn data_written_as_a_sequence_by_older_nodes_is_still_read() {
    let text = packet();
    // What an unpatched node writes: the data as a sequence of integers.
    let older =
        rmp_serde::to_vec(&(0u8, text.as_bytes(), None::<VecDeque<Bytes>>)).expect("encodes");
    assert!(
        older.len() > text.len() + 1000,
        "the old encoding is larger"
    );
    let decoded: Value = rmp_serde::from_slice(&older).expect("decodes");
    assert_eq!(decoded, Value::Str(Str::from(text), None));
}

#[test]
fn binary_values_and_attachments_round_trip() {
    let bins: VecDeque<Bytes> = [Bytes::from_static(&[0, 1, 255])].into();
    for value in [
        Value::Bytes(Bytes::from_static(&[9, 8, 7, 200])),
        Value::Str(Str::from("451-[\"e\",{}]".to_owned()), Some(bins)),
    ] {
        let encoded = rmp_serde::to_vec(&value).expect("encodes");
        assert_eq!(
            rmp_serde::from_slice::<Value>(&encoded).expect("decodes"),
            value
        );
    }
}
