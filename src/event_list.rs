//! The event list of docs/api.md, rendered from the two event tables
//! ([`crate::socket::client_events`], [`crate::server_events`]). `tests/api_docs.rs` fails
//! when the list in the docs is not exactly this, and prints what to paste.

use crate::server_events::SERVER_EVENTS;
use crate::socket::client_events::CLIENT_EVENTS;

/// The line before the generated list in docs/api.md.
pub const BEGIN: &str =
    "<!-- event-list:begin (generated from the event tables; tests/api_docs.rs checks it) -->";
/// The line after it.
pub const END: &str = "<!-- event-list:end -->";

/// The generated list, markers included.
pub fn render() -> String {
    let mut out = format!("{BEGIN}\n");
    out.push_str("| client → server event | payload | ack result |\n|---|---|---|\n");
    for e in CLIENT_EVENTS {
        let payload = e
            .payload
            .map_or_else(|| "none".to_owned(), |p| format!("`{p}`"));
        let ack = if e.ack == "()" { "{}" } else { e.ack };
        out.push_str(&format!("| `{}` | {payload} | `{ack}` |\n", e.name));
    }
    out.push_str("\n| server → client event | payload |\n|---|---|\n");
    for e in SERVER_EVENTS {
        out.push_str(&format!("| `{}` | `{}` |\n", e.name, e.payload));
    }
    out.push_str(END);
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn each_table_names_an_event_once() {
        let client: HashSet<_> = CLIENT_EVENTS.iter().map(|e| e.name).collect();
        let server: HashSet<_> = SERVER_EVENTS.iter().map(|e| e.name).collect();
        assert_eq!(client.len(), CLIENT_EVENTS.len());
        assert_eq!(server.len(), SERVER_EVENTS.len());
    }
}
