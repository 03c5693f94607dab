//! JWT verification: the only place that reads a token.
//!
//! The gateway accepts exactly one configured algorithm (HS256 with a shared secret, or
//! RS256/ES256 with a PEM public key). Everything a handler needs afterwards lives in
//! [`Claims`], parsed into validated ids, so no handler ever looks at a token again.

mod handshake_token;

use std::path::Path;
use std::sync::Arc;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, errors::ErrorKind};
use serde::{Deserialize, Serialize};

use crate::error::{AppError, ErrorCode};
use crate::ids::{TenantId, TokenId, UserId};
use crate::jwks::{self, KeySet, KeySets, Missing, Pick};
pub use crate::role::Role;
pub use handshake_token::{bearer, token_from_handshake};

/// The verified identity of a caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    pub sub: UserId,
    /// `None` only for a super admin without a home tenant.
    pub tenant: Option<TenantId>,
    pub role: Role,
    /// Expiry, seconds since the Unix epoch.
    pub exp: u64,
    /// Issued at, seconds since the Unix epoch, when the token says (revocation by
    /// `before` compares it; a token without one counts as issued before any `before`).
    pub iat: Option<u64>,
    /// The token's own id, when it has one (revocation by `jti`).
    pub jti: Option<TokenId>,
}

impl Claims {
    /// The caller's tenant; a super admin without one gets `FORBIDDEN` for tenant actions.
    pub fn tenant(&self) -> Result<&TenantId, AppError> {
        self.tenant
            .as_ref()
            .ok_or_else(|| AppError::forbidden("this token has no tenant"))
    }

    /// Whether the caller may act on `tenant` (its own, or any for a super admin).
    pub fn may_act_in(&self, tenant: &TenantId) -> bool {
        self.role == Role::SuperAdmin || self.tenant.as_ref() == Some(tenant)
    }
}

/// The claims as they appear in a token; validated into [`Claims`].
#[derive(Debug, Serialize, Deserialize)]
struct RawClaims {
    sub: serde_json::Value,
    #[serde(
        rename = "tenantId",
        alias = "tenant_id",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    tenant_id: Option<serde_json::Value>,
    role: String,
    exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    iat: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    jti: Option<String>,
}

/// Why a token was refused; each maps onto a contract code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("no token was presented")]
    Missing,
    #[error("the token has expired")]
    Expired,
    #[error("the token is invalid: {0}")]
    Invalid(String),
    #[error("this role may not open a socket")]
    RoleNotAllowed,
    #[error("the signing keys could not be fetched yet")]
    KeysUnavailable,
}

impl AuthError {
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Missing | Self::RoleNotAllowed => ErrorCode::Unauthorized,
            Self::Expired => ErrorCode::TokenExpired,
            Self::Invalid(_) => ErrorCode::InvalidToken,
            Self::KeysUnavailable => ErrorCode::Unavailable,
        }
    }
}

impl From<AuthError> for AppError {
    fn from(e: AuthError) -> Self {
        AppError::new(e.code(), e.to_string())
    }
}

/// Where the key comes from; built from configuration.
#[derive(Clone)]
pub enum KeySource {
    Secret(String),
    PublicKeyPem(Vec<u8>),
}

/// Shortest HS256 secret accepted, in bytes: RFC 7518 §3.2 asks for a key at least as
/// long as the hash (256 bits); a shorter one can be brute-forced offline from any token.
pub const MIN_HS256_SECRET_BYTES: usize = 32;

/// Default for [`Verifier::max_lifetime`]: a day, as `MAX_TOKEN_LIFETIME_SECS`.
pub const DEFAULT_MAX_TOKEN_LIFETIME_SECS: u64 = 86_400;

/// Where verification keys come from.
#[derive(Clone)]
enum Keys {
    /// One configured key (`JWT_SECRET` or `JWT_PUBLIC_KEY_FILE`).
    Static(DecodingKey),
    /// Key sets fetched from JWKS URLs, picked by `iss` and `kid`.
    Jwks(Arc<KeySets>),
}

/// Verifies tokens with the configured key(s), algorithm, issuer and audience.
#[derive(Clone)]
pub struct Verifier {
    keys: Keys,
    validation: Validation,
    /// A token whose `exp` lies further ahead than now plus this is refused: a leaked
    /// token that never expires (`exp` = 2^64−1) would otherwise be a permanent key.
    max_lifetime_secs: u64,
}

impl Verifier {
    pub fn new(
        algorithm: Algorithm,
        key: &KeySource,
        issuer: Option<&str>,
        audience: Option<&str>,
        leeway_secs: u64,
    ) -> anyhow::Result<Self> {
        let key = match (algorithm, key) {
            (Algorithm::HS256, KeySource::Secret(s)) if s.len() < MIN_HS256_SECRET_BYTES => {
                anyhow::bail!(
                    "JWT_SECRET is {} bytes; HS256 needs at least {MIN_HS256_SECRET_BYTES} random bytes \
                     (make one with `openssl rand -hex 32`)",
                    s.len()
                )
            }
            (Algorithm::HS256, KeySource::Secret(s)) => DecodingKey::from_secret(s.as_bytes()),
            (Algorithm::RS256, KeySource::PublicKeyPem(pem)) => DecodingKey::from_rsa_pem(pem)?,
            (Algorithm::ES256, KeySource::PublicKeyPem(pem)) => DecodingKey::from_ec_pem(pem)?,
            (alg, _) => anyhow::bail!(
                "JWT_ALGORITHM {alg:?} does not fit the key: HS256 needs JWT_SECRET, RS256/ES256 need JWT_PUBLIC_KEY_FILE"
            ),
        };
        Ok(Self {
            keys: Keys::Static(key),
            validation: validation(&[algorithm], issuer, audience, leeway_secs),
            max_lifetime_secs: DEFAULT_MAX_TOKEN_LIFETIME_SECS,
        })
    }

    /// Verifies with JWKS key sets: the token's `kid` picks the key, its algorithm must be
    /// RS256, ES256 or EdDSA and fit the key. `issuer` is checked when set (with a single
    /// set; per-issuer sets check the issuer that picked them).
    pub fn with_jwks(
        sets: Arc<KeySets>,
        issuer: Option<&str>,
        audience: Option<&str>,
        leeway_secs: u64,
    ) -> Self {
        Self {
            keys: Keys::Jwks(sets),
            validation: validation(&jwks::ALGORITHMS, issuer, audience, leeway_secs),
            max_lifetime_secs: DEFAULT_MAX_TOKEN_LIFETIME_SECS,
        }
    }

    /// Fetches JWKS key sets once and keeps them fresh in the background (nothing to do
    /// for a static key).
    pub async fn start_key_refresh(&self) {
        if let Keys::Jwks(sets) = &self.keys {
            sets.start().await;
        }
    }

    /// Sets the longest lifetime a token may have left (`MAX_TOKEN_LIFETIME_SECS`).
    pub fn max_lifetime(mut self, secs: u64) -> Self {
        self.max_lifetime_secs = secs;
        self
    }

    /// Reads a PEM public key file for RS256/ES256.
    pub fn read_public_key(path: &Path) -> anyhow::Result<KeySource> {
        let pem = std::fs::read(path).map_err(|e| {
            anyhow::anyhow!("cannot read JWT_PUBLIC_KEY_FILE {}: {e}", path.display())
        })?;
        Ok(KeySource::PublicKeyPem(pem))
    }

    /// Verifies a token and returns validated claims; with JWKS, a `kid` the set does not
    /// hold fetches the set again first (rate-limited, see [`jwks`]).
    pub async fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        match &self.keys {
            Keys::Static(key) => self.check(token, key, &self.validation),
            Keys::Jwks(sets) => {
                let (set, kid, validation) = self.jwks_lookup(sets, token)?;
                let key = set.find_or_fetch(kid.as_deref()).await;
                self.check_with(token, key, &validation)
            }
        }
    }

    /// Verifies a token with the keys at hand, never waiting for the network.
    pub fn verify_now(&self, token: &str) -> Result<Claims, AuthError> {
        match &self.keys {
            Keys::Static(key) => self.check(token, key, &self.validation),
            Keys::Jwks(sets) => {
                let (set, kid, validation) = self.jwks_lookup(sets, token)?;
                self.check_with(token, set.find(kid.as_deref()), &validation)
            }
        }
    }

    /// The set, `kid` and validation rules for a JWKS token: its algorithm must be one a
    /// JWKS key may have, and with per-issuer sets its `iss` (read before verification)
    /// picks the set and is then required.
    fn jwks_lookup(
        &self,
        sets: &KeySets,
        token: &str,
    ) -> Result<(Arc<KeySet>, Option<String>, Validation), AuthError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| AuthError::Invalid("malformed token".into()))?;
        if !jwks::ALGORITHMS.contains(&header.alg) {
            return Err(AuthError::Invalid("algorithm not accepted".into()));
        }
        let mut validation = self.validation.clone();
        validation.algorithms = vec![header.alg];
        let iss = if sets.by_issuer() {
            #[derive(Deserialize)]
            struct Unverified {
                iss: Option<String>,
            }
            jsonwebtoken::dangerous::insecure_decode_claims::<Unverified>(token)
                .ok()
                .and_then(|c| c.iss)
        } else {
            None
        };
        let set = match sets.pick(iss.as_deref()) {
            Some(Pick::Only(set)) => set.clone(),
            Some(Pick::Issuer(set, iss)) => {
                validation.set_issuer(&[iss]);
                validation.required_spec_claims.insert("iss".into());
                set.clone()
            }
            None => return Err(AuthError::Invalid("unknown issuer".into())),
        };
        Ok((set, header.kid, validation))
    }

    fn check_with(
        &self,
        token: &str,
        key: Result<jwks::Key, Missing>,
        validation: &Validation,
    ) -> Result<Claims, AuthError> {
        let key = key.map_err(|m| match m {
            Missing::NotLoaded => AuthError::KeysUnavailable,
            Missing::UnknownKid => AuthError::Invalid("unknown key id".into()),
        })?;
        if key.alg.is_some_and(|a| !validation.algorithms.contains(&a)) {
            return Err(AuthError::Invalid("algorithm not accepted".into()));
        }
        self.check(token, &key.decoding, validation)
    }

    /// Checks signature and claims with one key.
    fn check(
        &self,
        token: &str,
        key: &DecodingKey,
        validation: &Validation,
    ) -> Result<Claims, AuthError> {
        let data =
            jsonwebtoken::decode::<RawClaims>(token, key, validation).map_err(|e| {
                match e.kind() {
                    ErrorKind::ExpiredSignature => AuthError::Expired,
                    ErrorKind::InvalidSignature => AuthError::Invalid("bad signature".into()),
                    ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
                        AuthError::Invalid("algorithm not accepted".into())
                    }
                    ErrorKind::ImmatureSignature => AuthError::Invalid("not valid yet".into()),
                    ErrorKind::InvalidIssuer => AuthError::Invalid("wrong issuer".into()),
                    ErrorKind::InvalidAudience => AuthError::Invalid("wrong audience".into()),
                    ErrorKind::MissingRequiredClaim(c) => {
                        AuthError::Invalid(format!("missing claim {c}"))
                    }
                    ErrorKind::Json(_) => {
                        AuthError::Invalid("claims are malformed or incomplete".into())
                    }
                    _ => AuthError::Invalid("malformed token".into()),
                }
            })?;
        let raw = data.claims;
        let now = u64::try_from(chrono::Utc::now().timestamp()).unwrap_or(0);
        if raw.exp > now.saturating_add(self.max_lifetime_secs) {
            return Err(AuthError::Invalid(format!(
                "exp lies more than {} s ahead (MAX_TOKEN_LIFETIME_SECS)",
                self.max_lifetime_secs
            )));
        }
        let role =
            Role::parse(&raw.role).ok_or_else(|| AuthError::Invalid("unknown role".into()))?;
        let sub = id_claim(&raw.sub).and_then(|s| UserId::parse(s).ok());
        let sub = sub.ok_or_else(|| AuthError::Invalid("sub is not a valid id".into()))?;
        let tenant = match raw.tenant_id.as_ref() {
            Some(v) => Some(
                id_claim(v)
                    .and_then(|s| TenantId::interned(&s).ok())
                    .ok_or_else(|| AuthError::Invalid("tenantId is not a valid id".into()))?,
            ),
            None if role == Role::SuperAdmin => None,
            None => return Err(AuthError::Invalid("missing claim tenantId".into())),
        };
        let jti = match raw.jti {
            Some(j) => Some(
                TokenId::parse(&j)
                    .map_err(|e| AuthError::Invalid(format!("jti is not usable: {e}")))?,
            ),
            None => None,
        };
        Ok(Claims {
            sub,
            tenant,
            role,
            exp: raw.exp,
            iat: raw.iat,
            jti,
        })
    }
}

/// The rules every token is checked against: `algorithms`, `exp` (and `nbf` when present)
/// with `leeway_secs`, and `iss`/`aud` when configured.
fn validation(
    algorithms: &[Algorithm],
    issuer: Option<&str>,
    audience: Option<&str>,
    leeway_secs: u64,
) -> Validation {
    let mut validation = Validation::new(algorithms[0]);
    validation.algorithms = algorithms.to_vec();
    validation.leeway = leeway_secs;
    validation.validate_nbf = true;
    // `sub` is checked by our own claim parsing, which also accepts a numeric id.
    let mut required = vec!["exp"];
    if let Some(iss) = issuer {
        validation.set_issuer(&[iss]);
        required.push("iss");
    }
    if audience.is_some() {
        required.push("aud");
    }
    validation.set_required_spec_claims(&required);
    match audience {
        Some(aud) => validation.set_audience(&[aud]),
        None => validation.validate_aud = false,
    }
    validation
}

/// A string or integer claim as a string.
fn id_claim(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) if n.is_i64() || n.is_u64() => Some(n.to_string()),
        _ => None,
    }
}

/// Mints a token; for the `token` subcommand, tests and the load generator.
pub fn mint_hs256(
    secret: &str,
    sub: &str,
    tenant: Option<&str>,
    role: Role,
    ttl_secs: i64,
) -> anyhow::Result<String> {
    let now = chrono::Utc::now().timestamp();
    let exp = (now + ttl_secs).max(0) as u64;
    let claims = RawClaims {
        sub: serde_json::Value::String(sub.to_owned()),
        tenant_id: tenant.map(|t| serde_json::Value::String(t.to_owned())),
        role: role.as_str().to_owned(),
        exp,
        iat: Some(now.max(0) as u64),
        jti: None,
    };
    Ok(jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SECRET: &str = "test-secret-of-at-least-32-bytes!";

    fn verifier() -> Verifier {
        Verifier::new(
            Algorithm::HS256,
            &KeySource::Secret(SECRET.into()),
            None,
            None,
            0,
        )
        .unwrap()
    }

    fn sign(claims: serde_json::Value, alg: Algorithm, secret: &str) -> String {
        jsonwebtoken::encode(
            &Header::new(alg),
            &claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    }

    fn in_an_hour() -> i64 {
        chrono::Utc::now().timestamp() + 3600
    }

    #[test]
    fn a_well_formed_token_yields_validated_claims_with_either_tenant_spelling() {
        let t = sign(
            json!({"sub": 42, "tenant_id": "t1", "role": "student", "exp": in_an_hour()}),
            Algorithm::HS256,
            SECRET,
        );
        let c = verifier().verify_now(&t).unwrap();
        assert_eq!(c.sub.as_str(), "42");
        assert_eq!(c.tenant.unwrap().as_str(), "t1");
        assert_eq!(c.role, Role::Student);
        let t = sign(
            json!({"sub": "u", "tenantId": "t2", "role": "admin", "exp": in_an_hour()}),
            Algorithm::HS256,
            SECRET,
        );
        assert_eq!(
            verifier().verify_now(&t).unwrap().tenant.unwrap().as_str(),
            "t2"
        );
    }

    #[test]
    fn refusals_map_onto_the_contract_codes() {
        let v = verifier();
        let expired = sign(
            json!({"sub": "u", "tenantId": "t", "role": "student", "exp": 1000}),
            Algorithm::HS256,
            SECRET,
        );
        assert_eq!(
            v.verify_now(&expired).unwrap_err().code(),
            ErrorCode::TokenExpired
        );
        let bad_sig = sign(
            json!({"sub": "u", "tenantId": "t", "role": "student", "exp": in_an_hour()}),
            Algorithm::HS256,
            "other",
        );
        assert_eq!(
            v.verify_now(&bad_sig).unwrap_err().code(),
            ErrorCode::InvalidToken
        );
        let other_alg = sign(
            json!({"sub": "u", "tenantId": "t", "role": "student", "exp": in_an_hour()}),
            Algorithm::HS384,
            SECRET,
        );
        assert_eq!(
            v.verify_now(&other_alg).unwrap_err().code(),
            ErrorCode::InvalidToken
        );
        let no_tenant = sign(
            json!({"sub": "u", "role": "student", "exp": in_an_hour()}),
            Algorithm::HS256,
            SECRET,
        );
        assert_eq!(
            v.verify_now(&no_tenant).unwrap_err().code(),
            ErrorCode::InvalidToken
        );
        let no_role = sign(
            json!({"sub": "u", "tenantId": "t", "exp": in_an_hour()}),
            Algorithm::HS256,
            SECRET,
        );
        assert_eq!(
            v.verify_now(&no_role).unwrap_err().code(),
            ErrorCode::InvalidToken
        );
        let bad_tenant = sign(
            json!({"sub": "u", "tenantId": "a:user:b", "role": "student", "exp": in_an_hour()}),
            Algorithm::HS256,
            SECRET,
        );
        assert_eq!(
            v.verify_now(&bad_tenant).unwrap_err().code(),
            ErrorCode::InvalidToken
        );
        assert_eq!(
            v.verify_now("not-a-jwt").unwrap_err().code(),
            ErrorCode::InvalidToken
        );
    }

    #[test]
    fn an_unsigned_alg_none_token_is_refused() {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let header = b64.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let body = b64.encode(
            json!({"sub": "u", "tenantId": "t", "role": "admin", "exp": in_an_hour()}).to_string(),
        );
        let token = format!("{header}.{body}.");
        assert_eq!(
            verifier().verify_now(&token).unwrap_err().code(),
            ErrorCode::InvalidToken
        );
    }

    #[test]
    fn a_super_admin_needs_no_tenant_and_may_act_in_any() {
        let t = sign(
            json!({"sub": "root", "role": "super_admin", "exp": in_an_hour()}),
            Algorithm::HS256,
            SECRET,
        );
        let c = verifier().verify_now(&t).unwrap();
        assert!(c.tenant.is_none());
        assert!(c.may_act_in(&TenantId::parse("any").unwrap()));
    }

    #[test]
    fn issuer_and_audience_are_checked_when_configured() {
        let v = Verifier::new(
            Algorithm::HS256,
            &KeySource::Secret(SECRET.into()),
            Some("lms"),
            Some("gw"),
            0,
        )
        .unwrap();
        let good = sign(
            json!({"sub": "u", "tenantId": "t", "role": "student", "exp": in_an_hour(), "iss": "lms", "aud": "gw"}),
            Algorithm::HS256,
            SECRET,
        );
        assert!(v.verify_now(&good).is_ok());
        let wrong_iss = sign(
            json!({"sub": "u", "tenantId": "t", "role": "student", "exp": in_an_hour(), "iss": "x", "aud": "gw"}),
            Algorithm::HS256,
            SECRET,
        );
        assert_eq!(
            v.verify_now(&wrong_iss).unwrap_err().code(),
            ErrorCode::InvalidToken
        );
        let no_aud = sign(
            json!({"sub": "u", "tenantId": "t", "role": "student", "exp": in_an_hour(), "iss": "lms"}),
            Algorithm::HS256,
            SECRET,
        );
        assert_eq!(
            v.verify_now(&no_aud).unwrap_err().code(),
            ErrorCode::InvalidToken
        );
    }

    #[test]
    fn an_hs256_secret_shorter_than_32_bytes_is_refused_with_a_way_to_make_one() {
        for short in ["", "s", "dev-secret", &"x".repeat(31)] {
            let err = Verifier::new(
                Algorithm::HS256,
                &KeySource::Secret(short.into()),
                None,
                None,
                0,
            )
            .err()
            .expect("a short secret is refused");
            let msg = err.to_string();
            assert!(msg.contains("at least 32"), "{msg}");
            assert!(msg.contains("openssl rand -hex 32"), "{msg}");
            assert!(
                !msg.contains("dev-secret"),
                "the secret is never echoed: {msg}"
            );
        }
        let ok = "x".repeat(32);
        assert!(Verifier::new(Algorithm::HS256, &KeySource::Secret(ok), None, None, 0).is_ok());
    }

    #[test]
    fn a_token_whose_exp_lies_beyond_the_maximum_lifetime_is_invalid() {
        let now = chrono::Utc::now().timestamp();
        let claims = |exp: serde_json::Value| {
            sign(
                json!({"sub": "u", "tenantId": "t", "role": "student", "exp": exp}),
                Algorithm::HS256,
                SECRET,
            )
        };
        let v = verifier();
        for exp in [json!(u64::MAX), json!(now + 86_400 + 120), json!(i64::MAX)] {
            let err = v.verify_now(&claims(exp.clone())).unwrap_err();
            assert_eq!(err.code(), ErrorCode::InvalidToken, "exp {exp}");
            assert!(
                err.to_string().contains("MAX_TOKEN_LIFETIME_SECS"),
                "exp {exp}: {err}"
            );
        }
        assert!(v.verify_now(&claims(json!(now + 86_000))).is_ok());
        let strict = verifier().max_lifetime(60);
        assert_eq!(
            strict
                .verify_now(&claims(json!(now + 3_600)))
                .unwrap_err()
                .code(),
            ErrorCode::InvalidToken
        );
        assert!(strict.verify_now(&claims(json!(now + 30))).is_ok());
    }

    /// Makes a key pair with the `openssl` command line (present on any Debian machine).
    fn openssl_key_pair(dir: &Path, genkey: &[&str]) -> (Vec<u8>, Vec<u8>) {
        let private = dir.join("private.pem");
        let public = dir.join("public.pem");
        let run = |args: &[&str]| {
            let ok = std::process::Command::new("openssl")
                .args(args)
                .status()
                .expect("openssl runs")
                .success();
            assert!(ok, "openssl {args:?} failed");
        };
        let mut gen_args = genkey.to_vec();
        gen_args.extend(["-out", private.to_str().unwrap()]);
        run(&gen_args);
        run(&[
            "pkey",
            "-in",
            private.to_str().unwrap(),
            "-pubout",
            "-out",
            public.to_str().unwrap(),
        ]);
        (
            std::fs::read(private).unwrap(),
            std::fs::read(public).unwrap(),
        )
    }

    #[test]
    fn rs256_and_es256_tokens_verify_with_a_pem_public_key_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            (
                Algorithm::RS256,
                vec![
                    "genpkey",
                    "-algorithm",
                    "RSA",
                    "-pkeyopt",
                    "rsa_keygen_bits:2048",
                ],
            ),
            (
                Algorithm::ES256,
                vec![
                    "genpkey",
                    "-algorithm",
                    "EC",
                    "-pkeyopt",
                    "ec_paramgen_curve:P-256",
                ],
            ),
        ];
        for (alg, genkey) in cases {
            let sub = dir.path().join(format!("{alg:?}"));
            std::fs::create_dir_all(&sub).unwrap();
            let (private, public) = openssl_key_pair(&sub, &genkey);
            let encoding = match alg {
                Algorithm::RS256 => EncodingKey::from_rsa_pem(&private).unwrap(),
                _ => EncodingKey::from_ec_pem(&private).unwrap(),
            };
            let claims =
                json!({"sub": "u", "tenantId": "t", "role": "student", "exp": in_an_hour()});
            let token = jsonwebtoken::encode(&Header::new(alg), &claims, &encoding).unwrap();
            let v = Verifier::new(alg, &KeySource::PublicKeyPem(public), None, None, 0).unwrap();
            assert_eq!(v.verify_now(&token).unwrap().sub.as_str(), "u", "{alg:?}");
            // An HS256 token signed with the public key as a secret (key confusion) is refused.
            let confused = sign(claims.clone(), Algorithm::HS256, "whatever");
            assert_eq!(
                v.verify_now(&confused).unwrap_err().code(),
                ErrorCode::InvalidToken
            );
            // A secret cannot stand in for the public key of an asymmetric algorithm.
            assert!(Verifier::new(alg, &KeySource::Secret("s".into()), None, None, 0).is_err());
        }
    }
}
