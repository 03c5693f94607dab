//! One poll of the console: nodes and their health, sockets per tenant across the cluster,
//! this node's sockets per course and user, presence across the cluster, and recent refusals, cut to what the viewer may
//! see (a super admin everything, a tenant admin its own tenant and nothing platform-wide).

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{SecondsFormat, Utc};
use futures::future::join_all;
use socketioxide::adapter::Adapter;

use super::tally::{self, TenantTally};
use crate::auth::Claims;
use crate::ids::TenantId;
use crate::presence::Presence;
use crate::recent_refusals::RecentRefusals;
use crate::role::Role;
use crate::service::Gateway;
use crate::types::{ConsoleNode, ConsoleOverview, ConsoleTenant, ConsoleViewer};

/// Refusals one overview carries.
pub const REFUSALS_MAX: usize = 50;
/// Presence look-ups (tenants and courses together) one overview makes at most: a poll
/// every two seconds must stay cheap for the store.
pub const PRESENCE_LOOKUPS_MAX: usize = 200;
/// How long one store read of an overview may take before its figure is left out.
const READ_TIMEOUT: Duration = Duration::from_secs(1);

/// What an overview is read from.
pub struct Sources<'a, A: Adapter> {
    pub gateway: &'a Gateway<A>,
    pub presence: &'a Presence,
    pub refusals: &'a RecentRefusals,
    pub draining: bool,
}

/// The tenant a viewer is confined to; `None` for a super admin, who sees all.
fn confined_to(viewer: &Claims) -> Option<&TenantId> {
    match viewer.role {
        Role::SuperAdmin => None,
        _ => viewer.tenant.as_ref(),
    }
}

/// Builds the overview `viewer` may see. Callers have checked the viewer's role.
pub async fn overview<A: Adapter>(src: Sources<'_, A>, viewer: &Claims) -> ConsoleOverview {
    let only = confined_to(viewer);
    let sees = |t: &TenantId| only.is_none_or(|o| o == t);
    let mut local = tally::local(src.gateway.io(), sees);
    if let Some(t) = only {
        local.entry(t.clone()).or_default();
    }
    let (nodes, partial, per_tenant) = nodes(&src, only.is_none()).await;
    // Connections per tenant are the cluster's (every node's heartbeat carries its
    // counts); courses and users stay this node's sockets.
    for (t, connections) in per_tenant {
        if let Ok(t) = TenantId::parse(t)
            && sees(&t)
        {
            local.entry(t).or_default().connections = connections;
        }
    }
    ConsoleOverview {
        viewer: ConsoleViewer {
            user_id: viewer.sub.clone(),
            role: viewer.role,
            tenant_id: viewer.tenant.clone(),
        },
        node: src.gateway.node_id().to_owned(),
        at: Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
        nodes,
        partial,
        tenants: with_presence(src.presence, local).await,
        refusals: src
            .refusals
            .newest(REFUSALS_MAX, |t| only.is_none() || t == only),
    }
}

/// Every live node (connection counts only for a platform viewer: they are not one
/// tenant's figures), whether some could not be read, and the sockets per tenant summed
/// over the nodes.
async fn nodes<A: Adapter>(
    src: &Sources<'_, A>,
    platform: bool,
) -> (Vec<ConsoleNode>, bool, BTreeMap<String, u64>) {
    let local_status = if src.draining {
        "draining"
    } else {
        match tokio::time::timeout(READ_TIMEOUT, src.gateway.ping_store()).await {
            Ok(Ok(())) => "ready",
            _ => "store_unreachable",
        }
    };
    let stats = src.gateway.stats().await;
    let mut per_tenant: BTreeMap<String, u64> = BTreeMap::new();
    for n in &stats.nodes {
        for (t, count) in &n.tenants {
            *per_tenant.entry(t.clone()).or_default() += count;
        }
    }
    let me = src.gateway.node_id();
    let nodes = stats
        .nodes
        .into_iter()
        .map(|n| ConsoleNode {
            status: if n.node == me { local_status } else { "up" }.to_owned(),
            connections: platform.then_some(n.connections),
            node: n.node,
        })
        .collect();
    (nodes, stats.partial, per_tenant)
}

/// Adds presence counts (users online on any node) to the tally, within the look-up
/// budget; a count the store could not give in time is left out, not guessed.
async fn with_presence(
    presence: &Presence,
    local: impl IntoIterator<Item = (TenantId, TenantTally)>,
) -> Vec<ConsoleTenant> {
    let mut budget = PRESENCE_LOOKUPS_MAX;
    let mut tenants: Vec<ConsoleTenant> = local
        .into_iter()
        .map(|(tenant_id, t)| ConsoleTenant {
            tenant_id,
            connections: t.connections,
            online: None,
            courses: t.courses,
            users: t.users,
            users_truncated: t.users_truncated,
        })
        .collect();
    tenants.sort_by(|a, b| {
        b.connections
            .cmp(&a.connections)
            .then(a.tenant_id.cmp(&b.tenant_id))
    });
    tenants.truncate(tally::TENANTS_MAX);
    let reads = tenants.iter_mut().flat_map(|t| {
        let tenant_id = t.tenant_id.clone();
        let tenant_read = {
            let tenant_id = tenant_id.clone();
            let slot = &mut t.online;
            async move {
                *slot = within(presence.tenant(&tenant_id, false))
                    .await
                    .map(|p| p.count);
            }
        };
        let course_reads = t.courses.iter_mut().map(move |c| {
            let tenant_id = tenant_id.clone();
            async move {
                c.online = within(presence.course_count(&tenant_id, &c.course_id))
                    .await
                    .map(|p| p.count);
            }
        });
        std::iter::once(futures::future::Either::Left(tenant_read))
            .chain(course_reads.map(futures::future::Either::Right))
    });
    let reads: Vec<_> = reads
        .take_while(|_| {
            let left = budget > 0;
            budget = budget.saturating_sub(1);
            left
        })
        .collect();
    join_all(reads).await;
    tenants
}

/// A store read bounded by [`READ_TIMEOUT`]; `None` when it failed or took too long.
async fn within<T, E>(read: impl Future<Output = Result<T, E>>) -> Option<T> {
    tokio::time::timeout(READ_TIMEOUT, read).await.ok()?.ok()
}
