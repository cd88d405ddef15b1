//! idp0's HTTP surface in Okta's URL layout (ARCHITECTURE §8): the org AS under `/oauth2/v1/…`,
//! custom ASes under `/oauth2/<id>/v1/…`, discovery documents at the OIDC and RFC 8414 paths.

mod authorize;
mod logout;
mod metadata;
mod sts;
mod token;
mod userinfo;

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, DefaultBodyLimit, FromRequestParts, RawPathParams};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use httpserve::headers;

use crate::server::AuthServer;
use crate::state::Idp;

/// Request bodies larger than this are refused (form posts are small).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// idp0's router.
pub fn router(idp: Idp) -> Router {
    let endpoints = Router::new()
        .route(
            "/authorize",
            get(authorize::get_authorize).post(authorize::post_authorize),
        )
        .route("/token", post(token::post_token))
        .route("/introspect", post(token::post_introspect))
        .route("/revoke", post(token::post_revoke))
        .route("/keys", get(metadata::get_keys))
        .route(
            "/userinfo",
            get(userinfo::get_userinfo).post(userinfo::get_userinfo),
        )
        .route("/logout", get(logout::get_logout).post(logout::post_logout));
    let router = Router::new()
        .nest("/oauth2/v1", endpoints.clone())
        .nest("/oauth2/{server}/v1", endpoints)
        .route(
            "/.well-known/openid-configuration",
            get(metadata::get_metadata),
        )
        .route(
            "/.well-known/oauth-authorization-server",
            get(metadata::get_metadata),
        )
        .route(
            "/oauth2/{server}/.well-known/openid-configuration",
            get(metadata::get_metadata),
        )
        .route(
            "/oauth2/{server}/.well-known/oauth-authorization-server",
            get(metadata::get_metadata),
        )
        .route(
            "/.well-known/oauth-authorization-server/oauth2/{server}",
            get(metadata::get_metadata),
        )
        .route("/login", post(authorize::post_login))
        .route(
            "/oauth2/v1/sts/interaction/{id}",
            get(sts::get_interaction).post(sts::post_interaction),
        )
        .route(sts::CONNECTED_APPS, get(sts::get_connected_apps))
        .route(
            "/connected-apps/remove",
            post(sts::post_remove_connected_app),
        )
        .route("/", get(get_home))
        .route("/health", get(|| async { "ok" }))
        .merge(crate::admin::router(&idp))
        // An explicit fallback, so that unknown paths keep the security headers once the
        // brokered-consent pages (their own CSP) are merged in below.
        .fallback(|| async { StatusCode::NOT_FOUND })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES));
    // Every response, pages or not: the pages' CSP (no scripts, no framing), nosniff, DENY, and
    // `same-origin`, not `no-referrer`: under it browsers send `Origin: null` even on same-origin
    // form posts (Fetch §3.1 "append a request Origin header"), and the login and logout forms
    // refuse any foreign Origin. `same-origin` still sends nothing to other sites.
    // The callback's "connected" page runs idp0's own close.js (closes a popup): its CSP allows
    // scripts from idp0 itself, and nothing else does.
    let sts_pages = Router::new()
        .route("/oauth2/v1/sts/callback", get(sts::get_callback))
        .route("/oauth2/v1/sts/close.js", get(sts::get_close_js))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES));
    headers::security_headers(
        router,
        HeaderValue::from_static(crate::html::CSP),
        headers::SAME_ORIGIN,
    )
    .merge(headers::security_headers(
        sts_pages,
        HeaderValue::from_static(crate::html::CSP_SELF_SCRIPT),
        headers::SAME_ORIGIN,
    ))
    .with_state(idp)
}

/// The authorization server a request addresses: the `{server}` path segment, or the org AS.
pub struct Server(pub Arc<AuthServer>);

impl FromRequestParts<Idp> for Server {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, idp: &Idp) -> Result<Self, Response> {
        let params = RawPathParams::from_request_parts(parts, idp)
            .await
            .map_err(IntoResponse::into_response)?;
        let id = params
            .iter()
            .find(|(name, _)| *name == "server")
            .map(|(_, value)| value);
        idp.server(id).map(Server).ok_or_else(|| {
            let body = serde_json::json!({"errorCode": "E0000007", "errorSummary": "Not found: authorization server"});
            (StatusCode::NOT_FOUND, Json(body)).into_response()
        })
    }
}

async fn get_home(axum::extract::State(idp): axum::extract::State<Idp>) -> Html<String> {
    let mut servers: Vec<(String, String)> = idp
        .directory()
        .servers
        .iter()
        .map(|(id, s)| (id.clone(), s.issuer.clone()))
        .collect();
    servers.sort();
    Html(crate::html::home(idp.issuer(), &servers))
}

/// The peer's IP address when the server was started with connect info ([`crate::serve`]); an
/// IPv6 address counts by its /64 (one host usually holds a whole /64), an IPv4-mapped one as
/// IPv4.
pub struct ClientAddr(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| match c.0.ip() {
                IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                    Some(v4) => IpAddr::V4(v4),
                    None => IpAddr::V6(Ipv6Addr::from_bits(v6.to_bits() & !u128::from(u64::MAX))),
                },
                v4 => v4,
            });
        Ok(Self(ip))
    }
}

/// Whether a form post carries an `Origin` other than idp0's own (RFC 6454; browsers send it on
/// every form post), `null` included: refused as CSRF regardless of the token. No `Origin` is
/// allowed (older browsers, non-browser clients); the anti-CSRF token still applies.
pub(crate) fn is_cross_origin(headers: &axum::http::HeaderMap, issuer: &str) -> bool {
    let Some(origin) = headers.get(axum::http::header::ORIGIN) else {
        return false;
    };
    let own = url::Url::parse(issuer).map(|u| u.origin().ascii_serialization());
    match (origin.to_str(), own) {
        (Ok(origin), Ok(own)) => origin != own,
        _ => true,
    }
}

/// A page of the login and logout flows: never cached (it carries a CSRF token and who is signed
/// in); the other security headers come from the router's layers ([`router`]).
fn html_response(status: StatusCode, body: String) -> Response {
    (
        status,
        [(axum::http::header::CACHE_CONTROL, "no-store")],
        Html(body),
    )
        .into_response()
}
