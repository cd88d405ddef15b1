//! The REST API's errors, as GitHub answers them: `{"message","documentation_url","status"}`
//! (plus `errors` for validation failures). One `IntoResponse`, one arm per variant.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::service::ServiceError;

/// Where GitHub's REST documentation lives.
pub const DOCS: &str = "https://docs.github.com/rest";

/// A REST error.
#[derive(Debug)]
pub enum ApiError {
    /// No credentials.
    RequiresAuthentication,
    /// Credentials that are not a live access token.
    BadCredentials,
    /// No such resource (`documentation_url` of the endpoint).
    NotFound(&'static str),
    /// The token lacks the scope for this write.
    NotAccessible(&'static str),
    /// The request body is not JSON.
    ProblemsParsingJson(&'static str),
    /// A required field is missing.
    FieldMissing(&'static str, &'static str),
    /// A comment body over the limit.
    BodyTooLong(&'static str),
    /// The hourly budget is spent.
    RateLimited {
        /// The account's id (named in GitHub's message).
        account_id: i64,
        /// Seconds until the window resets.
        retry_after: i64,
    },
    /// The store failed (logged; a generic 503 to the client).
    Unavailable(String),
}

impl ApiError {
    /// Maps a service error for the endpoint documented at `docs`.
    pub fn from_service(error: ServiceError, docs: &'static str) -> Self {
        match error {
            ServiceError::NotFound => ApiError::NotFound(docs),
            ServiceError::BodyMissing => ApiError::FieldMissing("body", docs),
            ServiceError::BodyTooLong => ApiError::BodyTooLong(docs),
            ServiceError::InsufficientScope => ApiError::NotAccessible(docs),
            ServiceError::Store(e) => ApiError::Unavailable(e.to_string()),
        }
    }
}

fn body(message: &str, docs: &str, status: StatusCode) -> Value {
    json!({"message": message, "documentation_url": docs, "status": status.as_u16().to_string()})
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, value) = match self {
            ApiError::RequiresAuthentication => (
                StatusCode::UNAUTHORIZED,
                body("Requires authentication", DOCS, StatusCode::UNAUTHORIZED),
            ),
            ApiError::BadCredentials => (
                StatusCode::UNAUTHORIZED,
                body("Bad credentials", DOCS, StatusCode::UNAUTHORIZED),
            ),
            ApiError::NotFound(docs) => (
                StatusCode::NOT_FOUND,
                body("Not Found", docs, StatusCode::NOT_FOUND),
            ),
            ApiError::NotAccessible(docs) => (
                StatusCode::FORBIDDEN,
                body(
                    "Resource not accessible by integration",
                    docs,
                    StatusCode::FORBIDDEN,
                ),
            ),
            ApiError::ProblemsParsingJson(docs) => (
                StatusCode::BAD_REQUEST,
                body("Problems parsing JSON", docs, StatusCode::BAD_REQUEST),
            ),
            ApiError::FieldMissing(field, docs) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                body(
                    &format!("Invalid request.\n\n\"{field}\" wasn't supplied."),
                    docs,
                    StatusCode::UNPROCESSABLE_ENTITY,
                ),
            ),
            ApiError::BodyTooLong(docs) => {
                let mut value = body("Validation Failed", docs, StatusCode::UNPROCESSABLE_ENTITY);
                value["errors"] = json!([{
                    "resource": "IssueComment",
                    "code": "unprocessable",
                    "field": "data",
                    "message": "Body is too long (maximum is 65536 characters)",
                }]);
                (StatusCode::UNPROCESSABLE_ENTITY, value)
            }
            ApiError::RateLimited {
                account_id,
                retry_after,
            } => {
                let value = body(
                    &format!(
                        "API rate limit exceeded for user ID {account_id}. If you reach out to GitHub Support for help, please include the request ID."
                    ),
                    "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api",
                    StatusCode::FORBIDDEN,
                );
                let mut response = (StatusCode::FORBIDDEN, axum::Json(value)).into_response();
                if let Ok(value) = HeaderValue::from_str(&retry_after.max(1).to_string()) {
                    response.headers_mut().insert(header::RETRY_AFTER, value);
                }
                return response;
            }
            ApiError::Unavailable(detail) => {
                tracing::error!(error = %detail, "github0 store failed");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    body(
                        "The sandbox's store is unavailable; try again shortly.",
                        DOCS,
                        StatusCode::SERVICE_UNAVAILABLE,
                    ),
                )
            }
        };
        (status, axum::Json(value)).into_response()
    }
}
