//! Which nodes hold a user's sockets, read from the connection ledger, so that an emit to a
//! user's room reaches those nodes only (vendor/socketioxide-redis `servers`).
//!
//! A user's room has no sharded channel (`rooms::shard_tag`): with one, every connection
//! cost its node a subscription and Redis ~300 B, the largest per-connection cost in Redis.
//! The ledger already has, per user, a field per node process holding its sockets
//! (`store::redis_connections`), written before the socket is admitted and removed after it
//! left, which is what the adapter asks of a room's servers. A node process's ledger name
//! ends with its adapter id (`instance`), so the field names are the servers.

use std::str::FromStr;

use fred::clients::Client;
use fred::interfaces::HashesInterface;
use socketioxide_core::Uid;
use socketioxide_redis::RoomServers;

use super::metrics;
use crate::rooms;
use crate::store::keys;

/// A node process's name in the ledger and presence: its node id and its adapter id, so
/// that a new process under the same node id is a new instance.
pub fn instance(node: &str, server: Uid) -> String {
    format!("{node}#{server}")
}

/// The adapter id in a ledger name; `None` for a name of an older version (an 8-hex boot
/// id), whose emits then go everywhere as before.
fn server_of(instance: &str) -> Option<Uid> {
    let (_, id) = instance.rsplit_once('#')?;
    Uid::from_str(id).ok()
}

/// The servers named by a user's ledger fields (`<instance>` = count, `<instance>:t` =
/// last touched), or `None` when one cannot be told.
fn servers_of(fields: &[String]) -> Option<Vec<Uid>> {
    fields
        .iter()
        .filter(|f| !f.ends_with(":t"))
        .map(|f| server_of(f))
        .collect()
}

/// The adapter's resolver for users' rooms, reading the ledger on `client`.
pub fn room_servers(client: Client) -> RoomServers {
    RoomServers::new(move |room| {
        let (t, u) = rooms::user_of(room)?;
        let key = keys::user_connections(Some(&t), &u);
        let client = client.clone();
        Some(Box::pin(async move {
            let servers = match client.hkeys::<Vec<String>, _>(key).await {
                Ok(fields) => servers_of(&fields),
                Err(e) => {
                    tracing::debug!(error = %e, "connection ledger not read; the user's emit goes to every node");
                    None
                }
            };
            metrics::user_route(if servers.is_some() {
                "ledger"
            } else {
                "everywhere"
            });
            servers
        }))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ledger_fields_name_the_servers() {
        let (a, b) = (Uid::new(), Uid::new());
        let fields = [
            instance("node-1", a),
            format!("{}:t", instance("node-1", a)),
            instance("n#2", b),
        ];
        assert_eq!(servers_of(&fields), Some(vec![a, b]));
        assert_eq!(servers_of(&[]), Some(vec![]));
    }

    #[test]
    fn a_name_of_an_older_version_sends_everywhere() {
        let fields = [instance("node-1", Uid::new()), "node-2#1a2b3c4d".to_owned()];
        assert_eq!(servers_of(&fields), None);
    }
}
