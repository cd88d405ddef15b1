//! Conversations, persisted (ARCHITECTURE §6: a restart loses nothing). A conversation belongs
//! to one person; each turn is written once it is complete, so a turn is never half-stored and
//! a tool call is never stored without its result. Backends, chosen by URL ([`open`]): SQLite
//! (the embedded default, in the data directory) and PostgreSQL (several replicas on one
//! database). Both keep the same contract, checked by one suite run against each (`tests.rs`).

mod postgres;
mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;
use protocol::UnixTime;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use postgres::{DEFAULT_SCHEMA, PostgresConversations};
pub use sqlite::SqliteConversations;

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
    /// A failure's technical detail, for the chip's expandable section and never for the model
    /// (which reads `result`, a sentence for people).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
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

/// One line of the person's list of conversations.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConversationSummary {
    /// The conversation's id.
    pub id: String,
    /// Its first message, at most [`TITLE_CHARS`] characters (empty while it has no turn).
    pub title: String,
    /// When a turn was last added (or it was created).
    pub updated_at: UnixTime,
    /// How many turns it has.
    pub turns: u32,
}

/// A person's most recently used conversation and, read with it, its turn count.
#[derive(Debug, Clone, PartialEq)]
pub struct Latest {
    /// The conversation's id.
    pub id: String,
    /// How many turns it has.
    pub turns: u32,
}

/// The longest title in [`ConversationSummary`], in characters (an ellipsis marks a cut).
pub const TITLE_CHARS: usize = 80;

/// `text`'s first line, at most [`TITLE_CHARS`] characters.
fn title_of(text: &str) -> String {
    let line = text.trim().lines().next().unwrap_or("").trim();
    if line.chars().count() <= TITLE_CHARS && line.len() == text.trim().len() {
        return line.to_owned();
    }
    let mut title: String = line.chars().take(TITLE_CHARS - 1).collect();
    title.push('…');
    title
}

/// Why the store failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The conversation does not exist or is someone else's.
    #[error("no such conversation")]
    NotFound,
    /// The database cannot be reached now (down, restarting, pool exhausted): worth retrying.
    #[error("the conversation store is unavailable: {0}")]
    Unavailable(String),
    /// The database's schema is not this binary's (a newer secure-agent migrated it, or a
    /// migration differs): refused at start, with the fix.
    #[error("{0}")]
    Incompatible(String),
    /// The database failed otherwise.
    #[error("the conversation store failed: {0}")]
    Database(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        if !dbconn::is_unavailable(&e) {
            return Self::Database(e.to_string());
        }
        match &e {
            sqlx::Error::PoolTimedOut => {
                Self::Unavailable("timed out waiting for a database connection".into())
            }
            sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed => {
                Self::Unavailable(e.to_string())
            }
            sqlx::Error::Database(db) => {
                Self::Unavailable(format!("database error: {}", db.message()))
            }
            _ => Self::Unavailable(format!("database connection failed: {e}")),
        }
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> Self {
        Self::Database(format!("a stored turn is not readable: {e}"))
    }
}

/// A failed migration, said for the operator (`dbconn` words it): a schema newer than this
/// binary (another replica already upgraded it) is refused by name.
fn migration_failed(e: dbconn::MigrationError) -> StoreError {
    let message = format!("the conversation database: {e}");
    if e.is_incompatible() {
        StoreError::Incompatible(message)
    } else if e.is_unavailable() {
        StoreError::Unavailable(message)
    } else {
        StoreError::Database(message)
    }
}

/// Opens the store a URL names: `postgres://…` / `postgresql://…` (PostgreSQL), else
/// `sqlite://PATH` or a plain path (SQLite, created if missing). Migrations are applied.
pub async fn open(url: &str) -> Result<Arc<dyn ConversationStore>, StoreError> {
    if dbconn::is_postgres_url(url) {
        Ok(Arc::new(PostgresConversations::connect(url).await?))
    } else {
        let path = url.strip_prefix("sqlite://").unwrap_or(url);
        Ok(Arc::new(
            SqliteConversations::open(std::path::Path::new(path)).await?,
        ))
    }
}

/// Where conversations live.
#[async_trait]
pub trait ConversationStore: Send + Sync {
    /// Creates an empty conversation for `owner`.
    async fn create(&self, owner: &str, now: UnixTime) -> Result<String, StoreError>;
    /// `owner`'s most recently used conversation, if any, with its turn count (one read).
    async fn find_latest(&self, owner: &str) -> Result<Option<Latest>, StoreError>;
    /// `owner`'s conversations, most recently used first (within one second: the one with the
    /// latest turn), at most `limit`.
    async fn find_conversations(
        &self,
        owner: &str,
        limit: u32,
    ) -> Result<Vec<ConversationSummary>, StoreError>;
    /// How many turns `owner`'s conversation `id` has ([`StoreError::NotFound`] when it is not
    /// theirs).
    async fn count_turns(&self, owner: &str, id: &str) -> Result<u32, StoreError>;
    /// The last `last` turns of `owner`'s conversation `id`, oldest first ([`StoreError::NotFound`]
    /// when it is not theirs).
    async fn find_turns(&self, owner: &str, id: &str, last: u32) -> Result<Vec<Turn>, StoreError>;
    /// Appends a completed turn; its number in the conversation (from 1: the conversation's
    /// turn count once it is stored).
    async fn append(
        &self,
        owner: &str,
        id: &str,
        turn: &Turn,
        now: UnixTime,
    ) -> Result<u32, StoreError>;
}

#[cfg(test)]
mod tests;
