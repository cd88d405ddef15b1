//! An append's statements, run by the group commit's writer thread ([`dbconn::sqlite_writer`]):
//! one `IMMEDIATE` transaction per group, each append its own statements with its own outcome,
//! nothing answered before the commit (`synchronous = FULL`: durable), and a failed commit — or
//! a statement after which SQLite rolled the transaction back — fails the group.

use std::path::Path;

use dbconn::sqlite_readers::rusqlite::{self, Connection};
use dbconn::sqlite_writer::{SqliteWrite, SqliteWriter};

use super::{Append, BUSY_TIMEOUT, INSERT_TURN_SQL, MAX_BATCH, TOUCH_SQL, read_failed};
use crate::conversations::StoreError;

/// Opens a write connection to the (migrated) file at `path` and starts the writer thread; it
/// ends when every handle is gone.
pub(super) fn start(path: &Path) -> Result<SqliteWriter<Append>, StoreError> {
    let connection =
        dbconn::sqlite_writer::open_connection(path, BUSY_TIMEOUT, "PRAGMA foreign_keys = ON;")
            .map_err(read_failed)?;
    SqliteWriter::start(connection, "agent0-writer", MAX_BATCH)
        .map_err(|e| StoreError::Database(format!("starting the conversation writer: {e}")))
}

impl SqliteWrite for Append {
    /// The turn's number.
    type Output = u32;
    type Error = StoreError;

    fn run(&self, connection: &Connection) -> Result<u32, StoreError> {
        insert_turn(connection, self)
    }

    fn group_failed(error: rusqlite::Error) -> StoreError {
        read_failed(error)
    }

    fn writer_gone() -> StoreError {
        StoreError::Database("the conversation writer has stopped".into())
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
