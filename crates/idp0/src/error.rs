//! Token-endpoint errors (RFC 6749 §5.2). The domain error knows nothing of HTTP; the one
//! `IntoResponse` below picks each variant's status deliberately (no catch-all arm).

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use protocol::oauth::{ErrorCode, ErrorResponse};

use crate::store::StoreError;

/// Why a token request was refused.
#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    /// Malformed or missing parameters (RFC 6749 §5.2 `invalid_request`).
    #[error("invalid_request: {0}")]
    InvalidRequest(String),
    /// Client authentication failed. `basic` when the client tried HTTP Basic, so the response
    /// carries a `WWW-Authenticate: Basic` challenge (RFC 6749 §5.2).
    #[error("invalid_client: {description}")]
    InvalidClient {
        /// What failed.
        description: String,
        /// The client used the `Authorization` header.
        basic: bool,
    },
    /// The grant (code, refresh token, assertion, subject token) is invalid.
    #[error("invalid_grant: {0}")]
    InvalidGrant(String),
    /// The client may not use this grant here.
    #[error("unauthorized_client: {0}")]
    UnauthorizedClient(String),
    /// Grant type unknown or not served by this authorization server.
    #[error("unsupported_grant_type: {0}")]
    UnsupportedGrantType(String),
    /// Requested scope unknown or not allowed.
    #[error("invalid_scope: {0}")]
    InvalidScope(String),
    /// `audience` / `resource` names nothing we issue for (RFC 8693 §2.2.2, RFC 8707).
    #[error("invalid_target: {0}")]
    InvalidTarget(String),
    /// RFC 7009 §2.2.1.
    #[error("unsupported_token_type: {0}")]
    UnsupportedTokenType(String),
    /// Brokered consent: the person must consent first at `interaction_uri` (OKTA.md §1,
    /// draft-parecki-oauth-jwt-grant-interaction-response).
    #[error("interaction_required")]
    InteractionRequired {
        /// Where the person consents (opaque, single use).
        interaction_uri: String,
        /// Seconds between retries.
        interval: u64,
        /// Seconds until the link expires.
        expires_in: u64,
    },
    /// The person has not finished the interaction yet.
    #[error("interaction_pending")]
    InteractionPending,
    /// The client retries faster than `interval`.
    #[error("slow_down")]
    SlowDown,
    /// The person (or the third-party app) refused.
    #[error("access_denied: {0}")]
    AccessDenied(String),
    /// The interaction expired; the next request starts a new one.
    #[error("expired_token: {0}")]
    ExpiredToken(String),
    /// A third party idp0 depends on (the ISV) could not answer; nothing was stored.
    #[error("temporarily_unavailable: {0}")]
    Unavailable(String),
    /// Storage failed; the client sees a generic `server_error`.
    #[error("server_error: {0}")]
    Store(#[from] StoreError),
    /// Signing failed; the client sees a generic `server_error`.
    #[error("server_error: {0}")]
    Signing(String),
}

impl OAuthError {
    /// The RFC 6749 error code.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::InvalidRequest(_) => ErrorCode::InvalidRequest,
            Self::InvalidClient { .. } => ErrorCode::InvalidClient,
            Self::InvalidGrant(_) => ErrorCode::InvalidGrant,
            Self::UnauthorizedClient(_) => ErrorCode::UnauthorizedClient,
            Self::UnsupportedGrantType(_) => ErrorCode::UnsupportedGrantType,
            Self::InvalidScope(_) => ErrorCode::InvalidScope,
            Self::InvalidTarget(_) => ErrorCode::InvalidTarget,
            Self::UnsupportedTokenType(_) => ErrorCode::UnsupportedTokenType,
            Self::InteractionRequired { .. } => ErrorCode::InteractionRequired,
            Self::InteractionPending => ErrorCode::InteractionPending,
            Self::SlowDown => ErrorCode::SlowDown,
            Self::AccessDenied(_) => ErrorCode::AccessDenied,
            Self::ExpiredToken(_) => ErrorCode::ExpiredToken,
            Self::Unavailable(_) => ErrorCode::TemporarilyUnavailable,
            // RFC 6749 §4.1.2.1's code for a server that cannot answer for now.
            Self::Store(e) if e.is_unavailable() => ErrorCode::TemporarilyUnavailable,
            Self::Store(_) | Self::Signing(_) => ErrorCode::ServerError,
        }
    }

    /// A client-authentication failure.
    pub fn invalid_client(description: impl Into<String>, basic: bool) -> Self {
        Self::InvalidClient {
            description: description.into(),
            basic,
        }
    }

    fn status_and_description(&self) -> (StatusCode, String) {
        match self {
            Self::InvalidClient { description, .. } => {
                (StatusCode::UNAUTHORIZED, description.clone())
            }
            Self::InvalidRequest(d)
            | Self::InvalidGrant(d)
            | Self::UnauthorizedClient(d)
            | Self::UnsupportedGrantType(d)
            | Self::InvalidScope(d)
            | Self::InvalidTarget(d)
            | Self::UnsupportedTokenType(d)
            | Self::AccessDenied(d)
            | Self::ExpiredToken(d) => (StatusCode::BAD_REQUEST, d.clone()),
            Self::InteractionRequired { .. } => (
                StatusCode::BAD_REQUEST,
                "The user must authenticate with the authorization server for the request to \
                 proceed"
                    .into(),
            ),
            Self::InteractionPending => (
                StatusCode::BAD_REQUEST,
                "the user has not completed the interaction yet".into(),
            ),
            Self::SlowDown => (
                StatusCode::BAD_REQUEST,
                "retry no more often than the interval".into(),
            ),
            Self::Unavailable(d) => (StatusCode::SERVICE_UNAVAILABLE, d.clone()),
            Self::Store(e) if e.is_unavailable() => (
                StatusCode::SERVICE_UNAVAILABLE,
                "the identity provider's database cannot be reached right now; try again in a \
                 moment"
                    .into(),
            ),
            Self::Store(_) | Self::Signing(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the server could not complete the request".into(),
            ),
        }
    }
}

impl From<protocol::keys::KeyError> for OAuthError {
    fn from(e: protocol::keys::KeyError) -> Self {
        Self::Signing(e.to_string())
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let (status, description) = self.status_and_description();
        // Log the code and, for server faults, the cause; never a token or secret.
        match &self {
            Self::Store(_) | Self::Signing(_) => {
                tracing::error!(error = %self, "token request failed")
            }
            _ => tracing::info!(error = %self.code(), "token request refused"),
        }
        let mut body = ErrorResponse::new(self.code(), description);
        if let Self::InteractionRequired {
            interaction_uri,
            interval,
            expires_in,
        } = &self
        {
            body.interaction_uri = Some(interaction_uri.clone());
            body.interval = Some(*interval);
            body.expires_in = Some(*expires_in);
        }
        let mut response = (status, Json(body)).into_response();
        no_store(&mut response);
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        if let Self::InvalidClient { basic: true, .. } = self {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"idp0\""),
            );
        }
        response
    }
}

/// `Cache-Control: no-store` and `Pragma: no-cache` (RFC 6749 §5.1).
pub fn no_store(response: &mut Response) {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    async fn answer(error: OAuthError) -> (StatusCode, axum::http::HeaderMap, serde_json::Value) {
        let response = error.into_response();
        let (parts, body) = response.into_parts();
        let bytes = axum::body::to_bytes(body, 1 << 16).await.unwrap();
        (
            parts.status,
            parts.headers,
            serde_json::from_slice(&bytes).unwrap(),
        )
    }

    #[tokio::test]
    async fn an_unreachable_database_is_503_temporarily_unavailable_with_retry_after() {
        let (status, headers, body) =
            answer(OAuthError::Store(sqlx::Error::PoolTimedOut.into())).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(headers[header::RETRY_AFTER], "5");
        assert_eq!(body["error"], "temporarily_unavailable");

        let (status, headers, body) =
            answer(OAuthError::Store(sqlx::Error::RowNotFound.into())).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(headers.get(header::RETRY_AFTER).is_none());
        assert_eq!(body["error"], "server_error");
    }
}
