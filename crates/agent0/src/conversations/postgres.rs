//! PostgreSQL, for several agent0 replicas on one database: a connection pool, migrations
//! embedded and applied at connect (under sqlx's advisory lock, so replicas starting together
//! migrate once).
//!
//! An append is one statement: it raises the conversation's turn count under the row's lock and
//! inserts the turn numbered with it, so two replicas appending to one conversation at once
//! serialize on that row and neither loses nor duplicates a turn. A connection the server
//! dropped (restart, `pg_terminate_backend`) is discarded by the pool: the operation that hit it
//! fails with [`StoreError::Unavailable`], and the next one gets a fresh connection.
//!
//! Tables and migration history live in the schema [`DEFAULT_SCHEMA`] (`agent0`, created at first
//! start if missing) unless the URL sets a `search_path`, so idp0 and todo0 may share the
//! database. Connection, pool and schema handling are `dbconn`'s, shared with the other services.

use async_trait::async_trait;
use protocol::UnixTime;
use sqlx::PgPool;

use super::{
    ConversationStore, ConversationSummary, Latest, StoreError, Turn, migration_failed, title_of,
};

/// The schema agent0 keeps its tables in unless the URL chooses a `search_path`.
pub const DEFAULT_SCHEMA: &str = "agent0";
/// The `application_name` the store's sessions show in `pg_stat_activity` unless the URL sets one.
const APPLICATION_NAME: &str = "agent0";

/// PostgreSQL-backed [`ConversationStore`].
#[derive(Debug, Clone)]
pub struct PostgresConversations {
    pool: PgPool,
}

impl PostgresConversations {
    /// Connects (`postgres://user:password@host:port/database?sslmode=…`) and applies migrations,
    /// in the schema [`DEFAULT_SCHEMA`] unless the URL sets a `search_path`.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::with_target(dbconn::target(url, DEFAULT_SCHEMA, APPLICATION_NAME).map_err(invalid)?)
            .await
    }

    /// Connects with every pooled session confined to `schema` (its `search_path`), creating the
    /// schema if missing and migrating inside it: isolated stores in one database (tests).
    ///
    /// `schema` must be a plain lower-case identifier (`[a-z_][a-z0-9_]*`, at most 63 bytes).
    pub async fn connect_in_schema(url: &str, schema: &str) -> Result<Self, StoreError> {
        Self::with_target(dbconn::target_in_schema(url, schema, APPLICATION_NAME).map_err(invalid)?)
            .await
    }

    /// Drops a schema made by [`Self::connect_in_schema`] (test clean-up).
    pub async fn drop_schema(url: &str, schema: &str) -> Result<(), StoreError> {
        dbconn::drop_schema(url, schema)
            .await
            .map_err(connect_failed)
    }

    async fn with_target(target: dbconn::Target) -> Result<Self, StoreError> {
        // `dbconn::connect` makes one direct attempt first: its error says why (refused, unknown
        // host, authentication), where the pool would only report a timeout.
        let pool = dbconn::connect(&target.options)
            .await
            .map_err(connect_failed)?;
        let mut migrator = sqlx::migrate!("./migrations/postgres");
        if let Some(schema) = &target.schema {
            dbconn::create_schema_if_missing(&pool, &mut migrator, schema).await?;
        }
        dbconn::migrate(&migrator, &pool)
            .await
            .map_err(migration_failed)?;
        Ok(Self { pool })
    }

    async fn owns(&self, owner: &str, id: &str) -> Result<(), StoreError> {
        let found: Option<i32> =
            sqlx::query_scalar("SELECT 1 FROM conversations WHERE id = $1 AND owner = $2")
                .bind(id)
                .bind(owner)
                .fetch_optional(&self.pool)
                .await?;
        found.map(|_| ()).ok_or(StoreError::NotFound)
    }
}

/// A URL or schema name that cannot be used; never repeats the URL (it may hold a password).
fn invalid(e: dbconn::Error) -> StoreError {
    StoreError::Database(e.to_string())
}

/// A connection that could not be made: unavailable (worth retrying) or refused otherwise.
fn connect_failed(e: dbconn::Error) -> StoreError {
    match e {
        dbconn::Error::Sqlx(e) => StoreError::from(e),
        dbconn::Error::NoAnswer => StoreError::Unavailable(e.to_string()),
        dbconn::Error::InvalidUrl | dbconn::Error::InvalidSchema => invalid(e),
    }
}

/// A text stored as UTF-8 bytes (`BYTEA`: PostgreSQL's `TEXT` cannot hold a NUL).
fn text(bytes: Vec<u8>) -> Result<String, StoreError> {
    String::from_utf8(bytes)
        .map_err(|_| StoreError::Database("a stored turn's text is not UTF-8".into()))
}

/// A count read from an `INTEGER` column (never negative).
fn count(n: i32) -> u32 {
    u32::try_from(n).unwrap_or(0)
}

#[async_trait]
impl ConversationStore for PostgresConversations {
    async fn create(&self, owner: &str, now: UnixTime) -> Result<String, StoreError> {
        let id = uuid::Uuid::new_v4().to_string();
        sqlx::query(
            "INSERT INTO conversations (id, owner, created_at, updated_at) VALUES ($1, $2, $3, $3)",
        )
        .bind(&id)
        .bind(owner)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(id)
    }

    async fn find_latest(&self, owner: &str) -> Result<Option<Latest>, StoreError> {
        let latest: Option<(String, i32)> = sqlx::query_as(
            "SELECT id, turn_count FROM conversations WHERE owner = $1 \
             ORDER BY updated_at DESC, position DESC LIMIT 1",
        )
        .bind(owner)
        .fetch_optional(&self.pool)
        .await?;
        Ok(latest.map(|(id, turns)| Latest {
            id,
            turns: count(turns),
        }))
    }

    async fn find_conversations(
        &self,
        owner: &str,
        limit: u32,
    ) -> Result<Vec<ConversationSummary>, StoreError> {
        let rows: Vec<(String, Option<Vec<u8>>, UnixTime, i32)> = sqlx::query_as(
            "SELECT c.id, \
             (SELECT user_text FROM turns WHERE conversation_id = c.id ORDER BY seq LIMIT 1), \
             c.updated_at, c.turn_count \
             FROM conversations c WHERE c.owner = $1 \
             ORDER BY c.updated_at DESC, c.last_turn DESC NULLS LAST, c.position DESC LIMIT $2",
        )
        .bind(owner)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(id, first, updated_at, turns)| {
                Ok(ConversationSummary {
                    id,
                    title: first
                        .map(text)
                        .transpose()?
                        .as_deref()
                        .map(title_of)
                        .unwrap_or_default(),
                    updated_at,
                    turns: count(turns),
                })
            })
            .collect()
    }

    async fn count_turns(&self, owner: &str, id: &str) -> Result<u32, StoreError> {
        let turns: Option<i32> =
            sqlx::query_scalar("SELECT turn_count FROM conversations WHERE id = $1 AND owner = $2")
                .bind(id)
                .bind(owner)
                .fetch_optional(&self.pool)
                .await?;
        turns.map(count).ok_or(StoreError::NotFound)
    }

    async fn find_turns(&self, owner: &str, id: &str, last: u32) -> Result<Vec<Turn>, StoreError> {
        self.owns(owner, id).await?;
        let rows: Vec<(Vec<u8>, Vec<u8>, String, String)> = sqlx::query_as(
            "SELECT user_text, reply_text, messages, tool_results FROM \
             (SELECT seq, user_text, reply_text, messages, tool_results FROM turns \
              WHERE conversation_id = $1 ORDER BY seq DESC LIMIT $2) AS recent ORDER BY seq",
        )
        .bind(id)
        .bind(i64::from(last))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(user_text, reply_text, messages, tool_results)| {
                Ok(Turn {
                    user_text: text(user_text)?,
                    reply_text: text(reply_text)?,
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
        let messages = serde_json::to_string(&turn.messages)?;
        let tool_results = serde_json::to_string(&turn.tool_results)?;
        // One statement: the UPDATE locks the owner's conversation row (a concurrent append
        // waits, then re-reads the raised count) and numbers the turn; no row, no turn.
        let inserted: Option<i32> = sqlx::query_scalar(
            "WITH touched AS ( \
               UPDATE conversations \
               SET updated_at = $1, turn_count = turn_count + 1, last_turn = nextval('turn_order') \
               WHERE id = $2 AND owner = $3 RETURNING id, turn_count) \
             INSERT INTO turns \
               (conversation_id, seq, user_text, reply_text, messages, tool_results, created_at) \
             SELECT id, turn_count, $4, $5, $6, $7, $1 FROM touched RETURNING seq",
        )
        .bind(now)
        .bind(id)
        .bind(owner)
        .bind(turn.user_text.as_bytes())
        .bind(turn.reply_text.as_bytes())
        .bind(&messages)
        .bind(&tool_results)
        .fetch_optional(&self.pool)
        .await?;
        inserted.map(i32::unsigned_abs).ok_or(StoreError::NotFound)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_malformed_url_is_refused_without_echoing_it() {
        let Err(err) = PostgresConversations::connect("postgres://u:s3cret@[bad-host/db").await
        else {
            panic!("a malformed URL must be refused");
        };
        assert!(!err.to_string().contains("s3cret"), "{err}");
    }
}
