//! The operator console's API on one node: who may see what, the kick a tenant admin may
//! make, and the ring of recent refusals (never a token in it).

use lms_realtime::auth::Role;
use serde_json::{Value, json};

use crate::helpers::*;

fn tenant<'a>(overview: &'a Value, t: &str) -> Option<&'a Value> {
    overview["tenants"]
        .as_array()?
        .iter()
        .find(|x| x["tenantId"] == t)
}

#[tokio::test]
async fn a_super_admin_sees_every_tenant_and_a_tenant_admin_only_its_own() {
    let node = spawn_node().await;
    node.enroll("t1", "c1", "u1", "student").await;
    let _a = connect(&node, &token("u1", Some("t1"), Role::Student)).await;
    let _b = connect(&node, &token("u2", Some("t2"), Role::Student)).await;
    wait_for_connections(&node, 2).await;

    let (status, all) = node.get("/console/overview", &super_token()).await;
    assert_eq!(status, 200, "{all}");
    assert_eq!(all["viewer"]["role"], "super_admin");
    assert_eq!(all["nodes"][0]["status"], "ready", "{all}");
    assert_eq!(all["nodes"][0]["connections"], 2, "{all}");
    let t1 = tenant(&all, "t1").expect("t1 listed");
    assert_eq!(t1["connections"], 1);
    assert_eq!(t1["online"], 1, "{t1}");
    assert_eq!(t1["courses"][0]["courseId"], "c1");
    assert_eq!(t1["courses"][0]["sockets"], 1);
    assert_eq!(t1["courses"][0]["online"], 1);
    assert_eq!(
        t1["users"][0],
        json!({ "userId": "u1", "role": "student", "sockets": 1 })
    );
    assert!(tenant(&all, "t2").is_some());

    let (status, mine) = node
        .get("/console/overview", &token("boss", Some("t2"), Role::Admin))
        .await;
    assert_eq!(status, 200, "{mine}");
    assert_eq!(mine["tenants"].as_array().unwrap().len(), 1, "{mine}");
    assert_eq!(tenant(&mine, "t2").unwrap()["connections"], 1);
    assert!(
        mine["nodes"][0].get("connections").is_none(),
        "platform figures are not a tenant admin's: {mine}"
    );

    for role in [Role::Student, Role::Instructor, Role::Service] {
        let (status, body) = node
            .get("/console/overview", &token("x", Some("t1"), role))
            .await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (403, Some("FORBIDDEN")),
            "{role:?}"
        );
    }
    let (status, _) = node.get("/console/overview", "garbage").await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn a_tenant_admin_kicks_in_its_own_tenant_and_is_refused_in_another() {
    let node = spawn_node().await;
    let mine = connect(&node, &token("u1", Some("t1"), Role::Student)).await;
    let theirs = connect(&node, &token("u1", Some("t2"), Role::Student)).await;
    let admin = token("boss", Some("t1"), Role::Admin);

    let (status, body) = node
        .delete("/console/tenants/t2/users/u1/sockets", &admin)
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("TENANT_MISMATCH"))
    );
    let (status, body) = node
        .delete("/console/tenants/t1/users/u1/sockets", &admin)
        .await;
    assert_eq!((status, &body), (200, &json!({ "disconnected": 1 })));
    assert_eq!(mine.inbox.next("error").await["code"], "UNAUTHORIZED");
    mine.inbox.next("close").await;
    ok(&theirs.ack("notification:count", json!({})).await);

    // The §11 route itself stays service / super_admin only.
    let (status, _) = node.delete("/tenants/t1/users/u1/sockets", &admin).await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn refusals_are_kept_with_kind_code_and_client_never_the_token_and_per_tenant() {
    let node = spawn_node().await;
    let bad = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2VjcmV0LXRva2VuLXRleHQ";
    assert_eq!(
        refused(&node, Some(bad), TokenIn::Auth).await,
        "INVALID_TOKEN"
    );
    let (status, _) = node.get("/tenants/t2/presence", &service_token("t1")).await;
    assert_eq!(status, 403);

    let (_, all) = node.get("/console/overview", &super_token()).await;
    let refusals = all["refusals"].as_array().expect("refusals");
    assert_eq!(refusals.len(), 2, "{all}");
    assert_eq!(refusals[0]["kind"], "tenant_mismatch");
    assert_eq!(refusals[0]["code"], "TENANT_MISMATCH");
    assert_eq!(refusals[0]["what"], "/api/v1/tenants/{t}/presence");
    assert_eq!(refusals[0]["tenant"], "t1");
    assert_eq!(refusals[1]["kind"], "auth_failed");
    assert_eq!(refusals[1]["what"], "connect");
    assert_eq!(refusals[1]["code"], "INVALID_TOKEN");
    assert_eq!(refusals[1]["client"], "127.0.0.1");
    assert!(refusals[1].get("tenant").is_none());
    assert!(!all.to_string().contains(bad), "a token in the overview");

    let (_, t1) = node
        .get("/console/overview", &token("boss", Some("t1"), Role::Admin))
        .await;
    assert_eq!(t1["refusals"].as_array().unwrap().len(), 1, "{t1}");
    let (_, t2) = node
        .get("/console/overview", &token("boss", Some("t2"), Role::Admin))
        .await;
    assert_eq!(t2["refusals"], json!([]), "{t2}");
}

#[tokio::test]
async fn the_page_is_embedded_with_a_strict_csp() {
    let node = spawn_node().await;
    let res = reqwest::get(format!("{}/console", node.url()))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let csp = res.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"));
    assert!(res.text().await.unwrap().contains("/console/console.js"));
    let js = reqwest::get(format!("{}/console/console.js", node.url()))
        .await
        .unwrap();
    assert_eq!(
        js.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    let missing = reqwest::get(format!("{}/console/secret.txt", node.url()))
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
}
