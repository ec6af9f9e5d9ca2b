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

/// Replaces `file` with `contents` at once: written to an owner-only temporary file in
/// the same folder, synced, then renamed over it. A reader never sees half a file, and a
/// crash leaves the old one, never an empty one (a truncate-then-write would).
pub fn replace_file(file: &Path, contents: &[u8]) -> io::Result<()> {
    let temporary = temporary_beside(file)?;
    write_synced(&temporary, contents)?;
    temporary.persist(file).map_err(|e| e.error)?;
    Ok(())
}

/// Creates `file` with `contents` at once, owner-only, unless it exists: then
/// `AlreadyExists`, and the existing file is untouched (two starters racing keep the
/// first one's secret).
pub fn create_file(file: &Path, contents: &[u8]) -> io::Result<()> {
    let temporary = temporary_beside(file)?;
    write_synced(&temporary, contents)?;
    temporary.persist_noclobber(file).map_err(|e| e.error)?;
    Ok(())
}

fn temporary_beside(file: &Path) -> io::Result<tempfile::NamedTempFile> {
    let dir = file.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    // tempfile makes its files 0600 whatever the umask.
    let temporary = tempfile::Builder::new().prefix(".govmedia-").tempfile_in(dir)?;
    std::fs::set_permissions(temporary.path(), Permissions::from_mode(FILE_MODE))?;
    Ok(temporary)
}

fn write_synced(temporary: &tempfile::NamedTempFile, contents: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let mut handle = temporary.as_file();
    handle.write_all(contents)?;
    handle.sync_all()
}

/// True when anyone but the owner may read, write or enter `path`.
pub fn is_open_to_others(path: &Path) -> io::Result<bool> {
    Ok(std::fs::metadata(path)?.permissions().mode() & 0o077 != 0)
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
    fn a_replaced_file_is_whole_and_owner_only_and_a_created_one_never_overwrites() {
        let dir = tempfile::tempdir().expect("dir");
        let file = dir.path().join("session.json");
        std::fs::write(&file, "old").expect("old");
        std::fs::set_permissions(&file, Permissions::from_mode(0o644)).expect("open mode");
        replace_file(&file, b"new").expect("replaced");
        assert_eq!(std::fs::read_to_string(&file).expect("read"), "new");
        assert!(!is_open_to_others(&file).expect("mode"), "the replacement is owner-only");
        let left: Vec<_> =
            std::fs::read_dir(dir.path()).expect("list").map(|e| e.expect("entry").file_name()).collect();
        assert_eq!(left.len(), 1, "no temporary file is left behind: {left:?}");

        let secret = dir.path().join("secret");
        create_file(&secret, b"first").expect("created");
        let second = create_file(&secret, b"second").expect_err("exists");
        assert_eq!(second.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read_to_string(&secret).expect("read"), "first");
        assert!(!is_open_to_others(&secret).expect("mode"));
    }

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
