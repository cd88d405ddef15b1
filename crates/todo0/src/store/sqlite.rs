//! SQLite [`TodoStore`]: one database file in WAL mode with `synchronous = FULL` (a write that
//! returned is on disk, even across power loss), migrations embedded and applied at open.
//!
//! Every write is a single statement with `RETURNING`, so it is atomic on its own and needs no
//! explicit transaction; SQLite serialises writers, and `busy_timeout` makes a writer wait up to
//! five seconds for another one instead of failing.
//!
//! Text search is case-insensitive for ASCII letters only: SQLite's built-in `lower()` leaves
//! non-ASCII characters unchanged (so `"É"` does not match `"é"`); that is accepted.

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use protocol::UnixTime;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{Row, SqlitePool};

use super::TodoStore;
use crate::domain::{Filter, Owner, Title, Todo, TodoError, rfc3339};

/// How long a connection waits for another writer, and a caller for a pooled connection.
const WAIT: Duration = Duration::from_secs(5);

/// The columns a [`Todo`] is read from, in every `SELECT` and `RETURNING`.
macro_rules! todo_columns {
    () => {
        "id, title, completed, created_at, updated_at"
    };
}

/// SQLite-backed [`TodoStore`].
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens the database file (creating it if missing) and applies migrations.
    pub async fn open(path: &Path) -> Result<Self, TodoError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(WAIT);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(WAIT)
            .connect_with(options)
            .await?;
        Self::migrated(pool).await
    }

    /// A private in-memory database (tests): one connection that is never closed, since the
    /// database lives exactly as long as it does.
    pub async fn in_memory() -> Result<Self, TodoError> {
        let options = SqliteConnectOptions::new()
            .in_memory(true)
            .busy_timeout(WAIT);
        let pool = SqlitePoolOptions::new()
            .min_connections(1)
            .max_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .acquire_timeout(WAIT)
            .connect_with(options)
            .await?;
        Self::migrated(pool).await
    }

    async fn migrated(pool: SqlitePool) -> Result<Self, TodoError> {
        sqlx::migrate!("./migrations/sqlite")
            .run(&pool)
            .await
            .map_err(|e| TodoError::Unavailable(format!("database migration failed: {e}")))?;
        Ok(Self { pool })
    }

    /// Runs a write with `RETURNING` and yields the row it touched, or `NotFound(id)`.
    ///
    /// The statement is stepped to completion (`fetch_all`, at most one row since every write is
    /// keyed by id): SQLite commits an autocommit statement only when it finishes, and stopping
    /// after the first row would defer the commit to a statement reset whose errors are lost.
    async fn write_one(
        &self,
        query: sqlx::query::Query<'_, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>,
        id: i64,
    ) -> Result<Todo, TodoError> {
        let rows = query.fetch_all(&self.pool).await?;
        match rows.first() {
            Some(row) => Ok(todo_from(row)?),
            None => Err(TodoError::NotFound(id)),
        }
    }
}

fn todo_from(row: &SqliteRow) -> Result<Todo, sqlx::Error> {
    Ok(Todo {
        id: row.try_get("id")?,
        title: row.try_get("title")?,
        completed: row.try_get("completed")?,
        created_at: rfc3339(row.try_get("created_at")?),
        updated_at: rfc3339(row.try_get("updated_at")?),
    })
}

#[async_trait]
impl TodoStore for SqliteStore {
    async fn list(&self, owner: &Owner, filter: &Filter) -> Result<Vec<Todo>, TodoError> {
        // `instr`, not `LIKE`: the search text is data, `%` and `_` match themselves.
        let rows = sqlx::query(concat!(
            "SELECT ",
            todo_columns!(),
            " FROM todos WHERE owner = ?1",
            " AND (?2 IS NULL OR completed = ?2)",
            " AND (?3 IS NULL OR instr(lower(title), lower(?3)) > 0)",
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
            " FROM todos WHERE owner = ? AND id = ?"
        ))
        .bind(owner.as_str())
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(row) => Ok(todo_from(&row)?),
            None => Err(TodoError::NotFound(id)),
        }
    }

    async fn create(&self, owner: &Owner, title: &Title, now: UnixTime) -> Result<Todo, TodoError> {
        let query = sqlx::query(concat!(
            "INSERT INTO todos (owner, title, completed, created_at, updated_at)",
            " VALUES (?1, ?2, 0, ?3, ?3) RETURNING ",
            todo_columns!()
        ))
        .bind(owner.as_str())
        .bind(title.as_str())
        .bind(now);
        let rows = query.fetch_all(&self.pool).await?;
        match rows.first() {
            Some(row) => Ok(todo_from(row)?),
            None => Err(TodoError::Unavailable(
                "the new todo was not returned".into(),
            )),
        }
    }

    async fn update_title(
        &self,
        owner: &Owner,
        id: i64,
        title: &Title,
        now: UnixTime,
    ) -> Result<Todo, TodoError> {
        let query = sqlx::query(concat!(
            "UPDATE todos SET title = ?, updated_at = ? WHERE owner = ? AND id = ? RETURNING ",
            todo_columns!()
        ))
        .bind(title.as_str())
        .bind(now)
        .bind(owner.as_str())
        .bind(id);
        self.write_one(query, id).await
    }

    async fn set_completed(
        &self,
        owner: &Owner,
        id: i64,
        completed: Option<bool>,
        now: UnixTime,
    ) -> Result<Todo, TodoError> {
        // `NULL` (no value given) flips the flag in the same statement: no read-modify-write race.
        let query = sqlx::query(concat!(
            "UPDATE todos SET completed = coalesce(?, NOT completed), updated_at = ?",
            " WHERE owner = ? AND id = ? RETURNING ",
            todo_columns!()
        ))
        .bind(completed)
        .bind(now)
        .bind(owner.as_str())
        .bind(id);
        self.write_one(query, id).await
    }

    async fn delete(&self, owner: &Owner, id: i64) -> Result<Todo, TodoError> {
        let query = sqlx::query(concat!(
            "DELETE FROM todos WHERE owner = ? AND id = ? RETURNING ",
            todo_columns!()
        ))
        .bind(owner.as_str())
        .bind(id);
        self.write_one(query, id).await
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
    async fn file_connections_promise_durable_writes() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let store = SqliteStore::open(&dir.path().join("todo0.db")).await?;
        let mut conn = store.pool.acquire().await?;
        let journal: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&mut *conn)
            .await?;
        let synchronous: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(&mut *conn)
            .await?;
        let busy: i64 = sqlx::query_scalar("PRAGMA busy_timeout")
            .fetch_one(&mut *conn)
            .await?;
        assert_eq!(journal, "wal");
        assert_eq!(synchronous, 2, "synchronous = FULL");
        assert_eq!(busy, 5000);
        Ok(())
    }
}
