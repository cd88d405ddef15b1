//! SQLite backend (WAL, `synchronous = FULL`), migrations (`migrations/sqlite`) embedded and
//! applied at open.
//!
//! The writes of every token request — a client assertion's or an ID-JAG's `jti` remembered, an
//! issued token recorded in its grant's family — are group-committed ([`dbconn::sqlite_writer`],
//! on a thread of its own with a rusqlite connection): concurrent requests share one transaction
//! and one fsync, and none is answered before its write is durable, so a `jti` seen once is
//! refused again even after a crash. Everything else goes through sqlx's pool.
//!
//! The migration files moved from `migrations/` to `migrations/sqlite/` byte for byte: sqlx checks
//! each applied migration's checksum, so an existing `idp0.db` keeps opening.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use dbconn::sqlite_readers::rusqlite;
use dbconn::sqlite_writer::{SqliteWrite, SqliteWriter};
use protocol::UnixTime;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{Row, SqlitePool};

use super::{AuthCode, Grant, RefreshRecord, SsoSession, Store, StoreError};
use crate::login_guard::ThrottlePolicy;

/// SQLite-backed [`Store`].
#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// The group-commit writer of the token requests' writes.
    replay: SqliteWriter<TokenWrite>,
    /// A [`Self::temporary`] store's directory, removed with the last clone of the store.
    _temporary: Option<dbconn::TemporaryDatabase>,
}

/// The most token-request writes committed together.
const MAX_BATCH: usize = 256;

/// A write of the token endpoint's hot path, run in a group's transaction.
enum TokenWrite {
    /// `INSERT OR IGNORE` into `seen_jti`: answers whether the `jti` is new.
    RememberJti {
        namespace: String,
        jti: String,
        expires_at: UnixTime,
    },
    /// `INSERT OR IGNORE` into `issued_access_tokens`: answers `true`.
    RecordIssued {
        jti: String,
        family: String,
        expires_at: UnixTime,
    },
}

impl SqliteWrite for TokenWrite {
    type Output = bool;
    type Error = StoreError;

    fn run(&self, connection: &rusqlite::Connection) -> Result<bool, StoreError> {
        let inserted = match self {
            Self::RememberJti {
                namespace,
                jti,
                expires_at,
            } => connection
                .prepare_cached(
                    "INSERT OR IGNORE INTO seen_jti (namespace, jti, expires_at) VALUES (?, ?, ?)",
                )
                .and_then(|mut s| s.execute(rusqlite::params![namespace, jti, expires_at])),
            Self::RecordIssued {
                jti,
                family,
                expires_at,
            } => connection
                .prepare_cached(
                    "INSERT OR IGNORE INTO issued_access_tokens (jti, family, expires_at) VALUES (?, ?, ?)",
                )
                .and_then(|mut s| s.execute(rusqlite::params![jti, family, expires_at])),
        };
        let inserted = inserted.map_err(|e| StoreError::of_rusqlite(&e))?;
        Ok(match self {
            Self::RememberJti { .. } => inserted == 1,
            Self::RecordIssued { .. } => true,
        })
    }

    fn group_failed(error: rusqlite::Error) -> StoreError {
        StoreError::of_rusqlite(&error)
    }

    fn writer_gone() -> StoreError {
        StoreError::new("the token store is shut down")
    }
}

/// How long a statement waits for another connection's lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The group commit's own connection to the (migrated, WAL) file: durable commits, the same
/// lock wait as the pool's.
fn open_write_connection(path: &Path) -> rusqlite::Result<rusqlite::Connection> {
    dbconn::sqlite_writer::open_connection(path, BUSY_TIMEOUT, "")
}

impl SqliteStore {
    /// The name of the group commit's thread (benchmarks count its CPU as idp0's).
    pub const WRITER_THREAD: &str = "idp0-writer";

    /// Opens (creating) the database file and applies migrations.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_file(path, None).await
    }

    /// A private store (tests, benchmarks): a database file in a temporary directory of its
    /// own, removed when the last clone of the store is dropped.
    pub async fn temporary() -> Result<Self, StoreError> {
        let database = dbconn::TemporaryDatabase::new("idp0-store-", "idp0.db")
            .map_err(|e| StoreError::new(format!("creating a temporary directory: {e}")))?;
        let path = database.path().to_owned();
        Self::open_file(&path, Some(database)).await
    }

    async fn open_file(
        path: &Path,
        temporary: Option<dbconn::TemporaryDatabase>,
    ) -> Result<Self, StoreError> {
        let name = path.display().to_string();
        let cannot_open = |e: &dyn std::fmt::Display| {
            StoreError::new(format!("cannot open the SQLite database {name}: {e}"))
        };
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{name}"))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(|e| cannot_open(&e))?;
        dbconn::migrate(&sqlx::migrate!("./migrations/sqlite"), &pool)
            .await
            .map_err(|e| StoreError::migration(e, &name))?;
        let connection = open_write_connection(path).map_err(|e| cannot_open(&e))?;
        let replay = SqliteWriter::start(connection, Self::WRITER_THREAD, MAX_BATCH)
            .map_err(|e| StoreError::new(format!("starting the token writer: {e}")))?;
        Ok(Self {
            pool,
            replay,
            _temporary: temporary,
        })
    }
}

/// The columns of a [`Grant`], shared by codes and refresh tokens.
macro_rules! grant_columns {
    () => {
        "server, client_id, user_id, scope, nonce, auth_time, sid, family"
    };
}

fn grant_from(row: &SqliteRow) -> Result<Grant, sqlx::Error> {
    Ok(Grant {
        server: row.try_get("server")?,
        client_id: row.try_get("client_id")?,
        user_id: row.try_get("user_id")?,
        scope: row.try_get("scope")?,
        nonce: row.try_get("nonce")?,
        auth_time: row.try_get("auth_time")?,
        sid: row.try_get("sid")?,
        family: row.try_get("family")?,
    })
}

type SqliteQuery<'q> = sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>;

/// Binds a [`Grant`]'s fields in [`grant_columns!`] order.
fn bind_grant<'q>(query: SqliteQuery<'q>, g: &'q Grant) -> SqliteQuery<'q> {
    query
        .bind(&g.server)
        .bind(&g.client_id)
        .bind(&g.user_id)
        .bind(&g.scope)
        .bind(&g.nonce)
        .bind(g.auth_time)
        .bind(&g.sid)
        .bind(&g.family)
}

#[async_trait]
impl Store for SqliteStore {
    async fn create_code(&self, code_hash: &str, code: &AuthCode) -> Result<(), StoreError> {
        let query = sqlx::query(concat!(
            "INSERT INTO auth_codes (code_hash, ",
            grant_columns!(),
            ", redirect_uri, code_challenge, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        ))
        .bind(code_hash);
        bind_grant(query, &code.grant)
            .bind(&code.redirect_uri)
            .bind(&code.code_challenge)
            .bind(code.expires_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn find_code(&self, code_hash: &str) -> Result<Option<AuthCode>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            grant_columns!(),
            ", redirect_uri, code_challenge, expires_at, used_at FROM auth_codes WHERE code_hash = ?"
        ))
        .bind(code_hash)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(AuthCode {
            grant: grant_from(&row)?,
            redirect_uri: row.try_get("redirect_uri")?,
            code_challenge: row.try_get("code_challenge")?,
            expires_at: row.try_get("expires_at")?,
            used: row.try_get::<Option<i64>, _>("used_at")?.is_some(),
        }))
    }

    async fn consume_code(&self, code_hash: &str, now: UnixTime) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE auth_codes SET used_at = ? WHERE code_hash = ? AND used_at IS NULL",
        )
        .bind(now)
        .bind(code_hash)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn create_refresh_token(
        &self,
        token_hash: &str,
        record: &RefreshRecord,
    ) -> Result<(), StoreError> {
        let query = sqlx::query(concat!(
            "INSERT INTO refresh_tokens (token_hash, ",
            grant_columns!(),
            ", expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        ))
        .bind(token_hash);
        bind_grant(query, &record.grant)
            .bind(record.expires_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn find_refresh_token(
        &self,
        token_hash: &str,
    ) -> Result<Option<RefreshRecord>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            grant_columns!(),
            ", expires_at, used_at FROM refresh_tokens WHERE token_hash = ?"
        ))
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(RefreshRecord {
            grant: grant_from(&row)?,
            expires_at: row.try_get("expires_at")?,
            used: row.try_get::<Option<i64>, _>("used_at")?.is_some(),
        }))
    }

    async fn consume_refresh_token(
        &self,
        token_hash: &str,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE refresh_tokens SET used_at = ? WHERE token_hash = ? AND used_at IS NULL",
        )
        .bind(now)
        .bind(token_hash)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn revoke_family(&self, family: &str, now: UnixTime) -> Result<(), StoreError> {
        sqlx::query("INSERT OR IGNORE INTO revoked_families (family, revoked_at) VALUES (?, ?)")
            .bind(family)
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn is_family_revoked(&self, family: &str) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT 1 FROM revoked_families WHERE family = ?")
            .bind(family)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }

    async fn record_access_token(
        &self,
        jti: &str,
        family: &str,
        expires_at: UnixTime,
    ) -> Result<(), StoreError> {
        self.replay
            .write(TokenWrite::RecordIssued {
                jti: jti.to_owned(),
                family: family.to_owned(),
                expires_at,
            })
            .await?;
        Ok(())
    }

    async fn revoke_access_token(&self, jti: &str, expires_at: UnixTime) -> Result<(), StoreError> {
        sqlx::query("INSERT OR IGNORE INTO revoked_access_tokens (jti, expires_at) VALUES (?, ?)")
            .bind(jti)
            .bind(expires_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn is_access_token_revoked(&self, jti: &str) -> Result<bool, StoreError> {
        let row = sqlx::query(
            "SELECT 1 FROM revoked_access_tokens WHERE jti = ?1 \
             UNION ALL SELECT 1 FROM issued_access_tokens t JOIN revoked_families f ON f.family = t.family WHERE t.jti = ?1",
        )
        .bind(jti)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.is_some())
    }

    async fn is_id_token_active(
        &self,
        jti: &str,
        sid: &str,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        let row = sqlx::query(
            "SELECT 1 FROM issued_access_tokens t \
             WHERE t.jti = ?1 \
             AND NOT EXISTS (SELECT 1 FROM revoked_families f WHERE f.family = t.family) \
             AND NOT EXISTS (SELECT 1 FROM revoked_access_tokens r WHERE r.jti = ?1) \
             AND EXISTS (SELECT 1 FROM sso_sessions s WHERE s.sid = ?2 AND s.expires_at > ?3)",
        )
        .bind(jti)
        .bind(sid)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.is_some())
    }

    async fn remember_jti(
        &self,
        namespace: &str,
        jti: &str,
        expires_at: UnixTime,
    ) -> Result<bool, StoreError> {
        self.replay
            .write(TokenWrite::RememberJti {
                namespace: namespace.to_owned(),
                jti: jti.to_owned(),
                expires_at,
            })
            .await
    }

    async fn find_managed_directory(&self) -> Result<Option<(i64, String)>, StoreError> {
        let row = sqlx::query("SELECT version, body FROM managed_directory WHERE id = 1")
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(row) => Some((row.try_get("version")?, row.try_get("body")?)),
            None => None,
        })
    }

    async fn replace_managed_directory(
        &self,
        expected: i64,
        body: &str,
    ) -> Result<bool, StoreError> {
        let done = if expected == 0 {
            sqlx::query(
                "INSERT OR IGNORE INTO managed_directory (id, version, body) VALUES (1, 1, ?)",
            )
            .bind(body)
            .execute(&self.pool)
            .await?
        } else {
            sqlx::query(
                "UPDATE managed_directory SET version = version + 1, body = ? WHERE id = 1 AND version = ?",
            )
            .bind(body)
            .bind(expected)
            .execute(&self.pool)
            .await?
        };
        Ok(done.rows_affected() == 1)
    }

    async fn create_session(&self, id_hash: &str, s: &SsoSession) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO sso_sessions (id_hash, sid, user_id, auth_time, expires_at) VALUES (?, ?, ?, ?, ?)")
            .bind(id_hash)
            .bind(&s.sid)
            .bind(&s.user_id)
            .bind(s.auth_time)
            .bind(s.expires_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn find_session(&self, id_hash: &str) -> Result<Option<SsoSession>, StoreError> {
        let row = sqlx::query(
            "SELECT sid, user_id, auth_time, expires_at FROM sso_sessions WHERE id_hash = ?",
        )
        .bind(id_hash)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(SsoSession {
            sid: row.try_get("sid")?,
            user_id: row.try_get("user_id")?,
            auth_time: row.try_get("auth_time")?,
            expires_at: row.try_get("expires_at")?,
        }))
    }

    async fn delete_session(&self, id_hash: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM sso_sessions WHERE id_hash = ?")
            .bind(id_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn delete_sessions_by_sid(&self, sid: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM sso_sessions WHERE sid = ?")
            .bind(sid)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn count_login_attempt(
        &self,
        key: &str,
        policy: &ThrottlePolicy,
        now: UnixTime,
    ) -> Result<Option<i64>, StoreError> {
        // Stale (?4): the last failure is older than `forget_after_seconds`. Otherwise the
        // attempt may run once the schedule's wait after the last failure has passed: the lock
        // from `lock_after` failures (?5, ?6), nothing below `free_failures` (?7), else 2^n
        // seconds capped at `max_delay_seconds` (?8). SQLite's write lock serialises concurrent
        // attempts on every replica sharing the file. Concurrent requests may disagree by a
        // moment about `now`: free failures run whatever the order, and the last failure's time
        // never moves back.
        let row = sqlx::query(
            "INSERT INTO login_throttle (key, failures, last_at, expires_at) \
             VALUES (?1, 1, ?2, ?2 + ?3) \
             ON CONFLICT (key) DO UPDATE SET \
             failures = CASE WHEN login_throttle.last_at <= ?2 - ?4 THEN 1 \
             ELSE login_throttle.failures + 1 END, \
             last_at = MAX(login_throttle.last_at, ?2), \
             expires_at = MAX(login_throttle.expires_at, ?2 + ?3) \
             WHERE login_throttle.last_at <= ?2 - ?4 \
             OR (login_throttle.failures < ?7 AND login_throttle.failures < ?5) \
             OR ?2 >= login_throttle.last_at + CASE \
             WHEN login_throttle.failures >= ?5 THEN ?6 \
             WHEN login_throttle.failures < ?7 THEN 0 \
             ELSE MIN(1 << MIN(login_throttle.failures - ?7, 30), ?8) END \
             RETURNING failures",
        )
        .bind(key)
        .bind(now)
        .bind(policy.forget_after_seconds.max(policy.lock_seconds))
        .bind(policy.forget_after_seconds)
        .bind(i64::from(policy.lock_after))
        .bind(policy.lock_seconds)
        .bind(i64::from(policy.free_failures))
        .bind(policy.max_delay_seconds)
        .fetch_optional(&self.pool)
        .await?;
        Ok(match row {
            Some(row) => Some(row.try_get("failures")?),
            None => None,
        })
    }

    async fn find_login_failures(&self, key: &str) -> Result<Option<(i64, UnixTime)>, StoreError> {
        let row = sqlx::query("SELECT failures, last_at FROM login_throttle WHERE key = ?1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(row) => Some((row.try_get("failures")?, row.try_get("last_at")?)),
            None => None,
        })
    }

    async fn uncount_login_attempt(&self, key: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE login_throttle SET failures = failures - 1 WHERE key = ?1 AND failures > 0",
        )
        .bind(key)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn delete_login_failures(&self, key: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM login_throttle WHERE key = ?1")
            .bind(key)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn purge_expired(&self, now: UnixTime) -> Result<(), StoreError> {
        // Codes are kept a day past expiry so a late replay is still recognised as reuse.
        for sql in [
            "DELETE FROM auth_codes WHERE expires_at < ? - 86400",
            "DELETE FROM refresh_tokens WHERE expires_at < ?",
            "DELETE FROM issued_access_tokens WHERE expires_at < ?",
            "DELETE FROM revoked_access_tokens WHERE expires_at < ?",
            "DELETE FROM seen_jti WHERE expires_at < ?",
            "DELETE FROM sso_sessions WHERE expires_at < ?",
            "DELETE FROM sts_interactions WHERE expires_at < ? - 86400",
            "DELETE FROM login_throttle WHERE expires_at < ?",
        ] {
            sqlx::query(sql).bind(now).execute(&self.pool).await?;
        }
        Ok(())
    }
}

super::sts::sts_store!(SqliteStore);

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A `jti` is answered as new only once its group's commit is on disk: the group commit's
    /// connection must be in WAL mode with `synchronous = FULL`, and wait for locks as the pool does.
    #[tokio::test]
    async fn the_group_commit_connection_is_durable() {
        let store = SqliteStore::temporary().await.unwrap();
        let database = store._temporary.as_ref().unwrap();
        let connection = open_write_connection(database.path()).unwrap();
        let pragma = |name: &str| -> String {
            connection
                .query_row(&format!("PRAGMA {name}"), [], |row| {
                    row.get::<_, rusqlite::types::Value>(0)
                })
                .map(|value| match value {
                    rusqlite::types::Value::Integer(n) => n.to_string(),
                    rusqlite::types::Value::Text(t) => t,
                    other => format!("{other:?}"),
                })
                .unwrap()
        };
        assert_eq!(pragma("journal_mode"), "wal");
        assert_eq!(pragma("synchronous"), "2", "synchronous = FULL");
        assert_eq!(pragma("busy_timeout"), "5000");
        // And the store remembers a jti once.
        assert!(store.remember_jti("test", "jti-1", i64::MAX).await.unwrap());
        assert!(!store.remember_jti("test", "jti-1", i64::MAX).await.unwrap());
    }
}
