//! Conversations, persisted (ARCHITECTURE §6: a restart loses nothing). A conversation belongs
//! to one person; each turn is written in one transaction once it is complete, so a turn is
//! never half-stored and a tool call is never stored without its result. The embedded backend
//! is SQLite (WAL) in the data directory.

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use protocol::UnixTime;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use crate::llm::Message;

/// A tool call as the page shows it (the chip).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolResultView {
    /// The call's id.
    pub id: String,
    /// The tool's name at its server.
    pub tool: String,
    /// The connection that ran it.
    pub connection: String,
    /// The arguments.
    pub arguments: Value,
    /// The result (or the error text).
    pub result: Value,
    /// Whether it failed.
    pub is_error: bool,
    /// The scopes before and after a step-up.
    pub step_up: Option<StepUp>,
}

/// A scope step-up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepUp {
    /// Scopes before.
    pub from: String,
    /// Scopes after.
    pub to: String,
}

/// One completed exchange: the person's message and the agent's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Turn {
    /// What the person wrote.
    pub user_text: String,
    /// The agent's final text.
    pub reply_text: String,
    /// The model-history messages of this turn, starting with the person's.
    pub messages: Vec<Message>,
    /// The tool calls, in order.
    pub tool_results: Vec<ToolResultView>,
}

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The conversation does not exist or is someone else's.
    #[error("no such conversation")]
    NotFound,
    /// The database failed.
    #[error("the conversation store failed: {0}")]
    Database(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        Self::Database(e.to_string())
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> Self {
        Self::Database(format!("a stored turn is not readable: {e}"))
    }
}

/// Where conversations live.
#[async_trait]
pub trait ConversationStore: Send + Sync {
    /// Creates an empty conversation for `owner`.
    async fn create(&self, owner: &str, now: UnixTime) -> Result<String, StoreError>;
    /// `owner`'s most recently used conversation, if any.
    async fn find_latest(&self, owner: &str) -> Result<Option<String>, StoreError>;
    /// The turns of `owner`'s conversation `id`, oldest first.
    async fn find_turns(&self, owner: &str, id: &str) -> Result<Vec<Turn>, StoreError>;
    /// Appends a completed turn.
    async fn append(
        &self,
        owner: &str,
        id: &str,
        turn: &Turn,
        now: UnixTime,
    ) -> Result<(), StoreError>;
}

/// SQLite, the embedded default.
pub struct SqliteConversations {
    pool: SqlitePool,
}

impl SqliteConversations {
    /// Opens (creating and migrating) the database file at `path`.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        Self::with_options(options).await
    }

    /// A private in-memory database (tests).
    pub async fn in_memory() -> Result<Self, StoreError> {
        Self::with_options(
            SqliteConnectOptions::new()
                .in_memory(true)
                .foreign_keys(true),
        )
        .await
    }

    async fn with_options(options: SqliteConnectOptions) -> Result<Self, StoreError> {
        let pool = SqlitePoolOptions::new()
            .min_connections(1)
            .max_connections(4)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/sqlite")
            .run(&pool)
            .await
            .map_err(|e| StoreError::Database(e.to_string()))?;
        Ok(Self { pool })
    }

    async fn owns(&self, owner: &str, id: &str) -> Result<(), StoreError> {
        let found: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM conversations WHERE id = ? AND owner = ?")
                .bind(id)
                .bind(owner)
                .fetch_optional(&self.pool)
                .await?;
        found.map(|_| ()).ok_or(StoreError::NotFound)
    }
}

#[async_trait]
impl ConversationStore for SqliteConversations {
    async fn create(&self, owner: &str, now: UnixTime) -> Result<String, StoreError> {
        let id = uuid::Uuid::new_v4().to_string();
        sqlx::query(
            "INSERT INTO conversations (id, owner, created_at, updated_at) VALUES (?, ?, ?, ?)",
        )
        .bind(&id)
        .bind(owner)
        .bind(now)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(id)
    }

    async fn find_latest(&self, owner: &str) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM conversations WHERE owner = ? ORDER BY updated_at DESC, rowid DESC LIMIT 1",
        )
        .bind(owner)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn find_turns(&self, owner: &str, id: &str) -> Result<Vec<Turn>, StoreError> {
        self.owns(owner, id).await?;
        let rows: Vec<(String, String, String, String)> = sqlx::query_as(
            "SELECT user_text, reply_text, messages, tool_results FROM turns \
             WHERE conversation_id = ? ORDER BY seq",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(user_text, reply_text, messages, tool_results)| {
                Ok(Turn {
                    user_text,
                    reply_text,
                    messages: serde_json::from_str(&messages)?,
                    tool_results: serde_json::from_str(&tool_results)?,
                })
            })
            .collect()
    }

    async fn append(
        &self,
        owner: &str,
        id: &str,
        turn: &Turn,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        let messages = serde_json::to_string(&turn.messages)?;
        let tool_results = serde_json::to_string(&turn.tool_results)?;
        let mut tx = self.pool.begin().await?;
        let updated =
            sqlx::query("UPDATE conversations SET updated_at = ? WHERE id = ? AND owner = ?")
                .bind(now)
                .bind(id)
                .bind(owner)
                .execute(&mut *tx)
                .await?;
        if updated.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        sqlx::query(
            "INSERT INTO turns (conversation_id, seq, user_text, reply_text, messages, tool_results, created_at) \
             VALUES (?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM turns WHERE conversation_id = ?), ?, ?, ?, ?, ?)",
        )
        .bind(id)
        .bind(id)
        .bind(&turn.user_text)
        .bind(&turn.reply_text)
        .bind(messages)
        .bind(tool_results)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn turn(text: &str) -> Turn {
        Turn {
            user_text: text.into(),
            reply_text: format!("re: {text}"),
            messages: vec![Message::user_text(text)],
            tool_results: vec![],
        }
    }

    #[tokio::test]
    async fn turns_are_kept_in_order_and_only_for_their_owner() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent0.db");
        let store = SqliteConversations::open(&path).await.unwrap();
        assert_eq!(store.find_latest("alice").await.unwrap(), None);
        let id = store.create("alice", 1).await.unwrap();
        store.append("alice", &id, &turn("one"), 2).await.unwrap();
        store.append("alice", &id, &turn("two"), 3).await.unwrap();
        assert!(matches!(
            store.append("bob", &id, &turn("evil"), 4).await,
            Err(StoreError::NotFound)
        ));
        assert!(matches!(
            store.find_turns("bob", &id).await,
            Err(StoreError::NotFound)
        ));
        assert_eq!(store.find_latest("bob").await.unwrap(), None);
        drop(store);

        // Reopened: nothing lost.
        let store = SqliteConversations::open(&path).await.unwrap();
        assert_eq!(store.find_latest("alice").await.unwrap(), Some(id.clone()));
        let turns = store.find_turns("alice", &id).await.unwrap();
        assert_eq!(turns, vec![turn("one"), turn("two")]);
        let newer = store.create("alice", 5).await.unwrap();
        assert_eq!(store.find_latest("alice").await.unwrap(), Some(newer));
    }
}
