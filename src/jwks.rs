//! JWKS key sets (§11): verification keys fetched from the identity provider, so that a
//! key rotation needs no restart and refuses no token.
//!
//! A token's `kid` picks the key. Each set is fetched at start, refreshed in the
//! background, and fetched again when a token names a `kid` the set does not hold: that
//! is how a newly published key becomes usable before the next refresh. Those fetches are
//! rate-limited per set and single-flight, so a burst of tokens with an unknown `kid`
//! costs one fetch, not one per token. A failed fetch keeps the last good set.
//!
//! With `JWT_ISSUERS`, one set per issuer: the token's `iss` (read unverified, then
//! verified) picks the set, and a key of one issuer never verifies another's token.
//! Only asymmetric keys are taken from a set (RS256, ES256, EdDSA): a symmetric `oct` key
//! published in a JWKS would be a shared secret anyone can read.

use std::collections::HashMap;
use std::sync::{Arc, RwLock, Weak};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, Jwk};
use jsonwebtoken::{Algorithm, DecodingKey};

use crate::metrics;

/// The algorithms a JWKS key may verify.
pub const ALGORITHMS: [Algorithm; 3] = [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA];

/// How sets are kept fresh (`JWT_JWKS_REFRESH_SECS`, `JWT_JWKS_MIN_REFETCH_SECS`).
#[derive(Debug, Clone, Copy)]
pub struct Freshness {
    /// Background refresh interval.
    pub refresh: Duration,
    /// Least time between two fetches of one set triggered by unknown `kid`s.
    pub min_refetch: Duration,
    /// Time allowed for one fetch.
    pub timeout: Duration,
}

/// One usable key.
#[derive(Clone)]
pub struct Key {
    pub decoding: DecodingKey,
    /// The `alg` the key is published for, when the set says.
    pub alg: Option<Algorithm>,
}

#[derive(Default)]
struct Loaded {
    by_kid: HashMap<String, Key>,
    /// Keys published without a `kid`: used only for a token without one, when alone.
    anonymous: Vec<Key>,
    /// Whether any fetch has succeeded yet.
    ready: bool,
}

/// One JWKS URL and its last good keys.
pub struct KeySet {
    /// The set's index in configuration, the metric label (never the URL).
    label: &'static str,
    url: String,
    client: reqwest::Client,
    keys: RwLock<Arc<Loaded>>,
    /// When the last fetch for an unknown `kid` started; held across that fetch.
    refetch: tokio::sync::Mutex<Option<Instant>>,
    freshness: Freshness,
}

/// Why a key could not be found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Missing {
    /// The set has never been fetched successfully.
    NotLoaded,
    /// The set holds no key with this `kid` (or no single key for a token without one).
    UnknownKid,
}

impl KeySet {
    fn new(index: usize, url: String, client: reqwest::Client, freshness: Freshness) -> Self {
        Self {
            // Leaked once per configured set, at start.
            label: Box::leak(index.to_string().into_boxed_str()),
            url,
            client,
            keys: RwLock::default(),
            refetch: tokio::sync::Mutex::new(None),
            freshness,
        }
    }

    fn loaded(&self) -> Arc<Loaded> {
        self.keys.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The key for `kid` among the keys at hand.
    pub fn find(&self, kid: Option<&str>) -> Result<Key, Missing> {
        let loaded = self.loaded();
        if !loaded.ready {
            return Err(Missing::NotLoaded);
        }
        let found = match kid {
            Some(kid) => loaded.by_kid.get(kid).cloned(),
            None => match (loaded.by_kid.len(), loaded.anonymous.as_slice()) {
                (0, [only]) => Some(only.clone()),
                (1, []) => loaded.by_kid.values().next().cloned(),
                _ => None,
            },
        };
        found.ok_or(Missing::UnknownKid)
    }

    /// The key for `kid`, fetching the set again first if it does not hold it (at most
    /// once per `min_refetch`; concurrent callers wait for the same fetch).
    pub async fn find_or_fetch(&self, kid: Option<&str>) -> Result<Key, Missing> {
        if let Ok(key) = self.find(kid) {
            return Ok(key);
        }
        let mut last = self.refetch.lock().await;
        if let Ok(key) = self.find(kid) {
            return Ok(key);
        }
        if last.is_none_or(|t| t.elapsed() >= self.freshness.min_refetch) {
            *last = Some(Instant::now());
            self.fetch().await;
        }
        drop(last);
        self.find(kid)
    }

    /// Fetches the set; on failure keeps the last good one. Returns whether it succeeded.
    pub async fn fetch(&self) -> bool {
        match self.download().await {
            Ok(loaded) => {
                let n = loaded.by_kid.len() + loaded.anonymous.len();
                metrics::jwks_refresh(true);
                metrics::jwks_keys(self.label, n);
                tracing::debug!(set = self.label, keys = n, "JWKS fetched");
                *self.keys.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(loaded);
                true
            }
            Err(e) => {
                metrics::jwks_refresh(false);
                tracing::warn!(set = self.label, error = %e, "JWKS fetch failed; keeping the last good keys");
                false
            }
        }
    }

    async fn download(&self) -> anyhow::Result<Loaded> {
        let res = self
            .client
            .get(&self.url)
            .timeout(self.freshness.timeout)
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("request failed: {}", e.without_url()))?;
        let status = res.status();
        if !status.is_success() {
            anyhow::bail!("answered {status}");
        }
        let body: serde_json::Value = res
            .json()
            .await
            .map_err(|e| anyhow::anyhow!("not JSON: {}", e.without_url()))?;
        parse_set(&body)
    }
}

/// Reads the usable keys of a JWKS document; keys that cannot be used are skipped (and
/// logged), so one odd key does not hide the others.
fn parse_set(doc: &serde_json::Value) -> anyhow::Result<Loaded> {
    let Some(keys) = doc.get("keys").and_then(|k| k.as_array()) else {
        anyhow::bail!("the document has no \"keys\" array");
    };
    let mut loaded = Loaded {
        ready: true,
        ..Default::default()
    };
    for raw in keys {
        let jwk: Jwk = match serde_json::from_value(raw.clone()) {
            Ok(j) => j,
            Err(e) => {
                tracing::warn!(error = %e, "JWKS key skipped: not a JWK");
                continue;
            }
        };
        let kid = jwk.common.key_id.clone();
        match usable(&jwk) {
            Ok(key) => match kid {
                Some(kid) => {
                    loaded.by_kid.insert(kid, key);
                }
                None => loaded.anonymous.push(key),
            },
            Err(why) => tracing::warn!(kid = ?kid, why, "JWKS key skipped"),
        }
    }
    Ok(loaded)
}

fn usable(jwk: &Jwk) -> Result<Key, &'static str> {
    if matches!(jwk.algorithm, AlgorithmParameters::OctetKey(_)) {
        return Err("symmetric keys are never taken from a JWKS");
    }
    if jwk
        .common
        .public_key_use
        .as_ref()
        .is_some_and(|u| *u != jsonwebtoken::jwk::PublicKeyUse::Signature)
    {
        return Err("not a signature key");
    }
    let alg = match jwk.common.key_algorithm {
        Some(a) => {
            let alg: Algorithm = a.to_string().parse().map_err(|_| "unsupported alg")?;
            if !ALGORITHMS.contains(&alg) {
                return Err("alg is not RS256, ES256 or EdDSA");
            }
            Some(alg)
        }
        None => None,
    };
    let decoding = DecodingKey::from_jwk(jwk).map_err(|_| "unusable key parameters")?;
    Ok(Key { decoding, alg })
}

/// Every configured set, and how a token picks one.
pub struct KeySets {
    sets: Vec<Arc<KeySet>>,
    /// `JWT_ISSUERS`: issuer → index in `sets`. `None`: one set for every token.
    issuers: Option<HashMap<String, usize>>,
    freshness: Freshness,
}

/// Which set a token belongs to.
pub enum Pick<'a> {
    /// The one set of `JWT_JWKS_URL`.
    Only(&'a Arc<KeySet>),
    /// The set of this issuer (whose `iss` the verification then requires).
    Issuer(&'a Arc<KeySet>, &'a str),
}

impl KeySets {
    /// One set for every token (`JWT_JWKS_URL`).
    pub fn single(url: String, freshness: Freshness) -> anyhow::Result<Self> {
        let client = http_client()?;
        Ok(Self {
            sets: vec![Arc::new(KeySet::new(0, url, client, freshness))],
            issuers: None,
            freshness,
        })
    }

    /// One set per issuer (`JWT_ISSUERS`); issuers sharing a URL share the set.
    pub fn per_issuer(map: &HashMap<String, String>, freshness: Freshness) -> anyhow::Result<Self> {
        let client = http_client()?;
        let mut sets: Vec<Arc<KeySet>> = Vec::new();
        let mut issuers = HashMap::new();
        let mut by_url: HashMap<&str, usize> = HashMap::new();
        let mut names: Vec<_> = map.keys().collect();
        names.sort();
        for iss in names {
            let url = &map[iss];
            let index = *by_url.entry(url).or_insert_with(|| {
                sets.push(Arc::new(KeySet::new(
                    sets.len(),
                    url.clone(),
                    client.clone(),
                    freshness,
                )));
                sets.len() - 1
            });
            issuers.insert(iss.clone(), index);
        }
        Ok(Self {
            sets,
            issuers: Some(issuers),
            freshness,
        })
    }

    /// Whether the token's issuer picks the set (and so must be verified).
    pub fn by_issuer(&self) -> bool {
        self.issuers.is_some()
    }

    /// The set for a token whose unverified `iss` is `iss`; `None` for an unknown issuer.
    pub fn pick<'a>(&'a self, iss: Option<&'a str>) -> Option<Pick<'a>> {
        match &self.issuers {
            None => self.sets.first().map(Pick::Only),
            Some(map) => {
                let iss = iss?;
                map.get(iss).map(|&i| Pick::Issuer(&self.sets[i], iss))
            }
        }
    }

    /// Fetches every set once (a failure is logged, and tokens of that set are refused
    /// with UNAVAILABLE until a fetch succeeds), then refreshes them in the background for
    /// as long as anything holds these sets.
    pub async fn start(self: &Arc<Self>) {
        futures::future::join_all(self.sets.iter().map(|s| s.fetch())).await;
        let weak: Weak<Self> = Arc::downgrade(self);
        let every = self.freshness.refresh;
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(sets) = weak.upgrade() else { return };
                futures::future::join_all(sets.sets.iter().map(|s| s.fetch())).await;
            }
        });
    }
}

fn http_client() -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .user_agent(concat!("lms-realtime/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| anyhow::anyhow!("cannot build the JWKS HTTP client: {e}"))
}

/// Reads `JWT_ISSUERS`: a JSON object `{ "<issuer>": "<jwks url>", … }`, given inline or
/// as the path of a file holding it.
pub fn parse_issuers(raw: &str) -> anyhow::Result<HashMap<String, String>> {
    let text = if raw.trim_start().starts_with('{') {
        raw.to_owned()
    } else {
        std::fs::read_to_string(raw.trim()).map_err(|e| {
            anyhow::anyhow!("JWT_ISSUERS is neither a JSON object nor a readable file ({e})")
        })?
    };
    let map: HashMap<String, String> = serde_json::from_str(&text).map_err(|e| {
        anyhow::anyhow!(
            "JWT_ISSUERS must be a JSON object of issuer to JWKS URL, e.g. {{\"https://idp.example\": \"https://idp.example/jwks.json\"}}: {e}"
        )
    })?;
    if map.is_empty() {
        anyhow::bail!("JWT_ISSUERS names no issuer");
    }
    for (iss, url) in &map {
        check_url(url).map_err(|e| anyhow::anyhow!("JWT_ISSUERS, issuer {iss:?}: {e}"))?;
    }
    Ok(map)
}

/// A JWKS URL must be http(s).
pub fn check_url(url: &str) -> anyhow::Result<()> {
    if url.starts_with("https://") || url.starts_with("http://") {
        Ok(())
    } else {
        anyhow::bail!("a JWKS URL must start with https:// (or http:// on a private network)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn issuers_are_read_inline_or_from_a_file_and_bad_ones_are_explained() {
        let inline = parse_issuers(r#"{"a": "https://a/jwks", "b": "http://b/jwks"}"#).unwrap();
        assert_eq!(inline.len(), 2);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("issuers.json");
        std::fs::write(&path, r#"{"a": "https://a/jwks"}"#).unwrap();
        assert_eq!(parse_issuers(path.to_str().unwrap()).unwrap().len(), 1);
        for bad in ["{}", r#"{"a": 1}"#, r#"{"a": "ftp://x"}"#, "/no/such/file"] {
            assert!(parse_issuers(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn symmetric_and_foreign_keys_are_skipped_and_the_rest_kept() {
        let doc = json!({"keys": [
            {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
            {"kty": "OKP", "crv": "Ed25519", "kid": "ed", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
            {"kty": "weird", "kid": "w"},
            {"kty": "OKP", "crv": "Ed25519", "kid": "enc", "use": "enc", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
        ]});
        let loaded = parse_set(&doc).unwrap();
        assert_eq!(loaded.by_kid.keys().collect::<Vec<_>>(), vec!["ed"]);
        assert!(parse_set(&json!({"nokeys": []})).is_err());
    }
}
