//! The web app's and REST API's one error type. Every variant maps to a status, a stable
//! `error` code and a message in a JSON body `{"error": "...", "message": "..."}`; bearer-token
//! failures also carry an RFC 6750 §3 `WWW-Authenticate` challenge. The [`ErrorReport`] left in
//! the response's extensions lets the middleware in [`super::layers`] log each failure once and
//! show it as a page to a browser.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use protocol::verify::JwtError;
use protocol::www_authenticate::Challenge;

use crate::mcp::auth::TokenRefusal;
use crate::mcp::scopes::Need;
use serde::{Deserialize, Serialize};

use crate::domain::TodoError;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// Neither a session cookie nor a bearer token.
    #[error("log in, or send an access token as `Authorization: Bearer <token>`")]
    Unauthenticated,
    /// The bearer token is malformed, expired, or not for this resource.
    #[error("the access token is not valid: {0}")]
    InvalidToken(String),
    /// The bearer token lacks the scope the operation needs (the challenge names the preferred
    /// one of the accepted scopes).
    #[error("this operation needs the scope {0}")]
    InsufficientScope(Need),
    /// A cookie-authenticated change without the session's CSRF token.
    #[error("missing or wrong CSRF token; reload the page and try again")]
    Csrf,
    /// No such todo for this user (a foreign id looks exactly the same).
    #[error("todo {0} not found")]
    NotFound(i64),
    /// Bad input.
    #[error("{0}")]
    Invalid(String),
    /// A body in a format the route does not take.
    #[error("send the body as application/json")]
    UnsupportedMediaType,
    /// A body over the limit.
    #[error("the request body is larger than {0} bytes")]
    TooLarge(usize),
    /// The login could not be completed (bad state, refused code, invalid ID token).
    #[error("login failed: {0}")]
    Login(String),
    /// The todo store, the identity provider or its keys cannot be reached.
    #[error("{0} is temporarily unavailable; please try again shortly")]
    Unavailable(&'static str),
}

/// The JSON error body.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ErrorBody {
    /// A stable code: `unauthorized`, `invalid_token`, `insufficient_scope`, `csrf_failed`,
    /// `not_found`, `invalid_request`, `unsupported_media_type`, `payload_too_large`,
    /// `login_failed`, `temporarily_unavailable`.
    pub error: String,
    /// What went wrong, for people.
    pub message: String,
}

/// What the middleware reads to log a failure and render it for a browser.
#[derive(Debug, Clone)]
pub(crate) struct ErrorReport {
    pub(crate) status: StatusCode,
    pub(crate) message: String,
}

impl WebError {
    /// The HTTP status and the stable error code.
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::Unauthenticated => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Self::InvalidToken(_) => (StatusCode::UNAUTHORIZED, "invalid_token"),
            Self::InsufficientScope(_) => (StatusCode::FORBIDDEN, "insufficient_scope"),
            Self::Csrf => (StatusCode::FORBIDDEN, "csrf_failed"),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            Self::Invalid(_) => (StatusCode::BAD_REQUEST, "invalid_request"),
            Self::UnsupportedMediaType => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            Self::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            Self::Login(_) => (StatusCode::BAD_REQUEST, "login_failed"),
            Self::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable"),
        }
    }

    /// The RFC 6750 §3 challenge, for failures a bearer client can act on.
    fn challenge(&self) -> Option<Challenge> {
        let bearer = Challenge::bearer().with_param("realm", "todo0");
        match self {
            Self::Unauthenticated => Some(bearer),
            Self::InvalidToken(description) => Some(
                bearer
                    .with_param("error", "invalid_token")
                    .with_param("error_description", description.clone()),
            ),
            Self::InsufficientScope(need) => Some(
                bearer
                    .with_param("error", "insufficient_scope")
                    .with_param("error_description", self.to_string())
                    .with_param("scope", need.preferred()),
            ),
            Self::Csrf
            | Self::NotFound(_)
            | Self::Invalid(_)
            | Self::UnsupportedMediaType
            | Self::TooLarge(_)
            | Self::Login(_)
            | Self::Unavailable(_) => None,
        }
    }

    /// A bearer token refused by the guard.
    pub(crate) fn from_refusal(error: TokenRefusal) -> Self {
        match error {
            TokenRefusal::Jwt(JwtError::KeysUnavailable(e)) => {
                tracing::error!(error = %e, "cannot fetch the authorization server's keys");
                Self::Unavailable("the authorization server")
            }
            other => Self::InvalidToken(other.to_string()),
        }
    }
}

impl From<weblogin::RpError> for WebError {
    fn from(e: weblogin::RpError) -> Self {
        match e {
            weblogin::RpError::Refused(message) => Self::Login(message),
            weblogin::RpError::Unavailable => Self::Unavailable("the identity provider"),
        }
    }
}

impl From<TodoError> for WebError {
    fn from(error: TodoError) -> Self {
        match error {
            TodoError::NotFound(id) => Self::NotFound(id),
            TodoError::Invalid(message) => Self::Invalid(message),
            TodoError::Unavailable(message) => {
                tracing::warn!(error = %message, "todo store unavailable");
                Self::Unavailable("the todo store")
            }
        }
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let message = self.to_string();
        let mut response = (
            status,
            Json(ErrorBody {
                error: code.to_owned(),
                message: message.clone(),
            }),
        )
            .into_response();
        if let Some(value) = self
            .challenge()
            .and_then(|c| c.to_header_value().ok())
            .and_then(|v| HeaderValue::from_str(&v).ok())
        {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, value);
        }
        response
            .extensions_mut()
            .insert(ErrorReport { status, message });
        response
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn bearer_failures_carry_rfc6750_challenges() {
        let need =
            crate::mcp::ScopePolicy::SampleCompatible.need(crate::mcp::scopes::Action::Delete);
        let response = WebError::InsufficientScope(need).into_response();
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        let value = response
            .headers()
            .get(header::WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let parsed = protocol::www_authenticate::parse(&value).unwrap_or_default();
        let bearer = protocol::www_authenticate::find_bearer(&parsed);
        assert_eq!(bearer.and_then(|c| c.error()), Some("insufficient_scope"));
        assert_eq!(bearer.and_then(|c| c.scope()), Some("mcp:tools:manage"));
        assert!(
            WebError::NotFound(3)
                .into_response()
                .headers()
                .get(header::WWW_AUTHENTICATE)
                .is_none()
        );
    }
}
