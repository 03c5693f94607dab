//! Per-tenant storage quotas: a tenant over `TENANT_STORAGE_QUOTA` gets 429 for stored
//! notifications, nothing stored, while another tenant goes on; the per-tenant storage
//! gauges follow the sweep.

use std::time::Duration;

use serde_json::json;

use crate::helpers::*;

fn with_data(tenant: &str, id: &str) -> serde_json::Value {
    json!({
        "tenantId": tenant,
        "target": { "userIds": ["u1", "u2"] },
        "notification": { "id": id, "title": "t", "message": "m", "data": { "blob": "x".repeat(600) } }
    })
}

#[tokio::test]
async fn a_tenant_over_its_storage_quota_gets_429_and_another_tenant_is_unaffected() {
    let node = spawn_node_with(|c| {
        c.tenant_storage_quota = Some(1_500);
        c.retention_sweep_interval = Duration::from_millis(200);
    })
    .await;
    let full = service_token("quota-full");
    // Each send stores a ~700 B body and two references (~210 B): the third is refused.
    let mut sent = 0;
    let refusal = loop {
        let id = format!("n{sent}");
        let (status, body) = node
            .post("/notifications", &full, with_data("quota-full", &id))
            .await;
        if status != 202 {
            break (status, body);
        }
        sent += 1;
        assert!(sent < 10, "the quota never applied");
    };
    assert_eq!(
        sent, 2,
        "a send costs ~1010 B: the second ends at ~2020 B, over 1500"
    );
    let (status, body) = refusal;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["code"], "RATE_LIMITED");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("storage quota"), "{message}");
    let (_, unread) = node.get("/tenants/quota-full/users/u1/unread", &full).await;
    assert_eq!(unread["unread"], 2, "the refused send stored nothing");

    // The same quota, its own usage: it sends what the full tenant no longer may.
    let other = service_token("quota-other");
    for id in ["a", "b"] {
        let (status, body) = node
            .post("/notifications", &other, with_data("quota-other", id))
            .await;
        assert_eq!(status, 202, "another tenant is unaffected: {body}");
    }

    // The sweep measures what is stored and reports it per tenant.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let metrics = node.metrics_text().await;
    let bytes = counter(&metrics, r#"lms_tenant_storage_bytes{tenant="quota-full"}"#);
    let entries = counter(
        &metrics,
        r#"lms_tenant_storage_entries{tenant="quota-full"}"#,
    );
    assert_eq!(entries, 4.0, "{metrics}");
    assert!((2_000.0..3_000.0).contains(&bytes), "{bytes}");
}
