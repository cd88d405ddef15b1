//! The brokered token exchange (OKTA.md §1): `requested_token_type=…:oauth-sts` at the org AS,
//! after the subject token and the agent were authenticated by the ID-JAG exchange's own checks.
//!
//! Order: the resource must be a brokered connection of the agent (`invalid_target`); a usable
//! access token in the vault is returned (a hit); an expired one is refreshed at the ISV (a
//! refused refresh drops the entry; an ISV that cannot answer is `temporarily_unavailable` and
//! nothing changes); otherwise the newest open interaction answers the client's poll
//! (`interaction_pending`, `slow_down`, `access_denied`, `expired_token`, per
//! draft-parecki-oauth-jwt-grant-interaction-response), or a new one is created
//! (`interaction_required`).

use protocol::oauth::{TokenResponse, TokenType};
use secrecy::SecretString;

use super::{AUDIT, EXPIRY_MARGIN, INTERACTION_LIFETIME, INTERVAL, TOUCH_EVERY};
use crate::config::{BrokeredConnection, Client, User};
use crate::error::OAuthError;
use crate::state::Idp;
use crate::store::{Interaction, InteractionStatus, VaultEntry, secret_hash};
use crate::tokens::new_secret;

/// Runs the exchange for `user` and `agent` on `resource`.
pub async fn exchange(
    idp: &Idp,
    agent: &Client,
    user: &User,
    resource: Option<&str>,
) -> Result<TokenResponse, OAuthError> {
    let resource =
        resource.ok_or_else(|| OAuthError::InvalidRequest("missing parameter resource".into()))?;
    let connection = agent.brokered_connection(resource).ok_or_else(|| {
        OAuthError::InvalidTarget("Resource mismatch: not a connection of this agent".into())
    })?;
    let now = idp.clock.now();
    let entry = idp
        .store
        .find_vault_entry(&user.id, &agent.client_id, &connection.resource)
        .await?;
    if let Some(entry) = entry {
        if let Some(response) = usable(idp, &entry, now) {
            if entry.last_used_at.is_none_or(|t| now - t >= TOUCH_EVERY) {
                idp.store
                    .touch_vault_entry(&user.id, &agent.client_id, &connection.resource, now)
                    .await?;
            }
            tracing::info!(target: AUDIT, event = "exchange_hit", user_id = %user.id, agent = %agent.client_id, resource = %connection.resource, "brokered exchange served from the vault");
            return Ok(response);
        }
        // One refresh at a time per consent; whoever waited finds the refreshed token.
        let lock = idp
            .sts
            .refresh_lock(&user.id, &agent.client_id, &connection.resource);
        let _one_at_a_time = lock.lock().await;
        let current = idp
            .store
            .find_vault_entry(&user.id, &agent.client_id, &connection.resource)
            .await?;
        if let Some(current) = current {
            if let Some(response) = usable(idp, &current, idp.clock.now()) {
                return Ok(response);
            }
            if let Some(response) = refreshed(idp, agent, connection, &current).await? {
                return Ok(response);
            }
        }
    }
    tracing::info!(target: AUDIT, event = "exchange_miss", user_id = %user.id, agent = %agent.client_id, resource = %connection.resource, "brokered exchange needs consent");
    interaction(idp, agent, user, connection, now).await
}

fn response(token: SecretString, expires_in: i64, scope: &str) -> TokenResponse {
    TokenResponse {
        access_token: token,
        token_type: "Bearer".into(),
        issued_token_type: Some(TokenType::OktaOauthSts),
        expires_in: Some(expires_in),
        scope: Some(scope.to_owned()),
        refresh_token: None,
        id_token: None,
    }
}

/// The vault's access token while it is good for more than [`EXPIRY_MARGIN`]. A token the ISV
/// gave no lifetime is reported as good for an hour (it is good until revoked).
fn usable(idp: &Idp, entry: &VaultEntry, now: i64) -> Option<TokenResponse> {
    let expires_in = match entry.access_expires_at {
        Some(at) if at - now > EXPIRY_MARGIN => at - now,
        Some(_) => return None,
        None => 3600,
    };
    let token = super::open_field(idp, entry, "access")?;
    Some(response(token, expires_in, &entry.scope))
}

/// Refreshes at the ISV when the entry holds a refresh token. `Ok(None)`: no usable refresh
/// token (the entry is dropped), so consent is needed again.
async fn refreshed(
    idp: &Idp,
    agent: &Client,
    connection: &BrokeredConnection,
    entry: &VaultEntry,
) -> Result<Option<TokenResponse>, OAuthError> {
    let drop_entry = || async {
        idp.store
            .delete_vault_entry(&entry.user_id, &entry.agent, &entry.resource)
            .await
    };
    let Some(refresh_token) = super::open_field(idp, entry, "refresh") else {
        drop_entry().await?;
        return Ok(None);
    };
    match super::isv::refresh(&idp.sts.http, connection, &refresh_token).await {
        Ok(tokens) => {
            let sealed =
                super::sealed_entry(idp, &entry.user_id, agent, connection, &tokens, Some(entry))
                    .map_err(|e| OAuthError::Signing(e.to_string()))?;
            idp.store.upsert_vault_entry(&sealed).await?;
            tracing::info!(target: AUDIT, event = "exchange_refreshed", user_id = %entry.user_id, agent = %agent.client_id, resource = %connection.resource, "ISV token refreshed");
            let expires_in = tokens.expires_in.unwrap_or(3600);
            Ok(Some(response(
                tokens.access_token,
                expires_in,
                &sealed.scope,
            )))
        }
        Err(super::isv::IsvError::Rejected(code)) => {
            tracing::info!(target: AUDIT, event = "refresh_refused", user_id = %entry.user_id, agent = %agent.client_id, resource = %connection.resource, error = %code, "ISV refused the refresh; consent dropped");
            drop_entry().await?;
            Ok(None)
        }
        Err(super::isv::IsvError::Unavailable(why)) => {
            tracing::warn!(target: AUDIT, event = "isv_unavailable", agent = %agent.client_id, resource = %connection.resource, error = %why, "ISV unavailable during refresh");
            Err(OAuthError::Unavailable(format!(
                "{} cannot be reached right now; try again later",
                connection.name
            )))
        }
    }
}

/// Answers from the newest open interaction, or starts one.
async fn interaction(
    idp: &Idp,
    agent: &Client,
    user: &User,
    connection: &BrokeredConnection,
    now: i64,
) -> Result<TokenResponse, OAuthError> {
    let open = idp
        .store
        .find_open_interaction(&user.id, &agent.client_id, &connection.resource)
        .await?;
    if let Some(open) = open {
        let close = || async {
            idp.store
                .update_interaction(&open.id_hash, open.status, InteractionStatus::Closed, None)
                .await
        };
        if open.status == InteractionStatus::Denied {
            close().await?;
            return Err(OAuthError::AccessDenied(
                "the user denied the request".into(),
            ));
        }
        if open.expires_at <= now {
            close().await?;
            return Err(OAuthError::ExpiredToken(
                "the interaction expired; retry to start a new one".into(),
            ));
        }
        let too_soon = now - open.last_polled_at < INTERVAL as i64;
        idp.store
            .record_interaction_poll(&open.id_hash, now)
            .await?;
        return Err(if too_soon {
            OAuthError::SlowDown
        } else {
            OAuthError::InteractionPending
        });
    }
    let id = new_secret();
    idp.store
        .create_interaction(&Interaction {
            id_hash: secret_hash(&id),
            user_id: user.id.clone(),
            agent: agent.client_id.clone(),
            resource: connection.resource.clone(),
            status: InteractionStatus::Pending,
            created_at: now,
            expires_at: now + INTERACTION_LIFETIME,
            last_polled_at: now,
            state_hash: None,
            pkce_verifier: None,
        })
        .await?;
    Err(OAuthError::InteractionRequired {
        interaction_uri: super::interaction_url(idp, &id),
        interval: INTERVAL,
        expires_in: INTERACTION_LIFETIME as u64,
    })
}
