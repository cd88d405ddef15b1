//! The token endpoint (RFC 6749 §3.2), introspection (RFC 7662, limited per §4 to the token's
//! own client and the issuing server's registered resource clients) and revocation (RFC 7009;
//! with `token_type_hint=oauth_sts`, of a brokered ISV token as Okta does, OKTA.md §1).
//! Each reads the form once, parses it into a typed request, authenticates the client, and hands
//! over to a service function; failures are RFC 6749 §5.2 bodies with `Cache-Control: no-store`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use protocol::claims::AccessTokenClaims;
use protocol::verify::{Expectations, TypeRule};

use super::Server;
use crate::client_auth;
use crate::config::Client;
use crate::error::{OAuthError, no_store};
use crate::grants;
use crate::server::AuthServer;
use crate::state::Idp;
use crate::store::secret_hash;
use crate::token_request::{Form, TokenRequest};

/// Reads a bounded `application/x-www-form-urlencoded` body.
fn read_form(headers: &HeaderMap, body: Result<Bytes, BytesRejection>) -> Result<Form, OAuthError> {
    let body = body.map_err(|e| {
        OAuthError::InvalidRequest(format!("unreadable request body: {}", e.body_text()))
    })?;
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !is_form {
        return Err(OAuthError::InvalidRequest(
            "Content-Type must be application/x-www-form-urlencoded".into(),
        ));
    }
    Form::parse(&body)
}

fn json_no_store<T: serde::Serialize>(body: &T) -> Response {
    let mut response = Json(body).into_response();
    no_store(&mut response);
    response
}

fn refused(error: OAuthError, form_client: Option<&str>) -> Response {
    tracing::info!(client_id = form_client.unwrap_or("-"), error = %error.code(), "request refused");
    error.into_response()
}

/// `POST …/v1/token`.
pub(super) async fn post_token(
    State(idp): State<Idp>,
    Server(server): Server,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let form = match read_form(&headers, body) {
        Ok(form) => form,
        Err(e) => return refused(e, None),
    };
    let result = async {
        // Parse before authenticating, so a malformed request spends no client-assertion jti.
        let request = TokenRequest::try_from(&form)?;
        let client =
            client_auth::authenticate(&idp, &server, &server.endpoint("token"), &headers, &form)
                .await?;
        grants::dispatch(&idp, &server, &client, request).await
    }
    .await;
    match result {
        Ok(response) => json_no_store(&response),
        Err(e) => refused(e, form.get("client_id")),
    }
}

/// The `token` parameter of an introspection or revocation request, and the client that
/// authenticated at `endpoint` (RFC 7662 §2.1, RFC 7009 §2.1).
async fn token_and_client(
    idp: &Idp,
    server: &AuthServer,
    endpoint: &str,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(String, std::sync::Arc<Client>), OAuthError> {
    let form = read_form(headers, body)?;
    let token = form.require("token")?.to_owned();
    let client =
        client_auth::authenticate(idp, server, &server.endpoint(endpoint), headers, &form).await?;
    Ok((token, client))
}

/// `POST …/v1/introspect` (RFC 7662 §2): only authenticated clients may ask.
pub(super) async fn post_introspect(
    State(idp): State<Idp>,
    Server(server): Server,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let result = async {
        let (token, client) = token_and_client(&idp, &server, "introspect", &headers, body).await?;
        introspect(&idp, &server, &client, &token).await
    }
    .await;
    match result {
        Ok(body) => json_no_store(&body),
        Err(e) => refused(e, None),
    }
}

/// Whether `caller` may learn about an access token issued to `issued_to` at `server`
/// (RFC 7662 §4): the client it was issued to, or a resource server registered for `server`.
fn may_introspect(server: &AuthServer, caller: &Client, issued_to: Option<&str>) -> bool {
    issued_to == Some(caller.client_id.as_str())
        || server
            .custom
            .as_ref()
            .is_some_and(|c| c.resource_clients.contains(&caller.client_id))
}

/// RFC 7662 §2.2. A token the caller may not see is reported exactly like an unknown one.
async fn introspect(
    idp: &Idp,
    server: &AuthServer,
    caller: &Client,
    token: &str,
) -> Result<serde_json::Value, OAuthError> {
    let inactive = serde_json::json!({"active": false});
    if let Some(claims) = verify_own_access_token(idp, server, token).await {
        if !may_introspect(server, caller, claims.client()) {
            tracing::info!(client_id = %caller.client_id, "introspection of another client's token refused");
            return Ok(inactive);
        }
        if idp
            .store
            .is_access_token_revoked(claims.jti.as_deref().unwrap_or_default())
            .await?
        {
            return Ok(inactive);
        }
        let username = claims
            .uid
            .as_deref()
            .and_then(|id| idp.user(id))
            .map(|u| u.username.clone());
        return Ok(serde_json::json!({
            "active": true,
            "token_type": "Bearer",
            "scope": claims.scopes().to_string(),
            "client_id": claims.client(),
            "username": username,
            "sub": claims.sub,
            "uid": claims.uid,
            "aud": claims.aud,
            "iss": claims.iss,
            "exp": claims.exp,
            "iat": claims.iat,
            "jti": claims.jti,
            "act": claims.act,
        }));
    }
    if let Some(record) = idp.store.find_refresh_token(&secret_hash(token)).await? {
        // Refresh tokens are only ever shown to the client holding them (no resource server
        // needs one).
        let active = !record.used
            && record.grant.client_id == caller.client_id
            && record.grant.server == server.store_id()
            && record.expires_at > idp.clock.now()
            && !idp.store.is_family_revoked(&record.grant.family).await?;
        if active {
            return Ok(serde_json::json!({
                "active": true,
                "token_type": "refresh_token",
                "scope": record.grant.scope,
                "client_id": record.grant.client_id,
                "sub": record.grant.user_id,
                "exp": record.expires_at,
            }));
        }
    }
    Ok(inactive)
}

async fn verify_own_access_token(
    idp: &Idp,
    server: &AuthServer,
    token: &str,
) -> Option<AccessTokenClaims> {
    let expect = Expectations::new(&server.issuer, server.audience(), TypeRule::ACCESS_TOKEN);
    idp.verifier_for(server)
        .verify::<AccessTokenClaims>(token, &expect)
        .await
        .ok()
        .map(|v| v.claims)
}

/// `POST …/v1/revoke` (RFC 7009 §2): 200 for unknown tokens; refresh tokens revoke their family.
pub(super) async fn post_revoke(
    State(idp): State<Idp>,
    Server(server): Server,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let result = async {
        let form = read_form(&headers, body)?;
        let token = form.require("token")?.to_owned();
        let client =
            client_auth::authenticate(&idp, &server, &server.endpoint("revoke"), &headers, &form)
                .await?;
        if form.get("token_type_hint") == Some(OAUTH_STS_HINT) && server.is_org() {
            return revoke_brokered(&idp, &client, &token).await;
        }
        revoke(&idp, &server, &client, &token).await
    }
    .await;
    match result {
        Ok(()) => {
            let mut response = StatusCode::OK.into_response();
            no_store(&mut response);
            response
        }
        Err(e) => refused(e, None),
    }
}

/// Okta's `token_type_hint` for a brokered (ISV) token (OKTA.md §1).
const OAUTH_STS_HINT: &str = "oauth_sts";

/// Revocation of a brokered ISV token the agent was given (OKTA.md §1): only idp0's cached
/// access token is forgotten; the refresh token stays, so the next exchange refreshes silently.
/// An unknown token is fine (RFC 7009 §2.2): always 200.
async fn revoke_brokered(idp: &Idp, client: &Client, token: &str) -> Result<(), OAuthError> {
    let hash = secret_hash(token);
    if let Some(entry) = idp
        .store
        .find_vault_entry_by_access_hash(&client.client_id, &hash)
        .await?
    {
        idp.store
            .clear_vault_access_token(&entry.user_id, &entry.agent, &entry.resource)
            .await?;
        tracing::info!(target: crate::sts::AUDIT, event = "sts_token_revoked", user_id = %entry.user_id, agent = %entry.agent, resource = %entry.resource, "cached ISV access token revoked");
    }
    Ok(())
}

async fn revoke(
    idp: &Idp,
    server: &AuthServer,
    client: &Client,
    token: &str,
) -> Result<(), OAuthError> {
    let now = idp.clock.now();
    let not_yours =
        || OAuthError::UnauthorizedClient("the token was issued to another client".into());
    if let Some(record) = idp.store.find_refresh_token(&secret_hash(token)).await? {
        if record.grant.client_id != client.client_id || record.grant.server != server.store_id() {
            return Err(not_yours());
        }
        return Ok(idp.store.revoke_family(&record.grant.family, now).await?);
    }
    // Expired access tokens need no revocation, so verifying (which rejects them) is enough.
    if let Some(claims) = verify_own_access_token(idp, server, token).await {
        if claims.client() != Some(client.client_id.as_str()) {
            return Err(not_yours());
        }
        if let Some(jti) = &claims.jti {
            idp.store.revoke_access_token(jti, claims.exp).await?;
        }
    }
    Ok(())
}
