//! Conversations, persisted (ARCHITECTURE §6: a restart loses nothing). A conversation belongs
//! to one person; each turn is written once it is complete, so a turn is never half-stored and
//! a tool call is never stored without its result. The embedded backend is SQLite (WAL,
//! `synchronous = FULL`) in the data directory. Appends are group-committed: one writer task
//! takes every append that is waiting, writes them in one transaction and commits once (one
//! fsync for the group) before answering any of them.

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use protocol::UnixTime;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{SqliteConnection, SqlitePool};
use tokio::sync::{mpsc, oneshot};

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
    /// Appends a completed turn.
    async fn append(
        &self,
        owner: &str,
        id: &str,
        turn: &Turn,
        now: UnixTime,
    ) -> Result<(), StoreError>;
}

/// Appends written in one transaction at most.
const MAX_BATCH: usize = 128;

/// SQLite, the embedded default.
pub struct SqliteConversations {
    /// Reads (several connections for a file; the writer's one for an in-memory database).
    reader: SqlitePool,
    /// The one write connection (also used directly for `create`).
    writer: SqlitePool,
    appends: mpsc::Sender<Append>,
}

/// An append waiting for the writer task.
struct Append {
    owner: String,
    id: String,
    turn: StoredTurn,
    now: UnixTime,
    done: oneshot::Sender<Result<(), StoreError>>,
}

/// A turn as stored: its JSON columns already serialized.
struct StoredTurn {
    user_text: String,
    reply_text: String,
    messages: String,
    tool_results: String,
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
        let writer = single_connection(options.clone()).await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.read_only(true))
            .await?;
        Ok(Self::start(reader, writer))
    }

    /// A private in-memory database (tests): one connection for everything, since each
    /// connection to `:memory:` is a database of its own.
    pub async fn in_memory() -> Result<Self, StoreError> {
        let pool = single_connection(
            SqliteConnectOptions::new()
                .in_memory(true)
                .foreign_keys(true),
        )
        .await?;
        Ok(Self::start(pool.clone(), pool))
    }

    fn start(reader: SqlitePool, writer: SqlitePool) -> Self {
        let (appends, queue) = mpsc::channel(4 * MAX_BATCH);
        tokio::spawn(group_commit(writer.clone(), queue));
        Self {
            reader,
            writer,
            appends,
        }
    }

    async fn owns(&self, owner: &str, id: &str) -> Result<(), StoreError> {
        let found: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM conversations WHERE id = ? AND owner = ?")
                .bind(id)
                .bind(owner)
                .fetch_optional(&self.reader)
                .await?;
        found.map(|_| ()).ok_or(StoreError::NotFound)
    }
}

/// A pool of exactly one long-lived connection, migrated.
async fn single_connection(options: SqliteConnectOptions) -> Result<SqlitePool, StoreError> {
    let pool = SqlitePoolOptions::new()
        .min_connections(1)
        .max_connections(1)
        .idle_timeout(None)
        .max_lifetime(None)
        .connect_with(options)
        .await?;
    sqlx::migrate!("./migrations/sqlite")
        .run(&pool)
        .await
        .map_err(|e| StoreError::Database(e.to_string()))?;
    Ok(pool)
}

/// The writer task: takes whatever is waiting (at least one, at most [`MAX_BATCH`]) as one
/// group, one transaction (and one fsync) per group; stops when every sender is gone.
async fn group_commit(writer: SqlitePool, mut queue: mpsc::Receiver<Append>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while queue.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let results = commit(&writer, &batch).await;
        for (append, result) in batch.drain(..).zip(results) {
            let _ = append.done.send(result);
        }
    }
}

async fn commit(writer: &SqlitePool, batch: &[Append]) -> Vec<Result<(), StoreError>> {
    let failed = |e: sqlx::Error| {
        let message = e.to_string();
        batch
            .iter()
            .map(|_| Err(StoreError::Database(message.clone())))
            .collect()
    };
    let mut tx = match writer.begin().await {
        Ok(tx) => tx,
        Err(e) => return failed(e),
    };
    let mut results = Vec::with_capacity(batch.len());
    for append in batch {
        results.push(insert_turn(&mut tx, append).await);
    }
    match tx.commit().await {
        Ok(()) => results,
        Err(e) => failed(e),
    }
}

/// One append: the conversation must be the owner's; the turn gets the next sequence number.
/// (A failing statement leaves the rest of the transaction intact: SQLite statements are
/// atomic.)
async fn insert_turn(conn: &mut SqliteConnection, append: &Append) -> Result<(), StoreError> {
    let updated = sqlx::query("UPDATE conversations SET updated_at = ? WHERE id = ? AND owner = ?")
        .bind(append.now)
        .bind(&append.id)
        .bind(&append.owner)
        .execute(&mut *conn)
        .await?;
    if updated.rows_affected() == 0 {
        return Err(StoreError::NotFound);
    }
    sqlx::query(
        "INSERT INTO turns (conversation_id, seq, user_text, reply_text, messages, tool_results, created_at) \
         VALUES (?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM turns WHERE conversation_id = ?), ?, ?, ?, ?, ?)",
    )
    .bind(&append.id)
    .bind(&append.id)
    .bind(&append.turn.user_text)
    .bind(&append.turn.reply_text)
    .bind(&append.turn.messages)
    .bind(&append.turn.tool_results)
    .bind(append.now)
    .execute(&mut *conn)
    .await?;
    Ok(())
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
        .execute(&self.writer)
        .await?;
        Ok(id)
    }

    async fn find_latest(&self, owner: &str) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM conversations WHERE owner = ? ORDER BY updated_at DESC, rowid DESC LIMIT 1",
        )
        .bind(owner)
        .fetch_optional(&self.reader)
        .await?)
    }

    async fn find_conversations(
        &self,
        owner: &str,
        limit: u32,
    ) -> Result<Vec<ConversationSummary>, StoreError> {
        let rows: Vec<(String, Option<String>, UnixTime, u32)> = sqlx::query_as(
            "SELECT c.id, \
             (SELECT user_text FROM turns WHERE conversation_id = c.id ORDER BY seq LIMIT 1), \
             c.updated_at, (SELECT COUNT(*) FROM turns WHERE conversation_id = c.id) \
             FROM conversations c WHERE c.owner = ? \
             ORDER BY c.updated_at DESC, \
             (SELECT MAX(rowid) FROM turns WHERE conversation_id = c.id) DESC NULLS LAST, \
             c.rowid DESC LIMIT ?",
        )
        .bind(owner)
        .bind(limit)
        .fetch_all(&self.reader)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(id, first, updated_at, turns)| ConversationSummary {
                id,
                title: first.as_deref().map(title_of).unwrap_or_default(),
                updated_at,
                turns,
            })
            .collect())
    }

    async fn count_turns(&self, owner: &str, id: &str) -> Result<u32, StoreError> {
        let count: Option<u32> = sqlx::query_scalar(
            "SELECT (SELECT COUNT(*) FROM turns WHERE conversation_id = c.id) \
             FROM conversations c WHERE c.id = ? AND c.owner = ?",
        )
        .bind(id)
        .bind(owner)
        .fetch_optional(&self.reader)
        .await?;
        count.ok_or(StoreError::NotFound)
    }

    async fn find_turns(&self, owner: &str, id: &str, last: u32) -> Result<Vec<Turn>, StoreError> {
        self.owns(owner, id).await?;
        let rows: Vec<(String, String, String, String)> = sqlx::query_as(
            "SELECT user_text, reply_text, messages, tool_results FROM \
             (SELECT seq, user_text, reply_text, messages, tool_results FROM turns \
              WHERE conversation_id = ? ORDER BY seq DESC LIMIT ?) ORDER BY seq",
        )
        .bind(id)
        .bind(last)
        .fetch_all(&self.reader)
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
        let (done, result) = oneshot::channel();
        let append = Append {
            owner: owner.to_owned(),
            id: id.to_owned(),
            turn: StoredTurn {
                user_text: turn.user_text.clone(),
                reply_text: turn.reply_text.clone(),
                messages: serde_json::to_string(&turn.messages)?,
                tool_results: serde_json::to_string(&turn.tool_results)?,
            },
            now,
            done,
        };
        let stopped = || StoreError::Database("the conversation writer has stopped".into());
        self.appends.send(append).await.map_err(|_| stopped())?;
        result.await.map_err(|_| stopped())?
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
            store.find_turns("bob", &id, 10).await,
            Err(StoreError::NotFound)
        ));
        assert_eq!(store.find_latest("bob").await.unwrap(), None);
        drop(store);

        // Reopened: nothing lost.
        let store = SqliteConversations::open(&path).await.unwrap();
        assert_eq!(store.find_latest("alice").await.unwrap(), Some(id.clone()));
        let turns = store.find_turns("alice", &id, 10).await.unwrap();
        assert_eq!(turns, vec![turn("one"), turn("two")]);
        assert_eq!(store.count_turns("alice", &id).await.unwrap(), 2);
        assert!(matches!(
            store.count_turns("bob", &id).await,
            Err(StoreError::NotFound)
        ));
        let last = store.find_turns("alice", &id, 1).await.unwrap();
        assert_eq!(last, vec![turn("two")], "the most recent, in order");
        let newer = store.create("alice", 5).await.unwrap();
        assert_eq!(store.find_latest("alice").await.unwrap(), Some(newer));
    }

    #[tokio::test]
    async fn conversations_are_listed_newest_first_bounded_and_only_for_their_owner() {
        let store = SqliteConversations::in_memory().await.unwrap();
        let old = store.create("alice", 1).await.unwrap();
        store
            .append("alice", &old, &turn("first one"), 2)
            .await
            .unwrap();
        store
            .append("alice", &old, &turn("second"), 3)
            .await
            .unwrap();
        let long = "x".repeat(200);
        let newer = store.create("alice", 4).await.unwrap();
        store
            .append("alice", &newer, &turn(&long), 5)
            .await
            .unwrap();
        let empty = store.create("alice", 6).await.unwrap();
        store.create("bob", 7).await.unwrap();

        let list = store.find_conversations("alice", 50).await.unwrap();
        let ids: Vec<&str> = list.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, [empty.as_str(), newer.as_str(), old.as_str()]);
        assert_eq!(list[0].title, "");
        assert_eq!(list[0].turns, 0);
        assert_eq!(list[1].title.chars().count(), TITLE_CHARS);
        assert!(list[1].title.ends_with('…'));
        assert_eq!(list[2].title, "first one");
        assert_eq!((list[2].turns, list[2].updated_at), (2, 3));
        assert_eq!(store.find_conversations("alice", 2).await.unwrap().len(), 2);
        assert_eq!(store.find_conversations("bob", 50).await.unwrap().len(), 1);
        assert!(
            store
                .find_conversations("carol", 50)
                .await
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn a_title_is_the_first_line_cut_with_an_ellipsis() {
        assert_eq!(title_of("  list my todos "), "list my todos");
        assert_eq!(title_of("first line\nsecond"), "first line…");
        assert_eq!(title_of(&"é".repeat(TITLE_CHARS)), "é".repeat(TITLE_CHARS));
    }

    #[tokio::test]
    async fn concurrent_appends_are_group_committed_without_loss_or_mixing() {
        let store = std::sync::Arc::new(SqliteConversations::in_memory().await.unwrap());
        let alice = store.create("alice", 1).await.unwrap();
        let bob = store.create("bob", 1).await.unwrap();
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..50 {
            let store = store.clone();
            let (owner, id) = if i % 2 == 0 {
                ("alice", alice.clone())
            } else {
                ("bob", bob.clone())
            };
            tasks.spawn(async move { store.append(owner, &id, &turn(&format!("t{i}")), 2).await });
        }
        // One append to someone else's conversation fails alone.
        let wrong = store.append("bob", &alice, &turn("intruder"), 2).await;
        assert!(matches!(wrong, Err(StoreError::NotFound)));
        while let Some(result) = tasks.join_next().await {
            result.unwrap().unwrap();
        }
        let turns = store.find_turns("alice", &alice, 100).await.unwrap();
        assert_eq!(turns.len(), 25);
        assert!(turns.iter().all(|t| t.user_text != "intruder"));
        assert_eq!(store.find_turns("bob", &bob, 100).await.unwrap().len(), 25);
    }
}
