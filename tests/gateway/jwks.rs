//! JWKS keys (§11) against a local HTTP server that serves a key set the test controls
//! and counts its fetches: rotation by `kid` with overlap, one re-fetch for a burst of
//! unknown `kid`s, the last good set kept when the server fails, and per-issuer sets
//! that never accept each other's keys. Keys are made with the `openssl` command line.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use base64::Engine as _;
use futures::future::join_all;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::helpers::*;

/// A signing key and its public JWK.
struct TestKey {
    kid: String,
    alg: Algorithm,
    encoding: EncodingKey,
    jwk: Value,
}

fn openssl(args: &[&str]) -> Vec<u8> {
    let out = std::process::Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl runs");
    assert!(out.status.success(), "openssl {args:?}: {out:?}");
    out.stdout
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl TestKey {
    fn new(kid: &str, alg: Algorithm) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let private = dir.path().join("private.pem");
        let p = private.to_str().unwrap();
        let genkey: &[&str] = match alg {
            Algorithm::RS256 => &[
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
            ],
            Algorithm::ES256 => &[
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
            ],
            _ => &["genpkey", "-algorithm", "ed25519"],
        };
        let mut args = genkey.to_vec();
        args.extend(["-out", p]);
        openssl(&args);
        let pem = std::fs::read(&private).unwrap();
        let der = openssl(&["pkey", "-in", p, "-pubout", "-outform", "DER"]);
        let (encoding, jwk) = match alg {
            Algorithm::RS256 => {
                let out = openssl(&["rsa", "-in", p, "-modulus", "-noout"]);
                let hex = String::from_utf8(out).unwrap();
                let hex = hex.trim().trim_start_matches("Modulus=");
                let n: Vec<u8> = (0..hex.len())
                    .step_by(2)
                    .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
                    .collect();
                (
                    EncodingKey::from_rsa_pem(&pem).unwrap(),
                    json!({"kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig", "n": b64(&n), "e": "AQAB"}),
                )
            }
            Algorithm::ES256 => {
                // SPKI DER of a P-256 key ends with the point 04 || x || y.
                let point = &der[der.len() - 64..];
                (
                    EncodingKey::from_ec_pem(&pem).unwrap(),
                    json!({"kty": "EC", "kid": kid, "crv": "P-256", "x": b64(&point[..32]), "y": b64(&point[32..])}),
                )
            }
            _ => (
                EncodingKey::from_ed_pem(&pem).unwrap(),
                json!({"kty": "OKP", "kid": kid, "crv": "Ed25519", "alg": "EdDSA", "x": b64(&der[der.len() - 32..])}),
            ),
        };
        Self {
            kid: kid.to_owned(),
            alg,
            encoding,
            jwk,
        }
    }

    fn sign(&self, kid: &str, extra: Value) -> String {
        let mut header = Header::new(self.alg);
        header.kid = Some(kid.to_owned());
        let mut claims = json!({
            "sub": "u1", "tenantId": "t1", "role": "student",
            "exp": chrono::Utc::now().timestamp() + 3600,
        });
        claims
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        jsonwebtoken::encode(&header, &claims, &self.encoding).unwrap()
    }

    fn token(&self) -> String {
        self.sign(&self.kid, json!({}))
    }
}

/// The identity provider's JWKS endpoint: `/{set}` serves the keys of that set.
#[derive(Clone, Default)]
struct Idp {
    sets: Arc<std::sync::Mutex<std::collections::HashMap<String, Value>>>,
    fetches: Arc<AtomicUsize>,
    failing: Arc<AtomicBool>,
}

impl Idp {
    fn publish(&self, set: &str, keys: &[&TestKey]) {
        let doc = json!({ "keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>() });
        self.sets.lock().unwrap().insert(set.to_owned(), doc);
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }

    async fn serve(&self) -> String {
        async fn jwks(State(idp): State<Idp>, Path(set): Path<String>) -> impl IntoResponse {
            idp.fetches.fetch_add(1, Ordering::SeqCst);
            if idp.failing.load(Ordering::SeqCst) {
                return (StatusCode::INTERNAL_SERVER_ERROR, axum::Json(json!({}))).into_response();
            }
            match idp.sets.lock().unwrap().get(&set) {
                Some(doc) => axum::Json(doc.clone()).into_response(),
                None => StatusCode::NOT_FOUND.into_response(),
            }
        }
        let app = axum::Router::new()
            .route("/{set}", axum::routing::get(jwks))
            .with_state(self.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}")
    }
}

async fn jwks_node(tweak: impl FnOnce(&mut lms_realtime::Config)) -> TestNode {
    spawn_node_with(|c| {
        c.jwt_secret = None;
        c.max_pending_sessions_per_ip = 500;
        tweak(c);
    })
    .await
}

#[tokio::test]
async fn keys_rotate_by_kid_with_overlap_and_no_refused_connect() {
    let idp = Idp::default();
    let base = idp.serve().await;
    let (k1, k2, k3) = (
        TestKey::new("k1", Algorithm::RS256),
        TestKey::new("k2", Algorithm::ES256),
        TestKey::new("k3", Algorithm::EdDSA),
    );
    idp.publish("main", &[&k1]);
    let node = jwks_node(|c| {
        c.jwt_jwks_url = Some(format!("{base}/main"));
        c.jwt_jwks_refresh_secs = 1;
        c.jwt_jwks_min_refetch_secs = 0;
    })
    .await;
    connect(&node, &k1.token()).await;

    // The new key is published; tokens signed with it are accepted at once (unknown kid
    // → fetch), and tokens of the old key still are.
    idp.publish("main", &[&k1, &k2]);
    connect(&node, &k2.token()).await;
    connect(&node, &k1.token()).await;

    // The old key is withdrawn after the overlap: its tokens are refused after a refresh.
    idp.publish("main", &[&k2, &k3]);
    tokio::time::sleep(Duration::from_millis(2_200)).await;
    assert_eq!(
        refused(&node, Some(&k1.token()), TokenIn::Auth).await,
        "INVALID_TOKEN"
    );
    connect(&node, &k2.token()).await;
    connect(&node, &k3.token()).await;
    // A token whose header names an algorithm its key is not published for is refused.
    assert_eq!(
        refused(&node, Some(&k2.sign("k3", json!({}))), TokenIn::Auth).await,
        "INVALID_TOKEN"
    );
}

#[tokio::test]
async fn a_burst_of_unknown_kids_causes_one_fetch_not_one_per_connect() {
    let idp = Idp::default();
    let base = idp.serve().await;
    let k1 = TestKey::new("k1", Algorithm::ES256);
    idp.publish("main", &[&k1]);
    let node = jwks_node(|c| c.jwt_jwks_url = Some(format!("{base}/main"))).await;
    assert_eq!(idp.fetches(), 1, "fetched at start");
    let unknown = k1.sign("nope", json!({}));
    let answers = join_all((0..50).map(|_| refused(&node, Some(&unknown), TokenIn::Auth))).await;
    assert!(answers.iter().all(|a| a == "INVALID_TOKEN"), "{answers:?}");
    assert!(idp.fetches() <= 2, "{} fetches", idp.fetches());
    connect(&node, &k1.token()).await;
}

#[tokio::test]
async fn a_failing_jwks_keeps_the_last_good_keys() {
    let idp = Idp::default();
    let base = idp.serve().await;
    let k1 = TestKey::new("k1", Algorithm::RS256);
    idp.publish("main", &[&k1]);
    let node = jwks_node(|c| {
        c.jwt_jwks_url = Some(format!("{base}/main"));
        c.jwt_jwks_refresh_secs = 1;
    })
    .await;
    idp.failing.store(true, Ordering::SeqCst);
    let before = idp.fetches();
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert!(
        idp.fetches() > before,
        "refreshed (and failed) in the background"
    );
    connect(&node, &k1.token()).await;
    let metrics = node.metrics_text().await;
    assert!(
        counter(&metrics, "lms_jwks_refreshes_total{outcome=\"error\"}") >= 1.0,
        "{metrics}"
    );
    assert!(metrics.contains("lms_jwks_keys{set=\"0\"} 1"), "{metrics}");
}

#[tokio::test]
async fn per_issuer_sets_never_accept_each_others_keys() {
    let idp = Idp::default();
    let base = idp.serve().await;
    let (ka, kb) = (
        TestKey::new("k", Algorithm::ES256),
        TestKey::new("k", Algorithm::ES256),
    );
    idp.publish("a", &[&ka]);
    idp.publish("b", &[&kb]);
    let issuers = json!({ "https://a.example": format!("{base}/a"), "https://b.example": format!("{base}/b") });
    let node = jwks_node(|c| c.jwt_issuers = Some(issuers.to_string())).await;

    connect(&node, &ka.sign("k", json!({"iss": "https://a.example"}))).await;
    connect(&node, &kb.sign("k", json!({"iss": "https://b.example"}))).await;
    // Same kid in both sets: A's key never verifies a token claiming issuer B.
    for token in [
        ka.sign("k", json!({"iss": "https://b.example"})),
        kb.sign("k", json!({"iss": "https://a.example"})),
        ka.sign("k", json!({"iss": "https://c.example"})),
        ka.sign("k", json!({})),
    ] {
        assert_eq!(
            refused(&node, Some(&token), TokenIn::Auth).await,
            "INVALID_TOKEN"
        );
    }
}

#[tokio::test]
async fn tokens_are_refused_as_unavailable_until_the_first_fetch_succeeds() {
    let idp = Idp::default();
    let base = idp.serve().await;
    let k1 = TestKey::new("k1", Algorithm::EdDSA);
    idp.failing.store(true, Ordering::SeqCst);
    idp.publish("main", &[&k1]);
    let node = jwks_node(|c| {
        c.jwt_jwks_url = Some(format!("{base}/main"));
        c.jwt_jwks_min_refetch_secs = 0;
    })
    .await;
    assert_eq!(
        refused(&node, Some(&k1.token()), TokenIn::Auth).await,
        "UNAVAILABLE"
    );
    idp.failing.store(false, Ordering::SeqCst);
    connect(&node, &k1.token()).await;
}
