//! Todo storage behind one trait; SQLite (embedded default, WAL, migrations applied at start)
//! and PostgreSQL, chosen by URL. Every method is scoped to an owner: no method can read or
//! change another owner's todo, and a foreign id behaves exactly like a missing one.

mod postgres;
mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;
use protocol::UnixTime;

pub use postgres::{DEFAULT_SCHEMA, PostgresStore};
pub use sqlite::SqliteStore;

use crate::domain::{Filter, Owner, Title, Todo, TodoChange, TodoError};

/// Todo storage.
#[async_trait]
pub trait TodoStore: Send + Sync {
    /// The owner's todos, oldest first, filtered.
    async fn list(&self, owner: &Owner, filter: &Filter) -> Result<Vec<Todo>, TodoError>;
    /// One todo.
    async fn get(&self, owner: &Owner, id: i64) -> Result<Todo, TodoError>;
    /// Creates a todo.
    async fn create(&self, owner: &Owner, title: &Title, now: UnixTime) -> Result<Todo, TodoError>;
    /// Applies a change (title, completion, or both) in one atomic statement: two concurrent
    /// changes of different fields both land, and neither reads the row first.
    async fn update(
        &self,
        owner: &Owner,
        id: i64,
        change: &TodoChange,
        now: UnixTime,
    ) -> Result<Todo, TodoError>;
    /// Sets `completed`, or flips it when `completed` is `None`.
    async fn set_completed(
        &self,
        owner: &Owner,
        id: i64,
        completed: Option<bool>,
        now: UnixTime,
    ) -> Result<Todo, TodoError>;
    /// Deletes a todo, returning it.
    async fn delete(&self, owner: &Owner, id: i64) -> Result<Todo, TodoError>;
    /// Records that the web session `sid` ended (logout) and is refused from now on, until
    /// `expires_at`, when it would have expired anyway; also purges rows past `now`.
    async fn end_session(
        &self,
        sid: &str,
        expires_at: UnixTime,
        now: UnixTime,
    ) -> Result<(), TodoError>;
    /// Whether the web session `sid` was ended.
    async fn is_session_ended(&self, sid: &str) -> Result<bool, TodoError>;
    /// Checks the database answers (health).
    async fn ping(&self) -> Result<(), TodoError>;
}

/// Opens a store by URL: `sqlite://path` / a plain path, or `postgres://…`.
pub async fn open(url: &str) -> Result<Arc<dyn TodoStore>, TodoError> {
    if dbconn::is_postgres_url(url) {
        Ok(Arc::new(PostgresStore::connect(url).await?))
    } else {
        let path = url.strip_prefix("sqlite://").unwrap_or(url);
        Ok(Arc::new(
            SqliteStore::open(std::path::Path::new(path)).await?,
        ))
    }
}

/// A migration failure at open, in words a person can act on (`dbconn` words it): a database
/// migrated by a newer secure-agent is refused by name, not reported as an outage.
fn migration_failed(e: dbconn::MigrationError) -> TodoError {
    if e.is_incompatible() {
        TodoError::Invalid(format!("the todo database: {e}"))
    } else {
        TodoError::Unavailable(e.to_string())
    }
}

#[cfg(test)]
mod migration_tests;
#[cfg(test)]
mod tests;
