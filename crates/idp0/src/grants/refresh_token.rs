//! `refresh_token` (RFC 6749 §6) with rotation: each refresh token works once; presenting a used
//! one revokes its whole family (OAuth 2.0 Security BCP, RFC 9700 §4.14.2).

use protocol::Scopes;
use protocol::oauth::{GrantType, TokenResponse};
use secrecy::{ExposeSecret, SecretString};

use super::{Redeemed, issue_for_grant};
use crate::config::Client;
use crate::error::OAuthError;
use crate::server::AuthServer;
use crate::state::Idp;
use crate::store::secret_hash;

pub(super) async fn grant(
    idp: &Idp,
    server: &AuthServer,
    client: &Client,
    refresh_token: &SecretString,
    scope: Option<Scopes>,
) -> Result<TokenResponse, OAuthError> {
    let hash = secret_hash(refresh_token.expose_secret());
    let now = idp.clock.now();
    let record = idp
        .store
        .find_refresh_token(&hash)
        .await?
        .ok_or_else(|| OAuthError::InvalidGrant("unknown refresh token".into()))?;
    if record.used {
        idp.store.revoke_family(&record.grant.family, now).await?;
        return Err(OAuthError::InvalidGrant(
            "refresh token reuse detected; its tokens are revoked".into(),
        ));
    }
    if idp.store.is_family_revoked(&record.grant.family).await? {
        return Err(OAuthError::InvalidGrant("refresh token was revoked".into()));
    }
    if record.grant.server != server.store_id() || record.grant.client_id != client.client_id {
        return Err(OAuthError::InvalidGrant(
            "refresh token was issued to another client".into(),
        ));
    }
    if now >= record.expires_at {
        return Err(OAuthError::InvalidGrant("refresh token expired".into()));
    }
    // An app's assignments decide who may use it (Okta's model): a person unassigned since the
    // login gets no new tokens from an old refresh token.
    if !client.is_assigned(&record.grant.user_id) {
        return Err(OAuthError::InvalidGrant(
            "the user is no longer assigned to this application".into(),
        ));
    }
    let original =
        Scopes::parse(&record.grant.scope).map_err(|e| OAuthError::InvalidGrant(e.to_string()))?;
    let access_scope = match scope {
        Some(requested) if !original.contains_all(&requested) => {
            return Err(OAuthError::InvalidScope(
                "scope exceeds the original grant".into(),
            ));
        }
        Some(requested) => requested,
        None => original,
    };
    issue_for_grant(
        idp,
        server,
        client,
        &record.grant,
        &access_scope,
        None,
        &GrantType::RefreshToken,
        Redeemed::RefreshToken(&hash),
    )
    .await
}
