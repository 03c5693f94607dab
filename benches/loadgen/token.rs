//! Tokens minted the way an LMS backend would: HS256 from the secret the nodes were started with.
//!
//! Minting is done once per simulated user, before the ramp, so that the signing cost never shows
//! up in connect latency.

use jsonwebtoken::{EncodingKey, Header, encode};
use serde::Serialize;
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Serialize)]
struct Claims<'a> {
    sub: &'a str,
    #[serde(rename = "tenantId", skip_serializing_if = "Option::is_none")]
    tenant_id: Option<&'a str>,
    role: &'a str,
    iat: u64,
    exp: u64,
}

/// Signs tokens with one shared secret and one lifetime.
pub struct Minter {
    key: EncodingKey,
    ttl_secs: u64,
}

impl Minter {
    pub fn new(secret: &str, ttl_secs: u64) -> Self {
        Minter {
            key: EncodingKey::from_secret(secret.as_bytes()),
            ttl_secs,
        }
    }

    /// A token for `sub` in `tenant` (none for `super_admin` and `service`) with `role`.
    pub fn mint(&self, sub: &str, tenant: Option<&str>, role: &str) -> anyhow::Result<String> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
        let claims = Claims {
            sub,
            tenant_id: tenant,
            role,
            iat: now,
            exp: now + self.ttl_secs,
        };
        Ok(encode(&Header::default(), &claims, &self.key)?)
    }
}
