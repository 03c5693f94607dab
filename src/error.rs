//! The domain error: a contract error code plus a human message.
//!
//! Handlers and the service layer return `AppError`; only the edges translate it, into an
//! ack `{ ok: false, error }`, an `error` event, or an HTTP status with the same body.

use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// Error codes of the contract (§4), the only ones a client ever sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    Unauthorized,
    TokenExpired,
    InvalidToken,
    Forbidden,
    TenantMismatch,
    InvalidPayload,
    NotFound,
    RateLimited,
    Unavailable,
    Internal,
}

impl ErrorCode {
    /// The wire spelling, also used as a bounded metric label.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Unauthorized => "UNAUTHORIZED",
            Self::TokenExpired => "TOKEN_EXPIRED",
            Self::InvalidToken => "INVALID_TOKEN",
            Self::Forbidden => "FORBIDDEN",
            Self::TenantMismatch => "TENANT_MISMATCH",
            Self::InvalidPayload => "INVALID_PAYLOAD",
            Self::NotFound => "NOT_FOUND",
            Self::RateLimited => "RATE_LIMITED",
            Self::Unavailable => "UNAVAILABLE",
            Self::Internal => "INTERNAL",
        }
    }

    /// The HTTP status the service API answers with for this code.
    pub const fn http_status(self) -> u16 {
        match self {
            Self::Unauthorized | Self::TokenExpired | Self::InvalidToken => 401,
            Self::Forbidden | Self::TenantMismatch => 403,
            Self::InvalidPayload => 422,
            Self::NotFound => 404,
            Self::RateLimited => 429,
            Self::Unavailable => 503,
            Self::Internal => 500,
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `{ code, message }` body shared by acks, `error` events and HTTP errors.
#[derive(
    Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS, thiserror::Error, utoipa::ToSchema,
)]
#[error("{code}: {message}")]
pub struct AppError {
    pub code: ErrorCode,
    pub message: String,
    /// When a `RATE_LIMITED` refusal may be retried; the HTTP edge sends it as
    /// `Retry-After`. Not part of the wire body (the message states it for sockets).
    #[serde(skip)]
    #[ts(skip)]
    pub retry_after_secs: Option<u64>,
}

impl AppError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            retry_after_secs: None,
        }
    }
    /// A `RATE_LIMITED` refusal that says when to retry.
    pub fn rate_limited(message: impl Into<String>, retry_after_secs: u64) -> Self {
        Self {
            retry_after_secs: Some(retry_after_secs),
            ..Self::new(ErrorCode::RateLimited, message)
        }
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidPayload, message)
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Forbidden, message)
    }
    pub fn tenant_mismatch() -> Self {
        Self::new(
            ErrorCode::TenantMismatch,
            "the payload names another tenant than the caller's",
        )
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, message)
    }
    pub fn unavailable() -> Self {
        Self::new(
            ErrorCode::Unavailable,
            "the store is unreachable; nothing was changed, retry later",
        )
    }
    pub fn internal() -> Self {
        Self::new(ErrorCode::Internal, "internal error")
    }
}
