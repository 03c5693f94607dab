//! Where a token travels: a socket handshake (`auth.token`, `?token=`, then
//! `Authorization: Bearer`) or a service API request's bearer header.

use super::AuthError;

/// Finds the token of a socket handshake in the contract's order: `auth.token`, then
/// `?token=`, then `Authorization: Bearer`; `Ok(None)` when there is none.
///
/// An `auth.token` that is present but not a string (a number, object, array or `null`)
/// is refused rather than skipped: falling through to the query or header would let a
/// malformed CONNECT be authenticated by a token it did not send.
pub fn token_from_handshake(
    auth: Option<&serde_json::Value>,
    query: Option<&str>,
    headers: &http::HeaderMap,
) -> Result<Option<String>, AuthError> {
    match auth.and_then(|a| a.get("token")) {
        Some(serde_json::Value::String(t)) => return Ok(Some(t.clone())),
        Some(_) => return Err(AuthError::Invalid("auth.token must be a string".into())),
        None => {}
    }
    if let Some(q) = query {
        let found = form_urlencoded_pairs(q).find(|(k, _)| k == "token");
        if let Some((_, v)) = found {
            return Ok(Some(v));
        }
    }
    Ok(bearer(headers).map(str::to_owned))
}

/// The token of an `Authorization: Bearer` header.
pub fn bearer(headers: &http::HeaderMap) -> Option<&str> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

fn form_urlencoded_pairs(q: &str) -> impl Iterator<Item = (String, String)> + '_ {
    q.split('&').filter_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        Some((percent_decode(k), percent_decode(v)))
    })
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = |b: u8| (b as char).to_digit(16);
                match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;
    use serde_json::json;

    fn bearer_header(token: &str) -> http::HeaderMap {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            http::header::AUTHORIZATION,
            format!("Bearer {token}").parse().unwrap(),
        );
        headers
    }

    #[test]
    fn the_handshake_token_is_found_in_contract_order() {
        let headers = bearer_header("from-header");
        let auth = json!({"token": "from-auth"});
        fn found(
            auth: Option<&serde_json::Value>,
            query: Option<&str>,
            headers: &http::HeaderMap,
        ) -> Option<String> {
            token_from_handshake(auth, query, headers).unwrap()
        }
        assert_eq!(
            found(Some(&auth), Some("token=from-query"), &headers).as_deref(),
            Some("from-auth")
        );
        assert_eq!(
            found(None, Some("EIO=4&token=a%2Eb"), &headers).as_deref(),
            Some("a.b")
        );
        assert_eq!(
            found(None, Some("EIO=4"), &headers).as_deref(),
            Some("from-header")
        );
        assert_eq!(found(None, None, &http::HeaderMap::new()), None);
        let no_token_key = json!({"other": 1});
        assert_eq!(
            found(Some(&no_token_key), Some("token=q"), &headers).as_deref(),
            Some("q")
        );
    }

    #[test]
    fn an_auth_token_that_is_not_a_string_is_refused_instead_of_falling_through() {
        let headers = bearer_header("from-header");
        for bad in [
            json!(42),
            json!({"t": 1}),
            json!(["x"]),
            json!(null),
            json!(true),
        ] {
            let auth = json!({ "token": bad });
            let err =
                token_from_handshake(Some(&auth), Some("token=from-query"), &headers).unwrap_err();
            assert_eq!(err.code(), ErrorCode::InvalidToken, "{auth}");
            assert!(err.to_string().contains("auth.token"), "{err}");
        }
    }
}
