//! HTTP edge of the domain error: `{ "error": { code, message } }` with the code's status,
//! and JSON body rejections mapped onto the same shape (400/413/415/422).

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use crate::error::{AppError, ErrorCode};
use crate::types::{ApiErrorBody, parse_payload};

/// An error answered by the service API.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub error: AppError,
}

impl From<AppError> for ApiError {
    fn from(error: AppError) -> Self {
        let status = StatusCode::from_u16(error.code.http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        Self { status, error }
    }
}

impl ApiError {
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            status,
            error: AppError::new(code, message),
        }
    }
}

impl ApiError {
    /// The envelope without a log line, for refusals logged through a
    /// [`RefusalLog`](crate::refusal_log::RefusalLog) (aggregated per source) instead.
    pub fn into_unlogged_response(self) -> Response {
        let retry_after = self.error.retry_after_secs;
        let mut res = (self.status, Json(ApiErrorBody { error: self.error })).into_response();
        if let Some(secs) = retry_after {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        res
    }
}

/// What the log line of an answered error says; the router's logging layer, which knows
/// the client, writes it (see `http::log_refusals`).
#[derive(Debug, Clone)]
pub struct RefusalNote {
    pub status: StatusCode,
    pub code: &'static str,
    pub detail: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let note = RefusalNote {
            status: self.status,
            code: self.error.code.as_str(),
            detail: self.error.message.clone(),
        };
        let mut res = self.into_unlogged_response();
        res.extensions_mut().insert(note);
        res
    }
}

/// A JSON body that validates into `T`, naming the offending field on failure.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let Json(value) = Json::<serde_json::Value>::from_request(req, state)
            .await
            .map_err(|r| match r {
                JsonRejection::MissingJsonContentType(_) => ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    ErrorCode::InvalidPayload,
                    "Content-Type must be application/json",
                ),
                JsonRejection::JsonSyntaxError(e) => ApiError::new(
                    StatusCode::BAD_REQUEST,
                    ErrorCode::InvalidPayload,
                    format!("malformed JSON: {}", e.body_text()),
                ),
                JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                    ApiError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        ErrorCode::InvalidPayload,
                        "request body too large",
                    )
                }
                other => {
                    ApiError::new(other.status(), ErrorCode::InvalidPayload, other.body_text())
                }
            })?;
        Ok(Self(parse_payload(value)?))
    }
}
