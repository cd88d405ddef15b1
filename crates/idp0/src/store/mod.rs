//! idp0's durable state behind one trait: authorization codes, refresh tokens (rotation with
//! reuse detection per family), revoked access tokens, `jti` replay caches, SSO sessions, the
//! directory entries created through the management API and failed-login counts (shared by
//! every replica, so throttling holds whichever replica a guess lands on).
//!
//! Two backends, chosen by URL in [`open`]: SQLite (embedded default, one file in the data
//! directory, WAL) and PostgreSQL (several idp0 replicas share one database). Each applies its
//! own migrations (`migrations/sqlite`, `migrations/postgres`, same numbering) at open, and
//! refuses a database migrated by a newer secure-agent (`dbconn::migrate`). Both are held to one contract suite (`tests.rs`).

mod postgres;
mod sqlite;
pub mod sts;

use std::sync::Arc;

use async_trait::async_trait;
use protocol::UnixTime;
use sha2::{Digest, Sha256};

use crate::login_guard::ThrottlePolicy;

pub use postgres::{ACQUIRE_TIMEOUT, DEFAULT_SCHEMA, MAX_CONNECTIONS, PostgresStore};
pub use sqlite::SqliteStore;
pub use sts::{Interaction, InteractionStatus, StsStore, VaultEntry};

/// A storage failure; never contains secrets.
#[derive(Debug, Clone, thiserror::Error)]
#[error("storage error: {message}")]
pub struct StoreError {
    message: String,
    /// The database could not be reached (down, restarting, no free connection in time): the
    /// request may succeed if retried shortly, so clients get 503 rather than 500.
    unavailable: bool,
}

impl StoreError {
    /// A failure described by `message`.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            unavailable: false,
        }
    }

    /// Whether the database was unreachable rather than the request wrong.
    pub fn is_unavailable(&self) -> bool {
        self.unavailable
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        Self::of_sqlx(&e)
    }
}

impl StoreError {
    /// An error of the SQLite group commit's connection; a database another connection kept
    /// locked past the busy timeout is worth retrying.
    pub(crate) fn of_rusqlite(e: &dbconn::sqlite_readers::rusqlite::Error) -> Self {
        use dbconn::sqlite_readers::rusqlite::ErrorCode;
        Self {
            message: e.to_string(),
            unavailable: matches!(
                e.sqlite_error_code(),
                Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
            ),
        }
    }

    /// A database error, marked unavailable when retrying may help.
    pub(crate) fn of_sqlx(e: &sqlx::Error) -> Self {
        Self {
            message: e.to_string(),
            unavailable: dbconn::is_unavailable(e),
        }
    }

    /// A migration failure at open, in words a person can act on (`dbconn` words it: a database
    /// migrated by a newer secure-agent is refused). `database` names the database (a path, or a
    /// URL without its password).
    fn migration(e: dbconn::MigrationError, database: &str) -> Self {
        Self {
            unavailable: e.is_unavailable(),
            message: format!("{database}: {e}"),
        }
    }
}

/// What a person authorised a client to do, carried by codes and refresh tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// Authorization server id (`""` for the org AS).
    pub server: String,
    /// Client.
    pub client_id: String,
    /// User id.
    pub user_id: String,
    /// Granted scope.
    pub scope: String,
    /// OIDC nonce.
    pub nonce: Option<String>,
    /// When the person authenticated.
    pub auth_time: UnixTime,
    /// SSO session id.
    pub sid: Option<String>,
    /// Lineage id for revocation.
    pub family: String,
}

/// An authorization code.
#[derive(Debug, Clone)]
pub struct AuthCode {
    /// The grant.
    pub grant: Grant,
    /// Exact redirect URI of the request.
    pub redirect_uri: String,
    /// PKCE S256 challenge.
    pub code_challenge: String,
    /// Expiry.
    pub expires_at: UnixTime,
    /// Whether it was already redeemed.
    pub used: bool,
}

/// A refresh token.
#[derive(Debug, Clone)]
pub struct RefreshRecord {
    /// The grant.
    pub grant: Grant,
    /// Expiry.
    pub expires_at: UnixTime,
    /// Whether it was already rotated.
    pub used: bool,
}

/// An SSO session.
#[derive(Debug, Clone)]
pub struct SsoSession {
    /// Public session id (`sid` claim).
    pub sid: String,
    /// User id.
    pub user_id: String,
    /// When the person authenticated.
    pub auth_time: UnixTime,
    /// Expiry.
    pub expires_at: UnixTime,
}

/// idp0's storage (brokered consent's part is [`StsStore`]).
#[async_trait]
pub trait Store: StsStore + Send + Sync {
    /// Stores a new code under its hash.
    async fn create_code(&self, code_hash: &str, code: &AuthCode) -> Result<(), StoreError>;
    /// Finds a code by hash.
    async fn find_code(&self, code_hash: &str) -> Result<Option<AuthCode>, StoreError>;
    /// Marks a code used; `false` if it already was (a concurrent redemption won).
    async fn consume_code(&self, code_hash: &str, now: UnixTime) -> Result<bool, StoreError>;

    /// Stores a refresh token under its hash.
    async fn create_refresh_token(
        &self,
        token_hash: &str,
        record: &RefreshRecord,
    ) -> Result<(), StoreError>;
    /// Finds a refresh token by hash.
    async fn find_refresh_token(
        &self,
        token_hash: &str,
    ) -> Result<Option<RefreshRecord>, StoreError>;
    /// Marks a refresh token used; `false` if it already was.
    async fn consume_refresh_token(
        &self,
        token_hash: &str,
        now: UnixTime,
    ) -> Result<bool, StoreError>;

    /// Revokes a family: its refresh tokens and the access tokens recorded for it.
    async fn revoke_family(&self, family: &str, now: UnixTime) -> Result<(), StoreError>;
    /// Whether a family is revoked.
    async fn is_family_revoked(&self, family: &str) -> Result<bool, StoreError>;
    /// Records an access or ID token (by `jti`) issued within a family, so revoking the family
    /// revokes it too.
    async fn record_access_token(
        &self,
        jti: &str,
        family: &str,
        expires_at: UnixTime,
    ) -> Result<(), StoreError>;
    /// Revokes one access token.
    async fn revoke_access_token(&self, jti: &str, expires_at: UnixTime) -> Result<(), StoreError>;
    /// Whether an access token is revoked (directly or through its family).
    async fn is_access_token_revoked(&self, jti: &str) -> Result<bool, StoreError>;

    /// Whether an ID token may still stand for its user: its `jti` was recorded in a family that
    /// is not revoked, and the SSO session `sid` it came from is live at `now` (one query).
    async fn is_id_token_active(
        &self,
        jti: &str,
        sid: &str,
        now: UnixTime,
    ) -> Result<bool, StoreError>;

    /// Remembers `jti` in `namespace` until `expires_at`; `false` if it was already there.
    async fn remember_jti(
        &self,
        namespace: &str,
        jti: &str,
        expires_at: UnixTime,
    ) -> Result<bool, StoreError>;

    /// Stores an SSO session under the hash of its cookie value.
    async fn create_session(&self, id_hash: &str, session: &SsoSession) -> Result<(), StoreError>;
    /// Finds an SSO session.
    async fn find_session(&self, id_hash: &str) -> Result<Option<SsoSession>, StoreError>;
    /// Ends an SSO session.
    async fn delete_session(&self, id_hash: &str) -> Result<(), StoreError>;
    /// Ends every SSO session with this `sid`.
    async fn delete_sessions_by_sid(&self, sid: &str) -> Result<(), StoreError>;

    /// The directory entries managed at run time (one JSON document) and its version.
    async fn find_managed_directory(&self) -> Result<Option<(i64, String)>, StoreError>;
    /// Replaces the managed directory document when its version is still `expected` (0: there is
    /// none yet), storing it as version `expected + 1`; `false` when another writer got there
    /// first (nothing is written).
    async fn replace_managed_directory(
        &self,
        expected: i64,
        body: &str,
    ) -> Result<bool, StoreError>;

    /// Counts one login attempt against throttle key `key` at `now` when `policy` lets it run
    /// (failures older than its `forget_after_seconds` start again from one): one atomic
    /// statement, so concurrent attempts on any replica each see the others' counts. Returns the
    /// failures now counted, or `None` when the attempt must wait (nothing is changed).
    async fn count_login_attempt(
        &self,
        key: &str,
        policy: &ThrottlePolicy,
        now: UnixTime,
    ) -> Result<Option<i64>, StoreError>;
    /// The failures counted against `key` and when the last was counted.
    async fn find_login_failures(&self, key: &str) -> Result<Option<(i64, UnixTime)>, StoreError>;
    /// Takes one counted attempt back from `key` (never below zero).
    async fn uncount_login_attempt(&self, key: &str) -> Result<(), StoreError>;
    /// Forgets every failure counted against `key`.
    async fn delete_login_failures(&self, key: &str) -> Result<(), StoreError>;

    /// Removes expired rows.
    async fn purge_expired(&self, now: UnixTime) -> Result<(), StoreError>;
}

/// Opens idp0's store by URL: `postgres://…` / `postgresql://…` (PostgreSQL, e.g.
/// `postgres://idp0:PASSWORD@db.internal:5432/idp0?sslmode=require`), or `sqlite://PATH` / a plain
/// file path (SQLite, created if missing). Migrations are applied before it returns.
///
/// A database that cannot be reached fails within a few seconds with an error naming the URL
/// without its password and what to check; errors never contain the password.
pub async fn open(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    if dbconn::is_postgres_url(url) {
        Ok(Arc::new(PostgresStore::connect(url).await?))
    } else {
        let path = url.strip_prefix("sqlite://").unwrap_or(url);
        Ok(Arc::new(
            SqliteStore::open(std::path::Path::new(path)).await?,
        ))
    }
}

/// SHA-256 hex of a secret, the only form in which secrets are stored.
pub fn secret_hash(secret: &str) -> String {
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests;
