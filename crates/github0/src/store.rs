//! github0's SQLite store: people, browser sessions, pending authorizations, grants, codes,
//! tokens and the REST budget here; repositories, pull requests and comments in [`repos`].
//! Secrets (tokens, codes, session and pending ids) are looked up by their SHA-256 only.

pub mod repos;

use std::path::Path;
use std::time::Duration;

use protocol::UnixTime;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{Row, SqlitePool};

/// A store failure (details for the log; people see a generic message).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// Migrations failed.
    #[error("migrations: {0}")]
    Migration(String),
}

/// A person or organisation.
#[derive(Debug, Clone)]
pub struct Account {
    /// GitHub's numeric id.
    pub id: i64,
    /// The login.
    pub login: String,
    /// `User` or `Organization`.
    pub kind: String,
    /// The display name.
    pub name: String,
    /// Argon2id PHC string; `None`: cannot sign in.
    pub password_hash: Option<String>,
    /// When created.
    pub created_at: UnixTime,
}

impl Account {
    fn from_row(row: &SqliteRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.try_get("id")?,
            login: row.try_get("login")?,
            kind: row.try_get("kind")?,
            name: row.try_get("name")?,
            password_hash: row.try_get("password_hash")?,
            created_at: row.try_get("created_at")?,
        })
    }
}

/// An authorization request waiting for the person's decision.
#[derive(Debug, Clone)]
pub struct Pending {
    /// The app.
    pub client_id: String,
    /// Where the answer goes.
    pub redirect_uri: String,
    /// Space-separated scopes asked for.
    pub scope: String,
    /// The client's `state`.
    pub state: Option<String>,
    /// The PKCE S256 challenge.
    pub code_challenge: Option<String>,
}

/// An issued authorization code.
#[derive(Debug, Clone)]
pub struct Code {
    /// The app it was issued to.
    pub client_id: String,
    /// The person.
    pub account_id: i64,
    /// The `redirect_uri` it was sent to.
    pub redirect_uri: String,
    /// Granted scopes (space-separated).
    pub scope: String,
    /// The PKCE challenge, if one was given.
    pub code_challenge: Option<String>,
    /// The family of the tokens issued from it.
    pub family: String,
    /// When it expires.
    pub expires_at: UnixTime,
}

/// What taking a code found.
#[derive(Debug)]
pub enum CodeTaken {
    /// Unused until now (it is now used).
    Fresh(Code),
    /// Already used: the tokens issued from it should be revoked.
    Replayed {
        /// Their family.
        family: String,
    },
    /// No such code.
    Unknown,
}

/// A stored token's grant.
#[derive(Debug, Clone)]
pub struct TokenGrant {
    /// The app.
    pub client_id: String,
    /// The person.
    pub account_id: i64,
    /// Space-separated scopes.
    pub scope: String,
    /// Its family (tokens issued from one code and its refreshes).
    pub family: String,
    /// When it expires; `None`: never.
    pub expires_at: Option<UnixTime>,
}

impl TokenGrant {
    fn from_row(row: &SqliteRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            client_id: row.try_get("client_id")?,
            account_id: row.try_get("account_id")?,
            scope: row.try_get("scope")?,
            family: row.try_get("family")?,
            expires_at: row.try_get("expires_at")?,
        })
    }
}

/// The REST budget's window after a request was counted.
#[derive(Debug, Clone, Copy)]
pub struct RateWindow {
    /// When the window started.
    pub start: UnixTime,
    /// Requests counted in it, this one included (at most the limit + 1).
    pub used: i64,
}

/// The store.
#[derive(Debug, Clone)]
pub struct Store {
    pool: SqlitePool,
}

const WAIT: Duration = Duration::from_secs(5);

impl Store {
    /// Opens (creating if missing) the database file and applies migrations.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(WAIT);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(WAIT)
            .connect_with(options)
            .await?;
        dbconn::migrate(&sqlx::migrate!("./migrations/sqlite"), &pool)
            .await
            .map_err(|e| StoreError::Migration(e.to_string()))?;
        Ok(Self { pool })
    }

    pub(crate) fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    // ---- accounts ----

    /// The account with `login` (case-insensitive, as GitHub's).
    pub async fn account_by_login(&self, login: &str) -> Result<Option<Account>, StoreError> {
        let row = sqlx::query("SELECT * FROM accounts WHERE login = ?1 COLLATE NOCASE")
            .bind(login)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(Account::from_row).transpose()?)
    }

    /// The account with `id`.
    pub async fn account(&self, id: i64) -> Result<Option<Account>, StoreError> {
        let row = sqlx::query("SELECT * FROM accounts WHERE id = ?1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(Account::from_row).transpose()?)
    }

    /// Creates the account if missing (its id then stays the same for ever); returns it.
    pub async fn ensure_account(
        &self,
        login: &str,
        kind: &str,
        name: &str,
        now: UnixTime,
    ) -> Result<Account, StoreError> {
        sqlx::query(
            "INSERT INTO accounts (login, kind, name, created_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (login) DO NOTHING",
        )
        .bind(login)
        .bind(kind)
        .bind(name)
        .bind(now)
        .execute(&self.pool)
        .await?;
        self.account_by_login(login)
            .await?
            .ok_or_else(|| StoreError::Database(sqlx::Error::RowNotFound))
    }

    /// Sets an account's display name and password hash.
    pub async fn set_person(
        &self,
        id: i64,
        name: &str,
        password_hash: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE accounts SET name = ?1, password_hash = ?2 WHERE id = ?3")
            .bind(name)
            .bind(password_hash)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Deletes what can no longer be used: expired sessions, pending requests, codes (kept
    /// until expiry so a replay is recognised), tokens, and finished rate windows.
    pub async fn purge(&self, now: UnixTime) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for sql in [
            "DELETE FROM web_sessions WHERE expires_at <= ?1",
            "DELETE FROM pending_authorizations WHERE expires_at <= ?1",
            "DELETE FROM codes WHERE expires_at <= ?1",
            "DELETE FROM tokens WHERE expires_at IS NOT NULL AND expires_at <= ?1",
            "DELETE FROM rate_windows WHERE window_start + 3600 <= ?1",
        ] {
            sqlx::query(sql).bind(now).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    // ---- browser sessions ----

    /// Records a session for `account_id`.
    pub async fn create_session(
        &self,
        id_hash: &str,
        account_id: i64,
        expires_at: UnixTime,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO web_sessions (id_hash, account_id, expires_at) VALUES (?1, ?2, ?3)",
        )
        .bind(id_hash)
        .bind(account_id)
        .bind(expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The signed-in account of a live session.
    pub async fn session_account(
        &self,
        id_hash: &str,
        now: UnixTime,
    ) -> Result<Option<Account>, StoreError> {
        let row = sqlx::query(
            "SELECT a.* FROM web_sessions s JOIN accounts a ON a.id = s.account_id
             WHERE s.id_hash = ?1 AND s.expires_at > ?2",
        )
        .bind(id_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(Account::from_row).transpose()?)
    }

    // ---- pending authorizations ----

    /// Keeps a request for the consent page, bound to the session that saw it.
    pub async fn put_pending(
        &self,
        id_hash: &str,
        session_hash: &str,
        pending: &Pending,
        expires_at: UnixTime,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO pending_authorizations
             (id_hash, session_hash, client_id, redirect_uri, scope, state, code_challenge, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )
        .bind(id_hash)
        .bind(session_hash)
        .bind(&pending.client_id)
        .bind(&pending.redirect_uri)
        .bind(&pending.scope)
        .bind(&pending.state)
        .bind(&pending.code_challenge)
        .bind(expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Takes (once) a live pending request of this session.
    pub async fn take_pending(
        &self,
        id_hash: &str,
        session_hash: &str,
        now: UnixTime,
    ) -> Result<Option<Pending>, StoreError> {
        let row = sqlx::query(
            "DELETE FROM pending_authorizations
             WHERE id_hash = ?1 AND session_hash = ?2 AND expires_at > ?3
             RETURNING client_id, redirect_uri, scope, state, code_challenge",
        )
        .bind(id_hash)
        .bind(session_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        sqlx::query("DELETE FROM pending_authorizations WHERE expires_at <= ?1")
            .bind(now)
            .execute(&self.pool)
            .await?;
        row.map(|row| {
            Ok(Pending {
                client_id: row.try_get("client_id")?,
                redirect_uri: row.try_get("redirect_uri")?,
                scope: row.try_get("scope")?,
                state: row.try_get("state")?,
                code_challenge: row.try_get("code_challenge")?,
            })
        })
        .transpose()
        .map_err(StoreError::Database)
    }

    // ---- grants ----

    /// The scopes `account_id` has granted `client_id`, if any.
    pub async fn grant(
        &self,
        account_id: i64,
        client_id: &str,
    ) -> Result<Option<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT scope FROM grants WHERE account_id = ?1 AND client_id = ?2")
                .bind(account_id)
                .bind(client_id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Records (or widens to) `scope` for (person, app).
    pub async fn put_grant(
        &self,
        account_id: i64,
        client_id: &str,
        scope: &str,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO grants (account_id, client_id, scope, created_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (account_id, client_id) DO UPDATE SET scope = excluded.scope",
        )
        .bind(account_id)
        .bind(client_id)
        .bind(scope)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Removes (person, app)'s grant and revokes every token issued under it.
    pub async fn delete_grant(&self, account_id: i64, client_id: &str) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM grants WHERE account_id = ?1 AND client_id = ?2")
            .bind(account_id)
            .bind(client_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE tokens SET revoked = 1 WHERE account_id = ?1 AND client_id = ?2")
            .bind(account_id)
            .bind(client_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    // ---- codes ----

    /// Stores a new code.
    pub async fn put_code(&self, code_hash: &str, code: &Code) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO codes (code_hash, client_id, account_id, redirect_uri, scope,
             code_challenge, family, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )
        .bind(code_hash)
        .bind(&code.client_id)
        .bind(code.account_id)
        .bind(&code.redirect_uri)
        .bind(&code.scope)
        .bind(&code.code_challenge)
        .bind(&code.family)
        .bind(code.expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Marks a code used, in one statement, and says what it was.
    pub async fn take_code(&self, code_hash: &str) -> Result<CodeTaken, StoreError> {
        let row = sqlx::query(
            "UPDATE codes SET used = 1 WHERE code_hash = ?1 AND used = 0
             RETURNING client_id, account_id, redirect_uri, scope, code_challenge, family, expires_at",
        )
        .bind(code_hash)
        .fetch_optional(&self.pool)
        .await?;
        if let Some(row) = row {
            return Ok(CodeTaken::Fresh(Code {
                client_id: row.try_get("client_id")?,
                account_id: row.try_get("account_id")?,
                redirect_uri: row.try_get("redirect_uri")?,
                scope: row.try_get("scope")?,
                code_challenge: row.try_get("code_challenge")?,
                family: row.try_get("family")?,
                expires_at: row.try_get("expires_at")?,
            }));
        }
        let family: Option<String> =
            sqlx::query_scalar("SELECT family FROM codes WHERE code_hash = ?1")
                .bind(code_hash)
                .fetch_optional(&self.pool)
                .await?;
        Ok(match family {
            Some(family) => CodeTaken::Replayed { family },
            None => CodeTaken::Unknown,
        })
    }

    // ---- tokens ----

    /// Stores a token's hash and grant.
    pub async fn put_token(
        &self,
        token_hash: &str,
        kind: &str,
        grant: &TokenGrant,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO tokens (token_hash, kind, client_id, account_id, scope, family, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )
        .bind(token_hash)
        .bind(kind)
        .bind(&grant.client_id)
        .bind(grant.account_id)
        .bind(&grant.scope)
        .bind(&grant.family)
        .bind(grant.expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A live (unrevoked, unexpired) token of `kind`.
    pub async fn live_token(
        &self,
        token_hash: &str,
        kind: &str,
        now: UnixTime,
    ) -> Result<Option<TokenGrant>, StoreError> {
        let row = sqlx::query(
            "SELECT * FROM tokens WHERE token_hash = ?1 AND kind = ?2 AND revoked = 0
             AND (expires_at IS NULL OR expires_at > ?3)",
        )
        .bind(token_hash)
        .bind(kind)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(TokenGrant::from_row).transpose()?)
    }

    /// Takes a live refresh token of `client_id` (revoking it and its family's access tokens).
    pub async fn take_refresh(
        &self,
        token_hash: &str,
        client_id: &str,
        now: UnixTime,
    ) -> Result<Option<TokenGrant>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(
            "UPDATE tokens SET revoked = 1 WHERE token_hash = ?1 AND kind = 'refresh'
             AND revoked = 0 AND client_id = ?2 AND (expires_at IS NULL OR expires_at > ?3)
             RETURNING *",
        )
        .bind(token_hash)
        .bind(client_id)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let grant = row.as_ref().map(TokenGrant::from_row).transpose()?;
        if let Some(grant) = &grant {
            sqlx::query("UPDATE tokens SET revoked = 1 WHERE family = ?1 AND kind = 'access'")
                .bind(&grant.family)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(grant)
    }

    /// Any stored token (live or not) of `client_id`, for the revocation endpoints.
    pub async fn token_of_app(
        &self,
        token_hash: &str,
        client_id: &str,
    ) -> Result<Option<TokenGrant>, StoreError> {
        let row = sqlx::query("SELECT * FROM tokens WHERE token_hash = ?1 AND client_id = ?2")
            .bind(token_hash)
            .bind(client_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(TokenGrant::from_row).transpose()?)
    }

    /// Revokes one live (unrevoked; expired or not) access token of `client_id` and the refresh
    /// token issued with it — its family's unrevoked refresh token: a family has one live pair at
    /// a time, since a refresh revokes the pair it replaces — so that what the app revoked cannot
    /// come back through a refresh. Other tokens of the person and app (other families) and the
    /// grant stay. `false` when there is no such access token (unknown, another app's, a refresh
    /// token, or revoked already).
    pub async fn revoke_access_and_its_refresh(
        &self,
        token_hash: &str,
        client_id: &str,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let family: Option<String> = sqlx::query_scalar(
            "UPDATE tokens SET revoked = 1 WHERE token_hash = ?1 AND client_id = ?2
             AND kind = 'access' AND revoked = 0 RETURNING family",
        )
        .bind(token_hash)
        .bind(client_id)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(family) = &family {
            sqlx::query(
                "UPDATE tokens SET revoked = 1 WHERE family = ?1 AND client_id = ?2
                 AND kind = 'refresh' AND revoked = 0",
            )
            .bind(family)
            .bind(client_id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(family.is_some())
    }

    /// Revokes every token of a family (a replayed code).
    pub async fn revoke_family(&self, family: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE tokens SET revoked = 1 WHERE family = ?1")
            .bind(family)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    // ---- REST budget ----

    /// Counts one request against the token's hourly window (a new window once the old one is
    /// over); `used` stops at `limit + 1`.
    pub async fn count_request(
        &self,
        token_hash: &str,
        now: UnixTime,
        limit: u32,
    ) -> Result<RateWindow, StoreError> {
        let row = sqlx::query(
            "INSERT INTO rate_windows (token_hash, window_start, used) VALUES (?1, ?2, 1)
             ON CONFLICT (token_hash) DO UPDATE SET
               used = CASE WHEN rate_windows.window_start + 3600 <= ?2 THEN 1
                           ELSE min(rate_windows.used + 1, ?3 + 1) END,
               window_start = CASE WHEN rate_windows.window_start + 3600 <= ?2 THEN ?2
                           ELSE rate_windows.window_start END
             RETURNING window_start, used",
        )
        .bind(token_hash)
        .bind(now)
        .bind(i64::from(limit))
        .fetch_one(&self.pool)
        .await?;
        Ok(RateWindow {
            start: row.try_get("window_start")?,
            used: row.try_get("used")?,
        })
    }
}
