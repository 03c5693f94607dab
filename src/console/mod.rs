//! The operator console: a static page embedded in the binary (served by
//! `http::console`), and the tally of this node's sockets that its overview shows.
//!
//! Plain HTML, JS and CSS with no build step: the page is small, and an operator's
//! browser is the only client. Embedded with `include_str!` so a deployed binary is the
//! whole console, with no path to configure.

pub mod overview;
pub mod tally;

/// One embedded file of the console.
pub struct Asset {
    pub content_type: &'static str,
    pub body: &'static str,
}

/// The console page itself.
pub const INDEX: Asset = Asset {
    content_type: "text/html; charset=utf-8",
    body: include_str!("assets/index.html"),
};

const ASSETS: [(&str, Asset); 2] = [
    (
        "console.js",
        Asset {
            content_type: "text/javascript; charset=utf-8",
            body: include_str!("assets/console.js"),
        },
    ),
    (
        "console.css",
        Asset {
            content_type: "text/css; charset=utf-8",
            body: include_str!("assets/console.css"),
        },
    ),
];

/// The asset under `/console/<name>`, if there is one.
pub fn asset(name: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|(n, _)| *n == name).map(|(_, a)| a)
}

/// The page's Content-Security-Policy: its own scripts, styles and API only, no inline
/// code, no framing, so an injected string can never run as script.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_loads_only_its_own_embedded_script_and_style() {
        assert!(INDEX.body.contains(r#"src="/console/console.js""#));
        assert!(INDEX.body.contains(r#"href="/console/console.css""#));
        assert!(
            !INDEX.body.contains("<script>"),
            "inline script breaks the CSP"
        );
        assert!(asset("console.js").is_some_and(|a| a.body.contains("sessionStorage")));
        assert!(asset("../Cargo.toml").is_none());
    }
}
