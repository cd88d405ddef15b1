//! Group commit on a thread of its own, with a rusqlite connection (agent0's turns, todo0's
//! todos, idp0's token-request writes).
//!
//! With `synchronous = FULL` every commit is an fsync, and SQLite runs one writer at a time, so
//! writes committed one by one are bounded by the disk's sync rate. Here one thread owns the
//! write connection, takes every write that is waiting (at least one, at most the batch size),
//! runs them in one `IMMEDIATE` transaction and commits once — one fsync for the whole group —
//! before answering any of them. Each write is its own statements with its own outcome (a row
//! returned, a row not found); a failed `BEGIN` or `COMMIT` fails the whole group, and nothing is
//! answered before it is durable. A caller that stops waiting leaves its write to commit with the
//! group: the answer is simply not read.
//!
//! Why a thread and rusqlite rather than an async task on sqlx (as before): sqlx runs every
//! statement on its connection's worker thread, so each statement of a group was a hand-off there
//! and back, one after another; `perf` showed those hand-offs and the worker's sleeps and
//! wake-ups costing as much as the writes, and the chain capped todo0's durable writes. Here the
//! thread that owns the connection runs the whole group: one wake-up per group.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, TransactionBehavior};
use tokio::sync::{mpsc, oneshot};

/// Opens a writer's connection to the (migrated, WAL) file at `path`: `synchronous = FULL`, so
/// each group's commit is durable before its writes are answered; locks held by other
/// connections waited for up to `busy_timeout`; then the caller's own `pragmas` (may be empty).
pub fn open_connection(
    path: &Path,
    busy_timeout: Duration,
    pragmas: &str,
) -> rusqlite::Result<Connection> {
    let connection = Connection::open(path)?;
    connection.busy_timeout(busy_timeout)?;
    connection.execute_batch("PRAGMA synchronous = FULL;")?;
    connection.execute_batch(pragmas)?;
    Ok(connection)
}

/// A write that can wait in the queue and run inside the group's transaction.
pub trait SqliteWrite: Send + 'static {
    /// What the caller is told once the group is durable.
    type Output: Send + 'static;
    /// A failure of this write alone, or of the whole group.
    type Error: Clone + Send + 'static;

    /// Runs this write's statements on the group's connection, inside its transaction. A failing
    /// statement normally leaves the transaction open and the other writes intact (SQLite
    /// statements are atomic). A write of several statements is not undone as a whole: when a
    /// later one fails, the earlier ones still commit with the group while this write is answered
    /// with the error (there is no savepoint per write), so order them to fail safe.
    fn run(&self, connection: &Connection) -> Result<Self::Output, Self::Error>;

    /// The error every write of a group gets when the group's `BEGIN` or `COMMIT` failed.
    fn group_failed(error: rusqlite::Error) -> Self::Error;

    /// The error when the writer thread is gone.
    fn writer_gone() -> Self::Error;
}

struct Pending<W: SqliteWrite> {
    write: W,
    done: oneshot::Sender<Result<W::Output, W::Error>>,
}

/// The queue of one writer thread; cheap to clone. The thread ends when every clone is dropped.
pub struct SqliteWriter<W: SqliteWrite> {
    queue: mpsc::Sender<Pending<W>>,
}

impl<W: SqliteWrite> Clone for SqliteWriter<W> {
    fn clone(&self) -> Self {
        Self {
            queue: self.queue.clone(),
        }
    }
}

impl<W: SqliteWrite> std::fmt::Debug for SqliteWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteWriter")
            .field(
                "waiting",
                &(self.queue.max_capacity() - self.queue.capacity()),
            )
            .finish()
    }
}

impl<W: SqliteWrite> SqliteWriter<W> {
    /// Starts the thread `name` on `connection` (opened and configured by the caller: busy
    /// timeout, `synchronous`, pragmas). At most `max_batch` writes share a commit; four times as
    /// many may wait, and callers beyond that wait for room (bounded memory under any load).
    pub fn start(connection: Connection, name: &str, max_batch: usize) -> std::io::Result<Self> {
        let max_batch = max_batch.max(1);
        let (queue, receiver) = mpsc::channel(4 * max_batch);
        std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || run(connection, receiver, max_batch))?;
        Ok(Self { queue })
    }

    /// Whether the writer thread still takes writes: false once it has stopped (a write panicked),
    /// after which every write is answered [`SqliteWrite::writer_gone`]. For health checks.
    pub fn is_running(&self) -> bool {
        !self.queue.is_closed()
    }

    /// Queues `write` and waits until its group is committed (or failed).
    pub async fn write(&self, write: W) -> Result<W::Output, W::Error> {
        let (done, answer) = oneshot::channel();
        if self.queue.send(Pending { write, done }).await.is_err() {
            return Err(W::writer_gone());
        }
        answer.await.unwrap_or_else(|_| Err(W::writer_gone()))
    }
}

fn run<W: SqliteWrite>(
    mut connection: Connection,
    mut queue: mpsc::Receiver<Pending<W>>,
    max_batch: usize,
) {
    let mut batch = Vec::with_capacity(max_batch);
    // Waits for one write, then takes every other one already waiting, up to `max_batch`.
    while queue.blocking_recv_many(&mut batch, max_batch) > 0 {
        let results = commit(
            &mut connection,
            &batch,
            |connection, pending| pending.write.run(connection),
            W::group_failed,
        );
        for (pending, result) in batch.drain(..).zip(results) {
            let _ = pending.done.send(result);
        }
    }
}

/// Runs `batch` in one transaction, each item through `run`, and commits.
///
/// A failing statement normally leaves the transaction open, but after some errors (an I/O
/// error always; a full disk or no memory where the statement had no journal of its own)
/// SQLite rolls the whole transaction back. Then the writes before it are gone, and the rest
/// would each commit on their own (autocommit) while being answered as failed with the group:
/// so the group ends there and every write in it fails with that error.
fn commit<T, O, E: Clone>(
    connection: &mut Connection,
    batch: &[T],
    run: impl Fn(&Connection, &T) -> Result<O, E>,
    group_failed: impl Fn(rusqlite::Error) -> E,
) -> Vec<Result<O, E>> {
    let all_failed = |error: E| batch.iter().map(|_| Err(error.clone())).collect();
    let tx = match connection.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => return all_failed(group_failed(e)),
    };
    let mut results = Vec::with_capacity(batch.len());
    for item in batch {
        let result = run(&tx, item);
        if let Err(error) = &result
            && tx.is_autocommit()
        {
            return all_failed(error.clone());
        }
        results.push(result);
    }
    match tx.commit() {
        Ok(()) => results,
        Err(e) => all_failed(group_failed(e)),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Inserts a key: its row id, or the statement's error.
    struct Insert(String);

    impl SqliteWrite for Insert {
        type Output = i64;
        type Error = String;

        fn run(&self, connection: &Connection) -> Result<i64, String> {
            assert_ne!(self.0, "panic", "a write that panics");
            connection
                .prepare_cached("INSERT INTO seen (key) VALUES (?) RETURNING rowid")
                .and_then(|mut s| s.query_row([&self.0], |row| row.get(0)))
                .map_err(|e| e.to_string())
        }

        fn group_failed(error: rusqlite::Error) -> String {
            format!("group failed: {error}")
        }

        fn writer_gone() -> String {
            "gone".into()
        }
    }

    fn database(dir: &tempfile::TempDir) -> (std::path::PathBuf, Connection) {
        let path = dir.path().join("writes.db");
        let connection = Connection::open(&path).unwrap();
        connection
            .execute_batch(
                "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
                 CREATE TABLE seen (key TEXT PRIMARY KEY);",
            )
            .unwrap();
        (path, connection)
    }

    fn stored(path: &std::path::Path) -> Vec<String> {
        let connection = Connection::open(path).unwrap();
        let mut statement = connection
            .prepare("SELECT key FROM seen ORDER BY rowid")
            .unwrap();
        statement
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    /// Many writes at once share few commits, each with its own outcome: a duplicate key fails
    /// alone and the rest of its group is stored.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn each_write_keeps_its_own_outcome_in_a_shared_group() {
        let dir = tempfile::tempdir().unwrap();
        let (path, connection) = database(&dir);
        let writer = SqliteWriter::start(connection, "test-writer", 8).unwrap();
        let mut tasks = tokio::task::JoinSet::new();
        for n in 0..40 {
            let (writer, key) = (writer.clone(), format!("key-{}", n % 30));
            tasks.spawn(async move { (key.clone(), writer.write(Insert(key)).await) });
        }
        let (mut ok, mut duplicate) = (0, 0);
        while let Some(done) = tasks.join_next().await {
            match done.unwrap() {
                (_, Ok(_)) => ok += 1,
                (_, Err(e)) if e.contains("UNIQUE") => duplicate += 1,
                (key, Err(e)) => panic!("{key}: {e}"),
            }
        }
        assert_eq!((ok, duplicate), (30, 10));
        let mut keys = stored(&path);
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), 30);
    }

    /// A write that panics stops the writer thread (its group is rolled back): the waiting write
    /// and every later one are answered `writer_gone`, none hangs, and the writer says it stopped.
    #[tokio::test]
    async fn a_stopped_writer_answers_every_write_and_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let (path, connection) = database(&dir);
        let writer = SqliteWriter::start(connection, "test-writer", 8).unwrap();
        assert_eq!(writer.write(Insert("before".into())).await, Ok(1));
        assert!(writer.is_running());
        assert_eq!(
            writer.write(Insert("panic".into())).await,
            Err("gone".into())
        );
        assert_eq!(
            writer.write(Insert("after".into())).await,
            Err("gone".into())
        );
        assert!(!writer.is_running());
        assert_eq!(stored(&path), ["before"]);
    }

    /// A statement that fails and takes the transaction with it (as SQLite does after an I/O
    /// error) fails the whole group, runs none of the writes after it, and stores nothing; a
    /// failure that leaves the transaction open fails only its own write.
    #[test]
    fn a_rolled_back_group_fails_every_write_and_commits_none() {
        let dir = tempfile::tempdir().unwrap();
        let (path, mut connection) = database(&dir);
        let batch = ["one", "two", "three"].map(|key| Insert(key.into()));
        let ran = std::cell::Cell::new(0);
        let results = commit(
            &mut connection,
            &batch,
            |tx, write| {
                ran.set(ran.get() + 1);
                if write.0 == "two" {
                    tx.execute_batch("ROLLBACK").unwrap();
                    return Err("disk I/O error".to_owned());
                }
                write.run(tx)
            },
            Insert::group_failed,
        );
        assert_eq!(ran.get(), 2, "nothing runs after the rollback");
        assert!(
            results
                .iter()
                .all(|r| r.as_ref().err().map(String::as_str) == Some("disk I/O error")),
            "{results:?}"
        );
        assert!(stored(&path).is_empty());

        let results = commit(
            &mut connection,
            &batch,
            |tx, write| {
                if write.0 == "two" {
                    return Err("not found".to_owned());
                }
                write.run(tx)
            },
            Insert::group_failed,
        );
        assert!(matches!(results[..], [Ok(1), Err(_), Ok(2)]), "{results:?}");
        assert_eq!(stored(&path), ["one", "three"]);
    }

    /// A group whose `BEGIN` fails (another connection holds the write lock) fails every write
    /// in it with the group's error; the next group is not affected.
    #[tokio::test]
    async fn a_failed_begin_fails_the_whole_group() {
        let dir = tempfile::tempdir().unwrap();
        let (path, connection) = database(&dir);
        // Another connection holds the write lock; this one waits no time for it.
        connection.busy_timeout(std::time::Duration::ZERO).unwrap();
        let holder = Connection::open(&path).unwrap();
        holder.execute_batch("BEGIN IMMEDIATE").unwrap();
        let writer = SqliteWriter::start(connection, "test-writer", 8).unwrap();
        let error = writer.write(Insert("one".into())).await.unwrap_err();
        assert!(
            error.starts_with("group failed: database is locked"),
            "{error}"
        );
        holder.execute_batch("ROLLBACK").unwrap();
        assert_eq!(writer.write(Insert("one".into())).await.unwrap(), 1);
        assert_eq!(stored(&path), ["one"]);
    }
}
