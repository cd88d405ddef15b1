//! Discovery documents (OIDC Discovery §4, RFC 8414 §3) and JWKS (RFC 7517 §5).

use axum::Json;
use axum::http::header;
use axum::response::IntoResponse;

use super::Server;

/// `GET …/.well-known/{openid-configuration,oauth-authorization-server}`.
pub(super) async fn get_metadata(Server(server): Server) -> impl IntoResponse {
    (
        [(header::CACHE_CONTROL, "max-age=300")],
        Json(server.metadata()),
    )
}

/// `GET …/v1/keys`.
pub(super) async fn get_keys(Server(server): Server) -> impl IntoResponse {
    (
        [(header::CACHE_CONTROL, "max-age=300")],
        Json(server.keys.jwks()),
    )
}
