//! SQLite, the embedded default: WAL, `synchronous = FULL`, in the data directory. Appends are
//! group-committed: one writer thread with a connection of its own
//! ([`dbconn::sqlite_writer`]; the statements in [`file_writer`]) takes every append that is
//! waiting, writes them in one transaction and commits once (one fsync for the group) before
//! answering any of them. Reads (a turn reads the latest conversation and its turn
//! count) run on read-only connections on the calling thread ([`dbconn::sqlite_readers`]). sqlx
//! migrates the file and creates conversations.

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use dbconn::sqlite_readers::Readers;
use dbconn::sqlite_readers::rusqlite::{self, OptionalExtension};
use dbconn::sqlite_writer::SqliteWriter;
use protocol::UnixTime;
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use super::{
    ConversationStore, ConversationSummary, Latest, StoreError, Turn, migration_failed, title_of,
};

mod file_writer;

/// Appends written in one transaction at most.
const MAX_BATCH: usize = 128;
/// Read connections of a file store.
const READERS: usize = 4;
/// How long a statement waits for a lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The latest conversation and its turn count, in one read.
const LATEST_SQL: &str = "SELECT id, turn_count FROM conversations \
     WHERE owner = ? ORDER BY updated_at DESC, rowid DESC LIMIT 1";
const OWNS_SQL: &str = "SELECT 1 FROM conversations WHERE id = ? AND owner = ?";
/// The count is kept beside the conversation, in the statement that adds a turn (migration
/// `0002_turn_count`).
const COUNT_SQL: &str = "SELECT turn_count FROM conversations WHERE id = ? AND owner = ?";
const TURNS_SQL: &str = "SELECT user_text, reply_text, messages, tool_results FROM \
     (SELECT seq, user_text, reply_text, messages, tool_results FROM turns \
      WHERE conversation_id = ? ORDER BY seq DESC LIMIT ?) ORDER BY seq";
/// An append's two statements: the conversation must be the owner's (it is touched), and the
/// turn gets the next sequence number.
const TOUCH_SQL: &str = "UPDATE conversations SET updated_at = ? WHERE id = ? AND owner = ?";
const INSERT_TURN_SQL: &str = "INSERT INTO turns \
     (conversation_id, seq, user_text, reply_text, messages, tool_results, created_at) \
     VALUES (?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM turns WHERE conversation_id = ?), ?, ?, ?, ?, ?) \
     RETURNING seq";
const LIST_SQL: &str = "SELECT c.id, \
     (SELECT user_text FROM turns WHERE conversation_id = c.id ORDER BY seq LIMIT 1), \
     c.updated_at, c.turn_count FROM conversations c WHERE c.owner = ? \
     ORDER BY c.updated_at DESC, \
     (SELECT MAX(rowid) FROM turns WHERE conversation_id = c.id) DESC NULLS LAST, \
     c.rowid DESC LIMIT ?";

/// SQLite, the embedded default.
pub struct SqliteConversations {
    /// Reads, on the calling thread.
    readers: Readers,
    /// sqlx's one connection: migrations and `create`.
    writer: SqlitePool,
    /// To the writer thread.
    appends: SqliteWriter<Append>,
    /// A [`Self::temporary`] store's directory, removed with the store.
    _temporary: Option<dbconn::TemporaryDatabase>,
}

/// An append waiting for the writer thread.
struct Append {
    owner: String,
    id: String,
    turn: StoredTurn,
    now: UnixTime,
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
        Self::open_file(path, None).await
    }

    /// A private store (tests): a database file in a temporary directory of its own, removed
    /// when the store is dropped.
    pub async fn temporary() -> Result<Self, StoreError> {
        let database = dbconn::TemporaryDatabase::new("agent0-conversations-", "agent0.db")
            .map_err(|e| StoreError::Database(format!("creating a temporary directory: {e}")))?;
        let path = database.path().to_owned();
        Self::open_file(&path, Some(database)).await
    }

    async fn open_file(
        path: &Path,
        temporary: Option<dbconn::TemporaryDatabase>,
    ) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        // sqlx first: it creates and migrates the file the readers and the writer thread open.
        let writer = single_connection(options).await?;
        let readers = Readers::open(path, READERS, BUSY_TIMEOUT).map_err(read_failed)?;
        let appends = file_writer::start(path)?;
        Ok(Self {
            readers,
            writer,
            appends,
            _temporary: temporary,
        })
    }

    fn owns(&self, owner: &str, id: &str) -> Result<(), StoreError> {
        let found: Option<i64> = self
            .readers
            .with(|c| {
                c.prepare_cached(OWNS_SQL)?
                    .query_row([id, owner], |row| row.get(0))
                    .optional()
            })
            .map_err(read_failed)?;
        found.map(|_| ()).ok_or(StoreError::NotFound)
    }
}

/// A direct read's failure: a busy database is worth retrying, anything else is not.
fn read_failed(e: rusqlite::Error) -> StoreError {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
            StoreError::Unavailable(e.to_string())
        }
        _ => StoreError::Database(e.to_string()),
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
    dbconn::migrate(&sqlx::migrate!("./migrations/sqlite"), &pool)
        .await
        .map_err(migration_failed)?;
    Ok(pool)
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

    async fn find_latest(&self, owner: &str) -> Result<Option<Latest>, StoreError> {
        self.readers
            .with(|c| {
                c.prepare_cached(LATEST_SQL)?
                    .query_row([owner], |row| {
                        Ok(Latest {
                            id: row.get(0)?,
                            turns: row.get(1)?,
                        })
                    })
                    .optional()
            })
            .map_err(read_failed)
    }

    async fn find_conversations(
        &self,
        owner: &str,
        limit: u32,
    ) -> Result<Vec<ConversationSummary>, StoreError> {
        let rows: Vec<(String, Option<String>, UnixTime, u32)> = self
            .readers
            .with(|c| {
                c.prepare_cached(LIST_SQL)?
                    .query_map(rusqlite::params![owner, limit], |row| {
                        Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
                    })?
                    .collect()
            })
            .map_err(read_failed)?;
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
        let count: Option<u32> = self
            .readers
            .with(|c| {
                c.prepare_cached(COUNT_SQL)?
                    .query_row([id, owner], |row| row.get(0))
                    .optional()
            })
            .map_err(read_failed)?;
        count.ok_or(StoreError::NotFound)
    }

    async fn find_turns(&self, owner: &str, id: &str, last: u32) -> Result<Vec<Turn>, StoreError> {
        self.owns(owner, id)?;
        let rows: Vec<(String, String, String, String)> = self
            .readers
            .with(|c| {
                c.prepare_cached(TURNS_SQL)?
                    .query_map(rusqlite::params![id, last], |row| {
                        Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
                    })?
                    .collect()
            })
            .map_err(read_failed)?;
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
    ) -> Result<u32, StoreError> {
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
        };
        self.appends.write(append).await
    }
}
