//! Webhook signatures (§12): `X-LMS-Signature: sha256=<hex HMAC-SHA256 of
//! "<timestamp>.<body>">` with `X-LMS-Timestamp: <unix seconds>`, so a receiver can check
//! both who sent a batch and how old it is (and refuse replays).

use hmac::{Hmac, Mac};
use sha2::Sha256;

pub const TIMESTAMP_HEADER: &str = "x-lms-timestamp";
pub const SIGNATURE_HEADER: &str = "x-lms-signature";

/// The HMAC of `"<timestamp>.<body>"`, ready to finalize or verify.
fn mac(secret: &str, timestamp: u64, body: &[u8]) -> Hmac<Sha256> {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The `X-LMS-Signature` value for `body` sent at `timestamp` (unix seconds).
pub fn signature(secret: &str, timestamp: u64, body: &[u8]) -> String {
    let digest = mac(secret, timestamp, body).finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

/// Checks a signature in constant time (for receivers written in Rust, and the tests).
pub fn verify(secret: &str, timestamp: u64, body: &[u8], header: &str) -> bool {
    header
        .strip_prefix("sha256=")
        .and_then(decode_hex)
        .is_some_and(|bytes| mac(secret, timestamp, body).verify_slice(&bytes).is_ok())
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_the_hmac_of_timestamp_dot_body() {
        // Computed apart from this code:
        // printf '1700000000.{"events":[]}' | openssl dgst -sha256 -hmac 'whsec-0123456789abcdef'
        let sig = signature("whsec-0123456789abcdef", 1_700_000_000, br#"{"events":[]}"#);
        assert_eq!(
            sig,
            "sha256=08b7acdf8dee9adfe8cd59eeb2cf50f938fe1dc5286f7111c84acae5e8c25374"
        );
        assert!(verify(
            "whsec-0123456789abcdef",
            1_700_000_000,
            br#"{"events":[]}"#,
            &sig
        ));
        assert!(!verify(
            "whsec-0123456789abcdef",
            1_700_000_001,
            br#"{"events":[]}"#,
            &sig
        ));
        assert!(!verify(
            "another-secret-000000",
            1_700_000_000,
            br#"{"events":[]}"#,
            &sig
        ));
        assert!(!verify(
            "whsec-0123456789abcdef",
            1_700_000_000,
            br#"{"events":[1]}"#,
            &sig
        ));
        assert!(!verify(
            "whsec-0123456789abcdef",
            1_700_000_000,
            b"",
            "sha256=zz"
        ));
    }
}
