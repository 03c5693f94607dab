//! The client's address, as every limit and security log line sees it.
//!
//! The TCP peer is the client unless it is one of `TRUSTED_PROXIES`; only then are
//! `Forwarded` (RFC 7239) and `X-Forwarded-For` read, right to left, skipping hops that are
//! trusted proxies themselves. A client can put anything it likes in those headers, so an
//! untrusted peer's headers are ignored: otherwise one attacker could pose as many IPs and
//! walk past every per-IP cap.

use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;

/// The resolved client address, put in each request's extensions by the HTTP layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientIp(pub IpAddr);

impl std::fmt::Display for ClientIp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// The proxies whose forwarding headers are believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Parses a list of addresses or CIDR ranges (`10.0.0.0/8`, `127.0.0.1`).
    pub fn parse(items: &[String]) -> anyhow::Result<Self> {
        items
            .iter()
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<IpNet>()
                    .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| {
                        anyhow::anyhow!("TRUSTED_PROXIES: {s:?} is not an address or CIDR range")
                    })
            })
            .collect::<anyhow::Result<_>>()
            .map(Self)
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client address of a request that arrived from `peer` with these headers.
    pub fn resolve(&self, peer: SocketAddr, headers: &http::HeaderMap) -> ClientIp {
        let peer = canonical(peer.ip());
        if !self.trusts(peer) {
            return ClientIp(peer);
        }
        let hops = forwarded_for(headers);
        // Right to left: the nearest hop was added by our own proxy.
        for hop in hops.iter().rev() {
            if !self.trusts(*hop) {
                return ClientIp(canonical(*hop));
            }
        }
        ClientIp(hops.first().copied().map(canonical).unwrap_or(peer))
    }
}

/// An IPv4-mapped IPv6 address is the IPv4 address (a dual-stack listener reports them).
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// The `for=` hops of `Forwarded`, or else those of `X-Forwarded-For`, in order.
fn forwarded_for(headers: &http::HeaderMap) -> Vec<IpAddr> {
    let forwarded: Vec<IpAddr> = headers
        .get_all(http::header::FORWARDED)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .flat_map(|element| element.split(';'))
        .filter_map(|pair| {
            let (k, v) = pair.trim().split_once('=')?;
            k.trim()
                .eq_ignore_ascii_case("for")
                .then(|| parse_node(v))?
        })
        .collect();
    if !forwarded.is_empty() {
        return forwarded;
    }
    headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(parse_node)
        .collect()
}

/// One hop: `1.2.3.4`, `"[2001:db8::1]:4711"`, `1.2.3.4:80`; obfuscated ids are skipped.
fn parse_node(raw: &str) -> Option<IpAddr> {
    let s = raw.trim().trim_matches('"');
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Some(rest) = s.strip_prefix('[') {
        return rest.split(']').next()?.parse().ok();
    }
    s.parse::<SocketAddr>().ok().map(|a| a.ip())
}

/// The `User-Agent` for a log line, cut to a readable length.
pub fn user_agent(headers: &axum::http::HeaderMap) -> Option<String> {
    const MAX: usize = 200;
    let ua = String::from_utf8_lossy(headers.get(axum::http::header::USER_AGENT)?.as_bytes())
        .into_owned();
    Some(ua.chars().take(MAX).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    fn peer(ip: &str) -> SocketAddr {
        SocketAddr::new(ip.parse().unwrap(), 5555)
    }

    #[test]
    fn an_untrusted_peer_cannot_pose_as_another_address() {
        let trusted = TrustedProxies::parse(&["10.0.0.0/8".into()]).unwrap();
        let h = headers(&[("x-forwarded-for", "9.9.9.9")]);
        assert_eq!(trusted.resolve(peer("1.2.3.4"), &h).to_string(), "1.2.3.4");
    }

    #[test]
    fn a_trusted_proxy_names_the_client_and_spoofed_hops_to_its_left_are_ignored() {
        let trusted = TrustedProxies::parse(&["10.0.0.1".into()]).unwrap();
        let h = headers(&[("x-forwarded-for", "6.6.6.6, 1.2.3.4")]);
        assert_eq!(trusted.resolve(peer("10.0.0.1"), &h).to_string(), "1.2.3.4");
    }

    #[test]
    fn forwarded_is_read_before_x_forwarded_for() {
        let trusted = TrustedProxies::parse(&["127.0.0.1".into()]).unwrap();
        let h = headers(&[
            ("forwarded", r#"for="[2001:db8::1]:4711";proto=https"#),
            ("x-forwarded-for", "5.5.5.5"),
        ]);
        assert_eq!(
            trusted.resolve(peer("127.0.0.1"), &h).to_string(),
            "2001:db8::1"
        );
    }

    #[test]
    fn a_trusted_peer_without_headers_is_the_client() {
        let trusted = TrustedProxies::parse(&["127.0.0.0/8".into()]).unwrap();
        let h = headers(&[]);
        assert_eq!(
            trusted.resolve(peer("127.0.0.5"), &h).to_string(),
            "127.0.0.5"
        );
    }

    #[test]
    fn a_bad_entry_is_refused_at_start() {
        assert!(TrustedProxies::parse(&["not-an-ip".into()]).is_err());
    }

    #[test]
    fn ipv4_mapped_peers_are_ipv4() {
        let trusted = TrustedProxies::default();
        let h = headers(&[]);
        let mapped: SocketAddr = "[::ffff:1.2.3.4]:80".parse().unwrap();
        assert_eq!(trusted.resolve(mapped, &h).to_string(), "1.2.3.4");
    }
}
