//! The group commit, on a thread of its own with a rusqlite connection.
//!
//! Through sqlx every statement of a group (`BEGIN`, two per append, `COMMIT`, and the ping of
//! the returned connection) was a hand-off to sqlx's worker thread and back; `perf` on
//! `bench agent` showed those hand-offs and the worker's sleeps and wake-ups costing as much as
//! the writes. Here the thread that owns the connection runs the whole group: one wake-up per
//! group. One `IMMEDIATE` transaction per group, each append its own statements with its own
//! outcome (a failing statement leaves the rest of the transaction intact: SQLite statements
//! are atomic; where SQLite rolls the whole transaction back instead, the whole group fails:
//! [`commit_with`]), nothing answered before the commit (`synchronous = FULL`: durable), and a
//! failed commit fails the group.

use std::path::Path;

use dbconn::sqlite_readers::rusqlite::{self, Connection, TransactionBehavior};
use tokio::sync::mpsc;

use super::{Append, BUSY_TIMEOUT, INSERT_TURN_SQL, MAX_BATCH, TOUCH_SQL, read_failed};
use crate::conversations::StoreError;

/// Opens a write connection to the (migrated) file at `path` and starts the writer thread on
/// `queue`; it ends when every sender is gone.
pub(super) fn start(path: &Path, queue: mpsc::Receiver<Append>) -> Result<(), StoreError> {
    let connection = Connection::open(path).map_err(read_failed)?;
    connection.busy_timeout(BUSY_TIMEOUT).map_err(read_failed)?;
    connection
        .execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;")
        .map_err(read_failed)?;
    std::thread::Builder::new()
        .name("agent0-writer".into())
        .spawn(move || run(connection, queue))
        .map_err(|e| StoreError::Database(format!("starting the conversation writer: {e}")))?;
    Ok(())
}

fn run(mut connection: Connection, mut queue: mpsc::Receiver<Append>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = queue.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(append) => batch.push(append),
                Err(_) => break,
            }
        }
        let results = commit(&mut connection, &batch);
        for (append, result) in batch.drain(..).zip(results) {
            let _ = append.done.send(result);
        }
    }
}

fn commit(connection: &mut Connection, batch: &[Append]) -> Vec<Result<u32, StoreError>> {
    commit_with(connection, batch, insert_turn)
}

/// [`commit`] with the statements of one append as `insert` (tests inject failures).
///
/// A failing statement normally leaves the transaction open, but after some errors (an I/O
/// error always; a full disk or no memory where the statement had no journal of its own)
/// SQLite rolls the whole transaction back. Then the appends before it are gone, and the rest
/// would each commit on their own (autocommit) while being answered as failed with the
/// group: so the group ends there and every append in it fails.
fn commit_with(
    connection: &mut Connection,
    batch: &[Append],
    insert: impl Fn(&Connection, &Append) -> Result<u32, StoreError>,
) -> Vec<Result<u32, StoreError>> {
    let all_failed = |error: StoreError| batch.iter().map(|_| Err(error.clone())).collect();
    let tx = match connection.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => return all_failed(read_failed(e)),
    };
    let mut results = Vec::with_capacity(batch.len());
    for append in batch {
        let result = insert(&tx, append);
        if let Err(error) = &result
            && tx.is_autocommit()
        {
            return all_failed(error.clone());
        }
        results.push(result);
    }
    match tx.commit() {
        Ok(()) => results,
        Err(e) => all_failed(read_failed(e)),
    }
}

/// One append: the conversation must be the owner's; the turn gets the next sequence number,
/// which is returned.
fn insert_turn(connection: &Connection, append: &Append) -> Result<u32, StoreError> {
    let touched = connection
        .prepare_cached(TOUCH_SQL)
        .and_then(|mut s| s.execute(rusqlite::params![append.now, append.id, append.owner]))
        .map_err(read_failed)?;
    if touched == 0 {
        return Err(StoreError::NotFound);
    }
    let turn = &append.turn;
    connection
        .prepare_cached(INSERT_TURN_SQL)
        .and_then(|mut s| {
            let params = rusqlite::params![
                append.id,
                append.id,
                turn.user_text,
                turn.reply_text,
                turn.messages,
                turn.tool_results,
                append.now
            ];
            s.query_row(params, |row| row.get(0))
        })
        .map_err(read_failed)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use tokio::sync::oneshot;

    use super::*;
    use crate::conversations::ConversationStore;
    use crate::conversations::sqlite::{SqliteConversations, StoredTurn};

    fn append(id: &str, text: &str) -> Append {
        Append {
            owner: "alice".into(),
            id: id.into(),
            turn: StoredTurn {
                user_text: text.into(),
                reply_text: String::new(),
                messages: "[]".into(),
                tool_results: "[]".into(),
            },
            now: 2,
            done: oneshot::channel().0,
        }
    }

    fn stored(path: &Path) -> Vec<String> {
        let connection = Connection::open(path).unwrap();
        let mut statement = connection
            .prepare("SELECT user_text FROM turns ORDER BY seq")
            .unwrap();
        statement
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    /// A statement that fails and takes the transaction with it (as SQLite does after an I/O
    /// error) fails the whole group, runs none of the appends after it, and stores nothing.
    #[tokio::test]
    async fn a_rolled_back_group_fails_every_append_and_commits_none() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent0.db");
        let store = SqliteConversations::open(&path).await.unwrap();
        let id = store.create("alice", 1).await.unwrap();
        let mut connection = Connection::open(&path).unwrap();
        let batch: Vec<Append> = ["one", "two", "three"]
            .iter()
            .map(|text| append(&id, text))
            .collect();
        let run = std::cell::Cell::new(0);
        let results = commit_with(&mut connection, &batch, |tx, append| {
            run.set(run.get() + 1);
            if append.turn.user_text == "two" {
                tx.execute_batch("ROLLBACK").unwrap();
                return Err(StoreError::Database("disk I/O error".into()));
            }
            insert_turn(tx, append)
        });
        assert_eq!(run.get(), 2, "nothing runs after the rollback");
        assert!(results.iter().all(Result::is_err), "{results:?}");
        assert!(stored(&path).is_empty());

        // A failure that leaves the transaction open fails only its own append.
        let results = commit_with(&mut connection, &batch, |tx, append| {
            if append.turn.user_text == "two" {
                return Err(StoreError::NotFound);
            }
            insert_turn(tx, append)
        });
        assert!(matches!(
            results[..],
            [Ok(1), Err(StoreError::NotFound), Ok(2)]
        ));
        assert_eq!(stored(&path), ["one", "three"]);
    }
}
