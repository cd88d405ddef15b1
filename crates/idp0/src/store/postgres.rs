//! PostgreSQL [`Store`]: several idp0 replicas share one database. A connection pool, migrations
//! (`migrations/postgres`) embedded and applied at connect under sqlx's advisory lock, so replicas
//! starting together migrate once.
//!
//! Every write is one statement, atomic on its own: a code or refresh token is consumed by
//! `UPDATE … WHERE used_at IS NULL` (under READ COMMITTED a concurrent second `UPDATE` waits for
//! the first, re-checks the condition and touches nothing), a `jti` is remembered by
//! `INSERT … ON CONFLICT DO NOTHING`, and the managed directory is replaced only at the version the
//! writer read.
//!
//! Schema: idp0's tables and its migration history (`_sqlx_migrations`) live in the schema
//! [`DEFAULT_SCHEMA`] (`idp0`, created at first start if missing: that needs the database's CREATE
//! privilege once), so todo0 and agent0 may use the same database without their migration
//! histories colliding. A URL that sets its own `search_path` (`?options=-c%20search_path%3DNAME`)
//! is used as it is.
//!
//! Pool: `dbconn`'s settings, shared with todo0 and agent0: at most [`MAX_CONNECTIONS`]
//! connections per replica; a caller waits at most [`ACQUIRE_TIMEOUT`] for one (connecting
//! included), so an outage fails requests within seconds instead of hanging them. A connection
//! the server dropped is discarded and replaced on the next use. Idle connections close after
//! 10 minutes, every connection after 30.

use async_trait::async_trait;
use protocol::UnixTime;
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row};

use super::{AuthCode, Grant, RefreshRecord, SsoSession, Store, StoreError};
use crate::login_guard::ThrottlePolicy;

pub use dbconn::{ACQUIRE_TIMEOUT, MAX_CONNECTIONS};

/// The schema idp0 keeps its tables in unless the URL chooses a `search_path`.
pub const DEFAULT_SCHEMA: &str = "idp0";
/// The `application_name` idp0's sessions show in `pg_stat_activity` unless the URL sets one.
const APPLICATION_NAME: &str = "idp0";

/// The columns of a [`Grant`], shared by codes and refresh tokens.
macro_rules! grant_columns {
    () => {
        "server, client_id, user_id, scope, nonce, auth_time, sid, family"
    };
}

/// PostgreSQL-backed [`Store`].
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Connects (`postgres://user:password@host:port/database?sslmode=require`) and applies
    /// migrations. Fails within [`ACQUIRE_TIMEOUT`] when the server cannot be reached, naming the
    /// URL without its password and what to check.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with_default_schema(url, DEFAULT_SCHEMA).await
    }

    /// [`Self::connect`] with `schema` in place of [`DEFAULT_SCHEMA`].
    async fn connect_with_default_schema(url: &str, schema: &str) -> Result<Self, StoreError> {
        let target = dbconn::target(url, schema, APPLICATION_NAME).map_err(invalid)?;
        Self::with_target(url, target).await
    }

    /// Connects with every pooled session confined to `schema` (its `search_path`), creating the
    /// schema if missing and migrating inside it: isolated stores in one database (tests).
    ///
    /// `schema` must be a plain lower-case identifier (`[a-z_][a-z0-9_]*`, at most 63 bytes).
    pub async fn connect_in_schema(url: &str, schema: &str) -> Result<Self, StoreError> {
        let target = dbconn::target_in_schema(url, schema, APPLICATION_NAME).map_err(invalid)?;
        Self::with_target(url, target).await
    }

    /// Drops a schema made by [`Self::connect_in_schema`] (test clean-up).
    pub async fn drop_schema(url: &str, schema: &str) -> Result<(), StoreError> {
        dbconn::drop_schema(url, schema)
            .await
            .map_err(|e| StoreError::new(e.to_string()))
    }

    async fn with_target(url: &str, target: dbconn::Target) -> Result<Self, StoreError> {
        // `dbconn::connect` tries one direct connection first: the pool retries a refused
        // connection until its deadline and then reports only "timed out", while a person
        // starting idp0 needs the cause.
        let pool = dbconn::connect(&target.options)
            .await
            .map_err(|e| unreachable(url, &e))?;
        let mut migrator = sqlx::migrate!("./migrations/postgres");
        if let Some(schema) = &target.schema {
            dbconn::create_schema_if_missing(&pool, &mut migrator, schema).await?;
        }
        dbconn::migrate(&migrator, &pool)
            .await
            .map_err(|e| StoreError::migration(e, &dbconn::redact_url(url)))?;
        Ok(Self { pool })
    }
}

/// A URL or schema name that cannot be used; never repeats the URL (it may hold a password).
fn invalid(e: dbconn::Error) -> StoreError {
    StoreError::new(e.to_string())
}

/// The start-up error for a database that cannot be used.
fn unreachable(url: &str, e: &dbconn::Error) -> StoreError {
    let cause = match e {
        dbconn::Error::NoAnswer => format!("no answer within {} s", ACQUIRE_TIMEOUT.as_secs()),
        other => other.to_string(),
    };
    StoreError::new(format!(
        "cannot connect to the PostgreSQL database {} ({cause}). Fix: start the server or check \
         the host, port, user, password, database name and sslmode in --database / \
         IDP_DATABASE_URL",
        dbconn::redact_url(url)
    ))
}

fn grant_from(row: &PgRow) -> Result<Grant, sqlx::Error> {
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

type PgQuery<'q> = sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>;

/// Binds a [`Grant`]'s fields in [`grant_columns!`] order.
fn bind_grant<'q>(query: PgQuery<'q>, g: &'q Grant) -> PgQuery<'q> {
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
impl Store for PostgresStore {
    async fn create_code(&self, code_hash: &str, code: &AuthCode) -> Result<(), StoreError> {
        let query = sqlx::query(concat!(
            "INSERT INTO auth_codes (code_hash, ",
            grant_columns!(),
            ", redirect_uri, code_challenge, expires_at)",
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
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
            ", redirect_uri, code_challenge, expires_at, used_at FROM auth_codes",
            " WHERE code_hash = $1"
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
            "UPDATE auth_codes SET used_at = $1 WHERE code_hash = $2 AND used_at IS NULL",
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
            ", expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
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
            ", expires_at, used_at FROM refresh_tokens WHERE token_hash = $1"
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
            "UPDATE refresh_tokens SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL",
        )
        .bind(now)
        .bind(token_hash)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn revoke_family(&self, family: &str, now: UnixTime) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO revoked_families (family, revoked_at) VALUES ($1, $2) \
             ON CONFLICT (family) DO NOTHING",
        )
        .bind(family)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn is_family_revoked(&self, family: &str) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT 1 FROM revoked_families WHERE family = $1")
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
        sqlx::query(
            "INSERT INTO issued_access_tokens (jti, family, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (jti) DO NOTHING",
        )
        .bind(jti)
        .bind(family)
        .bind(expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn revoke_access_token(&self, jti: &str, expires_at: UnixTime) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO revoked_access_tokens (jti, expires_at) VALUES ($1, $2) \
             ON CONFLICT (jti) DO NOTHING",
        )
        .bind(jti)
        .bind(expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn is_access_token_revoked(&self, jti: &str) -> Result<bool, StoreError> {
        let row = sqlx::query(
            "SELECT 1 FROM revoked_access_tokens WHERE jti = $1 \
             UNION ALL SELECT 1 FROM issued_access_tokens t \
             JOIN revoked_families f ON f.family = t.family WHERE t.jti = $1 \
             LIMIT 1",
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
             WHERE t.jti = $1 \
             AND NOT EXISTS (SELECT 1 FROM revoked_families f WHERE f.family = t.family) \
             AND NOT EXISTS (SELECT 1 FROM revoked_access_tokens r WHERE r.jti = $1) \
             AND EXISTS (SELECT 1 FROM sso_sessions s WHERE s.sid = $2 AND s.expires_at > $3)",
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
        let done = sqlx::query(
            "INSERT INTO seen_jti (namespace, jti, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (namespace, jti) DO NOTHING",
        )
        .bind(namespace)
        .bind(jti)
        .bind(expires_at)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
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
                "INSERT INTO managed_directory (id, version, body) VALUES (1, 1, $1) \
                 ON CONFLICT (id) DO NOTHING",
            )
            .bind(body)
            .execute(&self.pool)
            .await?
        } else {
            sqlx::query(
                "UPDATE managed_directory SET version = version + 1, body = $1 \
                 WHERE id = 1 AND version = $2",
            )
            .bind(body)
            .bind(expected)
            .execute(&self.pool)
            .await?
        };
        Ok(done.rows_affected() == 1)
    }

    async fn create_session(&self, id_hash: &str, s: &SsoSession) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sso_sessions (id_hash, sid, user_id, auth_time, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
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
            "SELECT sid, user_id, auth_time, expires_at FROM sso_sessions WHERE id_hash = $1",
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
        sqlx::query("DELETE FROM sso_sessions WHERE id_hash = $1")
            .bind(id_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn delete_sessions_by_sid(&self, sid: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM sso_sessions WHERE sid = $1")
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
        // Stale ($4): the last failure is older than `forget_after_seconds`. Otherwise the
        // attempt may run once the schedule's wait after the last failure has passed: the lock
        // from `lock_after` failures ($5, $6), nothing below `free_failures` ($7), else 2^n
        // seconds capped at `max_delay_seconds` ($8). The row lock of the upsert serialises
        // concurrent attempts on every replica. Concurrent requests (and replicas' clocks) may
        // disagree by a moment about `now`: free failures run whatever the order, and the last
        // failure's time never moves back.
        let row = sqlx::query(
            "INSERT INTO login_throttle (key, failures, last_at, expires_at) \
             VALUES ($1, 1, $2, $2 + $3) \
             ON CONFLICT (key) DO UPDATE SET \
             failures = CASE WHEN login_throttle.last_at <= $2 - $4 THEN 1 \
             ELSE login_throttle.failures + 1 END, \
             last_at = GREATEST(login_throttle.last_at, $2), \
             expires_at = GREATEST(login_throttle.expires_at, $2 + $3) \
             WHERE login_throttle.last_at <= $2 - $4 \
             OR (login_throttle.failures < $7 AND login_throttle.failures < $5) \
             OR $2 >= login_throttle.last_at + CASE \
             WHEN login_throttle.failures >= $5 THEN $6 \
             WHEN login_throttle.failures < $7 THEN 0 \
             ELSE LEAST(1::bigint << LEAST(login_throttle.failures - $7, 30)::int, $8) END \
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
        let row = sqlx::query("SELECT failures, last_at FROM login_throttle WHERE key = $1")
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
            "UPDATE login_throttle SET failures = failures - 1 WHERE key = $1 AND failures > 0",
        )
        .bind(key)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn delete_login_failures(&self, key: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM login_throttle WHERE key = $1")
            .bind(key)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn purge_expired(&self, now: UnixTime) -> Result<(), StoreError> {
        // Codes are kept a day past expiry so a late replay is still recognised as reuse. Each
        // statement commits on its own: replicas purging at once never hold locks across tables.
        for sql in [
            "DELETE FROM auth_codes WHERE expires_at < $1 - 86400",
            "DELETE FROM refresh_tokens WHERE expires_at < $1",
            "DELETE FROM issued_access_tokens WHERE expires_at < $1",
            "DELETE FROM revoked_access_tokens WHERE expires_at < $1",
            "DELETE FROM seen_jti WHERE expires_at < $1",
            "DELETE FROM sso_sessions WHERE expires_at < $1",
            "DELETE FROM sts_interactions WHERE expires_at < $1 - 86400",
            "DELETE FROM login_throttle WHERE expires_at < $1",
        ] {
            sqlx::query(sql).bind(now).execute(&self.pool).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use sqlx::{Connection, PgConnection};

    use super::*;

    #[tokio::test]
    async fn without_a_search_path_the_tables_live_in_their_own_schema() -> anyhow::Result<()> {
        // A random name stands in for `idp0`, so parallel runs never share it.
        let url = dbconn::testing::database_url("IDP0_TEST_DATABASE_URL");
        let schema = dbconn::testing::fresh_name();
        let opened = PostgresStore::connect_with_default_schema(&url, &schema).await;
        let again = PostgresStore::connect_with_default_schema(&url, &schema).await;
        let mut conn = PgConnection::connect(&url).await?;
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1 \
             ORDER BY 1",
        )
        .bind(&schema)
        .fetch_all(&mut conn)
        .await?;
        PostgresStore::drop_schema(&url, &schema).await?;
        opened?;
        again?;
        assert!(
            tables.contains(&"_sqlx_migrations".to_owned()),
            "{tables:?}"
        );
        assert!(tables.contains(&"auth_codes".to_owned()), "{tables:?}");
        assert!(
            tables.contains(&"managed_directory".to_owned()),
            "{tables:?}"
        );
        Ok(())
    }

    #[tokio::test]
    async fn a_malformed_url_is_refused_without_echoing_it() {
        let Err(err) = PostgresStore::connect("postgres://u:s3cret@[bad-host/db").await else {
            panic!("a malformed URL must be refused");
        };
        assert!(!err.to_string().contains("s3cret"), "{err}");
    }
}

super::sts::sts_store!(PostgresStore);
