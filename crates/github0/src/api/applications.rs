//! GitHub's OAuth app endpoints, authenticated with the app's client id and secret over HTTP
//! Basic, body `{"access_token": "…"}`:
//! `DELETE /applications/{client_id}/token` revokes that access token and the refresh token
//! issued with it (204), and nothing else: the person's other tokens for the app and the grant
//! stay (an access token revoked already is 404, as GitHub answers for a token it does not know);
//! `DELETE /applications/{client_id}/grant` removes the person's authorization of the app and
//! revokes every token it issued (204), so the next authorization asks for consent again.
//! An unknown token is 404; wrong app credentials are 404 too, as GitHub answers.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use protocol::constant_time::is_equal;

use super::error::ApiError;
use crate::Github0;
use crate::tokens::digest;

const DOCS_TOKEN: &str = "https://docs.github.com/rest/apps/oauth-applications#delete-an-app-token";
const DOCS_GRANT: &str =
    "https://docs.github.com/rest/apps/oauth-applications#delete-an-app-authorization";

/// Whether the Basic credentials are `client_id`'s.
fn app_authenticated(github0: &Github0, headers: &HeaderMap, client_id: &str) -> bool {
    let Some(encoded) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Basic ")
                .or_else(|| v.strip_prefix("basic "))
        })
    else {
        return false;
    };
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
        return false;
    };
    let Ok(decoded) = String::from_utf8(decoded) else {
        return false;
    };
    let Some((id, secret)) = decoded.split_once(':') else {
        return false;
    };
    let Some(app) = github0.app(client_id) else {
        return false;
    };
    id == client_id && is_equal(digest(secret), &app.client_secret_sha256)
}

fn access_token(body: &[u8], docs: &'static str) -> Result<String, ApiError> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|_| ApiError::ProblemsParsingJson(docs))?;
    value
        .get("access_token")
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned)
        .ok_or(ApiError::FieldMissing("access_token", docs))
}

pub(crate) async fn delete_token(
    State(github0): State<Github0>,
    Path(client_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    if !app_authenticated(&github0, &headers, &client_id) {
        return Err(ApiError::NotFound(DOCS_TOKEN));
    }
    let token_hash = digest(&access_token(&body, DOCS_TOKEN)?);
    let revoked = github0
        .store()
        .revoke_access_and_its_refresh(&token_hash, &client_id)
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    if !revoked {
        return Err(ApiError::NotFound(DOCS_TOKEN));
    }
    tracing::info!(target: "github0::audit", %client_id, "token revoked by the app");
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub(crate) async fn delete_grant(
    State(github0): State<Github0>,
    Path(client_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    if !app_authenticated(&github0, &headers, &client_id) {
        return Err(ApiError::NotFound(DOCS_GRANT));
    }
    let token_hash = digest(&access_token(&body, DOCS_GRANT)?);
    let store = github0.store();
    let grant = match store.token_of_app(&token_hash, &client_id).await {
        Ok(Some(grant)) => grant,
        Ok(None) => return Err(ApiError::NotFound(DOCS_GRANT)),
        Err(e) => return Err(ApiError::Unavailable(e.to_string())),
    };
    store
        .delete_grant(grant.account_id, &client_id)
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    tracing::info!(target: "github0::audit", %client_id, account_id = grant.account_id, "authorization removed by the app");
    Ok(StatusCode::NO_CONTENT.into_response())
}
