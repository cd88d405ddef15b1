//! Read-only SQLite connections used directly on the calling task's thread.
//!
//! A read of a few rows on cached pages is a few microseconds of SQLite work, but sqlx's SQLite
//! driver runs every statement on a worker thread of its own: the query goes there and the rows
//! come back over channels, and a pooled connection is pinged through the same hop when it is
//! returned. On the hot paths (todo0's list of a person's todos, agent0's conversation reads
//! every turn) those hand-offs cost far more than the reads: `perf` on `bench mcp` and
//! `bench agent` showed ~125 µs per read, and the worker threads' futex sleeps and wake-ups
//! as large as their SQLite work. [`Readers`] keeps a few read-only rusqlite connections
//! instead; a read takes one that is free (or waits for one, which is no longer than a read
//! takes) and runs on the caller's thread. Writes go through [`crate::sqlite_writer`] for the
//! same reason; sqlx migrates.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError, TryLockError};
use std::time::Duration;

/// The rusqlite the readers are, for the queries run on them.
pub use rusqlite;
use rusqlite::{Connection, OpenFlags};

/// A fixed set of read-only connections to one database file.
pub struct Readers {
    connections: Vec<Mutex<Connection>>,
    next: AtomicUsize,
}

impl std::fmt::Debug for Readers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Readers")
            .field("connections", &self.connections.len())
            .finish()
    }
}

impl Readers {
    /// `count` read-only connections to the (existing, migrated) database at `path`, each
    /// waiting up to `busy_timeout` for a lock. The schema is read once on each, so a file
    /// that is busy or not a database fails here rather than on a first read.
    pub fn open(path: &Path, count: usize, busy_timeout: Duration) -> rusqlite::Result<Self> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let connections = (0..count.max(1))
            .map(|_| {
                let connection = Connection::open_with_flags(path, flags)?;
                connection.busy_timeout(busy_timeout)?;
                connection.query_row("SELECT count(*) FROM sqlite_master", [], |_| Ok(()))?;
                Ok(Mutex::new(connection))
            })
            .collect::<rusqlite::Result<_>>()?;
        Ok(Self {
            connections,
            next: AtomicUsize::new(0),
        })
    }

    /// These readers with each connection's page cache bounded to `kib` KiB (`PRAGMA
    /// cache_size`; SQLite's default is 2,000 KiB a connection, which a growing database fills).
    /// Pages beyond it are read again from the operating system's cache.
    pub fn with_page_cache(self, kib: u32) -> rusqlite::Result<Self> {
        for connection in &self.connections {
            let connection = connection.lock().unwrap_or_else(PoisonError::into_inner);
            connection.pragma_update(None, "cache_size", -i64::from(kib))?;
        }
        Ok(self)
    }

    /// Runs `read` on the first free connection, or waits for the next one in turn when all
    /// are busy. A read that panicked left its connection usable (it only reads), so a
    /// poisoned lock is taken over.
    ///
    /// First free, not round robin: a connection drops its whole page cache at its next read
    /// after any commit to the file (WAL mode), so under steady writes every connection in use
    /// reads its pages again after each commit. Reads that find the first connection free keep
    /// landing on it, and the others are used only by reads that overlap.
    pub fn with<T>(
        &self,
        read: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T> {
        let free = self.connections.iter().find_map(|c| match c.try_lock() {
            Ok(guard) => Some(guard),
            Err(TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
            Err(TryLockError::WouldBlock) => None,
        });
        let guard = match free {
            Some(guard) => guard,
            None => {
                let next = self.next.fetch_add(1, Ordering::Relaxed);
                self.connections[next % self.connections.len()]
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
            }
        };
        read(&guard)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    /// A WAL database in `dir` with an empty table `t`, and the connection that made it.
    fn wal_file(dir: &tempfile::TempDir) -> (PathBuf, Connection) {
        let path = dir.path().join("t.db");
        let writer = Connection::open(&path).unwrap();
        writer
            .execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (v INTEGER);")
            .unwrap();
        (path, writer)
    }

    #[test]
    fn reads_see_committed_writes_and_cannot_write() {
        let dir = tempfile::tempdir().unwrap();
        let (path, writer) = wal_file(&dir);
        let readers = Readers::open(&path, 2, Duration::from_secs(1)).unwrap();
        writer.execute("INSERT INTO t VALUES (7)", []).unwrap();
        let sum: i64 = readers
            .with(|c| c.query_row("SELECT sum(v) FROM t", [], |r| r.get(0)))
            .unwrap();
        assert_eq!(sum, 7);
        let refused = readers.with(|c| c.execute("INSERT INTO t VALUES (1)", []));
        assert!(refused.is_err());
        // Busy connections are skipped; every read still gets one.
        std::thread::scope(|scope| {
            for _ in 0..8 {
                scope.spawn(|| {
                    for _ in 0..50 {
                        let n: i64 = readers
                            .with(|c| c.query_row("SELECT count(*) FROM t", [], |r| r.get(0)))
                            .unwrap();
                        assert_eq!(n, 1);
                    }
                });
            }
        });
    }

    #[test]
    fn reads_take_the_first_free_connection() {
        let dir = tempfile::tempdir().unwrap();
        let (path, _) = wal_file(&dir);
        let readers = Readers::open(&path, 3, Duration::from_secs(1)).unwrap();
        let which = |c: &Connection| std::ptr::from_ref(c) as usize;
        let first = readers.with(|c| Ok(which(c))).unwrap();
        for _ in 0..5 {
            assert_eq!(readers.with(|c| Ok(which(c))).unwrap(), first);
        }
        // While it is busy, a read takes another; once it is free again, reads go back to it.
        readers
            .with(|busy| {
                let other = readers.with(|c| Ok(which(c)))?;
                assert_ne!(other, which(busy));
                Ok(())
            })
            .unwrap();
        assert_eq!(readers.with(|c| Ok(which(c))).unwrap(), first);
        // A read that panicked poisoned its lock; the connection is still the first taken.
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            readers.with(|_| -> rusqlite::Result<()> { panic!("a read that panics") })
        }));
        assert!(panicked.is_err());
        assert_eq!(readers.with(|c| Ok(which(c))).unwrap(), first);
    }

    #[test]
    fn the_page_cache_can_be_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let (path, _) = wal_file(&dir);
        let cache = |readers: &Readers| -> i64 {
            readers
                .with(|c| c.query_row("PRAGMA cache_size", [], |r| r.get(0)))
                .unwrap()
        };
        let readers = Readers::open(&path, 3, Duration::from_secs(1)).unwrap();
        assert_eq!(cache(&readers), -2000, "SQLite's default");
        let readers = readers.with_page_cache(256).unwrap();
        for _ in 0..3 {
            assert_eq!(cache(&readers), -256);
        }
    }

    #[test]
    fn a_missing_or_foreign_file_fails_at_open() {
        let dir = tempfile::tempdir().unwrap();
        assert!(Readers::open(&dir.path().join("none.db"), 1, Duration::ZERO).is_err());
        let junk = dir.path().join("junk.db");
        std::fs::write(&junk, b"not a database, not at all, really not").unwrap();
        assert!(Readers::open(&junk, 1, Duration::ZERO).is_err());
    }
}
