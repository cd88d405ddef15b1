//! The management API's errors, answered with Okta's error body (OKTA.md §4 "General"):
//! `{errorCode, errorSummary, errorLink, errorId, errorCauses:[{errorSummary}]}`. One
//! `IntoResponse` picks each variant's status deliberately (no catch-all arm); server faults are
//! logged once and shown as a generic summary.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::store::StoreError;

/// Why a management request was refused.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// No `Authorization: SSWS <token>`, or not the admin token (E0000011).
    #[error("invalid token provided")]
    Unauthenticated,
    /// No such resource or endpoint (E0000007).
    #[error("not found: {0}")]
    NotFound(String),
    /// The request names something invalid (E0000001); the causes name the fields.
    #[error("validation failed: {summary}")]
    Validation {
        /// The field (Okta: `Api validation failed: <field>`).
        summary: String,
        /// One sentence per problem.
        causes: Vec<String>,
    },
    /// The body is not JSON or not the expected shape (E0000003).
    #[error("malformed body: {0}")]
    Malformed(String),
    /// Deleting an app that is not INACTIVE (Okta's E0000056, 403).
    #[error("delete application forbidden")]
    DeleteActiveApp,
    /// Too many management requests in the current window (Okta's E0000047, 429).
    #[error("rate limit exceeded")]
    RateLimited(super::RateWindow),
    /// Another writer changed the stored directory meanwhile (another idp0 on the same store).
    #[error("the directory changed concurrently")]
    Conflict,
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A new authorization server's keys could not be created.
    #[error("cannot create signing keys: {0}")]
    Keys(String),
    /// The document could not be encoded.
    #[error("cannot encode the directory: {0}")]
    Encoding(#[from] serde_json::Error),
}

impl AdminError {
    /// An E0000001 naming `field`, with `cause` as its one cause.
    pub(crate) fn invalid(field: &str, cause: impl Into<String>) -> Self {
        Self::Validation {
            summary: field.to_owned(),
            causes: vec![cause.into()],
        }
    }

    /// An E0000007 for `what` (e.g. `aus123 (AuthorizationServer)`).
    pub(crate) fn not_found(what: impl Into<String>) -> Self {
        Self::NotFound(what.into())
    }

    fn parts(&self) -> (StatusCode, &'static str, String, Vec<String>) {
        match self {
            Self::Unauthenticated => (
                StatusCode::UNAUTHORIZED,
                "E0000011",
                "Invalid token provided".into(),
                vec![],
            ),
            Self::NotFound(what) => (
                StatusCode::NOT_FOUND,
                "E0000007",
                format!("Not found: Resource not found: {what}"),
                vec![],
            ),
            Self::Validation { summary, causes } => (
                StatusCode::BAD_REQUEST,
                "E0000001",
                format!("Api validation failed: {summary}"),
                causes.clone(),
            ),
            Self::Malformed(detail) => (
                StatusCode::BAD_REQUEST,
                "E0000003",
                "The request body was not well-formed.".into(),
                vec![detail.clone()],
            ),
            Self::DeleteActiveApp => (
                StatusCode::FORBIDDEN,
                "E0000056",
                "Delete application forbidden.".into(),
                vec!["The application must be deactivated before it is deleted.".into()],
            ),
            Self::RateLimited(_) => (
                StatusCode::TOO_MANY_REQUESTS,
                "E0000047",
                "API call exceeded rate limit due to too many requests.".into(),
                vec![],
            ),
            Self::Conflict => (
                StatusCode::CONFLICT,
                "E0000009",
                "The directory was changed by another request; try again.".into(),
                vec![],
            ),
            Self::Store(_) | Self::Keys(_) | Self::Encoding(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "E0000009",
                "Internal Server Error".into(),
                vec![],
            ),
        }
    }
}

/// Okta's error body.
pub(crate) fn error_body(code: &str, summary: &str, causes: &[String]) -> serde_json::Value {
    let causes: Vec<_> = causes
        .iter()
        .map(|c| serde_json::json!({"errorSummary": c}))
        .collect();
    serde_json::json!({
        "errorCode": code,
        "errorSummary": summary,
        "errorLink": code,
        "errorId": super::ids::new_id("oae"),
        "errorCauses": causes,
    })
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        match &self {
            Self::Store(_) | Self::Keys(_) | Self::Encoding(_) | Self::Conflict => {
                tracing::error!(error = %self, "management request failed")
            }
            Self::Unauthenticated
            | Self::NotFound(_)
            | Self::Validation { .. }
            | Self::Malformed(_)
            | Self::DeleteActiveApp
            | Self::RateLimited(_) => tracing::info!(error = %self, "management request refused"),
        }
        let (status, code, summary, causes) = self.parts();
        let mut response = (status, Json(error_body(code, &summary, &causes))).into_response();
        if let Self::RateLimited(window) = &self {
            window.add_headers(&mut response);
        }
        response
    }
}
