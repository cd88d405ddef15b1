//! `client_credentials` (RFC 6749 §4.4) at custom authorization servers, governed by policy.

use protocol::Scopes;
use protocol::oauth::{GrantType, TokenResponse};

use crate::config::{AuthMethod, Client};
use crate::error::OAuthError;
use crate::server::AuthServer;
use crate::state::Idp;
use crate::tokens::{self, AccessTokenInput};

pub(super) fn grant(
    idp: &Idp,
    server: &AuthServer,
    client: &Client,
    scope: Option<Scopes>,
) -> Result<TokenResponse, OAuthError> {
    let custom = server.custom.as_ref().ok_or_else(|| {
        OAuthError::UnauthorizedClient(
            "client_credentials is served by custom authorization servers (/oauth2/<id>)".into(),
        )
    })?;
    if client.auth_method == AuthMethod::None {
        return Err(OAuthError::UnauthorizedClient(
            "public clients cannot use client_credentials".into(),
        ));
    }
    let policy = custom
        .policy_for(&client.client_id, &GrantType::ClientCredentials)
        .ok_or_else(|| {
            OAuthError::UnauthorizedClient(
                "no policy allows this client to use client_credentials here".into(),
            )
        })?;
    let requested = scope.unwrap_or_else(|| custom.default_scopes.clone());
    if !policy.scopes.contains_all(&requested) {
        return Err(OAuthError::InvalidScope(
            "requested scope is not allowed for this client".into(),
        ));
    }
    if requested.is_empty() {
        return Err(OAuthError::InvalidScope(
            "no scope requested and no default scope configured".into(),
        ));
    }
    let minted = tokens::access_token(
        server,
        &AccessTokenInput {
            user_id: None,
            client_id: &client.client_id,
            scope: &requested,
            auth_time: None,
            actor: None,
            lifetime: policy.access_token_lifetime,
        },
        idp.clock.now(),
    )?;
    Ok(TokenResponse {
        access_token: minted.token,
        token_type: "Bearer".into(),
        issued_token_type: None,
        expires_in: Some(policy.access_token_lifetime),
        scope: Some(requested.to_string()),
        refresh_token: None,
        id_token: None,
    })
}
