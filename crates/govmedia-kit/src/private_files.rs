//! Files only the service's own user may read: the SQLite databases with their WAL and
//! SHM files, the archive of publications, the secrets (R7.1.1). With the usual umask
//! (022) a new file is world-readable; these helpers make folders 0700 and files 0600
//! whatever the umask, and tighten what an older version left open.

use std::fs::{DirBuilder, OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Owner-only folder mode.
pub const FOLDER_MODE: u32 = 0o700;
/// Owner-only file mode.
pub const FILE_MODE: u32 = 0o600;

/// Creates `dir` and its missing parents as owner-only folders; an existing `dir` is
/// made owner-only (its parents are left as they are: they may be shared, like `/var`).
pub fn private_dir(dir: &Path) -> io::Result<()> {
    if !dir.exists() {
        DirBuilder::new().recursive(true).mode(FOLDER_MODE).create(dir)?;
    }
    std::fs::set_permissions(dir, Permissions::from_mode(FOLDER_MODE))
}

/// Creates `file` empty if missing, then makes it owner-only.
pub fn private_file(file: &Path) -> io::Result<()> {
    if !file.exists() {
        OpenOptions::new().write(true).create(true).truncate(false).mode(FILE_MODE).open(file)?;
    }
    std::fs::set_permissions(file, Permissions::from_mode(FILE_MODE))
}

/// Makes a SQLite database file and its `-wal`, `-shm` and `-journal` companions (those
/// that exist) owner-only.
pub fn private_sqlite(file: &Path) -> io::Result<()> {
    private_file(file)?;
    for suffix in ["-wal", "-shm", "-journal"] {
        let mut companion = file.as_os_str().to_owned();
        companion.push(suffix);
        let companion = Path::new(&companion);
        if companion.exists() {
            std::fs::set_permissions(companion, Permissions::from_mode(FILE_MODE))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_and_files_are_owner_only_whatever_they_were() {
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join("data/nested");
        private_dir(&dir).expect("dir");
        let mode = |p: &Path| std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&root.path().join("data")), 0o700, "created parents too");
        let db = dir.join("x.db");
        std::fs::write(&db, b"").expect("write");
        std::fs::set_permissions(&db, Permissions::from_mode(0o644)).expect("chmod");
        let wal = dir.join("x.db-wal");
        std::fs::write(&wal, b"").expect("write");
        std::fs::set_permissions(&wal, Permissions::from_mode(0o644)).expect("chmod");
        private_sqlite(&db).expect("tightened");
        assert_eq!((mode(&db), mode(&wal)), (0o600, 0o600));
    }
}
