//! The OpenAPI document (`GET /api/v1/openapi.json`) against a running node: every
//! documented operation accepts its own example, answers a documented status with a body
//! of the documented shape, and every route the router serves is documented. Both tests
//! walk the document, so a new route is checked without a line here.

use std::collections::BTreeSet;
use std::path::Path;

use futures::StreamExt;
use reqwest::Method;
use serde_json::Value;

use crate::helpers::*;

/// What a route must never answer to its own example: the example was refused as invalid.
const REFUSED: [u16; 6] = [400, 404, 405, 413, 415, 422];

/// One operation of the document.
struct Operation<'a> {
    method: Method,
    path: &'a str,
    op: &'a Value,
}

fn operations(doc: &Value) -> Vec<Operation<'_>> {
    let mut ops = vec![];
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("a path item") {
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).expect("a method");
            ops.push(Operation { method, path, op });
        }
    }
    ops
}

async fn fetch_document(node: &TestNode) -> Value {
    let res = node
        .http
        .get(node.api("/openapi.json"))
        .send()
        .await
        .expect("the document is served");
    assert_eq!(res.status(), 200, "GET /api/v1/openapi.json needs no token");
    res.json().await.expect("the document is JSON")
}

/// `/api/v1` plus the path, each `{name}` replaced by `fill(name)`.
fn concrete(doc: &Value, path: &str, fill: impl Fn(&str) -> String) -> String {
    let mut out = doc["servers"][0]["url"]
        .as_str()
        .expect("a server url")
        .to_owned();
    let mut rest = path;
    while let Some(open) = rest.find('{') {
        let close = rest[open..].find('}').expect("a closed parameter") + open;
        out.push_str(&rest[..open]);
        out.push_str(&fill(&rest[open + 1..close]));
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    out
}

/// The example of a parameter of `op`, as the document gives it.
fn param_example<'a>(op: &'a Value, name: &str, location: &str) -> Option<&'a str> {
    op["parameters"]
        .as_array()?
        .iter()
        .find(|p| p["name"] == name && p["in"] == location)
        .and_then(|p| p["example"].as_str())
}

/// Follows a `$ref` into `components`.
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(r) => doc
            .pointer(r.trim_start_matches('#'))
            .unwrap_or_else(|| panic!("{r} is not in the document")),
        None => schema,
    }
}

/// Checks an answer's top level against its documented object schema: every required
/// property present, and no property the schema does not name.
fn check_shape(doc: &Value, schema: &Value, body: &Value) -> Result<(), String> {
    let schema = resolve(doc, schema);
    let Some(props) = schema["properties"].as_object() else {
        return Ok(());
    };
    let body = body.as_object().ok_or(format!("{body} is not an object"))?;
    for required in schema["required"].as_array().into_iter().flatten() {
        let key = required.as_str().unwrap_or_default();
        if !body.contains_key(key) {
            return Err(format!("required `{key}` missing from {body:?}"));
        }
    }
    match body.keys().find(|k| !props.contains_key(*k)) {
        Some(k) => Err(format!("`{k}` is not documented")),
        None => Ok(()),
    }
}

#[tokio::test]
async fn every_documented_example_is_accepted_by_a_running_gateway() {
    let node = spawn_node().await;
    let doc = fetch_document(&node).await;
    let mut ops = operations(&doc);
    assert!(ops.len() >= 14, "{} operations documented", ops.len());
    // Writes first, then reads, then removals: a webhook is read after its example PUT
    // created it, and removed last.
    ops.sort_by_key(|o| match o.method {
        Method::PUT | Method::POST => 0,
        Method::DELETE => 2,
        _ => 1,
    });
    for Operation { method, path, op } in ops {
        let what = format!("{method} {path}");
        let mut url = concrete(&doc, path, |name| {
            param_example(op, name, "path")
                .unwrap_or_else(|| panic!("{what}: path parameter `{name}` has no example"))
                .to_owned()
        });
        let query: Vec<String> = op["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["in"] == "query")
            .filter_map(|p| {
                Some(format!(
                    "{}={}",
                    p["name"].as_str()?,
                    p["example"].as_str()?
                ))
            })
            .collect();
        if !query.is_empty() {
            url = format!("{url}?{}", query.join("&"));
        }
        let mut req = node
            .http
            .request(method.clone(), format!("{}{url}", node.url()));
        if op["security"] != serde_json::json!([{}]) {
            req = req.bearer_auth(super_token());
        }
        if let Some(body) = op.get("requestBody") {
            let example = body["content"]["application/json"]
                .get("example")
                .unwrap_or_else(|| panic!("{what}: the request body has no example"));
            req = req.json(example);
        }
        let (status, answer) = send(req).await;
        assert!(
            !REFUSED.contains(&status),
            "{what} refused its example: {status} {answer}"
        );
        assert!((200..300).contains(&status), "{what}: {status} {answer}");
        let documented = &op["responses"][status.to_string()];
        assert!(
            documented.is_object(),
            "{what}: answered {status}, which is not documented"
        );
        if let Some(schema) = documented["content"]["application/json"].get("schema") {
            check_shape(&doc, schema, &answer)
                .unwrap_or_else(|e| panic!("{what}: the answer differs from the document: {e}"));
        }
    }
}

/// Every string literal in `src/` that could be a route path (`"/..."` of path characters).
fn path_literals() -> BTreeSet<String> {
    fn walk(dir: &Path, out: &mut BTreeSet<String>) {
        for entry in std::fs::read_dir(dir).expect("src/ is readable") {
            let path = entry.expect("an entry").path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).expect("a source file");
                for literal in text.split('"').skip(1).step_by(2) {
                    let is_path = literal.starts_with('/')
                        && literal
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || "/{}_.-".contains(c));
                    if is_path {
                        out.insert(literal.to_owned());
                    }
                }
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut out);
    out
}

#[tokio::test]
async fn every_route_the_router_serves_is_in_the_document() {
    // Each path literal of the source is tried under `/api/v1` with every method and no
    // token: anything but the router's own "no such route" / "method not allowed" means a
    // route answered it, and the document must name that method and path.
    let node = spawn_node().await;
    let doc = fetch_document(&node).await;
    let probe = |_: &str| "probe-1".to_owned();
    let documented: BTreeSet<(String, String)> = operations(&doc)
        .iter()
        .map(|o| (o.method.to_string(), concrete(&doc, o.path, probe)))
        .collect();
    let mut candidates = BTreeSet::new();
    for literal in path_literals() {
        let path = if literal.starts_with("/api/v1/") {
            literal
        } else {
            format!("/api/v1{literal}")
        };
        let url = concrete(
            &serde_json::json!({ "servers": [{ "url": "" }] }),
            &path,
            probe,
        );
        for method in [
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::DELETE,
            Method::PATCH,
        ] {
            candidates.insert((method.to_string(), url.clone()));
        }
    }
    let served: BTreeSet<(String, String)> = futures::stream::iter(candidates)
        .map(|(method, url)| {
            let req = node.http.request(
                Method::from_bytes(method.as_bytes()).unwrap(),
                format!("{}{url}", node.url()),
            );
            async move {
                let (status, body) = send(req).await;
                let unrouted =
                    (status == 404 && body["error"]["message"] == "no such route") || status == 405;
                (!unrouted).then_some((method, url))
            }
        })
        .buffer_unordered(16)
        .filter_map(|served| async move { served })
        .collect()
        .await;
    let undocumented: Vec<_> = served.difference(&documented).collect();
    assert!(
        undocumented.is_empty(),
        "served but not in the OpenAPI document (add the handler to the table in src/http/openapi.rs): {undocumented:?}"
    );
    let unserved: Vec<_> = documented.difference(&served).collect();
    assert!(
        unserved.is_empty(),
        "documented but not served: {unserved:?}"
    );
}
