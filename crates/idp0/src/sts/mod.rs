//! Brokered consent ("OAuth STS", OKTA.md §1, ARCHITECTURE §5.4): idp0 holds a person's
//! third-party (ISV) tokens in its vault and hands the access token to an agent that exchanges
//! the person's ID token for it at the org authorization server.
//!
//! * [`exchange`]: the token-exchange branch (vault hit, silent refresh, or an interaction).
//! * [`vault`]: AES-256-GCM sealing of the tokens at rest.
//! * [`isv`]: idp0 as the ISV's OAuth client.
//! * The pages (interaction, callback, Connected apps) are in `http::sts`.
//!
//! Audit lines go to the `idp0::audit` target with the person, agent and resource — never a
//! token, code, state, verifier or secret.

pub mod exchange;
pub mod isv;
pub mod pages;
pub mod vault;

use secrecy::SecretString;

use crate::config::{BrokeredConnection, Client, RevocationStyle};
use crate::state::Idp;
use crate::store::{StoreError, VaultEntry, secret_hash};

/// Seconds a client waits between retries while an interaction is pending.
pub const INTERVAL: u64 = 5;
/// Seconds an `interaction_uri` stays valid.
pub const INTERACTION_LIFETIME: i64 = 600;
/// An ISV access token is not handed out in its last seconds (the agent still has to use it).
pub const EXPIRY_MARGIN: i64 = 30;
/// `last_used_at` is written at most this often per consent (a warm exchange stays a read).
pub const TOUCH_EVERY: i64 = 60;
/// The audit log's target.
pub const AUDIT: &str = "idp0::audit";

/// Brokered consent's parts of the IdP: the vault key and the HTTP client for ISVs.
pub struct Sts {
    /// The vault's cipher.
    pub vault: vault::VaultKey,
    /// HTTP client for ISVs (no redirects, bounded time).
    pub http: reqwest::Client,
    /// One refresh at a time per (person, agent, connection): ISVs such as GitHub rotate refresh
    /// tokens, so a second concurrent refresh would present a spent token and lose the consent.
    /// Bounded, idle entries expire.
    refreshing: moka::sync::Cache<String, std::sync::Arc<tokio::sync::Mutex<()>>>,
}

impl Sts {
    /// With the vault key from the environment or `keys_dir`.
    pub fn load(keys_dir: Option<&std::path::Path>) -> anyhow::Result<Self> {
        Ok(Self {
            vault: vault::VaultKey::load(keys_dir)?,
            http: isv::http_client()?,
            refreshing: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_idle(std::time::Duration::from_secs(120))
                .build(),
        })
    }

    /// The refresh lock of (person, agent, connection).
    pub fn refresh_lock(
        &self,
        user_id: &str,
        agent: &str,
        resource: &str,
    ) -> std::sync::Arc<tokio::sync::Mutex<()>> {
        self.refreshing
            .get_with(format!("{user_id}\0{agent}\0{resource}"), Default::default)
    }
}

/// The URL of idp0's ISV callback: `<issuer>/oauth2/v1/sts/callback`.
pub fn callback_url(idp: &Idp) -> String {
    format!("{}/oauth2/v1/sts/callback", idp.issuer())
}

/// The interaction page of opaque id `id`.
pub fn interaction_url(idp: &Idp, id: &str) -> String {
    format!("{}/oauth2/v1/sts/interaction/{id}", idp.issuer())
}

/// Seals tokens the ISV issued into the vault entry of (user, agent, connection).
pub fn sealed_entry(
    idp: &Idp,
    user_id: &str,
    agent: &Client,
    connection: &BrokeredConnection,
    tokens: &isv::IsvTokens,
    previous: Option<&VaultEntry>,
) -> anyhow::Result<VaultEntry> {
    let now = idp.clock.now();
    let owner = |field| vault::Owner {
        user_id,
        agent: &agent.client_id,
        resource: &connection.resource,
        field,
    };
    let access = idp.sts.vault.seal(&owner("access"), &tokens.access_token)?;
    // An ISV that does not rotate refresh tokens answers a refresh without one: keep the old.
    let refresh = match &tokens.refresh_token {
        Some(token) => Some(idp.sts.vault.seal(&owner("refresh"), token)?),
        None => previous.and_then(|p| p.refresh_token.clone()),
    };
    Ok(VaultEntry {
        user_id: user_id.to_owned(),
        agent: agent.client_id.clone(),
        resource: connection.resource.clone(),
        access_token: Some(access),
        access_hash: Some(secret_hash(secrecy::ExposeSecret::expose_secret(
            &tokens.access_token,
        ))),
        access_expires_at: tokens.expires_in.map(|s| now + s),
        refresh_token: refresh,
        scope: tokens
            .scope
            .clone()
            .or_else(|| previous.map(|p| p.scope.clone()))
            .unwrap_or_else(|| connection.scope.clone()),
        granted_at: previous.map_or(now, |p| p.granted_at),
        last_used_at: previous.and_then(|p| p.last_used_at),
    })
}

/// Opens one sealed field of `entry`.
pub fn open_field(idp: &Idp, entry: &VaultEntry, field: &str) -> Option<SecretString> {
    let sealed = match field {
        "access" => entry.access_token.as_deref(),
        _ => entry.refresh_token.as_deref(),
    }?;
    idp.sts.vault.open(
        &vault::Owner {
            user_id: &entry.user_id,
            agent: &entry.agent,
            resource: &entry.resource,
            field,
        },
        sealed,
    )
}

/// Removes a person's consent: the vault entry goes, and the ISV is asked to revoke what that
/// consent holds when it has a revocation endpoint (best effort). `Ok(Some(problem))` when the
/// local removal stood but the ISV's revocation failed.
///
/// RFC 7009 revocation is per token: each of the consent's tokens. GitHub's grant deletion ends
/// every token the person holds for the OAuth app, also those of the person's other consents
/// through the same app (GitHub REST and GitHub MCP, or another agent): while such a consent
/// remains, only this consent's token is deleted (`…/token`); the grant goes with the last one.
pub async fn remove_consent(
    idp: &Idp,
    user_id: &str,
    agent: &str,
    resource: &str,
) -> Result<Option<String>, StoreError> {
    let Some(entry) = idp.store.find_vault_entry(user_id, agent, resource).await? else {
        return Ok(None);
    };
    idp.store
        .delete_vault_entry(user_id, agent, resource)
        .await?;
    tracing::info!(target: AUDIT, event = "consent_removed", user_id, agent, resource, "consent removed");
    let connection = idp
        .client(agent)
        .and_then(|c| c.brokered_connection(resource).cloned());
    let Some(connection) = connection.filter(|c| c.revocation_url.is_some()) else {
        return Ok(None);
    };
    let mut problem = None;
    // GitHub's endpoints take the access token only.
    let (fields, extent): (&[(&str, &str)], isv::Extent) = match connection.revocation {
        RevocationStyle::Rfc7009 => (
            &[("refresh", "refresh_token"), ("access", "access_token")],
            isv::Extent::Token,
        ),
        RevocationStyle::Github => {
            // This consent's entry is gone already, so only the others count.
            let extent = if app_still_used(idp, user_id, &connection).await {
                isv::Extent::Token
            } else {
                isv::Extent::Grant
            };
            (&[("access", "access_token")], extent)
        }
    };
    for &(field, hint) in fields {
        let Some(token) = open_field(idp, &entry, field) else {
            continue;
        };
        match isv::revoke(&idp.sts.http, &connection, &token, hint, extent).await {
            Ok(_) => {
                tracing::info!(target: AUDIT, event = "isv_revoked", user_id, agent, resource, field, extent = extent.as_str(), "revoked at the app");
            }
            Err(e) => {
                tracing::warn!(target: AUDIT, event = "isv_revocation_failed", user_id, agent, resource, field, extent = extent.as_str(), error = %e, "revocation at the app failed");
                problem = Some(format!(
                    "{} could not revoke the token ({e}).",
                    connection.name
                ));
            }
        }
    }
    Ok(problem)
}

/// Whether a consent of `user_id` in the vault (any agent, any connection) uses the same ISV app
/// as `connection` (see [`BrokeredConnection::same_app`]). A consent whose agent or connection
/// is no longer configured does not count. When the vault cannot be read, `true`: revoking one
/// token leaves the person's authorization at the ISV, revoking the grant could end another
/// consent's tokens without a trace on the Connected apps page.
async fn app_still_used(idp: &Idp, user_id: &str, connection: &BrokeredConnection) -> bool {
    match idp.store.list_vault_entries(user_id).await {
        Ok(entries) => entries.iter().any(|other| {
            idp.client(&other.agent).is_some_and(|agent| {
                agent
                    .brokered_connection(&other.resource)
                    .is_some_and(|c| c.same_app(connection))
            })
        }),
        Err(e) => {
            tracing::warn!(target: AUDIT, event = "isv_revocation_narrowed", user_id, error = %e, "the vault could not be read; revoking the token only, not the grant");
            true
        }
    }
}
