//! PostgreSQL [`TodoStore`]: a connection pool, migrations embedded and applied at connect.
//!
//! Every write is a single statement with `RETURNING`, atomic on its own. A connection the server
//! dropped (restart, `pg_terminate_backend`) is discarded by the pool: the operation that hit it
//! fails with [`TodoError::Unavailable`], and the next one gets a fresh connection.
//!
//! Text search is case-insensitive through `lower()`, which follows the database's `LC_CTYPE`
//! (Unicode-aware under a UTF-8 locale such as `C.UTF-8`).

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use protocol::UnixTime;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::{PgPool, Row};

use super::TodoStore;
use crate::domain::{Filter, Owner, Title, Todo, TodoChange, TodoError, rfc3339};

/// How long a caller waits for a pooled connection (including connecting) before giving up.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
/// Most connections the pool opens.
const MAX_CONNECTIONS: u32 = 16;
/// The `application_name` the store's sessions show in `pg_stat_activity` unless the URL sets one.
const APPLICATION_NAME: &str = "todo0";

/// The columns a [`Todo`] is read from, in every `SELECT` and `RETURNING`.
macro_rules! todo_columns {
    () => {
        "id, title, completed, created_at, updated_at"
    };
}

/// PostgreSQL-backed [`TodoStore`].
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Connects (`postgres://user:password@host:port/database?…`) and applies migrations.
    pub async fn connect(url: &str) -> Result<Self, TodoError> {
        let options = parse(url)?;
        let options = match options.get_application_name() {
            Some(_) => options,
            None => options.application_name(APPLICATION_NAME),
        };
        Self::with_options(options, None).await
    }

    /// Connects with every pooled session confined to `schema` (its `search_path`), creating the
    /// schema if missing and migrating inside it: isolated stores in one database (tests).
    ///
    /// `schema` must be a plain lower-case identifier (`[a-z_][a-z0-9_]*`, at most 63 bytes).
    /// Sessions are named `todo0-<schema>` in `pg_stat_activity`.
    pub async fn connect_in_schema(url: &str, schema: &str) -> Result<Self, TodoError> {
        if !is_plain_identifier(schema) {
            return Err(TodoError::Invalid(
                "schema must be a lower-case identifier of at most 63 bytes".into(),
            ));
        }
        let options = parse(url)?
            .application_name(&format!("{APPLICATION_NAME}-{schema}"))
            .options([("search_path", schema)]);
        Self::with_options(options, Some(schema)).await
    }

    /// Drops a schema made by [`Self::connect_in_schema`] (test and tenant clean-up).
    pub async fn drop_schema(url: &str, schema: &str) -> Result<(), TodoError> {
        if !is_plain_identifier(schema) {
            return Err(TodoError::Invalid(
                "schema must be a lower-case identifier".into(),
            ));
        }
        let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect_with(&parse(url)?).await?;
        // The name was validated as a plain identifier above, so it may be spliced.
        let sql = format!("DROP SCHEMA IF EXISTS {schema} CASCADE");
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut conn)
            .await?;
        sqlx::Connection::close(conn).await?;
        Ok(())
    }

    async fn with_options(
        options: PgConnectOptions,
        schema: Option<&str>,
    ) -> Result<Self, TodoError> {
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await?;
        let mut migrator = sqlx::migrate!("./migrations/postgres");
        if let Some(schema) = schema {
            // sqlx creates it (validated above) before its bookkeeping table, which lands in the
            // first `search_path` schema, so each schema has its own migration history.
            migrator.create_schema(schema.to_owned());
        }
        migrator
            .run(&pool)
            .await
            .map_err(|e| TodoError::Unavailable(format!("database migration failed: {e}")))?;
        Ok(Self { pool })
    }
}

/// Parses a connection URL; the error never repeats the URL (it may hold a password).
fn parse(url: &str) -> Result<PgConnectOptions, TodoError> {
    PgConnectOptions::from_str(url)
        .map_err(|_| TodoError::Unavailable("the PostgreSQL connection URL is invalid".into()))
}

/// `[a-z_][a-z0-9_]*`, 1–63 bytes: needs no quoting and is never folded or truncated.
fn is_plain_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name.len() <= 63
}

fn todo_from(row: &PgRow) -> Result<Todo, sqlx::Error> {
    Ok(Todo {
        id: row.try_get("id")?,
        title: row.try_get("title")?,
        completed: row.try_get("completed")?,
        created_at: rfc3339(row.try_get("created_at")?),
        updated_at: rfc3339(row.try_get("updated_at")?),
    })
}

/// The touched row of a keyed write, or `NotFound(id)`.
fn found(row: Option<PgRow>, id: i64) -> Result<Todo, TodoError> {
    match row {
        Some(row) => Ok(todo_from(&row)?),
        None => Err(TodoError::NotFound(id)),
    }
}

#[async_trait]
impl TodoStore for PostgresStore {
    async fn list(&self, owner: &Owner, filter: &Filter) -> Result<Vec<Todo>, TodoError> {
        // `strpos`, not `LIKE`: the search text is data, `%` and `_` match themselves.
        let rows = sqlx::query(concat!(
            "SELECT ",
            todo_columns!(),
            " FROM todos WHERE owner = $1",
            " AND ($2::boolean IS NULL OR completed = $2)",
            " AND ($3::text IS NULL OR strpos(lower(title), lower($3)) > 0)",
            " ORDER BY id"
        ))
        .bind(owner.as_str())
        .bind(filter.completed)
        .bind(filter.text.as_deref())
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(todo_from).collect::<Result<_, _>>()?)
    }

    async fn get(&self, owner: &Owner, id: i64) -> Result<Todo, TodoError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            todo_columns!(),
            " FROM todos WHERE owner = $1 AND id = $2"
        ))
        .bind(owner.as_str())
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        found(row, id)
    }

    async fn create(&self, owner: &Owner, title: &Title, now: UnixTime) -> Result<Todo, TodoError> {
        let row = sqlx::query(concat!(
            "INSERT INTO todos (owner, title, completed, created_at, updated_at)",
            " VALUES ($1, $2, false, $3, $3) RETURNING ",
            todo_columns!()
        ))
        .bind(owner.as_str())
        .bind(title.as_str())
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        Ok(todo_from(&row)?)
    }

    async fn update(
        &self,
        owner: &Owner,
        id: i64,
        change: &TodoChange,
        now: UnixTime,
    ) -> Result<Todo, TodoError> {
        // A field left out (`NULL`) keeps its value, read and written in the same statement.
        let row = sqlx::query(concat!(
            "UPDATE todos SET title = coalesce($1::text, title),",
            " completed = coalesce($2::boolean, completed), updated_at = $3",
            " WHERE owner = $4 AND id = $5 RETURNING ",
            todo_columns!()
        ))
        .bind(change.title().map(Title::as_str))
        .bind(change.completed())
        .bind(now)
        .bind(owner.as_str())
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        found(row, id)
    }

    async fn set_completed(
        &self,
        owner: &Owner,
        id: i64,
        completed: Option<bool>,
        now: UnixTime,
    ) -> Result<Todo, TodoError> {
        // `NULL` (no value given) flips the flag in the same statement: no read-modify-write race.
        let row = sqlx::query(concat!(
            "UPDATE todos SET completed = coalesce($1::boolean, NOT completed), updated_at = $2",
            " WHERE owner = $3 AND id = $4 RETURNING ",
            todo_columns!()
        ))
        .bind(completed)
        .bind(now)
        .bind(owner.as_str())
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        found(row, id)
    }

    async fn delete(&self, owner: &Owner, id: i64) -> Result<Todo, TodoError> {
        let row = sqlx::query(concat!(
            "DELETE FROM todos WHERE owner = $1 AND id = $2 RETURNING ",
            todo_columns!()
        ))
        .bind(owner.as_str())
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        found(row, id)
    }

    async fn end_session(
        &self,
        sid: &str,
        expires_at: UnixTime,
        now: UnixTime,
    ) -> Result<(), TodoError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO ended_sessions (sid, expires_at) VALUES ($1, $2) ON CONFLICT (sid) DO NOTHING",
        )
        .bind(sid)
        .bind(expires_at)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM ended_sessions WHERE expires_at < $1")
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn is_session_ended(&self, sid: &str) -> Result<bool, TodoError> {
        Ok(sqlx::query("SELECT 1 FROM ended_sessions WHERE sid = $1")
            .bind(sid)
            .fetch_optional(&self.pool)
            .await?
            .is_some())
    }

    async fn ping(&self) -> Result<(), TodoError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_identifiers_name_a_schema() {
        assert!(is_plain_identifier("t_0123abcd"));
        assert!(is_plain_identifier("_x"));
        for bad in [
            "",
            "T_x",
            "1x",
            "x-y",
            "x y",
            "x;DROP",
            "\"x\"",
            "é",
            &"x".repeat(64),
        ] {
            assert!(!is_plain_identifier(bad), "{bad:?}");
        }
    }

    #[tokio::test]
    async fn a_malformed_url_is_refused_without_echoing_it() {
        let Err(err) = PostgresStore::connect("postgres://u:s3cret@[bad-host/db").await else {
            panic!("a malformed URL must be refused");
        };
        assert!(!err.to_string().contains("s3cret"), "{err}");
    }
}
