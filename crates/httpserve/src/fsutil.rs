//! Files written atomically; those that hold secrets with mode 0600 (directories 0700).

use std::io::Write;
use std::path::Path;

/// Writes `contents` to `path` with mode 0600, via a temporary file and rename.
pub fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    write_atomically(
        path,
        &path.with_extension("tmp"),
        contents.as_bytes(),
        0o600,
    )
}

/// Writes `contents` to `path` with `mode` (on Unix), via the temporary file `tmp` beside it and
/// a rename, so a reader sees the old file or the new one, never half of one. `tmp` is created
/// afresh (O_EXCL): whatever stood under that name — a file left by a crash, with looser
/// permissions, or a planted link — is removed first, never written through.
pub fn write_atomically(
    path: &Path,
    tmp: &Path,
    contents: &[u8],
    mode: u32,
) -> std::io::Result<()> {
    match std::fs::remove_file(tmp) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
        #[cfg(not(unix))]
        let _ = mode;
        let mut file = options.open(tmp)?;
        file.write_all(contents)?;
        file.sync_all()?;
    }
    std::fs::rename(tmp, path)
}

/// Creates `dir` (and parents) and restricts it to the owner.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn a_leftover_temporary_file_or_link_is_replaced_not_written_through() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret.pem");
        // A temporary file left readable by everyone: its mode must not carry over.
        std::fs::write(path.with_extension("tmp"), "old").unwrap();
        std::fs::set_permissions(
            path.with_extension("tmp"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        write_private(&path, "new").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // A link under the temporary name is not followed.
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "keep").unwrap();
        std::os::unix::fs::symlink(&victim, path.with_extension("tmp")).unwrap();
        write_private(&path, "newer").unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "newer");
    }
}
