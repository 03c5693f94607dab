//! Operator control on one node (§11): kicking a user's sockets, revoking tokens by user
//! and by `jti`, refused at connect and at `auth:refresh`.

use lms_realtime::auth::Role;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn a_kick_tells_and_disconnects_every_socket_of_the_user_and_no_one_else() {
    let node = spawn_node().await;
    let t = "t1".to_owned();
    let a1 = connect(&node, &token("u1", Some(&t), Role::Student)).await;
    let a2 = connect(&node, &token("u1", Some(&t), Role::Student)).await;
    let bystander = connect(&node, &token("u2", Some(&t), Role::Student)).await;

    let path = format!("/tenants/{t}/users/u1/sockets");
    let (status, body) = node.delete(&path, &service_token("other")).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("TENANT_MISMATCH"))
    );
    let (status, body) = node
        .delete(&path, &token("u9", Some(&t), Role::Admin))
        .await;
    assert_eq!(status, 403, "{body}");

    let (status, body) = node.delete(&path, &service_token(&t)).await;
    assert_eq!((status, &body), (200, &json!({ "disconnected": 2 })));
    for c in [&a1, &a2] {
        let err = c.inbox.next("error").await;
        assert_eq!(err["code"], "UNAUTHORIZED", "{err}");
        c.inbox.next("close").await;
    }
    ok(&bystander.ack("notification:count", json!({})).await);

    let (status, body) = node.delete(&path, &super_token()).await;
    assert_eq!((status, &body), (200, &json!({ "disconnected": 0 })));
    let (status, _) = node
        .delete(
            &format!("/tenants/{t}/users/a:b/sockets"),
            &service_token(&t),
        )
        .await;
    assert_eq!(status, 400);

    let metrics = node.metrics_text().await;
    assert_eq!(
        counter(&metrics, "lms_kicked_sockets_total{cause=\"kick\"}"),
        2.0,
        "{metrics}"
    );
    assert!(
        counter(
            &metrics,
            "lms_socket_disconnects_total{reason=\"server_disconnect\"}"
        ) >= 1.0,
        "{metrics}"
    );
}

#[tokio::test]
async fn a_user_revocation_refuses_older_tokens_at_connect_and_refresh_and_disconnects_live_ones() {
    let node = spawn_node().await;
    let t = "t1".to_owned();
    let old = token_with("u1", &t, now() - 60, None);
    let live = connect(&node, &old).await;
    let bystander = connect(&node, &token_with("u2", &t, now() - 60, None)).await;

    let (status, body) = node
        .post(
            &format!("/tenants/{t}/revocations"),
            &service_token(&t),
            json!({ "userId": "u1", "before": now() - 10 }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["disconnected"], 1, "{body}");
    assert_eq!(live.inbox.next("error").await["code"], "UNAUTHORIZED");
    live.inbox.next("close").await;

    assert_eq!(
        refused(&node, Some(&old), TokenIn::Auth).await,
        "UNAUTHORIZED"
    );
    let fresh = token_with("u1", &t, now(), None);
    let c = connect(&node, &fresh).await;
    // A refresh with a token issued before the revocation is refused; a fresh one is not.
    assert_eq!(
        code(&c.ack("auth:refresh", json!({ "token": old })).await),
        "UNAUTHORIZED"
    );
    ok(&c.ack("auth:refresh", json!({ "token": fresh })).await);
    ok(&bystander.ack("notification:count", json!({})).await);

    let metrics = node.metrics_text().await;
    assert!(
        counter(&metrics, "lms_revocations_total{kind=\"user\"}") >= 1.0,
        "{metrics}"
    );
    assert!(
        counter(&metrics, "lms_revoked_tokens_refused_total{at=\"connect\"}") >= 1.0,
        "{metrics}"
    );
    assert!(
        counter(&metrics, "lms_revoked_tokens_refused_total{at=\"refresh\"}") >= 1.0,
        "{metrics}"
    );
}

#[tokio::test]
async fn a_jti_revocation_refuses_that_token_only_and_disconnects_its_sockets() {
    let node = spawn_node().await;
    let t = "t1".to_owned();
    let revoked = token_with("u1", &t, now(), Some("tok-1"));
    let other = token_with("u1", &t, now(), Some("tok-2"));
    let a = connect(&node, &revoked).await;
    let b = connect(&node, &other).await;

    let (status, body) = node
        .post(
            &format!("/tenants/{t}/revocations"),
            &super_token(),
            json!({ "jti": "tok-1" }),
        )
        .await;
    assert_eq!(
        (status, body["disconnected"].as_u64()),
        (200, Some(1)),
        "{body}"
    );
    assert_eq!(a.inbox.next("error").await["code"], "UNAUTHORIZED");
    a.inbox.next("close").await;
    ok(&b.ack("notification:count", json!({})).await);

    assert_eq!(
        refused(&node, Some(&revoked), TokenIn::Auth).await,
        "UNAUTHORIZED"
    );
    assert_eq!(
        code(&b.ack("auth:refresh", json!({ "token": revoked })).await),
        "UNAUTHORIZED"
    );
    connect(&node, &other).await;
}

#[tokio::test]
async fn a_revoked_service_token_is_refused_by_the_service_api() {
    let node = spawn_node().await;
    let t = "t1";
    let claims = json!({
        "sub": "backend", "tenantId": t, "role": "service", "jti": "svc-1",
        "iat": now(), "exp": now() + 3600,
    });
    let leaked = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap();
    let unread = format!("/tenants/{t}/users/u1/unread");
    assert_eq!(node.get(&unread, &leaked).await.0, 200);
    let (status, body) = node
        .post(
            &format!("/tenants/{t}/revocations"),
            &service_token(t),
            json!({ "jti": "svc-1" }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = node.get(&unread, &leaked).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("UNAUTHORIZED")),
        "{body}"
    );
    assert_eq!(node.get(&unread, &service_token(t)).await.0, 200);
    let metrics = node.metrics_text().await;
    assert!(
        metrics.contains("lms_revoked_tokens_refused_total{at=\"api\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_revocation_needs_a_target_of_the_callers_tenant() {
    let node = spawn_node().await;
    let t = "t1".to_owned();
    let path = format!("/tenants/{t}/revocations");
    let (status, body) = node.post(&path, &service_token(&t), json!({})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("INVALID_PAYLOAD")),
        "{body}"
    );
    let (status, _) = node
        .post(
            &path,
            &service_token(&t),
            json!({ "userId": "u1", "extra": 1 }),
        )
        .await;
    assert_eq!(status, 422);
    let (status, _) = node
        .post(
            &path,
            &service_token(&t),
            json!({ "userId": "u1", "before": now() + 10_000_000 }),
        )
        .await;
    assert_eq!(status, 422);
    let (status, body) = node
        .post(&path, &service_token("other"), json!({ "userId": "u1" }))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("TENANT_MISMATCH"))
    );
    let (status, _) = node
        .post(
            "/tenants/a:b/revocations",
            &service_token(&t),
            json!({ "userId": "u1" }),
        )
        .await;
    assert_eq!(status, 400);
}
