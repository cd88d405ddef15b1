//! The REST API under `/api/v3`: GitHub's headers on every answer (`x-github-request-id`,
//! `x-github-api-version-selected`, `x-github-media-type`), `User-Agent` required (403 without,
//! as GitHub), `Authorization: Bearer|token <access token>` (401 `Requires authentication` /
//! `Bad credentials`), an hourly budget per token with `x-ratelimit-*` headers (403 with
//! `retry-after` and `x-ratelimit-remaining: 0` once spent), and the OAuth app endpoints with
//! Basic authentication.

mod applications;
pub mod error;
pub mod json;
pub(crate) mod rest;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::{Next, from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};

use crate::Github0;
use error::ApiError;

/// The API version github0 answers with (the only one it knows).
pub const API_VERSION: &str = "2022-11-28";

pub(crate) fn router(github0: Github0) -> Router<Github0> {
    let authed = Router::new()
        .route("/user", get(rest::get_user))
        .route("/repos/{owner}/{repo}", get(rest::get_repo))
        .route("/repos/{owner}/{repo}/pulls", get(rest::list_pulls))
        .route(
            "/repos/{owner}/{repo}/pulls/{pull_number}",
            get(rest::get_pull),
        )
        .route(
            "/repos/{owner}/{repo}/issues/{issue_number}/comments",
            get(rest::list_comments).post(rest::post_comment),
        )
        .route_layer(from_fn_with_state(github0, authenticate));
    Router::new()
        .route(
            "/applications/{client_id}/token",
            delete(applications::delete_token),
        )
        .route(
            "/applications/{client_id}/grant",
            delete(applications::delete_grant),
        )
        .merge(authed)
        .fallback(|| async { ApiError::NotFound(error::DOCS) })
        .layer(from_fn(github_headers))
}

impl Github0 {
    pub(crate) fn urls(&self) -> json::Urls {
        json::Urls {
            web: self.config().web_base(),
            api: self.config().api_base(),
        }
    }
}

fn set(headers: &mut HeaderMap, name: &'static str, value: impl ToString) {
    if let Ok(value) = HeaderValue::from_str(&value.to_string()) {
        headers.insert(HeaderName::from_static(name), value);
    }
}

/// `User-Agent` required; an unknown `X-GitHub-Api-Version` refused; GitHub's headers added.
async fn github_headers(request: Request, next: Next) -> Response {
    let request_id = {
        let bytes: [u8; 12] = rand::random();
        let hex: String = bytes.iter().map(|b| format!("{b:02X}")).collect();
        format!(
            "{}:{}:{}:{}",
            &hex[..4],
            &hex[4..8],
            &hex[8..14],
            &hex[14..]
        )
    };
    let has_agent = request
        .headers()
        .get(header::USER_AGENT)
        .is_some_and(|v| !v.as_bytes().iter().all(u8::is_ascii_whitespace));
    let version = request
        .headers()
        .get("x-github-api-version")
        .map(|v| v.to_str().unwrap_or("").to_owned());
    let mut response = if !has_agent {
        (
            StatusCode::FORBIDDEN,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "Request forbidden by administrative rules. Please make sure your request has a User-Agent header (https://docs.github.com/en/rest/overview/resources-in-the-rest-api#user-agent-required). Check https://developer.github.com for other possible causes.\n",
        )
            .into_response()
    } else if let Some(version) = version.filter(|v| v != API_VERSION) {
        let body = serde_json::json!({
            "message": format!("API version '{version}' is not supported."),
            "documentation_url": "https://docs.github.com/rest/about-the-rest-api/api-versions",
            "status": "400",
        });
        (StatusCode::BAD_REQUEST, axum::Json(body)).into_response()
    } else {
        next.run(request).await
    };
    let headers = response.headers_mut();
    set(headers, "x-github-request-id", request_id);
    set(headers, "x-github-api-version-selected", API_VERSION);
    set(headers, "x-github-media-type", "github.v3; format=json");
    if headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v == "application/json")
    {
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
    }
    response
}

/// The bearer token of `Authorization: Bearer X` or `Authorization: token X`.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("token"))
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// A live access token, its request counted against its hour; the [`crate::service::Principal`]
/// goes into the request's extensions, the budget into the response's headers.
async fn authenticate(
    State(github0): State<Github0>,
    mut request: Request,
    next: Next,
) -> Response {
    if request.headers().get(header::AUTHORIZATION).is_none() {
        return ApiError::RequiresAuthentication.into_response();
    }
    let principal = match bearer(request.headers()) {
        None => return ApiError::BadCredentials.into_response(),
        Some(token) => match github0.principal(token).await {
            Ok(Some(principal)) => principal,
            Ok(None) => return ApiError::BadCredentials.into_response(),
            Err(e) => return ApiError::Unavailable(e.to_string()).into_response(),
        },
    };
    let now = github0.now();
    let limit = github0.config().rate_limit_per_hour;
    let window = match github0
        .store()
        .count_request(&principal.token_hash, now, limit)
        .await
    {
        Ok(window) => window,
        Err(e) => return ApiError::Unavailable(e.to_string()).into_response(),
    };
    let limit = i64::from(limit);
    let used = window.used.min(limit);
    let reset = window.start + 3600;
    let scopes = principal.scopes.join(", ");
    let mut response = if window.used > limit {
        ApiError::RateLimited {
            account_id: principal.account.id,
            retry_after: reset - now,
        }
        .into_response()
    } else {
        request.extensions_mut().insert(principal);
        next.run(request).await
    };
    let headers = response.headers_mut();
    set(headers, "x-ratelimit-limit", limit);
    set(headers, "x-ratelimit-remaining", limit - used);
    set(headers, "x-ratelimit-reset", reset);
    set(headers, "x-ratelimit-used", used);
    set(headers, "x-ratelimit-resource", "core");
    set(headers, "x-oauth-scopes", scopes);
    response
}
