//! PostgreSQL [`TodoStore`]: a connection pool, migrations embedded and applied at connect.
//!
//! Every write is a single statement with `RETURNING`, atomic on its own. A connection the server
//! dropped (restart, `pg_terminate_backend`) is discarded by the pool: the operation that hit it
//! fails with [`TodoError::Unavailable`], and the next one gets a fresh connection.
//!
//! Text search is case-insensitive through `lower()`, which follows the database's `LC_CTYPE`
//! (Unicode-aware under a UTF-8 locale such as `C.UTF-8`).
//!
//! Tables and migration history live in the schema [`DEFAULT_SCHEMA`] (`todo0`) unless the URL
//! sets a `search_path`, so idp0 and agent0 may share the database; connection, pool and schema
//! handling are `dbconn`'s, shared with the other services.

use async_trait::async_trait;
use protocol::UnixTime;
use sqlx::migrate::Migrator;
use sqlx::postgres::PgRow;
use sqlx::{Connection, PgConnection, PgPool, Row};

use super::TodoStore;
use crate::domain::{Filter, Owner, Title, Todo, TodoChange, TodoError, rfc3339};

/// The schema todo0 keeps its tables in unless the URL chooses a `search_path` (or an earlier
/// todo0 left them in `public`: see [`PostgresStore::connect`]).
pub const DEFAULT_SCHEMA: &str = "todo0";
/// Where todo0 kept its tables before it had its own schema.
const LEGACY_SCHEMA: &str = "public";
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
    /// Connects (`postgres://user:password@host:port/database?…`) and applies migrations, in the
    /// schema [`DEFAULT_SCHEMA`] (created if missing) unless the URL sets a `search_path`.
    ///
    /// A database that an earlier todo0 migrated in `public` (its `todos` table and todo0's
    /// migration history there, no `todo0` schema yet) keeps being used in `public`, with one log
    /// line saying how to move it: existing users are not stranded with an empty store.
    pub async fn connect(url: &str) -> Result<Self, TodoError> {
        let mut target =
            dbconn::target(url, DEFAULT_SCHEMA, APPLICATION_NAME).map_err(connect_failed)?;
        if target.schema.is_some() {
            let migrator = sqlx::migrate!("./migrations/postgres");
            let mut conn = dbconn::connect_once(&dbconn::parse(url).map_err(connect_failed)?)
                .await
                .map_err(connect_failed)?;
            let legacy = is_legacy_public(&mut conn, &migrator).await;
            let _ = conn.close().await;
            if legacy? {
                tracing::warn!(
                    "todo0's tables are in the schema {LEGACY_SCHEMA} (made by an earlier todo0), \
                     so todo0 keeps using it; to move them into their own schema, stop todo0 and \
                     run: CREATE SCHEMA {DEFAULT_SCHEMA}; ALTER TABLE public.todos SET SCHEMA \
                     {DEFAULT_SCHEMA}; ALTER TABLE public.ended_sessions SET SCHEMA \
                     {DEFAULT_SCHEMA}; ALTER TABLE public._sqlx_migrations SET SCHEMA \
                     {DEFAULT_SCHEMA}; (or keep public with ?options=-c%20search_path%3Dpublic)"
                );
                target = dbconn::Target {
                    options: target.options.options([("search_path", LEGACY_SCHEMA)]),
                    schema: None,
                };
            }
        }
        Self::with_target(target).await
    }

    /// Connects with every pooled session confined to `schema` (its `search_path`), creating the
    /// schema if missing and migrating inside it: isolated stores in one database (tests).
    ///
    /// `schema` must be a plain lower-case identifier (`[a-z_][a-z0-9_]*`, at most 63 bytes).
    /// Sessions are named `todo0-<schema>` in `pg_stat_activity`.
    pub async fn connect_in_schema(url: &str, schema: &str) -> Result<Self, TodoError> {
        Self::with_target(
            dbconn::target_in_schema(url, schema, APPLICATION_NAME).map_err(connect_failed)?,
        )
        .await
    }

    /// Drops a schema made by [`Self::connect_in_schema`] (test and tenant clean-up).
    pub async fn drop_schema(url: &str, schema: &str) -> Result<(), TodoError> {
        dbconn::drop_schema(url, schema)
            .await
            .map_err(connect_failed)
    }

    async fn with_target(target: dbconn::Target) -> Result<Self, TodoError> {
        let pool = dbconn::connect(&target.options)
            .await
            .map_err(connect_failed)?;
        let mut migrator = sqlx::migrate!("./migrations/postgres");
        if let Some(schema) = &target.schema {
            dbconn::create_schema_if_missing(&pool, &mut migrator, schema).await?;
        }
        dbconn::migrate(&migrator, &pool)
            .await
            .map_err(super::migration_failed)?;
        Ok(Self { pool })
    }
}

/// Whether todo0's tables are in `public` from before it had its own schema: no `todo0` schema,
/// a `public.todos` table, and todo0's first migration (same checksum) recorded in
/// `public._sqlx_migrations`.
async fn is_legacy_public(conn: &mut PgConnection, migrator: &Migrator) -> Result<bool, TodoError> {
    if dbconn::schema_exists(&mut *conn, DEFAULT_SCHEMA).await? {
        return Ok(false);
    }
    let (todos, history): (bool, bool) = sqlx::query_as(
        "SELECT to_regclass('public.todos') IS NOT NULL, \
                to_regclass('public._sqlx_migrations') IS NOT NULL",
    )
    .fetch_one(&mut *conn)
    .await?;
    if !(todos && history) {
        return Ok(false);
    }
    let Some(first) = migrator.iter().next() else {
        return Ok(false);
    };
    let ours: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM public._sqlx_migrations WHERE version = $1 AND checksum = $2)",
    )
    .bind(first.version)
    .bind(first.checksum.as_ref())
    .fetch_one(&mut *conn)
    .await?;
    Ok(ours)
}

/// A connection that could not be made, or a URL or schema name that cannot be used; never
/// repeats the URL (it may hold a password).
fn connect_failed(e: dbconn::Error) -> TodoError {
    match e {
        dbconn::Error::Sqlx(e) => TodoError::from(e),
        dbconn::Error::NoAnswer => TodoError::Unavailable(e.to_string()),
        dbconn::Error::InvalidUrl => {
            TodoError::Unavailable("the PostgreSQL connection URL is invalid".into())
        }
        dbconn::Error::InvalidSchema => {
            TodoError::Invalid("schema must be a lower-case identifier of at most 63 bytes".into())
        }
    }
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

    #[tokio::test]
    async fn a_malformed_url_is_refused_without_echoing_it() {
        let Err(err) = PostgresStore::connect("postgres://u:s3cret@[bad-host/db").await else {
            panic!("a malformed URL must be refused");
        };
        assert!(!err.to_string().contains("s3cret"), "{err}");
    }
}
