//! Where the load goes, and the guard that keeps it on this machine.
//!
//! A load generator pointed at the wrong host is a denial-of-service tool, so every node URL is
//! parsed here once and anything that is not a loopback address (127.0.0.0/8, `localhost`,
//! `[::1]`) is refused before a single packet is sent.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

/// One gateway node: its HTTP base URL and the socket address its websocket is dialled on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// `http://127.0.0.1:4101`, without a trailing slash: the service API lives under it.
    pub http: String,
    /// The address that TCP connects to.
    pub addr: SocketAddr,
    /// `ws://127.0.0.1:4101/socket.io/?EIO=4&transport=websocket`.
    pub ws: String,
}

/// Why a `--url` was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum TargetError {
    Unparsable(String),
    NotLoopback(String),
}

impl fmt::Display for TargetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TargetError::Unparsable(u) => write!(
                f,
                "cannot parse node URL {u:?} (want http://127.0.0.1:PORT)"
            ),
            TargetError::NotLoopback(u) => write!(
                f,
                "refusing non-loopback node URL {u:?}: the load generator only targets 127.0.0.0/8, localhost or [::1]"
            ),
        }
    }
}

impl std::error::Error for TargetError {}

impl Target {
    /// Parses `http://HOST:PORT` (or `ws://`, or a bare `HOST:PORT`), refusing any host that is
    /// not loopback. `localhost` is resolved to 127.0.0.1 without asking a resolver.
    pub fn parse(raw: &str) -> Result<Target, TargetError> {
        let trimmed = raw.trim().trim_end_matches('/');
        let rest = trimmed
            .strip_prefix("http://")
            .or_else(|| trimmed.strip_prefix("ws://"))
            .unwrap_or(trimmed);
        if rest.contains("://") || rest.contains('/') || rest.contains('@') {
            return Err(TargetError::Unparsable(raw.to_string()));
        }
        let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
            let (h, p) = v6
                .split_once("]:")
                .ok_or_else(|| TargetError::Unparsable(raw.to_string()))?;
            (h, p)
        } else {
            rest.rsplit_once(':')
                .ok_or_else(|| TargetError::Unparsable(raw.to_string()))?
        };
        let port: u16 = port
            .parse()
            .map_err(|_| TargetError::Unparsable(raw.to_string()))?;
        let ip: IpAddr = if host.eq_ignore_ascii_case("localhost") {
            IpAddr::from([127, 0, 0, 1])
        } else {
            host.parse()
                .map_err(|_| TargetError::NotLoopback(raw.to_string()))?
        };
        if !ip.is_loopback() {
            return Err(TargetError::NotLoopback(raw.to_string()));
        }
        let addr = SocketAddr::new(ip, port);
        Ok(Target {
            http: format!("http://{addr}"),
            ws: format!("ws://{addr}/socket.io/?EIO=4&transport=websocket"),
            addr,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_urls_are_accepted_in_every_spelling() {
        for u in [
            "http://127.0.0.1:4101",
            "127.0.0.1:4101/",
            "ws://localhost:4101",
            "http://127.9.8.7:1",
            "http://[::1]:4101",
        ] {
            let t = Target::parse(u).unwrap_or_else(|e| panic!("{u}: {e}"));
            assert!(t.addr.ip().is_loopback());
            assert!(t.ws.ends_with("/socket.io/?EIO=4&transport=websocket"));
        }
        assert_eq!(
            Target::parse("http://localhost:4101").unwrap().http,
            "http://127.0.0.1:4101"
        );
    }

    #[test]
    fn any_other_host_is_refused() {
        for u in [
            "http://10.0.0.1:80",
            "http://192.168.1.1:4101",
            "http://example.com:80",
            "http://8.8.8.8:53",
            "http://[2001:db8::1]:80",
        ] {
            assert!(
                matches!(Target::parse(u), Err(TargetError::NotLoopback(_))),
                "{u}"
            );
        }
    }

    #[test]
    fn malformed_urls_are_refused() {
        for u in [
            "http://127.0.0.1",
            "http://127.0.0.1:x",
            "https://127.0.0.1:1/path",
            "http://user@127.0.0.1:1",
        ] {
            assert!(Target::parse(u).is_err(), "{u}");
        }
    }
}
