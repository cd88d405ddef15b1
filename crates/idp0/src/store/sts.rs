//! Storage of brokered consent ("OAuth STS"): the token vault and the consent interactions.
//! Secrets arrive already sealed ([`crate::sts::vault`]) or hashed: this layer never sees a
//! token in the clear. One implementation, written once for both backends ([`sts_store!`]): the
//! SQL is portable (`$N` placeholders in order, `ON CONFLICT … DO UPDATE`).

use async_trait::async_trait;
use protocol::UnixTime;

use super::StoreError;

/// One consent: the ISV tokens of (person, agent, connection), sealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VaultEntry {
    /// Person.
    pub user_id: String,
    /// Agent (client id).
    pub agent: String,
    /// Connection (resource indicator).
    pub resource: String,
    /// Sealed ISV access token; `None` once revoked at idp0.
    pub access_token: Option<String>,
    /// SHA-256 of the access token (revocation finds the entry by it).
    pub access_hash: Option<String>,
    /// When the access token expires (`None`: the ISV did not say).
    pub access_expires_at: Option<UnixTime>,
    /// Sealed ISV refresh token.
    pub refresh_token: Option<String>,
    /// Scope the ISV granted.
    pub scope: String,
    /// When the person consented.
    pub granted_at: UnixTime,
    /// When an exchange last used it.
    pub last_used_at: Option<UnixTime>,
}

/// Where a consent interaction stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InteractionStatus {
    /// Created; the person has not approved yet.
    Pending,
    /// Approved at idp0; the person is at the ISV (`state` issued).
    Authorizing,
    /// The callback is redeeming the code.
    Exchanging,
    /// The tokens are in the vault.
    Done,
    /// The person (or the ISV) refused.
    Denied,
    /// Reported to the client as denied or expired, or failed: a new exchange starts anew.
    Closed,
}

impl InteractionStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Authorizing => "authorizing",
            Self::Exchanging => "exchanging",
            Self::Done => "done",
            Self::Denied => "denied",
            Self::Closed => "closed",
        }
    }

    fn parse(value: &str) -> Self {
        match value {
            "pending" => Self::Pending,
            "authorizing" => Self::Authorizing,
            "exchanging" => Self::Exchanging,
            "done" => Self::Done,
            "denied" => Self::Denied,
            _ => Self::Closed,
        }
    }
}

/// A consent interaction behind an `interaction_uri`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interaction {
    /// SHA-256 of the opaque id in the URI.
    pub id_hash: String,
    /// Person it is for.
    pub user_id: String,
    /// Agent asking.
    pub agent: String,
    /// Connection.
    pub resource: String,
    /// Status.
    pub status: InteractionStatus,
    /// Created.
    pub created_at: UnixTime,
    /// Expires.
    pub expires_at: UnixTime,
    /// When the client last asked (initially `created_at`).
    pub last_polled_at: UnixTime,
    /// SHA-256 of the `state` sent to the ISV.
    pub state_hash: Option<String>,
    /// Sealed PKCE verifier.
    pub pkce_verifier: Option<String>,
}

/// Storage of brokered consent.
#[async_trait]
pub trait StsStore: Send + Sync {
    /// Creates or replaces the entry of (user, agent, resource).
    async fn upsert_vault_entry(&self, entry: &VaultEntry) -> Result<(), StoreError>;
    /// The entry of (user, agent, resource).
    async fn find_vault_entry(
        &self,
        user_id: &str,
        agent: &str,
        resource: &str,
    ) -> Result<Option<VaultEntry>, StoreError>;
    /// The entry of `agent` whose access token hashes to `access_hash`.
    async fn find_vault_entry_by_access_hash(
        &self,
        agent: &str,
        access_hash: &str,
    ) -> Result<Option<VaultEntry>, StoreError>;
    /// A person's entries, oldest first.
    async fn list_vault_entries(&self, user_id: &str) -> Result<Vec<VaultEntry>, StoreError>;
    /// Deletes an entry; `false` when there was none.
    async fn delete_vault_entry(
        &self,
        user_id: &str,
        agent: &str,
        resource: &str,
    ) -> Result<bool, StoreError>;
    /// Forgets the cached access token of an entry (the refresh token stays).
    async fn clear_vault_access_token(
        &self,
        user_id: &str,
        agent: &str,
        resource: &str,
    ) -> Result<(), StoreError>;
    /// Records a use of an entry.
    async fn touch_vault_entry(
        &self,
        user_id: &str,
        agent: &str,
        resource: &str,
        now: UnixTime,
    ) -> Result<(), StoreError>;

    /// Stores a new interaction.
    async fn create_interaction(&self, interaction: &Interaction) -> Result<(), StoreError>;
    /// An interaction by the hash of its id.
    async fn find_interaction(&self, id_hash: &str) -> Result<Option<Interaction>, StoreError>;
    /// An interaction by the hash of the `state` it sent to the ISV.
    async fn find_interaction_by_state(
        &self,
        state_hash: &str,
    ) -> Result<Option<Interaction>, StoreError>;
    /// The newest interaction of (user, agent, resource) that a client may still be told about
    /// (pending, authorizing, exchanging or denied).
    async fn find_open_interaction(
        &self,
        user_id: &str,
        agent: &str,
        resource: &str,
    ) -> Result<Option<Interaction>, StoreError>;
    /// Moves an interaction from `from` to `to` (setting `state_hash` and the sealed verifier
    /// when given); `false` when it was no longer in `from` (another request won).
    async fn update_interaction(
        &self,
        id_hash: &str,
        from: InteractionStatus,
        to: InteractionStatus,
        state: Option<(&str, &str)>,
    ) -> Result<bool, StoreError>;
    /// Records a client's poll.
    async fn record_interaction_poll(&self, id_hash: &str, now: UnixTime)
    -> Result<(), StoreError>;
}

/// The vault's columns (static SQL: sqlx refuses built strings).
macro_rules! vault_columns {
    () => {
        "user_id, agent, resource, access_token, access_hash, access_expires_at, refresh_token, \
         scope, granted_at, last_used_at"
    };
}
pub(super) use vault_columns;
/// The interactions' columns.
macro_rules! interaction_columns {
    () => {
        "id_hash, user_id, agent, resource, status, created_at, expires_at, last_polled_at, \
         state_hash, pkce_verifier"
    };
}
pub(super) use interaction_columns;

/// Reads a vault row.
pub(super) fn vault_from<R>(row: &R) -> Result<VaultEntry, sqlx::Error>
where
    R: sqlx::Row,
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> Option<String>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> Option<i64>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    Ok(VaultEntry {
        user_id: row.try_get("user_id")?,
        agent: row.try_get("agent")?,
        resource: row.try_get("resource")?,
        access_token: row.try_get("access_token")?,
        access_hash: row.try_get("access_hash")?,
        access_expires_at: row.try_get("access_expires_at")?,
        refresh_token: row.try_get("refresh_token")?,
        scope: row.try_get("scope")?,
        granted_at: row.try_get("granted_at")?,
        last_used_at: row.try_get("last_used_at")?,
    })
}

/// Reads an interaction row.
pub(super) fn interaction_from<R>(row: &R) -> Result<Interaction, sqlx::Error>
where
    R: sqlx::Row,
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> Option<String>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    let status: String = row.try_get("status")?;
    Ok(Interaction {
        id_hash: row.try_get("id_hash")?,
        user_id: row.try_get("user_id")?,
        agent: row.try_get("agent")?,
        resource: row.try_get("resource")?,
        status: InteractionStatus::parse(&status),
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        last_polled_at: row.try_get("last_polled_at")?,
        state_hash: row.try_get("state_hash")?,
        pkce_verifier: row.try_get("pkce_verifier")?,
    })
}

/// Implements [`StsStore`] for a backend with a `pool` field; the SQL is the same for both.
macro_rules! sts_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::sts::StsStore for $store {
            async fn upsert_vault_entry(
                &self,
                e: &$crate::store::sts::VaultEntry,
            ) -> Result<(), $crate::store::StoreError> {
                sqlx::query(
                    "INSERT INTO sts_vault (user_id, agent, resource, access_token, access_hash, \
                     access_expires_at, refresh_token, scope, granted_at, last_used_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                     ON CONFLICT (user_id, agent, resource) DO UPDATE SET \
                     access_token = excluded.access_token, access_hash = excluded.access_hash, \
                     access_expires_at = excluded.access_expires_at, \
                     refresh_token = excluded.refresh_token, scope = excluded.scope, \
                     granted_at = excluded.granted_at, last_used_at = excluded.last_used_at",
                )
                .bind(&e.user_id)
                .bind(&e.agent)
                .bind(&e.resource)
                .bind(&e.access_token)
                .bind(&e.access_hash)
                .bind(e.access_expires_at)
                .bind(&e.refresh_token)
                .bind(&e.scope)
                .bind(e.granted_at)
                .bind(e.last_used_at)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn find_vault_entry(
                &self,
                user_id: &str,
                agent: &str,
                resource: &str,
            ) -> Result<Option<$crate::store::sts::VaultEntry>, $crate::store::StoreError> {
                let sql = concat!("SELECT ", $crate::store::sts::vault_columns!(), " FROM sts_vault WHERE user_id = $1 AND agent = $2 AND resource = $3");
                let row = sqlx::query(sql)
                    .bind(user_id)
                    .bind(agent)
                    .bind(resource)
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(row
                    .as_ref()
                    .map($crate::store::sts::vault_from)
                    .transpose()?)
            }

            async fn find_vault_entry_by_access_hash(
                &self,
                agent: &str,
                access_hash: &str,
            ) -> Result<Option<$crate::store::sts::VaultEntry>, $crate::store::StoreError> {
                let sql = concat!("SELECT ", $crate::store::sts::vault_columns!(), " FROM sts_vault WHERE agent = $1 AND access_hash = $2");
                let row = sqlx::query(sql)
                    .bind(agent)
                    .bind(access_hash)
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(row
                    .as_ref()
                    .map($crate::store::sts::vault_from)
                    .transpose()?)
            }

            async fn list_vault_entries(
                &self,
                user_id: &str,
            ) -> Result<Vec<$crate::store::sts::VaultEntry>, $crate::store::StoreError> {
                let sql = concat!("SELECT ", $crate::store::sts::vault_columns!(), " FROM sts_vault WHERE user_id = $1 ORDER BY granted_at, resource");
                let rows = sqlx::query(sql)
                    .bind(user_id)
                    .fetch_all(&self.pool)
                    .await?;
                Ok(rows
                    .iter()
                    .map($crate::store::sts::vault_from)
                    .collect::<Result<_, _>>()?)
            }

            async fn delete_vault_entry(
                &self,
                user_id: &str,
                agent: &str,
                resource: &str,
            ) -> Result<bool, $crate::store::StoreError> {
                let done = sqlx::query(
                    "DELETE FROM sts_vault WHERE user_id = $1 AND agent = $2 AND resource = $3",
                )
                .bind(user_id)
                .bind(agent)
                .bind(resource)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn clear_vault_access_token(
                &self,
                user_id: &str,
                agent: &str,
                resource: &str,
            ) -> Result<(), $crate::store::StoreError> {
                sqlx::query(
                    "UPDATE sts_vault SET access_token = NULL, access_hash = NULL, \
                     access_expires_at = NULL \
                     WHERE user_id = $1 AND agent = $2 AND resource = $3",
                )
                .bind(user_id)
                .bind(agent)
                .bind(resource)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn touch_vault_entry(
                &self,
                user_id: &str,
                agent: &str,
                resource: &str,
                now: protocol::UnixTime,
            ) -> Result<(), $crate::store::StoreError> {
                sqlx::query(
                    "UPDATE sts_vault SET last_used_at = $4 \
                     WHERE user_id = $1 AND agent = $2 AND resource = $3",
                )
                .bind(user_id)
                .bind(agent)
                .bind(resource)
                .bind(now)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn create_interaction(
                &self,
                i: &$crate::store::sts::Interaction,
            ) -> Result<(), $crate::store::StoreError> {
                let sql = concat!("INSERT INTO sts_interactions (", $crate::store::sts::interaction_columns!(), ") \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)");
                sqlx::query(sql)
                    .bind(&i.id_hash)
                    .bind(&i.user_id)
                    .bind(&i.agent)
                    .bind(&i.resource)
                    .bind(i.status.as_str())
                    .bind(i.created_at)
                    .bind(i.expires_at)
                    .bind(i.last_polled_at)
                    .bind(&i.state_hash)
                    .bind(&i.pkce_verifier)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn find_interaction(
                &self,
                id_hash: &str,
            ) -> Result<Option<$crate::store::sts::Interaction>, $crate::store::StoreError> {
                let sql = concat!("SELECT ", $crate::store::sts::interaction_columns!(), " FROM sts_interactions WHERE id_hash = $1");
                let row = sqlx::query(sql)
                    .bind(id_hash)
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(row
                    .as_ref()
                    .map($crate::store::sts::interaction_from)
                    .transpose()?)
            }

            async fn find_interaction_by_state(
                &self,
                state_hash: &str,
            ) -> Result<Option<$crate::store::sts::Interaction>, $crate::store::StoreError> {
                let sql = concat!("SELECT ", $crate::store::sts::interaction_columns!(), " FROM sts_interactions WHERE state_hash = $1");
                let row = sqlx::query(sql)
                    .bind(state_hash)
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(row
                    .as_ref()
                    .map($crate::store::sts::interaction_from)
                    .transpose()?)
            }

            async fn find_open_interaction(
                &self,
                user_id: &str,
                agent: &str,
                resource: &str,
            ) -> Result<Option<$crate::store::sts::Interaction>, $crate::store::StoreError> {
                let sql = concat!("SELECT ", $crate::store::sts::interaction_columns!(), " FROM sts_interactions \
                     WHERE user_id = $1 AND agent = $2 AND resource = $3 \
                     AND status IN ('pending', 'authorizing', 'exchanging', 'denied') \
                     ORDER BY created_at DESC LIMIT 1");
                let row = sqlx::query(sql)
                    .bind(user_id)
                    .bind(agent)
                    .bind(resource)
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(row
                    .as_ref()
                    .map($crate::store::sts::interaction_from)
                    .transpose()?)
            }

            async fn update_interaction(
                &self,
                id_hash: &str,
                from: $crate::store::sts::InteractionStatus,
                to: $crate::store::sts::InteractionStatus,
                state: Option<(&str, &str)>,
            ) -> Result<bool, $crate::store::StoreError> {
                let done = match state {
                    Some((state_hash, verifier)) => {
                        sqlx::query(
                            "UPDATE sts_interactions SET status = $1, state_hash = $2, \
                             pkce_verifier = $3 WHERE id_hash = $4 AND status = $5",
                        )
                        .bind(to.as_str())
                        .bind(state_hash)
                        .bind(verifier)
                        .bind(id_hash)
                        .bind(from.as_str())
                        .execute(&self.pool)
                        .await?
                    }
                    None => {
                        sqlx::query(
                            "UPDATE sts_interactions SET status = $1 \
                             WHERE id_hash = $2 AND status = $3",
                        )
                        .bind(to.as_str())
                        .bind(id_hash)
                        .bind(from.as_str())
                        .execute(&self.pool)
                        .await?
                    }
                };
                Ok(done.rows_affected() == 1)
            }

            async fn record_interaction_poll(
                &self,
                id_hash: &str,
                now: protocol::UnixTime,
            ) -> Result<(), $crate::store::StoreError> {
                sqlx::query("UPDATE sts_interactions SET last_polled_at = $1 WHERE id_hash = $2")
                    .bind(now)
                    .bind(id_hash)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }
        }
    };
}
pub(super) use sts_store;
