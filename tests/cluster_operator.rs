//! Operator control across a cluster (§11) against a real `redis-server`: a kick and a
//! revocation reach the user's sockets on every node, a revoked token is refused on every
//! node, and the Redis revocation engine passes the shared conformance suite.

#[allow(dead_code)]
#[path = "gateway/helpers.rs"]
mod helpers;

#[allow(dead_code)]
mod cluster_support;

use fred::interfaces::ClientLike;
use lms_realtime::auth::Role;
use lms_realtime::cluster;
use lms_realtime::config::Secret;
use lms_realtime::store::redis_revocations::RedisRevocations;
use lms_realtime::store::revocations::conformance;
use serde_json::json;

use cluster_support::*;
use helpers::*;

async fn spawn(url: &str, id: &str) -> TestNode {
    let (url, id) = (url.to_owned(), id.to_owned());
    spawn_node_with(move |c| {
        c.redis_url = Some(Secret(url));
        c.node_id = Some(id);
    })
    .await
}

async fn two_nodes(redis: &RedisServer) -> [TestNode; 2] {
    let prefix = format!("op{}", fastrand::u32(..));
    [
        spawn(&redis.url(), &format!("{prefix}-1")).await,
        spawn(&redis.url(), &format!("{prefix}-2")).await,
    ]
}

#[tokio::test]
async fn the_redis_revocations_pass_the_conformance_suite() {
    let redis = RedisServer::start();
    let (config, perf, connection, policy) = cluster::client_config(&redis.url()).unwrap();
    let client = fred::clients::Client::new(config, Some(perf), Some(connection), Some(policy));
    client.init().await.expect("connects to the test redis");
    conformance::all(std::sync::Arc::new(RedisRevocations::new(client))).await;
}

#[tokio::test]
async fn a_kick_disconnects_the_users_sockets_on_every_node_and_nobody_else() {
    let redis = RedisServer::start();
    let [a, b] = two_nodes(&redis).await;
    let t = tenant();
    let on_a = connect(&a, &token("u1", Some(&t), Role::Student)).await;
    let on_b = connect(&b, &token("u1", Some(&t), Role::Student)).await;
    let bystander = connect(&b, &token("u2", Some(&t), Role::Student)).await;
    let path = format!("/tenants/{t}/users/u1/sockets");

    let (status, body) = a.delete(&path, &service_token(&tenant())).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("TENANT_MISMATCH"))
    );

    let (status, body) = a.delete(&path, &service_token(&t)).await;
    assert_eq!((status, &body), (200, &json!({ "disconnected": 2 })));
    for c in [&on_a, &on_b] {
        assert_eq!(c.inbox.next("error").await["code"], "UNAUTHORIZED");
        c.inbox.next("close").await;
    }
    ok(&bystander.ack("notification:count", json!({})).await);
    bystander.inbox.assert_none("error").await;
}

#[tokio::test]
async fn a_revocation_is_enforced_on_every_node_and_disconnects_live_sockets_everywhere() {
    let redis = RedisServer::start();
    let [a, b] = two_nodes(&redis).await;
    let t = tenant();
    let old = token_with("u1", &t, now() - 60, None);
    let by_jti = token_with("u3", &t, now(), Some("jti-9"));
    let on_a = connect(&a, &old).await;
    let on_b = connect(&b, &old).await;
    let jti_on_b = connect(&b, &by_jti).await;
    let bystander = connect(&a, &token_with("u2", &t, now() - 60, None)).await;

    let (status, body) = b
        .post(
            &format!("/tenants/{t}/revocations"),
            &service_token(&t),
            json!({ "userId": "u1", "before": now() - 10 }),
        )
        .await;
    assert_eq!(
        (status, body["disconnected"].as_u64()),
        (200, Some(2)),
        "{body}"
    );
    let (status, body) = a
        .post(
            &format!("/tenants/{t}/revocations"),
            &service_token(&t),
            json!({ "jti": "jti-9" }),
        )
        .await;
    assert_eq!(
        (status, body["disconnected"].as_u64()),
        (200, Some(1)),
        "{body}"
    );
    for c in [&on_a, &on_b, &jti_on_b] {
        assert_eq!(c.inbox.next("error").await["code"], "UNAUTHORIZED");
        c.inbox.next("close").await;
    }

    for node in [&a, &b] {
        assert_eq!(
            refused(node, Some(&old), TokenIn::Auth).await,
            "UNAUTHORIZED"
        );
        assert_eq!(
            refused(node, Some(&by_jti), TokenIn::Auth).await,
            "UNAUTHORIZED"
        );
        let fresh = connect(node, &token_with("u1", &t, now(), None)).await;
        assert_eq!(
            code(&fresh.ack("auth:refresh", json!({ "token": old })).await),
            "UNAUTHORIZED"
        );
    }
    ok(&bystander.ack("notification:count", json!({})).await);
}
