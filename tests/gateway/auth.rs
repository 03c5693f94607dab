use lms_realtime::auth::Role;
use serde_json::json;

use crate::helpers::*;

fn sign(claims: serde_json::Value, alg: jsonwebtoken::Algorithm, secret: &str) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(alg),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

fn in_an_hour() -> i64 {
    chrono::Utc::now().timestamp() + 3600
}

#[tokio::test]
async fn a_token_is_accepted_in_auth_query_and_bearer_header() {
    let node = spawn_node().await;
    let t = token("u1", Some("t1"), Role::Student);
    for how in [TokenIn::Auth, TokenIn::Query, TokenIn::Header] {
        let c = connect_via(&node, Some(&t), how).await;
        ok(&c.ack("notification:count", json!({})).await);
        c.disconnect().await;
    }
}

#[tokio::test]
async fn every_refusal_carries_its_contract_code() {
    let node = spawn_node().await;
    assert_eq!(refused(&node, None, TokenIn::Auth).await, "UNAUTHORIZED");
    let expired = mint(Role::Student, -3600);
    assert_eq!(
        refused(&node, Some(&expired), TokenIn::Auth).await,
        "TOKEN_EXPIRED"
    );
    let bad_sig = sign(
        json!({"sub": "u", "tenantId": "t", "role": "student", "exp": in_an_hour()}),
        jsonwebtoken::Algorithm::HS256,
        "wrong",
    );
    assert_eq!(
        refused(&node, Some(&bad_sig), TokenIn::Auth).await,
        "INVALID_TOKEN"
    );
    let other_alg = sign(
        json!({"sub": "u", "tenantId": "t", "role": "student", "exp": in_an_hour()}),
        jsonwebtoken::Algorithm::HS512,
        SECRET,
    );
    assert_eq!(
        refused(&node, Some(&other_alg), TokenIn::Auth).await,
        "INVALID_TOKEN"
    );
    let no_tenant = sign(
        json!({"sub": "u", "role": "student", "exp": in_an_hour()}),
        jsonwebtoken::Algorithm::HS256,
        SECRET,
    );
    assert_eq!(
        refused(&node, Some(&no_tenant), TokenIn::Auth).await,
        "INVALID_TOKEN"
    );
    assert_eq!(
        refused(&node, Some("garbage"), TokenIn::Query).await,
        "INVALID_TOKEN"
    );
    let service = service_token("t1");
    assert_eq!(
        refused(&node, Some(&service), TokenIn::Header).await,
        "UNAUTHORIZED"
    );

    let metrics = node.metrics_text().await;
    assert!(
        metrics.contains("lms_security_events_total{kind=\"auth_failed\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("lms_socket_connects_total{outcome=\"TOKEN_EXPIRED\"}"),
        "{metrics}"
    );
    assert!(
        !metrics.contains(&expired),
        "a token must never reach the metrics"
    );
}

#[tokio::test]
async fn a_non_string_auth_token_is_invalid_even_with_a_good_token_in_the_query_or_header() {
    let node = spawn_node().await;
    let good = token("u1", Some("t1"), Role::Student);
    for bad in [json!(42), json!({"t": 1}), json!(["x"]), json!(null)] {
        for how in [TokenIn::Query, TokenIn::Header] {
            let inbox = std::sync::Arc::new(Inbox::default());
            let b = builder(&node, Some(&good), how, inbox.clone()).auth(json!({ "token": bad }));
            assert_eq!(
                refusal(b, inbox).await,
                "INVALID_TOKEN",
                "auth.token = {bad}"
            );
        }
    }
}

#[tokio::test]
async fn a_token_living_longer_than_max_token_lifetime_secs_is_refused() {
    let node = spawn_node().await;
    let forever = sign(
        json!({"sub": "u", "tenantId": "t", "role": "student", "exp": u64::MAX}),
        jsonwebtoken::Algorithm::HS256,
        SECRET,
    );
    assert_eq!(
        refused(&node, Some(&forever), TokenIn::Auth).await,
        "INVALID_TOKEN"
    );
    let two_days = mint(Role::Student, 2 * 86_400);
    assert_eq!(
        refused(&node, Some(&two_days), TokenIn::Auth).await,
        "INVALID_TOKEN"
    );
    let node = spawn_node_with(|c| c.max_token_lifetime_secs = 3 * 86_400).await;
    let c = connect(&node, &two_days).await;
    ok(&c.ack("notification:count", json!({})).await);
}

fn mint(role: Role, ttl: i64) -> String {
    lms_realtime::auth::mint_hs256(SECRET, "u1", Some("t1"), role, ttl).unwrap()
}

#[tokio::test]
async fn an_expiring_socket_gets_auth_expired_then_is_disconnected() {
    let node = spawn_node_with(|c| c.jwt_leeway_secs = 0).await;
    let c = connect(&node, &mint(Role::Student, 2)).await;
    c.inbox.next("auth:expired").await;
    c.inbox.next("close").await;
}

#[tokio::test]
async fn a_refreshed_socket_outlives_its_first_token() {
    let node = spawn_node_with(|c| c.jwt_leeway_secs = 0).await;
    let c = connect(&node, &mint(Role::Student, 2)).await;
    let ack = c
        .ack(
            "auth:refresh",
            json!({ "token": mint(Role::Student, 3600) }),
        )
        .await;
    assert!(ok(&ack)["expiresAt"].as_u64().unwrap() > 0);
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert!(c.inbox.all("auth:expired").is_empty());
    ok(&c.ack("notification:count", json!({})).await);
}

#[tokio::test]
async fn a_refresh_for_another_user_or_role_is_refused() {
    let node = spawn_node().await;
    let c = connect(&node, &token("u1", Some("t1"), Role::Student)).await;
    let other_user = token("u2", Some("t1"), Role::Student);
    assert_eq!(
        code(&c.ack("auth:refresh", json!({ "token": other_user })).await),
        "UNAUTHORIZED"
    );
    let escalate = token("u1", Some("t1"), Role::Admin);
    assert_eq!(
        code(&c.ack("auth:refresh", json!({ "token": escalate })).await),
        "UNAUTHORIZED"
    );
    assert_eq!(
        code(&c.ack("auth:refresh", json!({ "token": "nope" })).await),
        "UNAUTHORIZED"
    );
    assert_eq!(
        code(&c.ack("auth:refresh", json!({})).await),
        "INVALID_PAYLOAD"
    );
}
