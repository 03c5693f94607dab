//! Engine.IO v4 / Socket.IO v4 text packets, parsed and built without a client library.
//!
//! Thousands of sockets share a couple of cores with the server under test, so the receive path
//! avoids a JSON parse for the frames that matter: an event's name is sliced out of the text and
//! the load generator's own marker (`lg.<stream>.<seq>.<sent_us>`, carried in a string field of
//! the payload, in the id alphabet so it also fits an id field such as `contentId`) is found by a substring search. Everything here is pure and unit-tested.

/// One websocket text message from the server, as the client needs to see it.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    /// `0{...}`: the Engine.IO handshake.
    Open {
        ping_interval_ms: u64,
        ping_timeout_ms: u64,
    },
    /// `2`: the server's heartbeat; answer with [`PONG`].
    Ping,
    /// `1`: the server closes the transport.
    Close,
    /// `40{...}`: the namespace accepted the CONNECT.
    Connected,
    /// `44{"message":...}`: the CONNECT was refused.
    ConnectError { message: String },
    /// `41`: the server disconnected this socket from the namespace.
    Disconnected,
    /// `42["name",payload...]`, optionally with an ack id the client should answer.
    Event { name: &'a str, args: &'a str },
    /// `43<id>[...]`: the answer to one of our events.
    Ack { id: u64, args: &'a str },
    /// Anything else (noop, upgrade probes, binary placeholders).
    Other,
}

/// The reply to a server ping.
pub const PONG: &str = "3";

/// Parses one text message.
pub fn parse(text: &str) -> Frame<'_> {
    let bytes = text.as_bytes();
    match bytes.first() {
        Some(b'0') => parse_open(&text[1..]),
        Some(b'1') => Frame::Close,
        Some(b'2') => Frame::Ping,
        Some(b'4') => parse_socketio(&text[1..]),
        _ => Frame::Other,
    }
}

fn parse_open(json: &str) -> Frame<'_> {
    let v: serde_json::Value = serde_json::from_str(json).unwrap_or_default();
    Frame::Open {
        ping_interval_ms: v["pingInterval"].as_u64().unwrap_or(25_000),
        ping_timeout_ms: v["pingTimeout"].as_u64().unwrap_or(20_000),
    }
}

fn parse_socketio(p: &str) -> Frame<'_> {
    let Some(kind) = p.as_bytes().first() else {
        return Frame::Other;
    };
    let rest = &p[1..];
    match kind {
        b'0' => Frame::Connected,
        b'1' => Frame::Disconnected,
        b'2' => {
            let (_, args) = split_ack_id(rest);
            match event_name(args) {
                Some(name) => Frame::Event { name, args },
                None => Frame::Other,
            }
        }
        b'3' => match split_ack_id(rest) {
            (Some(id), args) => Frame::Ack { id, args },
            (None, _) => Frame::Other,
        },
        b'4' => {
            let v: serde_json::Value = serde_json::from_str(rest).unwrap_or_default();
            let message = v["message"]
                .as_str()
                .or_else(|| v.as_str())
                .unwrap_or("UNKNOWN")
                .to_string();
            Frame::ConnectError { message }
        }
        _ => Frame::Other,
    }
}

/// Splits the optional decimal ack id off the front of a packet body.
fn split_ack_id(s: &str) -> (Option<u64>, &str) {
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return (None, s);
    }
    (s[..digits].parse().ok(), &s[digits..])
}

/// The event name of `["name", ...]`; event names never contain escaped quotes.
fn event_name(args: &str) -> Option<&str> {
    let inner = args.strip_prefix("[\"")?;
    let end = inner.find('"')?;
    Some(&inner[..end])
}

/// `40{"token":"..."}`: CONNECT to the default namespace with the token in `auth`.
pub fn connect_packet(token: &str) -> String {
    format!("40{}", serde_json::json!({ "token": token }))
}

/// `42<id>["event",payload]`: an event that asks for an acknowledgement.
pub fn event_packet(ack_id: u64, event: &str, payload: &serde_json::Value) -> String {
    format!("42{ack_id}{}", serde_json::json!([event, payload]))
}

/// Which measured stream a delivery belongs to; the letter travels inside the marker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamKind {
    /// Tenant broadcasts (`notification:new` to `tenant:<t>`).
    Broadcast,
    /// Stored notifications to one user (`notification:new` to `tenant:<t>:user:<u>`).
    Notify,
    /// `progress:content` forwarded to a course's instructors.
    Progress,
}

impl StreamKind {
    pub const ALL: [StreamKind; 3] = [
        StreamKind::Broadcast,
        StreamKind::Notify,
        StreamKind::Progress,
    ];

    pub fn letter(self) -> char {
        match self {
            StreamKind::Broadcast => 'b',
            StreamKind::Notify => 'n',
            StreamKind::Progress => 'p',
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }

    pub fn name(self) -> &'static str {
        match self {
            StreamKind::Broadcast => "broadcast",
            StreamKind::Notify => "notify",
            StreamKind::Progress => "progress",
        }
    }

    fn from_letter(c: u8) -> Option<StreamKind> {
        match c {
            b'b' => Some(StreamKind::Broadcast),
            b'n' => Some(StreamKind::Notify),
            b'p' => Some(StreamKind::Progress),
            _ => None,
        }
    }
}

/// What a marker says: which stream, which sequence number, when it was sent (µs on the
/// load generator's clock).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Marker {
    pub stream: StreamKind,
    pub seq: u64,
    pub sent_us: u64,
}

/// `lg.b.17.123456`: put into a string field (message, contentId) of what we send.
pub fn marker(stream: StreamKind, seq: u64, sent_us: u64) -> String {
    format!("lg.{}.{seq}.{sent_us}", stream.letter())
}

/// Finds the first marker in a packet body.
pub fn find_marker(args: &str) -> Option<Marker> {
    let at = args.find("\"lg.")?;
    let rest = &args.as_bytes()[at + 4..];
    let stream = StreamKind::from_letter(*rest.first()?)?;
    if rest.get(1) != Some(&b'.') {
        return None;
    }
    let (seq, rest) = leading_u64(&rest[2..])?;
    if rest.first() != Some(&b'.') {
        return None;
    }
    let (sent_us, _) = leading_u64(&rest[1..])?;
    Some(Marker {
        stream,
        seq,
        sent_us,
    })
}

fn leading_u64(b: &[u8]) -> Option<(u64, &[u8])> {
    let n = b.iter().take_while(|c| c.is_ascii_digit()).count();
    if n == 0 || n > 19 {
        return None;
    }
    let v = std::str::from_utf8(&b[..n]).ok()?.parse().ok()?;
    Some((v, &b[n..]))
}

/// Whether an ack's arguments say `{ "ok": true, ... }`.
pub fn ack_ok(args: &str) -> bool {
    args.contains("\"ok\":true")
}

/// The error code of a refused ack, for the per-code tally.
pub fn ack_error_code(args: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(args).unwrap_or_default();
    v[0]["error"]["code"]
        .as_str()
        .unwrap_or("UNKNOWN")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_open_packet_gives_the_heartbeat_settings() {
        let f = parse(
            r#"0{"sid":"abc","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#,
        );
        assert_eq!(
            f,
            Frame::Open {
                ping_interval_ms: 25_000,
                ping_timeout_ms: 20_000
            }
        );
    }

    #[test]
    fn connect_answers_are_told_apart() {
        assert_eq!(parse(r#"40{"sid":"x"}"#), Frame::Connected);
        assert_eq!(
            parse(r#"44{"message":"UNAUTHORIZED"}"#),
            Frame::ConnectError {
                message: "UNAUTHORIZED".into()
            }
        );
        assert_eq!(
            parse(r#"44{"message":"TOKEN_EXPIRED","data":{}}"#),
            Frame::ConnectError {
                message: "TOKEN_EXPIRED".into()
            }
        );
        assert_eq!(parse("41"), Frame::Disconnected);
        assert_eq!(parse("2"), Frame::Ping);
        assert_eq!(parse("1"), Frame::Close);
    }

    #[test]
    fn events_and_acks_are_sliced_without_parsing_the_payload() {
        let f = parse(r#"42["notification:new",{"title":"t","message":"lg.b.3.99"}]"#);
        assert_eq!(
            f,
            Frame::Event {
                name: "notification:new",
                args: r#"["notification:new",{"title":"t","message":"lg.b.3.99"}]"#
            }
        );
        assert!(matches!(
            parse(r#"427["ping",1]"#),
            Frame::Event { name: "ping", .. }
        ));
        assert_eq!(
            parse(r#"4312[{"ok":true,"unread":0}]"#),
            Frame::Ack {
                id: 12,
                args: r#"[{"ok":true,"unread":0}]"#
            }
        );
        assert!(ack_ok(r#"[{"ok":true,"unread":0}]"#));
        assert!(!ack_ok(
            r#"[{"ok":false,"error":{"code":"FORBIDDEN","message":"no"}}]"#
        ));
        assert_eq!(
            ack_error_code(r#"[{"ok":false,"error":{"code":"FORBIDDEN","message":"no"}}]"#),
            "FORBIDDEN"
        );
    }

    #[test]
    fn markers_round_trip_through_a_payload() {
        let m = marker(StreamKind::Progress, 42, 1_234_567);
        let payload = serde_json::json!(["progress:content", { "courseId": "c1", "contentId": m, "progress": 0.5 }]);
        let found = find_marker(&payload.to_string()).unwrap();
        assert_eq!(
            found,
            Marker {
                stream: StreamKind::Progress,
                seq: 42,
                sent_us: 1_234_567
            }
        );
        assert_eq!(find_marker(r#"["x",{"message":"hello"}]"#), None);
        assert_eq!(find_marker(r#"["x",{"message":"lg.z.1.2"}]"#), None);
        assert_eq!(find_marker(r#"["x",{"message":"lg.b.1"}]"#), None);
    }

    #[test]
    fn outgoing_packets_follow_the_wire_format() {
        assert_eq!(connect_packet("a.b.c"), r#"40{"token":"a.b.c"}"#);
        assert_eq!(
            event_packet(5, "course:join", &serde_json::json!("c1")),
            r#"425["course:join","c1"]"#
        );
    }
}
