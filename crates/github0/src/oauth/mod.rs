//! GitHub's OAuth web flow: [`authorize`] (sign-in, consent, the redirect with `code` and
//! `state`) and [`token`] (`POST /login/oauth/access_token`: code exchange and refresh).

pub mod authorize;
pub mod token;

use axum::Router;
use axum::routing::{get, post};

use crate::Github0;

/// Authorization codes live ten minutes, as GitHub's.
pub const CODE_LIFETIME_SECONDS: i64 = 600;

pub(crate) fn router() -> Router<Github0> {
    Router::new()
        .route(
            "/login/oauth/authorize",
            get(authorize::get_authorize).post(authorize::post_authorize),
        )
        .route("/login", get(authorize::get_login))
        .route("/session", post(authorize::post_session))
        .route("/login/oauth/access_token", post(token::post_access_token))
}

/// GitHub's documentation page for an error name (`error_uri`).
pub fn error_uri(error: &str) -> &'static str {
    match error {
        "incorrect_client_credentials" => {
            "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors/#incorrect-client-credentials"
        }
        "redirect_uri_mismatch" => {
            "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-authorization-request-errors/#redirect-uri-mismatch2"
        }
        "bad_verification_code" => {
            "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors/#bad-verification-code"
        }
        "access_denied" => {
            "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-authorization-request-errors/#access-denied"
        }
        "bad_refresh_token" => {
            "https://docs.github.com/apps/creating-github-apps/authenticating-with-a-github-app/refreshing-user-access-tokens"
        }
        _ => "https://docs.github.com/apps/oauth-apps/building-oauth-apps/authorizing-oauth-apps",
    }
}
