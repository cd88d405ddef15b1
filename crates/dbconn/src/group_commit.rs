//! Group commit for SQLite through sqlx (idp0's replay caches and token records; agent0 and
//! todo0 use [`crate::sqlite_writer`], the same on a thread of its own with rusqlite).
//!
//! With `synchronous = FULL` every commit is an fsync, and SQLite runs one writer at a time, so
//! durable writes one transaction each are bounded by the disk's sync rate. Here one writer task
//! owns the write connection, takes every write that is waiting (at least one, at most the
//! batch size), runs them in one transaction and commits once — one fsync for the whole group —
//! before answering any of them. Each write is one statement whose own outcome (a row returned, a
//! row not found, a duplicate ignored) is its answer; a failed `BEGIN` or `COMMIT` fails the whole
//! group, and nothing is answered before it is durable. A caller that stops waiting (its request
//! was dropped) leaves its write to commit with the group: the answer is simply not read.

use std::future::Future;

use sqlx::{SqliteConnection, SqlitePool};
use tokio::sync::{mpsc, oneshot};

/// A write that can wait in the queue and run inside the group's transaction.
pub trait GroupWrite: Send + Sync + 'static {
    /// What the caller is told once the group is durable.
    type Output: Send + 'static;
    /// A failure of this write alone, or of the whole group.
    type Error: Send + 'static;

    /// Runs the statement on the group's connection, inside its transaction. A statement must be
    /// stepped to completion (`execute`, `fetch_all`): one left unfinished inside the transaction
    /// would hold it open.
    fn run(
        &self,
        conn: &mut SqliteConnection,
    ) -> impl Future<Output = Result<Self::Output, Self::Error>> + Send;

    /// The error every write of a group gets when the group's `BEGIN` or `COMMIT` failed.
    fn group_failed(error: &sqlx::Error) -> Self::Error;

    /// The error when the writer task is gone (the store was shut down).
    fn writer_gone() -> Self::Error;
}

struct Pending<W: GroupWrite> {
    write: W,
    done: oneshot::Sender<Result<W::Output, W::Error>>,
}

/// The queue of one writer task; cheap to clone. The task stops when every clone is dropped.
pub struct GroupCommit<W: GroupWrite> {
    queue: mpsc::Sender<Pending<W>>,
}

impl<W: GroupWrite> Clone for GroupCommit<W> {
    fn clone(&self) -> Self {
        Self {
            queue: self.queue.clone(),
        }
    }
}

impl<W: GroupWrite> std::fmt::Debug for GroupCommit<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCommit")
            .field(
                "waiting",
                &(self.queue.max_capacity() - self.queue.capacity()),
            )
            .finish()
    }
}

impl<W: GroupWrite> GroupCommit<W> {
    /// Starts the writer task on `writer` (a pool of one connection, which nothing else should
    /// write through while writes are queued). At most `max_batch` writes share a commit; four
    /// times as many may wait, and callers beyond that wait for room (bounded memory under any
    /// load).
    pub fn start(writer: SqlitePool, max_batch: usize) -> Self {
        let max_batch = max_batch.max(1);
        let (queue, receiver) = mpsc::channel(4 * max_batch);
        tokio::spawn(writer_task(writer, receiver, max_batch));
        Self { queue }
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

async fn writer_task<W: GroupWrite>(
    writer: SqlitePool,
    mut queue: mpsc::Receiver<Pending<W>>,
    max_batch: usize,
) {
    let mut batch = Vec::with_capacity(max_batch);
    while queue.recv_many(&mut batch, max_batch).await > 0 {
        let results = commit(&writer, &batch).await;
        for (pending, result) in batch.drain(..).zip(results) {
            let _ = pending.done.send(result);
        }
    }
}

async fn commit<W: GroupWrite>(
    writer: &SqlitePool,
    batch: &[Pending<W>],
) -> Vec<Result<W::Output, W::Error>> {
    let failed = |e: sqlx::Error| batch.iter().map(|_| Err(W::group_failed(&e))).collect();
    let mut tx = match writer.begin().await {
        Ok(tx) => tx,
        Err(e) => return failed(e),
    };
    let mut results = Vec::with_capacity(batch.len());
    for pending in batch {
        results.push(pending.write.run(&mut tx).await);
    }
    match tx.commit().await {
        Ok(()) => results,
        Err(e) => failed(e),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions, SqliteSynchronous};

    /// Inserts a key once: `true` when new, `false` when it was there.
    struct Remember(String);

    impl GroupWrite for Remember {
        type Output = bool;
        type Error = String;

        async fn run(&self, conn: &mut SqliteConnection) -> Result<bool, String> {
            let done = sqlx::query("INSERT OR IGNORE INTO seen (key) VALUES (?)")
                .bind(&self.0)
                .execute(conn)
                .await
                .map_err(|e| e.to_string())?;
            Ok(done.rows_affected() == 1)
        }

        fn group_failed(error: &sqlx::Error) -> String {
            format!("group failed: {error}")
        }

        fn writer_gone() -> String {
            "writer gone".into()
        }
    }

    async fn pool(dir: &std::path::Path) -> SqlitePool {
        let options = SqliteConnectOptions::new()
            .filename(dir.join("g.db"))
            .create_if_missing(true)
            .synchronous(SqliteSynchronous::Full);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .unwrap();
        sqlx::query("CREATE TABLE seen (key TEXT PRIMARY KEY)")
            .execute(&pool)
            .await
            .unwrap();
        pool
    }

    #[tokio::test]
    async fn concurrent_writes_each_get_their_own_outcome_and_are_all_durable() {
        let dir = tempfile::tempdir().unwrap();
        let pool = pool(dir.path()).await;
        let group = GroupCommit::start(pool.clone(), 8);
        // 100 distinct keys, each written twice at once: exactly one of each pair is new.
        let writes = (0..200).map(|i| {
            let group = group.clone();
            tokio::spawn(async move { group.write(Remember(format!("k{}", i % 100))).await })
        });
        let mut fresh = 0;
        for write in writes {
            if write.await.unwrap().unwrap() {
                fresh += 1;
            }
        }
        assert_eq!(fresh, 100);
        let (rows,): (i64,) = sqlx::query_as("SELECT count(*) FROM seen")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(rows, 100);
    }

    #[tokio::test]
    async fn a_failing_statement_gets_its_own_error_and_a_closed_pool_fails_the_group() {
        let dir = tempfile::tempdir().unwrap();
        let pool = pool(dir.path()).await;
        let group = GroupCommit::start(pool.clone(), 8);
        assert_eq!(group.write(Remember("a".into())).await, Ok(true));
        sqlx::query("DROP TABLE seen").execute(&pool).await.unwrap();
        let error = group.write(Remember("b".into())).await.unwrap_err();
        assert!(error.contains("no such table"), "{error}");
        pool.close().await;
        let error = group.write(Remember("c".into())).await.unwrap_err();
        assert!(error.starts_with("group failed"), "{error}");
    }
}
