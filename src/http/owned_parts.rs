//! Copies a request's URI and header values out of hyper's connection read buffer, and
//! keeps of a new websocket session's handshake only what is read after the upgrade.
//!
//! hyper parses them as zero-copy slices of the buffer it read the request into (8–16 KiB).
//! engineioxide keeps the handshake request's `Parts` until the gateway releases them (when
//! a socket is admitted; for the socket's whole life before docs/vendor.md §24), so
//! those slices kept the entire buffer alive per connection: 16 KiB of the ~32 KiB an idle
//! socket cost (heap profile in `docs/benchmarks.md`). With owned copies the buffer is freed
//! once the connection is upgraded.
//!
//! The copied headers themselves were then 0.7 KB per idle socket (a header map of a
//! handful of entries, for a handshake that carries five), more for a browser's (cookies,
//! `Accept-*`, `Sec-WebSocket-Extensions`...). A session opened over websocket is answered
//! by engineioxide at once and never reads its handshake headers again; the gateway reads
//! [`KEPT_BY_WEBSOCKET_SESSIONS`] (the token at CONNECT, the user agent in security log lines),
//! and engineioxide the key it answers the upgrade with. The rest is dropped before the
//! Socket.IO layer sees the request. Polling requests keep every header (engineioxide reads
//! `Content-Type` on each POST).
//!
//! The same goes for the request's extensions: a new websocket session keeps
//! [`ClientIp`] and its [`SessionGuard`] (read at CONNECT), and hyper's pending upgrade until
//! engineioxide takes it; axum's `OriginalUri` and the peer's `ConnectInfo` (read by the gate
//! before, never after) are dropped, and the map holding them with them (about 0.3 KB per
//! idle socket).

use std::sync::Arc;

use axum::extract::{OriginalUri, Request};
use axum::http::Extensions;
use axum::http::header::{AUTHORIZATION, SEC_WEBSOCKET_KEY, USER_AGENT};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Uri};

use crate::client_ip::ClientIp;
use crate::socket::admission::SessionGuard;

/// The headers a session opened over websocket keeps until its socket is admitted (in
/// `req_parts`).
pub const KEPT_BY_WEBSOCKET_SESSIONS: [HeaderName; 3] =
    [AUTHORIZATION, USER_AGENT, SEC_WEBSOCKET_KEY];

/// Returns the same request whose URI and header values own their bytes; a new websocket
/// session's request keeps only [`KEPT_BY_WEBSOCKET_SESSIONS`] of its headers.
pub fn detach_from_read_buffer(req: Request) -> Request {
    let (mut parts, body) = req.into_parts();
    parts.uri = owned_uri(&parts.uri);
    if opens_websocket_session(&parts.uri) {
        parts.headers = kept_headers(&parts.headers);
        parts.extensions = kept_extensions(&mut parts.extensions);
    } else {
        parts.headers = owned_headers(&parts.headers);
        // axum's router records the URI as it came, before any layer runs.
        if let Some(OriginalUri(original)) = parts.extensions.get_mut::<OriginalUri>() {
            *original = owned_uri(original);
        }
    }
    Request::from_parts(parts, body)
}

/// The extensions a new websocket session keeps: the client's address and admission guard
/// (read at CONNECT), and hyper's pending upgrade (taken by engineioxide at the upgrade).
fn kept_extensions(extensions: &mut Extensions) -> Extensions {
    let mut kept = Extensions::new();
    if let Some(ip) = extensions.remove::<ClientIp>() {
        kept.insert(ip);
    }
    if let Some(guard) = extensions.remove::<Arc<SessionGuard>>() {
        kept.insert(guard);
    }
    if let Some(upgrade) = extensions.remove::<hyper::upgrade::OnUpgrade>() {
        kept.insert(upgrade);
    }
    kept
}

/// `transport=websocket` without a `sid`: a session that starts on websocket (an upgrade
/// from polling has a `sid` and its session keeps the polling handshake's parts).
fn opens_websocket_session(uri: &Uri) -> bool {
    let mut websocket = false;
    for pair in uri.query().unwrap_or("").split('&') {
        match pair.split_once('=').unwrap_or((pair, "")) {
            ("sid", _) => return false,
            ("transport", "websocket") => websocket = true,
            _ => {}
        }
    }
    websocket
}

fn owned_uri(uri: &Uri) -> Uri {
    // `parse` copies; re-parsing a URI hyper already accepted cannot fail, but if it ever
    // did, keeping the shared original is only a memory cost.
    uri.to_string().parse().unwrap_or_else(|_| uri.clone())
}

fn owned_headers(headers: &HeaderMap) -> HeaderMap {
    let mut owned = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        // Names are already owned: hyper copies them while normalising case.
        owned.append(name.clone(), owned_value(value));
    }
    owned
}

fn kept_headers(headers: &HeaderMap) -> HeaderMap {
    let kept = || {
        KEPT_BY_WEBSOCKET_SESSIONS
            .iter()
            .flat_map(|name| headers.get_all(name).iter().map(move |v| (name, v)))
    };
    let mut owned = HeaderMap::with_capacity(kept().count());
    for (name, value) in kept() {
        owned.append(name.clone(), owned_value(value));
    }
    owned
}

fn owned_value(value: &HeaderValue) -> HeaderValue {
    let copy = HeaderValue::from_bytes(value.as_bytes()).map(|mut v| {
        v.set_sensitive(value.is_sensitive());
        v
    });
    copy.unwrap_or_else(|_| value.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::{Body, Bytes};

    /// A request whose URI and header values are slices of one buffer, as hyper makes them.
    fn request_sharing(buffer: &Bytes) -> Request {
        let text = std::str::from_utf8(buffer).unwrap();
        let uri_at = text.find("/socket.io").unwrap();
        let uri_end = uri_at + text[uri_at..].find(' ').unwrap();
        let bearer_at = text.find("Bearer").unwrap();
        let bearer_end = bearer_at + text[bearer_at..].find('\r').unwrap();
        let mut req = Request::new(Body::empty());
        let uri = Uri::from_maybe_shared(buffer.slice(uri_at..uri_end)).unwrap();
        req.extensions_mut().insert(OriginalUri(uri.clone()));
        *req.uri_mut() = uri;
        req.headers_mut().insert(
            "authorization",
            HeaderValue::from_maybe_shared(buffer.slice(bearer_at..bearer_end)).unwrap(),
        );
        req
    }

    fn inside(buffer: &Bytes, bytes: &[u8]) -> bool {
        let range = buffer.as_ptr_range();
        range.contains(&bytes.as_ptr())
    }

    #[test]
    fn uri_and_header_values_no_longer_point_into_the_read_buffer() {
        let buffer = Bytes::from(
            "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nAuthorization: Bearer abc\r\n\r\n",
        );
        let req = request_sharing(&buffer);
        let header = req.headers()["authorization"].clone();
        assert!(inside(&buffer, header.as_bytes()), "the fixture shares");

        let req = detach_from_read_buffer(req);
        let value = &req.headers()["authorization"];
        assert_eq!(value, "Bearer abc");
        assert!(!inside(&buffer, value.as_bytes()));
        assert_eq!(req.uri(), "/socket.io/?EIO=4&transport=websocket");
        assert_eq!(req.uri().query(), Some("EIO=4&transport=websocket"));
        assert!(!inside(&buffer, req.uri().path().as_bytes()));
        // A new websocket session drops it (see the test below); a polling request keeps an
        // owned copy.
        assert!(req.extensions().get::<OriginalUri>().is_none());
        let buffer = Bytes::from(
            "GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nAuthorization: Bearer abc\r\n\r\n",
        );
        let req = detach_from_read_buffer(request_sharing(&buffer));
        let OriginalUri(original) = req.extensions().get::<OriginalUri>().unwrap();
        assert_eq!(original, req.uri());
        assert!(!inside(&buffer, original.path().as_bytes()));
    }

    #[test]
    fn repeated_headers_and_sensitivity_survive() {
        let mut req = Request::new(Body::empty());
        let mut secret = HeaderValue::from_static("Bearer t");
        secret.set_sensitive(true);
        req.headers_mut().insert("authorization", secret);
        req.headers_mut()
            .append("x-forwarded-for", "10.0.0.1".parse().unwrap());
        req.headers_mut()
            .append("x-forwarded-for", "10.0.0.2".parse().unwrap());
        let req = detach_from_read_buffer(req);
        assert!(req.headers()["authorization"].is_sensitive());
        let forwarded: Vec<_> = req.headers().get_all("x-forwarded-for").iter().collect();
        assert_eq!(forwarded, ["10.0.0.1", "10.0.0.2"]);
    }

    #[test]
    fn a_new_websocket_session_keeps_only_the_headers_read_after_the_upgrade() {
        let mut req = Request::new(Body::empty());
        *req.uri_mut() = "/socket.io/?EIO=4&transport=websocket".parse().unwrap();
        for (name, value) in [
            ("host", "lms.example"),
            ("connection", "Upgrade"),
            ("upgrade", "websocket"),
            ("sec-websocket-version", "13"),
            ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ("sec-websocket-extensions", "permessage-deflate"),
            ("cookie", "a=b"),
            ("user-agent", "test"),
            ("authorization", "Bearer t"),
        ] {
            req.headers_mut().append(name, value.parse().unwrap());
        }
        let polling = {
            let mut r = Request::new(Body::empty());
            *r.uri_mut() = "/socket.io/?EIO=4&transport=polling".parse().unwrap();
            *r.headers_mut() = req.headers().clone();
            r
        };
        let upgrade = {
            let mut r = Request::new(Body::empty());
            *r.uri_mut() = "/socket.io/?EIO=4&transport=websocket&sid=abc"
                .parse()
                .unwrap();
            *r.headers_mut() = req.headers().clone();
            r
        };

        req.extensions_mut()
            .insert(ClientIp("10.0.0.1".parse().unwrap()));
        req.extensions_mut()
            .insert(OriginalUri("/socket.io/".parse().unwrap()));
        req.extensions_mut().insert(axum::extract::ConnectInfo(
            "10.0.0.1:4000".parse::<std::net::SocketAddr>().unwrap(),
        ));

        let req = detach_from_read_buffer(req);
        assert_eq!(req.extensions().len(), 1);
        assert_eq!(
            req.extensions().get::<ClientIp>().map(|c| c.to_string()),
            Some("10.0.0.1".to_string())
        );
        let mut kept: Vec<_> = req.headers().keys().map(|k| k.as_str()).collect();
        kept.sort();
        assert_eq!(kept, ["authorization", "sec-websocket-key", "user-agent"]);
        assert_eq!(
            req.headers()["sec-websocket-key"],
            "dGhlIHNhbXBsZSBub25jZQ=="
        );
        assert_eq!(detach_from_read_buffer(polling).headers().len(), 9);
        assert_eq!(detach_from_read_buffer(upgrade).headers().len(), 9);
    }
}
