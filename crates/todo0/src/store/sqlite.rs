//! SQLite [`TodoStore`]: one database file in WAL mode with `synchronous = FULL` (a write that
//! returned is on disk, even across power loss), migrations embedded and applied at open.
//!
//! Writes are group-committed ([`dbconn::sqlite_writer`]): one writer thread owns a rusqlite
//! write connection, takes every write that is waiting (up to [`MAX_BATCH`]), runs them in one
//! transaction and commits once — one fsync for the whole group — before answering any of them.
//! Each todo write is a single statement with `RETURNING`; one that finds no row just reports
//! `NotFound` without affecting the others. A logout's ended session goes the same way. A failed
//! commit fails the whole group, and nothing is reported done before it is durable.
//! Reads run on read-only rusqlite connections on the calling thread (see `Readers`). sqlx only
//! creates and migrates the file, on a connection closed once that is done.
//!
//! Text search is case-insensitive for ASCII letters only: SQLite's built-in `lower()` leaves
//! non-ASCII characters unchanged (so `"É"` does not match `"é"`); that is accepted.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use dbconn::sqlite_readers::Readers;
use dbconn::sqlite_readers::rusqlite::{self, OptionalExtension};
use dbconn::sqlite_writer::{SqliteWrite, SqliteWriter};
use protocol::UnixTime;
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use super::TodoStore;
use crate::domain::{Filter, Owner, Title, Todo, TodoChange, TodoError, rfc3339};

/// How long a connection waits for another writer, and a caller for a pooled connection.
const WAIT: Duration = Duration::from_secs(5);

/// The columns a [`Todo`] is read from, in every `SELECT` and `RETURNING`.
macro_rules! todo_columns {
    () => {
        "id, title, completed, created_at, updated_at"
    };
}

/// The most writes committed together.
const MAX_BATCH: usize = 256;

/// Each connection's page cache, in KiB. SQLite's default (2,000 KiB) is per connection and
/// fills as the database grows: with the writer and the four readers, a growing file could take
/// up to 10 MB of the server's memory (README, "Memory"). A person's list
/// needs a few index and row pages; the rest is read again from the operating system's cache.
const PAGE_CACHE_KIB: u32 = 512;

/// SQLite-backed [`TodoStore`].
#[derive(Debug, Clone)]
pub struct SqliteStore {
    /// Reads, on the calling thread (WAL lets them run beside the writer; see [`Readers`]).
    readers: Arc<Readers>,
    /// The queue of the group-commit writer thread: every write.
    writes: SqliteWriter<Write>,
    /// A [`Self::temporary`] store's directory, removed with the last clone of the store.
    _temporary: Option<dbconn::TemporaryDatabase>,
}

/// A write, owned so it can wait in the queue.
#[derive(Debug)]
enum Write {
    Create {
        owner: String,
        title: String,
        now: UnixTime,
    },
    Update {
        owner: String,
        id: i64,
        title: Option<String>,
        completed: Option<bool>,
        now: UnixTime,
    },
    Completed {
        owner: String,
        id: i64,
        completed: Option<bool>,
        now: UnixTime,
    },
    Delete {
        owner: String,
        id: i64,
    },
    /// A web-app session logged out (its `sid` refused until it would have expired), and the
    /// records of sessions past their expiry purged.
    EndSession {
        sid: String,
        expires_at: UnixTime,
        now: UnixTime,
    },
}

impl SqliteWrite for Write {
    /// The todo written; none for [`Write::EndSession`].
    type Output = Option<Todo>;
    type Error = TodoError;

    /// Runs the statements inside the group's transaction. A todo write's one row comes back
    /// from its first step (every write is keyed by id or inserts one row, and SQLite makes all
    /// of a `RETURNING` statement's changes before returning its first row).
    fn run(&self, connection: &rusqlite::Connection) -> Result<Option<Todo>, TodoError> {
        let returned = match self {
            Write::EndSession {
                sid,
                expires_at,
                now,
            } => {
                connection
                    .prepare_cached(END_SESSION_SQL)
                    .and_then(|mut s| s.execute(rusqlite::params![sid, expires_at]))
                    .map_err(unavailable)?;
                connection
                    .prepare_cached(PURGE_ENDED_SQL)
                    .and_then(|mut s| s.execute([now]))
                    .map_err(unavailable)?;
                return Ok(None);
            }
            Write::Create { owner, title, now } => connection
                .prepare_cached(CREATE_SQL)
                .and_then(|mut s| {
                    s.query_row(rusqlite::params![owner, title, now], todo_from_sqlite)
                })
                .optional(),
            // A field left out (`NULL`) keeps its value, in the same statement.
            Write::Update {
                owner,
                id,
                title,
                completed,
                now,
            } => connection
                .prepare_cached(UPDATE_SQL)
                .and_then(|mut s| {
                    let params = rusqlite::params![title, completed, now, owner, id];
                    s.query_row(params, todo_from_sqlite)
                })
                .optional(),
            // `NULL` (no value given) flips the flag in the same statement: no read-modify-write.
            Write::Completed {
                owner,
                id,
                completed,
                now,
            } => connection
                .prepare_cached(COMPLETED_SQL)
                .and_then(|mut s| {
                    s.query_row(
                        rusqlite::params![completed, now, owner, id],
                        todo_from_sqlite,
                    )
                })
                .optional(),
            Write::Delete { owner, id } => connection
                .prepare_cached(DELETE_SQL)
                .and_then(|mut s| s.query_row(rusqlite::params![owner, id], todo_from_sqlite))
                .optional(),
        };
        match (returned.map_err(unavailable)?, self.id()) {
            (Some(todo), _) => Ok(Some(todo)),
            (None, Some(id)) => Err(TodoError::NotFound(id)),
            (None, None) => Err(TodoError::Unavailable(
                "the new todo was not returned".into(),
            )),
        }
    }

    fn group_failed(error: rusqlite::Error) -> TodoError {
        unavailable(error)
    }

    fn writer_gone() -> TodoError {
        TodoError::Unavailable("the todo writer stopped".into())
    }
}

impl Write {
    /// The todo a change is for (a new todo has none yet).
    fn id(&self) -> Option<i64> {
        match self {
            Write::Create { .. } | Write::EndSession { .. } => None,
            Write::Update { id, .. } | Write::Completed { id, .. } | Write::Delete { id, .. } => {
                Some(*id)
            }
        }
    }
}

const CREATE_SQL: &str = concat!(
    "INSERT INTO todos (owner, title, completed, created_at, updated_at)",
    " VALUES (?1, ?2, 0, ?3, ?3) RETURNING ",
    todo_columns!()
);
const UPDATE_SQL: &str = concat!(
    "UPDATE todos SET title = coalesce(?, title), completed = coalesce(?, completed),",
    " updated_at = ? WHERE owner = ? AND id = ? RETURNING ",
    todo_columns!()
);
const COMPLETED_SQL: &str = concat!(
    "UPDATE todos SET completed = coalesce(?, NOT completed), updated_at = ?",
    " WHERE owner = ? AND id = ? RETURNING ",
    todo_columns!()
);
const END_SESSION_SQL: &str =
    "INSERT INTO ended_sessions (sid, expires_at) VALUES (?1, ?2) ON CONFLICT (sid) DO NOTHING";
const PURGE_ENDED_SQL: &str = "DELETE FROM ended_sessions WHERE expires_at < ?1";
const DELETE_SQL: &str = concat!(
    "DELETE FROM todos WHERE owner = ? AND id = ? RETURNING ",
    todo_columns!()
);

impl SqliteStore {
    /// Opens the database file (creating it if missing) and applies migrations.
    ///
    /// Openers of one file (the MCP server and the web app of one `up`, or two processes) take
    /// turns: each holds an exclusive lock on `<file>.lock` while it sets WAL mode and migrates,
    /// since SQLite has no migration lock and switching to WAL needs an exclusive lock that
    /// `busy_timeout` does not wait for. A database that is still busy or locked (another
    /// program holding it) is retried from the start until `OPEN_DEADLINE` (30 s); any other failure
    /// stops at once.
    pub async fn open(path: &Path) -> Result<Self, TodoError> {
        let deadline = tokio::time::Instant::now() + OPEN_DEADLINE;
        let _turn = open_lock(path, deadline).await?;
        let mut pause = Duration::from_millis(5);
        loop {
            match Self::open_once(path).await {
                Ok(store) => return Ok(store),
                Err(OpenError::Busy(message)) => {
                    if tokio::time::Instant::now() + pause >= deadline {
                        return Err(TodoError::Unavailable(format!(
                            "the database stayed locked for {}s: {message}",
                            OPEN_DEADLINE.as_secs()
                        )));
                    }
                    tracing::debug!(%message, "todo store busy while opening; retrying");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(250));
                }
                Err(OpenError::Failed(e)) => return Err(e),
            }
        }
    }

    async fn open_once(path: &Path) -> Result<Self, OpenError> {
        Self::open_file(path, None).await
    }

    async fn open_file(
        path: &Path,
        temporary: Option<dbconn::TemporaryDatabase>,
    ) -> Result<Self, OpenError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(WAIT)
            .pragma("cache_size", format!("-{PAGE_CACHE_KIB}"));
        // sqlx's connection creates the file and migrates it before the others connect; then it
        // is closed (after they have opened, so the file never loses its last connection and
        // its WAL in between): every write goes through the writer thread's own connection.
        let migrator = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(WAIT)
            // A local file cannot go stale like a network connection: skip the ping per checkout.
            .test_before_acquire(false)
            .connect_with(options.clone())
            .await
            .map_err(OpenError::from_sqlx)?;
        Self::migrate(&migrator).await?;
        let readers = open_readers(path)?;
        let writes = SqliteWriter::start(open_write_connection(path)?, "todo0-writer", MAX_BATCH)
            .map_err(|e| {
            OpenError::Failed(TodoError::Unavailable(format!(
                "starting the todo writer: {e}"
            )))
        })?;
        migrator.close().await;
        Ok(Self {
            readers: Arc::new(readers),
            writes,
            _temporary: temporary,
        })
    }

    async fn write(&self, write: Write) -> Result<Todo, TodoError> {
        self.writes
            .write(write)
            .await?
            .ok_or_else(|| TodoError::Unavailable("the todo was not returned".into()))
    }

    /// A private store (tests): a database file in a temporary directory of its own, removed
    /// when the last clone of the store is dropped.
    pub async fn temporary() -> Result<Self, TodoError> {
        let database = dbconn::TemporaryDatabase::new("todo0-store-", "todo0.db")
            .map_err(|e| TodoError::Unavailable(format!("creating a temporary directory: {e}")))?;
        let path = database.path().to_owned();
        Ok(Self::open_file(&path, Some(database)).await?)
    }

    /// Applies migrations. SQLite has no migration lock, so two openers of a new file can race;
    /// the loser's transaction rolls back with "busy" and [`Self::open`] retries, finding the
    /// migration applied.
    async fn migrate(pool: &SqlitePool) -> Result<(), OpenError> {
        dbconn::migrate(&sqlx::migrate!("./migrations/sqlite"), pool)
            .await
            .map_err(|e| match e {
                dbconn::MigrationError::Database(e) => OpenError::from_sqlx(e),
                other => OpenError::Failed(super::migration_failed(other)),
            })
    }
}

/// How long opening waits for other openers of the same database.
const OPEN_DEADLINE: Duration = Duration::from_secs(30);

/// Waits (until `deadline`) for the exclusive lock on `<path>.lock`, held while opening.
async fn open_lock(
    path: &Path,
    deadline: tokio::time::Instant,
) -> Result<std::fs::File, TodoError> {
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&name)
        .map_err(|e| TodoError::Unavailable(format!("cannot open {}: {e}", name.display())))?;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(std::fs::TryLockError::WouldBlock) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(TodoError::Unavailable(format!(
                    "another process kept {} locked for {}s",
                    name.display(),
                    OPEN_DEADLINE.as_secs()
                )));
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(TodoError::Unavailable(format!(
                    "cannot lock {}: {e}",
                    name.display()
                )));
            }
        }
    }
}

/// Why one attempt to open failed.
#[derive(Debug)]
enum OpenError {
    /// Another connection holds a lock (SQLITE_BUSY / SQLITE_LOCKED): worth another try.
    Busy(String),
    /// Anything else.
    Failed(TodoError),
}

impl OpenError {
    fn from_sqlx(e: sqlx::Error) -> Self {
        let busy = match &e {
            sqlx::Error::Database(db) => db
                .code()
                .and_then(|code| code.parse::<i32>().ok())
                .is_some_and(is_busy_code),
            _ => false,
        };
        if busy {
            Self::Busy(e.to_string())
        } else {
            Self::Failed(e.into())
        }
    }
}

impl From<OpenError> for TodoError {
    fn from(e: OpenError) -> Self {
        match e {
            OpenError::Busy(message) => TodoError::Unavailable(message),
            OpenError::Failed(e) => e,
        }
    }
}

impl From<TodoError> for OpenError {
    fn from(e: TodoError) -> Self {
        Self::Failed(e)
    }
}

/// SQLITE_BUSY (5) or SQLITE_LOCKED (6), with any extended code.
fn is_busy_code(code: i32) -> bool {
    matches!(code & 0xff, 5 | 6)
}

/// Connections for the hot reads (a person's list, one todo, a session's end), used on the
/// calling task's thread: [`dbconn::sqlite_readers`] says why.
const READERS: usize = 4;

fn open_readers(path: &Path) -> Result<Readers, OpenError> {
    Readers::open(path, READERS, WAIT)
        .and_then(|readers| readers.with_page_cache(PAGE_CACHE_KIB))
        .map_err(open_failed)
}

/// The group commit's connection: durable commits (the file is in WAL mode already), the same
/// lock wait and page cache bound as every other connection.
fn open_write_connection(path: &Path) -> Result<rusqlite::Connection, OpenError> {
    let pragmas = format!("PRAGMA cache_size = -{PAGE_CACHE_KIB};");
    dbconn::sqlite_writer::open_connection(path, WAIT, &pragmas).map_err(open_failed)
}

fn open_failed(e: rusqlite::Error) -> OpenError {
    match e.sqlite_error() {
        Some(sqlite) if is_busy_code(sqlite.extended_code) => OpenError::Busy(e.to_string()),
        _ => OpenError::Failed(unavailable(e)),
    }
}

fn unavailable(e: rusqlite::Error) -> TodoError {
    TodoError::Unavailable(e.to_string())
}

fn todo_from_sqlite(row: &rusqlite::Row<'_>) -> rusqlite::Result<Todo> {
    Ok(Todo {
        id: row.get(0)?,
        title: row.get(1)?,
        completed: row.get(2)?,
        created_at: rfc3339(row.get(3)?),
        updated_at: rfc3339(row.get(4)?),
    })
}

const LIST_SQL: &str = concat!(
    "SELECT ",
    todo_columns!(),
    " FROM todos WHERE owner = ?1",
    " AND (?2 IS NULL OR completed = ?2)",
    " AND (?3 IS NULL OR instr(lower(title), lower(?3)) > 0)",
    " ORDER BY id"
);

const GET_SQL: &str = concat!(
    "SELECT ",
    todo_columns!(),
    " FROM todos WHERE owner = ?1 AND id = ?2"
);

#[async_trait]
impl TodoStore for SqliteStore {
    async fn list(&self, owner: &Owner, filter: &Filter) -> Result<Vec<Todo>, TodoError> {
        // `instr`, not `LIKE`: the search text is data, `%` and `_` match themselves.
        let params = rusqlite::params![owner.as_str(), filter.completed, filter.text.as_deref()];
        self.readers
            .with(|c| {
                c.prepare_cached(LIST_SQL)?
                    .query_map(params, todo_from_sqlite)?
                    .collect()
            })
            .map_err(unavailable)
    }

    async fn get(&self, owner: &Owner, id: i64) -> Result<Todo, TodoError> {
        let found = self
            .readers
            .with(|c| {
                c.prepare_cached(GET_SQL)?
                    .query_row(rusqlite::params![owner.as_str(), id], todo_from_sqlite)
                    .optional()
            })
            .map_err(unavailable)?;
        found.ok_or(TodoError::NotFound(id))
    }

    async fn create(&self, owner: &Owner, title: &Title, now: UnixTime) -> Result<Todo, TodoError> {
        let (owner, title) = (owner.as_str().to_owned(), title.as_str().to_owned());
        self.write(Write::Create { owner, title, now }).await
    }

    async fn update(
        &self,
        owner: &Owner,
        id: i64,
        change: &TodoChange,
        now: UnixTime,
    ) -> Result<Todo, TodoError> {
        self.write(Write::Update {
            owner: owner.as_str().to_owned(),
            id,
            title: change.title().map(|t| t.as_str().to_owned()),
            completed: change.completed(),
            now,
        })
        .await
    }

    async fn set_completed(
        &self,
        owner: &Owner,
        id: i64,
        completed: Option<bool>,
        now: UnixTime,
    ) -> Result<Todo, TodoError> {
        let owner = owner.as_str().to_owned();
        self.write(Write::Completed {
            owner,
            id,
            completed,
            now,
        })
        .await
    }

    async fn delete(&self, owner: &Owner, id: i64) -> Result<Todo, TodoError> {
        self.write(Write::Delete {
            owner: owner.as_str().to_owned(),
            id,
        })
        .await
    }

    async fn end_session(
        &self,
        sid: &str,
        expires_at: UnixTime,
        now: UnixTime,
    ) -> Result<(), TodoError> {
        // Through the group commit like every other write: a second writing connection would
        // wait for the write lock on SQLite's busy handler, which a busy writer thread keeps
        // taking first (a logout could time out under a burst of todo writes).
        self.writes
            .write(Write::EndSession {
                sid: sid.to_owned(),
                expires_at,
                now,
            })
            .await
            .map(|_| ())
    }

    async fn is_session_ended(&self, sid: &str) -> Result<bool, TodoError> {
        self.readers
            .with(|c| {
                c.prepare_cached(ENDED_SQL)?
                    .query_row([sid], |_| Ok(()))
                    .optional()
                    .map(|row| row.is_some())
            })
            .map_err(unavailable)
    }

    async fn ping(&self) -> Result<(), TodoError> {
        if !self.writes.is_running() {
            return Err(Write::writer_gone());
        }
        self.readers
            .with(|c| c.query_row("SELECT 1", [], |_| Ok(())))
            .map_err(unavailable)
    }
}

const ENDED_SQL: &str = "SELECT 1 FROM ended_sessions WHERE sid = ?1";

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_group_commit_keeps_each_writes_own_outcome() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let store = SqliteStore::open(&dir.path().join("todo0.db")).await?;
        let alice = Owner::new("alice")?;
        let title = Title::parse("t")?;
        // Many writes at once land in few groups; the misses must not spoil the hits.
        let tasks: Vec<_> = (0..100)
            .map(|i| {
                let (store, alice, title) = (store.clone(), alice.clone(), title.clone());
                tokio::spawn(async move {
                    if i % 2 == 0 {
                        store.create(&alice, &title, 1).await.map(|_| true)
                    } else {
                        store.delete(&alice, 1_000_000 + i).await.map(|_| false)
                    }
                })
            })
            .collect();
        let (mut created, mut missing) = (0, 0);
        for task in tasks {
            match task.await? {
                Ok(true) => created += 1,
                Err(TodoError::NotFound(_)) => missing += 1,
                other => anyhow::bail!("unexpected outcome {other:?}"),
            }
        }
        assert_eq!((created, missing), (50, 50));
        assert_eq!(store.list(&alice, &Filter::default()).await?.len(), 50);
        Ok(())
    }

    /// A logout is a write like the others: while 256 writers keep the group commit busy without
    /// a pause, sessions still end, each at once. (When logouts had a writing connection of their
    /// own, each waited for the write lock on SQLite's busy handler, which sleeps up to 100 ms
    /// between tries while the writer thread takes the lock again within microseconds: these 40
    /// took 3.0 s instead of 0.25 s, and under a long enough burst one could time out.)
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sessions_end_while_todo_writes_keep_the_writer_busy() -> anyhow::Result<()> {
        let store = SqliteStore::temporary().await?;
        let alice = Owner::new("alice")?;
        let title = Title::parse("t")?;
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writers: Vec<_> = (0..256)
            .map(|_| {
                let (store, alice, title, stop) =
                    (store.clone(), alice.clone(), title.clone(), stop.clone());
                tokio::spawn(async move {
                    let mut written = 0u64;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        store.create(&alice, &title, 1).await?;
                        written += 1;
                    }
                    Ok::<_, TodoError>(written)
                })
            })
            .collect();
        for n in 0..40 {
            let sid = format!("sid-{n}");
            store.end_session(&sid, 10_000 + n, 1).await?;
            assert!(store.is_session_ended(&sid).await?, "{sid}");
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let mut written = 0;
        for writer in writers {
            written += writer.await??;
        }
        assert!(written > 0);
        assert_eq!(
            store.list(&alice, &Filter::default()).await?.len() as u64,
            written
        );
        Ok(())
    }

    /// `up` opens one new file from the MCP server and the web app at once; neither may fail
    /// because of the other (it once did, about 1 start in 45, with "database is locked").
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_openers_of_a_new_file_both_succeed_every_time() -> anyhow::Result<()> {
        let alice = Owner::new("alice")?;
        let title = Title::parse("t")?;
        for round in 0..50 {
            let dir = tempfile::tempdir()?;
            let path = dir.path().join("todo0.db");
            let (a, b) = tokio::join!(
                tokio::spawn({
                    let path = path.clone();
                    async move { SqliteStore::open(&path).await }
                }),
                tokio::spawn({
                    let path = path.clone();
                    async move { SqliteStore::open(&path).await }
                }),
            );
            let (a, b) = (a?, b?);
            let (a, b) = match (a, b) {
                (Ok(a), Ok(b)) => (a, b),
                (a, b) => anyhow::bail!("round {round}: {:?} / {:?}", a.err(), b.err()),
            };
            // Both work on the same, fully migrated database.
            a.create(&alice, &title, 1).await?;
            assert_eq!(b.list(&alice, &Filter::default()).await?.len(), 1);
        }
        Ok(())
    }

    /// Another program holds a read transaction on the new database while it is opened (the WAL
    /// switch and the migration need it gone): opening waits for it instead of failing.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn opening_waits_out_a_reader_holding_the_new_file() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("todo0.db");
        let holder = rusqlite::Connection::open(&path)?;
        holder.execute_batch("CREATE TABLE other (x); BEGIN; SELECT count(*) FROM other;")?;
        let opening = tokio::spawn({
            let path = path.clone();
            async move { SqliteStore::open(&path).await }
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        holder.execute_batch("COMMIT;")?;
        drop(holder);
        let store = opening.await??;
        store.ping().await?;
        Ok(())
    }

    #[test]
    fn only_busy_and_locked_codes_are_retried() {
        assert!(is_busy_code(5), "SQLITE_BUSY");
        assert!(is_busy_code(6), "SQLITE_LOCKED");
        assert!(is_busy_code(517), "SQLITE_BUSY_SNAPSHOT");
        assert!(!is_busy_code(14), "SQLITE_CANTOPEN");
        assert!(!is_busy_code(11), "SQLITE_CORRUPT");
    }

    #[tokio::test]
    async fn a_file_that_is_not_a_database_fails_at_once() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("todo0.db");
        std::fs::write(&path, vec![b'x'; 8192])?;
        let started = std::time::Instant::now();
        assert!(SqliteStore::open(&path).await.is_err());
        assert!(started.elapsed() < Duration::from_secs(5), "not retried");
        Ok(())
    }

    #[tokio::test]
    async fn file_connections_promise_durable_writes() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("todo0.db");
        let store = SqliteStore::open(&path).await?;
        let bound = -i64::from(PAGE_CACHE_KIB);
        // The group commit's connection (every write), as the store opens it.
        let writes = open_write_connection(&path).map_err(TodoError::from)?;
        let pragma = |name: &str| -> rusqlite::Result<i64> {
            writes.query_row(&format!("PRAGMA {name}"), [], |row| row.get(0))
        };
        assert_eq!(pragma("synchronous")?, 2, "synchronous = FULL");
        assert_eq!(pragma("busy_timeout")?, 5000);
        assert_eq!(pragma("cache_size")?, bound);
        let journal: String = writes.query_row("PRAGMA journal_mode", [], |row| row.get(0))?;
        assert_eq!(journal, "wal");
        // Every reader's page cache is bounded too.
        for _ in 0..READERS {
            let cache: i64 = store
                .readers
                .with(|c| c.query_row("PRAGMA cache_size", [], |row| row.get(0)))?;
            assert_eq!(cache, bound);
        }
        Ok(())
    }
}
