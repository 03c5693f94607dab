//! The service API calls the scenarios make, as an LMS backend would make them.
//!
//! One keep-alive HTTP client for the whole run, a service token minted once. Errors come back
//! as short reason strings (`HTTP 503 UNAVAILABLE`, `transport`) because they are only counted.

use crate::target::Target;
use serde_json::{Value, json};
use std::time::Duration;

pub struct Api {
    http: reqwest::Client,
    bearer: String,
}

impl Api {
    pub fn new(service_token: &str, max_inflight: usize) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(max_inflight)
            .timeout(Duration::from_secs(30))
            .tcp_nodelay(true)
            .no_proxy()
            .build()?;
        Ok(Api {
            http,
            bearer: format!("Bearer {service_token}"),
        })
    }

    async fn call(
        &self,
        method: reqwest::Method,
        url: String,
        body: Option<Value>,
    ) -> Result<Value, String> {
        let mut req = self
            .http
            .request(method, url)
            .header("authorization", &self.bearer);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.map_err(|e| {
            if e.is_timeout() {
                "timeout".to_string()
            } else {
                "transport".to_string()
            }
        })?;
        let status = res.status();
        let body: Value = res.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            Ok(body)
        } else {
            let code = body["error"]["code"].as_str().unwrap_or("");
            Err(format!("HTTP {} {code}", status.as_u16())
                .trim_end()
                .to_string())
        }
    }

    /// `POST /api/v1/tenants/{t}/broadcast`; the marker rides in `message`.
    pub async fn broadcast(&self, node: &Target, tenant: &str, marker: &str) -> Result<(), String> {
        let body = json!({ "title": "loadgen", "message": marker, "type": "ANNOUNCEMENT", "priority": "NORMAL" });
        self.call(
            reqwest::Method::POST,
            format!("{}/api/v1/tenants/{tenant}/broadcast", node.http),
            Some(body),
        )
        .await
        .map(drop)
    }

    /// `POST /api/v1/notifications` to one user; `id` makes it idempotent, the marker rides in `message`.
    pub async fn notify(
        &self,
        node: &Target,
        tenant: &str,
        user: &str,
        id: &str,
        marker: &str,
    ) -> Result<(), String> {
        let body = json!({
            "tenantId": tenant,
            "target": { "userId": user },
            "notification": { "id": id, "title": "loadgen", "message": marker, "type": "GENERAL", "priority": "NORMAL" },
        });
        self.post_notification(node, body).await
    }

    /// `POST /api/v1/notifications` to many users with a `data` of `data_bytes` bytes: what a
    /// noisy tenant's backend sends; it carries no marker and is not accounted.
    pub async fn notify_many(
        &self,
        node: &Target,
        tenant: &str,
        users: &[String],
        data_bytes: usize,
    ) -> Result<(), String> {
        let body = json!({
            "tenantId": tenant,
            "target": { "userIds": users },
            "notification": {
                "title": "noise", "message": "noise", "type": "GENERAL", "priority": "LOW",
                "data": { "blob": "n".repeat(data_bytes) },
            },
        });
        self.post_notification(node, body).await
    }

    async fn post_notification(&self, node: &Target, body: Value) -> Result<(), String> {
        self.call(
            reqwest::Method::POST,
            format!("{}/api/v1/notifications", node.http),
            Some(body),
        )
        .await
        .map(drop)
    }

    /// `PUT /api/v1/tenants/{t}/courses/{c}/members` (replaces the membership).
    pub async fn put_members(
        &self,
        node: &Target,
        tenant: &str,
        course: &str,
        members: &[(String, &str)],
    ) -> Result<(), String> {
        let members: Vec<Value> = members
            .iter()
            .map(|(u, r)| json!({ "userId": u, "role": r }))
            .collect();
        self.call(
            reqwest::Method::PUT,
            format!(
                "{}/api/v1/tenants/{tenant}/courses/{course}/members",
                node.http
            ),
            Some(json!({ "members": members })),
        )
        .await
        .map(drop)
    }

    /// `GET /api/v1/tenants/{t}/users/{u}/unread`.
    pub async fn unread(&self, node: &Target, tenant: &str, user: &str) -> Result<u64, String> {
        let v = self
            .call(
                reqwest::Method::GET,
                format!("{}/api/v1/tenants/{tenant}/users/{user}/unread", node.http),
                None,
            )
            .await?;
        v["unread"]
            .as_u64()
            .ok_or_else(|| "no unread in answer".to_string())
    }

    /// `GET /healthz`: whether the node answers at all.
    pub async fn healthy(&self, node: &Target) -> bool {
        matches!(self.http.get(format!("{}/healthz", node.http)).send().await, Ok(r) if r.status().is_success())
    }
}
