//! Who is calling and what they sent. A request is authenticated by `Authorization: Bearer`
//! (verified by the MCP server's own [`Guard`](crate::mcp::auth::Guard): same issuer, audience
//! and key cache; scopes per ARCHITECTURE §5.6) or else by the session cookie. A change made with
//! the cookie must echo the session's CSRF token: in the `csrf_token` field of an HTML form, or in
//! the `X-CSRF-Token` header of a JSON request. The CSRF check comes before the body is parsed, so
//! a forged request learns nothing and changes nothing.

use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::AppState;
use super::error::WebError;
use super::session::Session;
use crate::domain::{Owner, parse_id};
use crate::mcp::auth::Caller;
use crate::mcp::scopes::Need;

/// The header a JSON client echoes the session's CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// The HTML forms' CSRF field.
pub const CSRF_FIELD: &str = "csrf_token";

/// An authenticated caller.
pub(crate) enum Principal {
    /// A person signed in to this app.
    Session { session: Session, owner: Owner },
    /// A client with an access token for todo0.
    Bearer(Caller),
}

impl Principal {
    /// The caller's todos' owner, if the caller may do what `need` allows: a bearer token
    /// must carry one of its scopes; a signed-in person may do anything with their own todos.
    pub(crate) fn authorize(&self, need: Need) -> Result<&Owner, WebError> {
        match self {
            Self::Session { owner, .. } => Ok(owner),
            Self::Bearer(caller) if need.is_met_by(&caller.scopes) => Ok(&caller.owner),
            Self::Bearer(caller) => {
                tracing::info!(
                    client_id = caller.client_id.as_deref().unwrap_or("-"),
                    needed = %need,
                    "insufficient scope"
                );
                Err(WebError::InsufficientScope(need))
            }
        }
    }
}

fn bearer_token(headers: &HeaderMap) -> Option<Result<&str, WebError>> {
    let value = headers.get(header::AUTHORIZATION)?;
    let malformed = || WebError::InvalidToken("send `Authorization: Bearer <token>`".into());
    let token = value
        .to_str()
        .ok()
        .and_then(protocol::bearer::parse_authorization)
        .ok_or_else(malformed);
    Some(token)
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, WebError> {
        if let Some(token) = bearer_token(&parts.headers) {
            return app
                .guard
                .authenticate(token?)
                .await
                .map(Self::Bearer)
                .map_err(WebError::from_refusal);
        }
        let session = SignedIn::from_request_parts(parts, app).await?.0;
        let owner = session.owner()?;
        Ok(Self::Session { session, owner })
    }
}

/// A person signed in with the session cookie (no bearer tokens).
pub(crate) struct SignedIn(pub(crate) Session);

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, WebError> {
        app.live_session(&parts.headers)
            .await?
            .map(Self)
            .ok_or(WebError::Unauthenticated)
    }
}

/// A todo id from the path; anything but a positive integer names no todo.
pub(crate) struct TodoId(pub(crate) i64);

impl FromRequestParts<AppState> for TodoId {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, WebError> {
        let Path(raw) = Path::<String>::from_request_parts(parts, app)
            .await
            .map_err(|_| WebError::NotFound(0))?;
        let id = raw.parse::<i64>().map_err(|_| WebError::NotFound(0))?;
        Ok(Self(parse_id(id)?))
    }
}

/// How the answer to a change is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Via {
    /// An HTML form: `303 See Other` back to the page.
    Form,
    /// The JSON API.
    Api,
}

impl Via {
    /// Whether the request is a browser's form submission (urlencoded, no bearer token).
    pub(crate) fn of(headers: &HeaderMap) -> Self {
        let is_form = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        if is_form && !headers.contains_key(header::AUTHORIZATION) {
            Self::Form
        } else {
            Self::Api
        }
    }

    /// The success response: the page again for a form, else `status` with `body` as JSON.
    pub(crate) fn respond<T: Serialize>(self, status: StatusCode, body: &T) -> Response {
        match self {
            Self::Form => Redirect::to("/").into_response(),
            Self::Api => (status, axum::Json(body)).into_response(),
        }
    }

    /// The success response without a body.
    pub(crate) fn respond_empty(self) -> Response {
        match self {
            Self::Form => Redirect::to("/").into_response(),
            Self::Api => StatusCode::NO_CONTENT.into_response(),
        }
    }
}

/// An authenticated change request: the caller, the parsed input, and how to answer.
pub(crate) struct Command<T> {
    pub(crate) principal: Principal,
    pub(crate) input: T,
    pub(crate) via: Via,
}

impl<T> Command<T> {
    /// See [`Principal::authorize`].
    pub(crate) fn authorize(&self, need: Need) -> Result<&Owner, WebError> {
        self.principal.authorize(need)
    }
}

impl<T: DeserializeOwned> FromRequest<AppState> for Command<T> {
    type Rejection = WebError;

    async fn from_request(request: Request, app: &AppState) -> Result<Self, WebError> {
        let (mut parts, body) = request.into_parts();
        let via = Via::of(&parts.headers);
        let principal = Principal::from_request_parts(&mut parts, app).await?;
        let bytes = axum::body::to_bytes(body, app.max_body_bytes)
            .await
            .map_err(|_| WebError::TooLarge(app.max_body_bytes))?;
        let (fields, csrf) = match via {
            Via::Form => form_fields(&bytes),
            Via::Api => {
                let csrf = parts
                    .headers
                    .get(CSRF_HEADER)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                (json_body(&parts.headers, &bytes)?, csrf)
            }
        };
        if let Principal::Session { session, .. } = &principal
            && !session.is_csrf_token(csrf.as_deref())
        {
            tracing::warn!("cookie-authenticated change without a valid CSRF token");
            return Err(WebError::Csrf);
        }
        let input = serde_json::from_value(fields)
            .map_err(|e| WebError::Invalid(format!("invalid request body: {e}")))?;
        Ok(Self {
            principal,
            input,
            via,
        })
    }
}

/// A form's fields as a JSON object of strings, and its CSRF field.
pub(crate) fn form_fields(bytes: &[u8]) -> (serde_json::Value, Option<String>) {
    let mut csrf = None;
    let mut fields = serde_json::Map::new();
    for (name, value) in url::form_urlencoded::parse(bytes) {
        if name == CSRF_FIELD {
            csrf = Some(value.into_owned());
        } else {
            fields.insert(
                name.into_owned(),
                serde_json::Value::String(value.into_owned()),
            );
        }
    }
    (serde_json::Value::Object(fields), csrf)
}

/// A JSON body (an empty body is `{}`).
fn json_body(headers: &HeaderMap, bytes: &[u8]) -> Result<serde_json::Value, WebError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(serde_json::Value::Object(serde_json::Map::new()));
    }
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::trim)
        .is_some_and(|m| m.eq_ignore_ascii_case("application/json") || m.ends_with("+json"));
    if !is_json {
        return Err(WebError::UnsupportedMediaType);
    }
    serde_json::from_slice(bytes).map_err(|e| WebError::Invalid(format!("invalid JSON: {e}")))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn form_fields_set_the_csrf_field_apart() {
        let (fields, csrf) = form_fields(b"title=Buy+milk+%26+eggs&csrf_token=abc");
        assert_eq!(fields, serde_json::json!({"title": "Buy milk & eggs"}));
        assert_eq!(csrf.as_deref(), Some("abc"));
    }

    #[test]
    fn json_bodies_need_a_json_media_type() {
        let mut headers = HeaderMap::new();
        assert!(json_body(&headers, b"  ").is_ok(), "empty is {{}}");
        assert!(matches!(
            json_body(&headers, br#"{"title":"x"}"#),
            Err(WebError::UnsupportedMediaType)
        ));
        headers.insert(
            header::CONTENT_TYPE,
            "application/json; charset=utf-8".parse().unwrap(),
        );
        assert!(json_body(&headers, br#"{"title":"x"}"#).is_ok());
        assert!(matches!(
            json_body(&headers, b"{"),
            Err(WebError::Invalid(_))
        ));
    }

    #[test]
    fn only_urlencoded_bodies_without_bearer_tokens_are_forms() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            "application/x-www-form-urlencoded".parse().unwrap(),
        );
        assert_eq!(Via::of(&headers), Via::Form);
        headers.insert(header::AUTHORIZATION, "Bearer x".parse().unwrap());
        assert_eq!(Via::of(&headers), Via::Api);
    }
}
