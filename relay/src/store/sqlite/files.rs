//! The modes of the relay's files. The database (with SQLite's `-wal` and
//! `-shm`, which take the database's mode) holds tokens' hashes, tickets
//! and internal notes, and so does a backup: each is created 0600 whatever
//! the umask, and a database that something loosened is made private
//! again when the relay opens it.

use std::path::{Path, PathBuf};

/// The mode of the database, its `-wal` and `-shm`, and backups.
pub const PRIVATE_FILE_MODE: u32 = 0o600;

/// Creates `path` empty and private if it does not exist yet (an empty
/// file is an empty SQLite database), so that SQLite never creates it
/// under the umask.
pub fn create_private(path: &Path) -> std::io::Result<()> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, PRIVATE_FILE_MODE);
    o.open(path)?;
    restrict(path).map(|_| ())
}

/// Makes `path` 0600 (or tighter) if it exists and others may read or
/// write it; `Ok(false)` when there was nothing to do.
pub fn restrict(path: &Path) -> std::io::Result<bool> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = match std::fs::symlink_metadata(path) {
            Ok(m) => m,
            // Nothing there (or a file where a folder should be, which
            // opening reports by itself): nothing to make private.
            Err(e) if matches!(e.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory) => {
                return Ok(false)
            }
            Err(e) => return Err(e),
        };
        let mode = meta.permissions().mode();
        if meta.file_type().is_symlink() || mode & 0o777 & !PRIVATE_FILE_MODE == 0 {
            return Ok(false);
        }
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & PRIVATE_FILE_MODE))?;
        Ok(true)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        Ok(false)
    }
}

/// Makes the database and its `-wal` and `-shm` private again; a warning
/// for each that could not be (e.g. owned by another user).
pub fn tighten(db: &Path) -> Vec<String> {
    let mut warnings = Vec::new();
    for suffix in ["", "-wal", "-shm"] {
        let mut p = db.as_os_str().to_owned();
        p.push(suffix);
        let p = PathBuf::from(p);
        if let Err(e) = restrict(&p) {
            warnings.push(format!(
                "{} may be readable by other users and could not be made private ({e}); `chmod 600 {}` fixes it",
                p.display(),
                p.display()
            ));
        }
    }
    warnings
}
