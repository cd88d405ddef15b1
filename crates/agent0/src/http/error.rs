//! The API's errors: one JSON shape `{"error": "<code>", "message": "<for the person>"}`, one
//! status per variant (no catch-all arm), logged once in [`super::finish`].

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::agent::AgentError;
use crate::confirm::ConfirmError;
use crate::conversations::StoreError;
use crate::shared::SharedStateError;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No session.
    #[error("you are not logged in")]
    Unauthenticated,
    /// The session's login can no longer be used.
    #[error("your login has expired; log in again")]
    LoginExpired,
    /// The CSRF token is missing or wrong.
    #[error("the request did not carry this session's CSRF token; reload the page")]
    Csrf,
    /// The request is malformed.
    #[error("{message}")]
    BadRequest {
        /// Status (400, 413, 415, 422).
        status: StatusCode,
        /// What is wrong.
        message: String,
    },
    /// No such conversation (or not theirs).
    #[error("no such conversation")]
    NotFound,
    /// Logging in failed.
    #[error("{0}")]
    Login(String),
    /// A dependency is down.
    #[error("{0} is unavailable; try again shortly")]
    Unavailable(&'static str),
    /// A tool-call confirmation that is not (or no longer) waiting for this person.
    #[error(transparent)]
    Confirmation(#[from] ConfirmError),
    /// The conversation store cannot be reached now (details in the log only).
    #[error("your conversations cannot be reached right now; try again in a moment")]
    StoreUnavailable(String),
    /// Sessions or shared caches (Redis) cannot be reached now (details in the log only).
    #[error("sessions cannot be reached right now; try again in a moment")]
    SharedStateUnavailable(String),
    /// Our own failure (details in the log only).
    #[error("something went wrong on our side")]
    Internal(String),
}

/// What the log gets about a failure (the response carries only the generic message).
#[derive(Debug, Clone)]
pub struct ErrorReport {
    /// The status sent.
    pub status: StatusCode,
    /// The detail.
    pub detail: String,
}

impl ApiError {
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::Unauthenticated => (StatusCode::UNAUTHORIZED, "login_required"),
            Self::LoginExpired => (StatusCode::UNAUTHORIZED, "login_expired"),
            Self::Csrf => (StatusCode::FORBIDDEN, "csrf"),
            Self::BadRequest { status, .. } => (*status, "invalid_request"),
            Self::NotFound => (StatusCode::NOT_FOUND, "not_found"),
            Self::Login(_) => (StatusCode::BAD_REQUEST, "login_failed"),
            Self::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            Self::Confirmation(ConfirmError::NotFound) => {
                (StatusCode::NOT_FOUND, "confirmation_not_found")
            }
            Self::Confirmation(ConfirmError::Expired) => (StatusCode::GONE, "confirmation_expired"),
            Self::Confirmation(ConfirmError::Full | ConfirmError::PersonFull) => {
                (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
            }
            Self::StoreUnavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            Self::SharedStateUnavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            Self::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }

    /// A 400 with `message`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::BadRequest {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let detail = match &self {
            Self::Internal(detail)
            | Self::StoreUnavailable(detail)
            | Self::SharedStateUnavailable(detail) => detail.clone(),
            other => other.to_string(),
        };
        let mut response = (
            status,
            Json(json!({"error": code, "message": self.to_string()})),
        )
            .into_response();
        if matches!(
            self,
            Self::StoreUnavailable(_) | Self::SharedStateUnavailable(_)
        ) {
            // A restarting database or Redis is usually back within seconds.
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("5"),
            );
        }
        response
            .extensions_mut()
            .insert(ErrorReport { status, detail });
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => Self::NotFound,
            StoreError::Unavailable(detail) => Self::StoreUnavailable(detail),
            StoreError::Database(detail) | StoreError::Incompatible(detail) => {
                Self::Internal(detail)
            }
        }
    }
}

impl From<SharedStateError> for ApiError {
    fn from(e: SharedStateError) -> Self {
        Self::SharedStateUnavailable(e.to_string())
    }
}

impl From<AgentError> for ApiError {
    fn from(e: AgentError) -> Self {
        match e {
            AgentError::InvalidMessage(message) => Self::bad_request(message),
            AgentError::LoginExpired => Self::LoginExpired,
            AgentError::Store(e) => e.into(),
        }
    }
}

impl From<axum::extract::rejection::JsonRejection> for ApiError {
    fn from(rejection: axum::extract::rejection::JsonRejection) -> Self {
        Self::BadRequest {
            status: rejection.status(),
            message: rejection.body_text(),
        }
    }
}
