//! The service API's OpenAPI 3.1 document (`GET /api/v1/openapi.json`), and the one table
//! that builds both the `/api/v1` router and the document, so that no route is served
//! without being described.
//!
//! Each handler carries a `#[utoipa::path]` attribute (method, path, tag, request body
//! with an `example`, path parameters, its success answers); the router takes each
//! route's path and methods from that attribute, never from a second copy. The wire types
//! derive `utoipa::ToSchema` beside `ts_rs::TS`, so the schemas follow serde's spelling.
//! The error answers every route shares are added here (`Shared`), by what the
//! operation has: a bearer token (401, 403, 429, 500, 503), a body (400, 413, 415, 422),
//! path ids (400) or a query (422).
//!
//! Adding a route: annotate its handler with `#[utoipa::path(...)]`, then name it in
//! `service_api!`'s list below (`module::handler::<A>` for a handler generic over the
//! adapter). `tests/gateway/openapi.rs` sends every documented example to a real node, and
//! fails on a route the router serves that the document lacks.

use std::sync::OnceLock;

use axum::Router;
use axum::handler::Handler;
use axum::routing::{MethodFilter, on};
use serde_json::json;
use socketioxide::adapter::Adapter;
use utoipa::openapi::path::{HttpMethod, Operation, ParameterIn, PathItem};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{Content, Ref, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use super::ApiState;
use super::{console, export, operator, ops, presence, routes};
use crate::ids::{CourseId, TenantId, UserId};
use crate::types::ApiErrorBody;

/// The name of the bearer security scheme in the document.
const BEARER: &str = "bearerAuth";

/// Declares the `/api/v1` router and the document from one list of annotated handlers.
macro_rules! service_api {
    ($($module:ident :: $handler:ident $(::<$adapter:ident>)?),* $(,)?) => {
        /// The `/api/v1` routes, each at the path and with the methods its
        /// `#[utoipa::path]` names.
        pub(super) fn router<A: Adapter>() -> Router<ApiState<A>> {
            let router = Router::new();
            pastey::paste! {
                $(let router = route::<$module::[<__path_ $handler>], _, _, A>(
                    router,
                    $module::$handler $(::<$adapter>)?,
                );)*
            }
            router
        }

        #[derive(OpenApi)]
        #[openapi(
            info(
                title = "lms-realtime service API",
                description = "The HTTP API LMS backends call (PROTOCOL.md §5, §10, §11, §12). \
                    Errors are `{ \"error\": { code, message } }` with the matching status.",
            ),
            servers((url = "/api/v1")),
            paths($($module::$handler),*),
            components(schemas(ApiErrorBody)),
            modifiers(&Shared),
            tags(
                (name = "notifications", description = "Stored and live notifications"),
                (name = "courses", description = "Course membership and course events"),
                (name = "presence", description = "Who is online"),
                (name = "operator", description = "Kicks and token revocations"),
                (name = "export", description = "Webhooks and the pull API for exported events (§12)"),
                (name = "console", description = "The operator console's API (super_admin, or a tenant's admin)"),
                (name = "platform", description = "Platform-wide calls (super_admin)"),
                (name = "meta", description = "This document"),
            ),
        )]
        struct ServiceApi;
    };
}

service_api![
    routes::send_notification::<A>,
    routes::broadcast::<A>,
    routes::system_alert::<A>,
    routes::set_member::<A>,
    routes::remove_member::<A>,
    routes::replace_members::<A>,
    routes::course_event::<A>,
    routes::unread::<A>,
    routes::stats::<A>,
    operator::kick::<A>,
    operator::revoke::<A>,
    presence::course::<A>,
    presence::tenant::<A>,
    console::get_overview::<A>,
    console::kick::<A>,
    export::put_webhook::<A>,
    export::webhook::<A>,
    export::delete_webhook::<A>,
    export::status::<A>,
    export::dead_letters::<A>,
    export::replay::<A>,
    export::events::<A>,
    ops::openapi_json,
];

/// Adds one handler at the path and methods of its `#[utoipa::path]` (`P`).
fn route<P: utoipa::Path, H, T, A>(router: Router<ApiState<A>>, handler: H) -> Router<ApiState<A>>
where
    H: Handler<T, ApiState<A>>,
    T: 'static,
    A: Adapter,
{
    let filter = P::methods()
        .into_iter()
        .map(method_filter)
        .reduce(MethodFilter::or)
        .expect("a #[utoipa::path] names a method");
    router.route(&P::path(), on(filter, handler))
}

fn method_filter(method: HttpMethod) -> MethodFilter {
    match method {
        HttpMethod::Get => MethodFilter::GET,
        HttpMethod::Post => MethodFilter::POST,
        HttpMethod::Put => MethodFilter::PUT,
        HttpMethod::Delete => MethodFilter::DELETE,
        HttpMethod::Options => MethodFilter::OPTIONS,
        HttpMethod::Head => MethodFilter::HEAD,
        HttpMethod::Patch => MethodFilter::PATCH,
        HttpMethod::Trace => MethodFilter::TRACE,
    }
}

/// The document, built once.
pub fn document() -> &'static utoipa::openapi::OpenApi {
    static DOC: OnceLock<utoipa::openapi::OpenApi> = OnceLock::new();
    DOC.get_or_init(|| {
        let mut doc = ServiceApi::openapi();
        doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
        doc
    })
}

/// The document as served, rendered once.
pub fn document_json() -> &'static str {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| {
        document()
            .to_pretty_json()
            .expect("the document serializes")
    })
}

/// The path ids as the document names them (`params(TenantParam, UserParam)`), each with
/// the example the route test fills the path with. The handlers parse the segments
/// themselves, so that a bad id is answered with the error envelope.
#[derive(utoipa::IntoParams)]
#[expect(dead_code, reason = "read by the document only")]
#[into_params(parameter_in = Path)]
pub(super) struct TenantParam {
    /// Tenant id.
    #[param(example = "acme")]
    pub t: TenantId,
}

#[derive(utoipa::IntoParams)]
#[expect(dead_code, reason = "read by the document only")]
#[into_params(parameter_in = Path)]
pub(super) struct CourseParam {
    /// Course id.
    #[param(example = "c101")]
    pub c: CourseId,
}

#[derive(utoipa::IntoParams)]
#[expect(dead_code, reason = "read by the document only")]
#[into_params(parameter_in = Path)]
pub(super) struct UserParam {
    /// User id.
    #[param(example = "u42")]
    pub u: UserId,
}

/// An error answer shared by many operations: `components/responses/<name>`.
struct SharedError {
    name: &'static str,
    status: &'static str,
    description: &'static str,
    code: &'static str,
    message: &'static str,
}

const UNAUTHORIZED: SharedError = SharedError {
    name: "Unauthorized",
    status: "401",
    description: "No bearer token, or one that is expired, revoked or badly signed \
        (UNAUTHORIZED, TOKEN_EXPIRED, INVALID_TOKEN)",
    code: "UNAUTHORIZED",
    message: "Authorization: Bearer <jwt> required",
};
const FORBIDDEN: SharedError = SharedError {
    name: "Forbidden",
    status: "403",
    description: "A token of another role (FORBIDDEN: the service API takes `service` and \
        `super_admin` tokens; platform-wide calls need `super_admin`), or a service token \
        naming another tenant (TENANT_MISMATCH)",
    code: "TENANT_MISMATCH",
    message: "tenant does not match the token",
};
const RATE_LIMITED: SharedError = SharedError {
    name: "RateLimited",
    status: "429",
    description: "The tenant's rate or in-flight quota is spent (RATE_LIMITED, with \
        `Retry-After` for the rate)",
    code: "RATE_LIMITED",
    message: "rate limit exceeded; retry in 1 s",
};
const INTERNAL: SharedError = SharedError {
    name: "Internal",
    status: "500",
    description: "An unexpected failure (INTERNAL)",
    code: "INTERNAL",
    message: "internal error",
};
const UNAVAILABLE: SharedError = SharedError {
    name: "Unavailable",
    status: "503",
    description: "The store did not answer: nothing was done (UNAVAILABLE)",
    code: "UNAVAILABLE",
    message: "store unavailable",
};
const INVALID: SharedError = SharedError {
    name: "BadRequest",
    status: "400",
    description: "A body that is not JSON, or a bad id in the path (INVALID_PAYLOAD)",
    code: "INVALID_PAYLOAD",
    message: "tenant: may only contain letters, digits and . _ - @ (found '!')",
};
const UNPROCESSABLE: SharedError = SharedError {
    name: "InvalidPayload",
    status: "422",
    description: "JSON that is not a valid request: a missing, unknown or invalid field or \
        query value (INVALID_PAYLOAD; the message names the field)",
    code: "INVALID_PAYLOAD",
    message: "notification.type: unknown variant `NEWS`",
};
const TOO_LARGE: SharedError = SharedError {
    name: "PayloadTooLarge",
    status: "413",
    description: "The body, or a notification's `data`, is larger than allowed \
        (INVALID_PAYLOAD)",
    code: "INVALID_PAYLOAD",
    message: "request body too large",
};
const NOT_JSON: SharedError = SharedError {
    name: "UnsupportedMediaType",
    status: "415",
    description: "A body without `Content-Type: application/json` (INVALID_PAYLOAD)",
    code: "INVALID_PAYLOAD",
    message: "Content-Type must be application/json",
};

/// Every operation of a bearer-authenticated route may answer these.
const AUTHENTICATED: [&SharedError; 5] = [
    &UNAUTHORIZED,
    &FORBIDDEN,
    &RATE_LIMITED,
    &INTERNAL,
    &UNAVAILABLE,
];
/// And these when it reads a body.
const WITH_BODY: [&SharedError; 4] = [&INVALID, &UNPROCESSABLE, &TOO_LARGE, &NOT_JSON];

/// What every operation shares: the bearer scheme (for each operation that does not say
/// `security(...)` itself) and the error answers its shape implies.
struct Shared;

impl Modify for Shared {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "A JWT whose role is `service` (acts in its own `tenantId` only) \
                         or `super_admin` (any tenant, and the platform-wide calls)",
                    ))
                    .build(),
            ),
        );
        for error in AUTHENTICATED.iter().chain(WITH_BODY.iter()) {
            components
                .responses
                .insert(error.name.to_owned(), RefOr::T(error_response(error)));
        }
        for item in doc.paths.paths.values_mut() {
            for op in operations(item) {
                add_shared_errors(op);
            }
        }
    }
}

fn operations(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.options,
        &mut item.head,
        &mut item.patch,
        &mut item.trace,
    ]
    .into_iter()
    .filter_map(Option::as_mut)
}

fn add_shared_errors(op: &mut Operation) {
    let mut shared: Vec<&SharedError> = vec![];
    if op.security.is_none() {
        op.security = Some(vec![SecurityRequirement::new::<_, _, &str>(BEARER, [])]);
        shared.extend(AUTHENTICATED);
    }
    let has_param = |place: ParameterIn| {
        op.parameters
            .iter()
            .flatten()
            .any(|p| p.parameter_in == place)
    };
    if op.request_body.is_some() {
        shared.extend(WITH_BODY);
    } else if has_param(ParameterIn::Path) {
        shared.push(&INVALID);
    }
    if has_param(ParameterIn::Query) {
        shared.push(&UNPROCESSABLE);
    }
    for error in shared {
        op.responses
            .responses
            .entry(error.status.to_owned())
            .or_insert_with(|| RefOr::Ref(Ref::from_response_name(error.name)));
    }
}

fn error_response(error: &SharedError) -> utoipa::openapi::Response {
    let body = json!({ "error": { "code": error.code, "message": error.message } });
    ResponseBuilder::new()
        .description(error.description)
        .content(
            "application/json",
            Content::builder()
                .schema(Some(Ref::from_schema_name("ApiErrorBody")))
                .example(Some(body))
                .build(),
        )
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_is_openapi_3_1_with_the_bearer_scheme() {
        let doc: serde_json::Value = serde_json::from_str(document_json()).unwrap();
        assert!(
            doc["openapi"].as_str().unwrap().starts_with("3.1."),
            "{}",
            doc["openapi"]
        );
        assert_eq!(
            doc["components"]["securitySchemes"][BEARER]["scheme"],
            "bearer"
        );
        assert_eq!(doc["servers"][0]["url"], "/api/v1");
    }

    #[test]
    fn every_operation_id_is_unique() {
        // utoipa names an operation after its handler; two modules' `kick` collided once.
        let doc: serde_json::Value = serde_json::from_str(document_json()).unwrap();
        let mut seen = std::collections::HashSet::new();
        for item in doc["paths"].as_object().unwrap().values() {
            for op in item.as_object().unwrap().values() {
                let id = op["operationId"].as_str().unwrap();
                assert!(seen.insert(id.to_owned()), "operationId {id} is used twice");
            }
        }
    }

    #[test]
    fn every_authenticated_operation_names_the_bearer_scheme_and_its_errors() {
        let doc: serde_json::Value = serde_json::from_str(document_json()).unwrap();
        let mut authenticated = 0;
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                if path == "/openapi.json" {
                    assert_eq!(op["security"], json!([{}]), "{method} {path}");
                    continue;
                }
                authenticated += 1;
                assert_eq!(op["security"], json!([{ BEARER: [] }]), "{method} {path}");
                for status in ["401", "403", "429", "503"] {
                    assert!(
                        op["responses"].get(status).is_some(),
                        "{method} {path}: {status}"
                    );
                }
                if op.get("requestBody").is_some() {
                    for status in ["400", "413", "415", "422"] {
                        assert!(
                            op["responses"].get(status).is_some(),
                            "{method} {path}: {status}"
                        );
                    }
                }
            }
        }
        assert!(authenticated >= 13, "{authenticated} operations");
    }

    #[test]
    #[ignore = "prints the document"]
    fn print_document() {
        println!("{}", document_json());
    }

    #[test]
    fn schemas_keep_the_wire_spelling() {
        let doc: serde_json::Value = serde_json::from_str(document_json()).unwrap();
        let schemas = &doc["components"]["schemas"];
        let send = &schemas["SendNotificationRequest"]["properties"];
        assert!(send.get("tenantId").is_some(), "{send}");
        let input = &schemas["NotificationInput"]["properties"];
        assert!(input.get("type").is_some(), "{input}");
        assert!(input.get("kind").is_none(), "{input}");
        assert_eq!(
            schemas["Priority"]["enum"],
            json!(["LOW", "NORMAL", "HIGH", "URGENT"])
        );
        assert_eq!(
            schemas["CourseRole"]["enum"],
            json!(["student", "instructor"])
        );
    }
}
