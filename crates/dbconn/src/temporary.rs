//! A SQLite database file of its own for a test or a benchmark, in a temporary directory that is
//! removed when the last clone of the [`TemporaryDatabase`] is dropped (each store keeps one
//! clone for as long as it is open). A file, not an in-memory database, so the store under test
//! takes the same path as in production: WAL, the readers' own connections, the writer thread.

use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A database file's path in a temporary directory of its own.
#[derive(Clone, Debug)]
pub struct TemporaryDatabase {
    path: PathBuf,
    _dir: Arc<tempfile::TempDir>,
}

impl TemporaryDatabase {
    /// Creates a directory named `<prefix><random>` in the system's temporary directory; the
    /// database will be `file_name` in it (not created here: the store creates it).
    pub fn new(prefix: &str, file_name: &str) -> std::io::Result<Self> {
        let dir = tempfile::Builder::new().prefix(prefix).tempdir()?;
        Ok(Self {
            path: dir.path().join(file_name),
            _dir: Arc::new(dir),
        })
    }

    /// The database file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_directory_goes_with_the_last_clone() {
        let database = TemporaryDatabase::new("dbconn-test-", "x.db").unwrap();
        let dir = database.path().parent().unwrap().to_owned();
        assert!(dir.is_dir());
        assert_eq!(database.path().file_name().unwrap(), "x.db");
        assert!(
            dir.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("dbconn-test-")
        );
        std::fs::write(database.path(), b"rows").unwrap();
        let clone = database.clone();
        drop(database);
        assert!(clone.path().is_file(), "removed while a clone is alive");
        drop(clone);
        assert!(!dir.exists(), "left behind after the last clone");
    }
}
