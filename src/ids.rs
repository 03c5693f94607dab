//! Identifier newtypes for tenants, users, courses and notifications.
//!
//! Ids end up inside room names (`tenant:<t>:user:<u>`) and Redis keys (`lms:{<t>}:...`),
//! so a raw string from the wire could forge a name that belongs to another tenant
//! (`a:user:b` as a tenant id). Every id is therefore parsed once, at the edge, into a
//! type that only admits a safe alphabet; after that, building names cannot collide.
//! The contract also says a client may send ids as numbers: they become decimal strings.

use std::collections::HashSet;
use std::fmt;
use std::sync::{Arc, LazyLock, Mutex};

use serde::{Deserialize, Deserializer, Serialize, de};

/// Longest id accepted, in bytes; long enough for UUIDs, ULIDs and e-mail style ids.
pub const MAX_ID_LEN: usize = 128;

/// Why a string is not an id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most {MAX_ID_LEN} bytes")]
    TooLong,
    #[error("may only contain letters, digits and . _ - @ (found {0:?})")]
    BadChar(char),
}

/// Checks the shared id alphabet: no `:` (room separator), no `{}` (Redis hash tags),
/// no whitespace or control characters.
pub fn validate(raw: &str) -> Result<(), IdError> {
    if raw.is_empty() {
        return Err(IdError::Empty);
    }
    if raw.len() > MAX_ID_LEN {
        return Err(IdError::TooLong);
    }
    match raw
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@')))
    {
        Some(c) => Err(IdError::BadChar(c)),
        None => Ok(()),
    }
}

/// The OpenAPI schema of every id: the alphabet [`validate`] admits.
fn id_schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(MAX_ID_LEN))
        .pattern(Some("^[A-Za-z0-9._@-]+$"))
        .description(Some(
            "Letters, digits and . _ - @; in a request body an integer is read as its decimal string.",
        ))
        .into()
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        ///
        /// Shared, not copied, when cloned: a socket keeps its user and tenant in several
        /// places (claims, presence, connection ledger), each a clone.
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(Arc<str>);

        impl $name {
            /// Parses and validates an id.
            pub fn parse(raw: impl Into<String>) -> Result<Self, IdError> {
                let raw = raw.into();
                validate(&raw)?;
                Ok(Self(raw.into()))
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&self.0, f)
            }
        }

        impl std::str::FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::parse(s)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let raw = d.deserialize_any(StringOrNumber)?;
                Self::parse(raw).map_err(de::Error::custom)
            }
        }

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                id_schema()
            }
        }

        impl utoipa::ToSchema for $name {}

        impl ts_rs::TS for $name {
            type WithoutGenerics = Self;
            type OptionInnerType = Self;
            fn name() -> String {
                "string".to_owned()
            }
            fn inline() -> String {
                "string".to_owned()
            }
            fn decl() -> String {
                panic!("{} is inlined as string", stringify!($name))
            }
            fn decl_concrete() -> String {
                panic!("{} is inlined as string", stringify!($name))
            }
            fn inline_flattened() -> String {
                panic!("{} cannot be flattened", stringify!($name))
            }
        }
    };
}

id_type!(
    /// A tenant (one school or organisation on the platform).
    TenantId
);
/// Tenant ids read from verified tokens, kept once: every socket of a tenant then shares
/// one allocation for its id instead of holding its own (tenants are few, sockets many).
/// Bounded: past [`MAX_INTERNED_TENANTS`] an id is allocated for its holder, as any other.
static TENANTS: LazyLock<Mutex<HashSet<Arc<str>>>> = LazyLock::new(Mutex::default);

/// How many tenant ids [`TenantId::interned`] keeps (~100 bytes each).
const MAX_INTERNED_TENANTS: usize = 100_000;

impl TenantId {
    /// Parses like [`TenantId::parse`]; an id seen before shares its allocation.
    pub fn interned(raw: &str) -> Result<Self, IdError> {
        validate(raw)?;
        let mut known = TENANTS.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(id) = known.get(raw) {
            return Ok(Self(id.clone()));
        }
        let id: Arc<str> = raw.into();
        if known.len() < MAX_INTERNED_TENANTS {
            known.insert(id.clone());
        }
        Ok(Self(id))
    }
}

id_type!(
    /// A user inside a tenant; the JWT's `sub`.
    UserId
);
id_type!(
    /// A course inside a tenant.
    CourseId
);
id_type!(
    /// A notification; unique per tenant and recipient.
    NotificationId
);

/// Longest token id (`jti`) accepted, in bytes.
pub const MAX_TOKEN_ID_LEN: usize = 256;

/// A token's `jti`. Issuers spell them freely (UUIDs, base64 with `+/=`), so any printable
/// text up to [`MAX_TOKEN_ID_LEN`] bytes is accepted; room names and Redis keys use its
/// [`digest`](Self::digest), never the raw text.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize, ts_rs::TS, utoipa::ToSchema)]
#[serde(try_from = "String")]
#[ts(type = "string")]
#[schema(value_type = String, description = "A token's `jti`: up to 256 bytes of printable text.")]
pub struct TokenId(String);

impl TokenId {
    pub fn parse(raw: impl Into<String>) -> Result<Self, IdError> {
        let raw = raw.into();
        if raw.is_empty() {
            return Err(IdError::Empty);
        }
        if raw.len() > MAX_TOKEN_ID_LEN {
            return Err(IdError::TooLong);
        }
        if let Some(c) = raw.chars().find(|c| c.is_control()) {
            return Err(IdError::BadChar(c));
        }
        Ok(Self(raw))
    }

    /// 32 hex digits of the SHA-256 of the id: fixed length, safe in any name.
    pub fn digest(&self) -> String {
        use sha2::Digest;
        sha2::Sha256::digest(self.0.as_bytes())[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

impl TryFrom<String> for TokenId {
    type Error = IdError;
    fn try_from(raw: String) -> Result<Self, IdError> {
        Self::parse(raw)
    }
}

/// Never printed in full: a `jti` is not secret, but logs need only its digest.
impl fmt::Debug for TokenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenId({})", self.digest())
    }
}

/// Accepts a JSON string or an integer and yields the string (numbers as decimal).
struct StringOrNumber;

impl de::Visitor<'_> for StringOrNumber {
    type Value = String;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string or an integer id")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        Ok(v.to_owned())
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<String, E> {
        Ok(v)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
        Ok(v.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tenant_read_twice_shares_one_allocation() {
        let (a, b) = (
            TenantId::interned("interned-t").unwrap(),
            TenantId::interned("interned-t").unwrap(),
        );
        assert_eq!(a, TenantId::parse("interned-t").unwrap());
        assert!(Arc::ptr_eq(&a.0, &b.0));
        assert!(
            TenantId::interned("a:user:b").is_err(),
            "validated as parse is"
        );
    }

    #[test]
    fn a_clone_shares_the_text_and_serializes_as_a_string() {
        let user = UserId::parse("u-1").unwrap();
        let clone = user.clone();
        assert_eq!(user.as_str().as_ptr(), clone.as_str().as_ptr());
        assert_eq!(serde_json::to_string(&clone).unwrap(), "\"u-1\"");
    }

    #[test]
    fn numbers_on_the_wire_become_decimal_strings() {
        let id: UserId = serde_json::from_str("42").unwrap();
        assert_eq!(id.as_str(), "42");
        let id: CourseId = serde_json::from_str("\"c-1\"").unwrap();
        assert_eq!(id.as_str(), "c-1");
    }

    #[test]
    fn an_id_cannot_smuggle_a_room_separator_or_hash_tag() {
        assert_eq!(TenantId::parse("a:user:b"), Err(IdError::BadChar(':')));
        assert_eq!(TenantId::parse("{t}"), Err(IdError::BadChar('{')));
        assert_eq!(UserId::parse("a b"), Err(IdError::BadChar(' ')));
        assert!(serde_json::from_str::<UserId>("\"x:y\"").is_err());
    }

    #[test]
    fn a_token_id_takes_any_printable_text_and_names_things_by_its_digest() {
        let j = TokenId::parse("a+b/c=").unwrap();
        assert_eq!(j.digest().len(), 32);
        assert!(j.digest().chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(j.digest(), TokenId::parse("a+b/c").unwrap().digest());
        assert!(TokenId::parse("").is_err());
        assert!(TokenId::parse("x\n").is_err());
        assert!(TokenId::parse("x".repeat(257)).is_err());
    }

    #[test]
    fn empty_long_and_non_scalar_ids_are_refused() {
        assert_eq!(UserId::parse(""), Err(IdError::Empty));
        assert_eq!(UserId::parse("x".repeat(129)), Err(IdError::TooLong));
        assert!(UserId::parse("x".repeat(128)).is_ok());
        assert!(serde_json::from_str::<UserId>("1.5").is_err());
        assert!(serde_json::from_str::<UserId>("{}").is_err());
        assert!(serde_json::from_str::<UserId>("-3").is_ok());
    }
}
