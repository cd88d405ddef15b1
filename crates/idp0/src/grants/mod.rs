//! The token endpoint's grants, one file each (STYLE §3). Each takes the authenticated client and
//! the parsed request and returns a token response or an RFC 6749 §5.2 error; none touches HTTP.

mod authorization_code;
mod client_credentials;
mod jwt_bearer;
mod refresh_token;
mod token_exchange;

use protocol::Scopes;
use protocol::oauth::{GrantType, TokenResponse};

use crate::config::Client;
use crate::error::OAuthError;
use crate::server::AuthServer;
use crate::state::Idp;
use crate::store::{Grant, RefreshRecord, secret_hash};
use crate::token_request::TokenRequest;
use crate::tokens::{self, AccessTokenInput, IdTokenInput};

/// Runs `request` for `client` at `server`.
pub async fn dispatch(
    idp: &Idp,
    server: &AuthServer,
    client: &Client,
    request: TokenRequest,
) -> Result<TokenResponse, OAuthError> {
    let grant = request.grant_type();
    if client
        .grant_types
        .as_ref()
        .is_some_and(|allowed| !allowed.contains(&grant))
    {
        return Err(OAuthError::UnauthorizedClient(format!(
            "this client is not allowed the {grant} grant"
        )));
    }
    match request {
        TokenRequest::AuthorizationCode {
            code,
            redirect_uri,
            code_verifier,
        } => {
            authorization_code::grant(idp, server, client, &code, &redirect_uri, &code_verifier)
                .await
        }
        TokenRequest::RefreshToken {
            refresh_token,
            scope,
        } => refresh_token::grant(idp, server, client, &refresh_token, scope).await,
        TokenRequest::ClientCredentials { scope } => {
            client_credentials::grant(idp, server, client, scope)
        }
        TokenRequest::TokenExchange {
            requested_token_type,
            subject_token,
            subject_token_type,
            audience,
            resource,
            scope,
        } => {
            let request = token_exchange::Exchange {
                requested_token_type,
                subject_token,
                subject_token_type,
                audience,
                resource,
                scope,
            };
            token_exchange::grant(idp, server, client, request).await
        }
        TokenRequest::JwtBearer { assertion, scope } => {
            jwt_bearer::grant(idp, server, client, &assertion, scope).await
        }
    }
}

/// Access token lifetime for `client` at `server` under `grant`.
fn access_lifetime(idp: &Idp, server: &AuthServer, client: &Client, grant: &GrantType) -> i64 {
    server
        .custom
        .as_ref()
        .and_then(|c| c.policy_for(&client.client_id, grant))
        .map_or(idp.directory().config.id_token_lifetime, |p| {
            p.access_token_lifetime
        })
}

/// The single-use credential an interactive grant redeems (its hash).
///
/// It is consumed as the grant's last write, after the tokens it pays for are recorded: a grant
/// that fails before (the database restarting) leaves it unused, so the client's retry works
/// instead of looking like a replay that revokes the whole login. Rows recorded for a grant that
/// then failed belong to no answer and expire.
enum Redeemed<'a> {
    Code(&'a str),
    RefreshToken(&'a str),
}

/// Issues the tokens of an interactive grant (code or refresh): an access token, an ID token
/// when `openid` was granted, and a refresh token in the same family when `offline_access` was;
/// then consumes `redeemed` (see [`Redeemed`]).
#[allow(clippy::too_many_arguments)]
async fn issue_for_grant(
    idp: &Idp,
    server: &AuthServer,
    client: &Client,
    grant: &Grant,
    access_scope: &Scopes,
    nonce: Option<&str>,
    grant_type: &GrantType,
    redeemed: Redeemed<'_>,
) -> Result<TokenResponse, OAuthError> {
    let now = idp.clock.now();
    let user = idp
        .user(&grant.user_id)
        .ok_or_else(|| OAuthError::InvalidGrant("the user no longer exists".into()))?;
    let granted =
        Scopes::parse(&grant.scope).map_err(|e| OAuthError::InvalidGrant(e.to_string()))?;
    let lifetime = access_lifetime(idp, server, client, grant_type);
    let access = tokens::access_token(
        server,
        &AccessTokenInput {
            user_id: Some(&user.id),
            client_id: &client.client_id,
            scope: access_scope,
            auth_time: Some(grant.auth_time),
            actor: None,
            lifetime,
        },
        now,
    )?;
    idp.store
        .record_access_token(&access.jti, &grant.family, access.expires_at)
        .await?;
    let id_token = if granted.contains("openid") {
        let input = IdTokenInput {
            client_id: &client.client_id,
            scope: &granted,
            nonce,
            auth_time: grant.auth_time,
            sid: grant.sid.as_deref(),
            lifetime: idp.directory().config.id_token_lifetime,
        };
        let minted = tokens::id_token(server, &user, &input, now)?;
        // Recorded in the family so that revoking the grant (code replay, refresh reuse) also
        // stops the ID token from being exchanged (token_exchange.rs).
        idp.store
            .record_access_token(&minted.jti, &grant.family, minted.expires_at)
            .await?;
        Some(minted.token)
    } else {
        None
    };
    // A client held to grant types without refresh_token (an app created so through the
    // management API) gets no refresh token it could not use.
    let may_refresh = client
        .grant_types
        .as_ref()
        .is_none_or(|g| g.contains(&GrantType::RefreshToken));
    let refresh_token = if granted.contains("offline_access") && may_refresh {
        let secret = tokens::new_secret();
        let record = RefreshRecord {
            grant: grant.clone(),
            expires_at: now + idp.directory().config.refresh_token_lifetime,
            used: false,
        };
        idp.store
            .create_refresh_token(&secret_hash(&secret), &record)
            .await?;
        Some(secret.into())
    } else {
        None
    };
    let (consumed, reuse) = match redeemed {
        Redeemed::Code(hash) => (
            idp.store.consume_code(hash, now).await?,
            "authorization code was already used",
        ),
        Redeemed::RefreshToken(hash) => (
            idp.store.consume_refresh_token(hash, now).await?,
            "refresh token reuse detected; its tokens are revoked",
        ),
    };
    if !consumed {
        // A concurrent redemption won the race: treat as reuse (what was just recorded is in the
        // revoked family too).
        idp.store.revoke_family(&grant.family, now).await?;
        return Err(OAuthError::InvalidGrant(reuse.into()));
    }
    Ok(TokenResponse {
        access_token: access.token,
        token_type: "Bearer".into(),
        issued_token_type: None,
        expires_in: Some(lifetime),
        scope: Some(access_scope.to_string()),
        refresh_token,
        id_token,
    })
}
