//! The group commit, on a thread of its own with a rusqlite connection.
//!
//! Through sqlx every statement of a group (`BEGIN`, two per append, `COMMIT`, and the ping of
//! the returned connection) was a hand-off to sqlx's worker thread and back; `perf` on
//! `bench agent` showed those hand-offs and the worker's sleeps and wake-ups costing as much as
//! the writes. Here the thread that owns the connection runs the whole group: one wake-up per
//! group. One `IMMEDIATE` transaction per group, each append its own statements with its own
//! outcome (a failing statement leaves the rest of the transaction intact: SQLite statements
//! are atomic), nothing answered before the commit (`synchronous = FULL`: durable), and a
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
    let failed = |e: rusqlite::Error| {
        let error = read_failed(e);
        batch.iter().map(|_| Err(error.clone())).collect()
    };
    let tx = match connection.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => return failed(e),
    };
    let results = batch
        .iter()
        .map(|append| insert_turn(&tx, append))
        .collect();
    match tx.commit() {
        Ok(()) => results,
        Err(e) => failed(e),
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
