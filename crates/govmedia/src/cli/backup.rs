//! `govmedia backup` and `govmedia restore` for the data folder of `govmedia up` on
//! SQLite: a consistent copy of every database taken while the services run, the
//! secrets that open them (the vault's sealing keys, the audit checkpoint key, the
//! services' credentials) and the archive of publications; and its restore, which checks
//! every file against the backup's manifest and verifies the audit chain (R1.3.5) before
//! it puts the folder in place. PostgreSQL installations use pg_dump per schema
//! (docs/operations.md).

use std::io::Write;
use std::path::{Path, PathBuf};

use govmedia_kit::db::Database;
use govmedia_kit::private_files::{create_file, private_dir};
use sha2::{Digest, Sha256};

use super::BoxError;
use super::output::print_record;

/// The service databases, in the order they are copied. The audit log comes last: a
/// record the relay delivered (and deleted from its outbox) before a service's copy was
/// taken is in the log before the log's copy is taken, so no record is in neither copy;
/// a record in both is delivered again after a restore and appended once (by its id).
const DATABASES: [&str; 4] = ["identity", "content", "interaction", "audit"];

/// The manifest's file name: written last, so a backup without it is incomplete.
const MANIFEST: &str = "backup.json";

/// `govmedia backup`: copies a running (or stopped) `govmedia up` data folder.
#[derive(Debug, clap::Args)]
pub struct Backup {
    /// The data folder of `govmedia up`.
    #[arg(long, env = "GOVMEDIA_DATA_DIR", default_value = "govmedia-data", value_name = "DIR")]
    data_dir: PathBuf,
    /// The folder to write the backup in: new or empty; made owner-only (it holds the
    /// installation's secrets: keep it as safe as the data folder).
    #[arg(long, value_name = "DIR")]
    output: PathBuf,
}

/// `govmedia restore`: puts a backup in place as a new data folder, after checking it.
#[derive(Debug, clap::Args)]
pub struct Restore {
    /// The backup folder `govmedia backup` wrote.
    #[arg(long, value_name = "DIR")]
    from: PathBuf,
    /// The data folder to restore into: new or empty (a running installation's folder is
    /// never overwritten).
    #[arg(long, value_name = "DIR")]
    data_dir: PathBuf,
}

#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Manifest {
    format: u32,
    govmedia_version: String,
    created_at: chrono::DateTime<chrono::Utc>,
    audit_events: i64,
    files: Vec<ManifestFile>,
}

#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct ManifestFile {
    path: String,
    bytes: u64,
    sha256: String,
}

fn is_empty_or_missing(dir: &Path) -> Result<bool, BoxError> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => Ok(entries.next().is_none()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(format!("cannot read {}: {e}", dir.display()).into()),
    }
}

fn sha256_of(path: &Path) -> Result<(u64, String), BoxError> {
    let mut file = std::fs::File::open(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut hasher = Sha256::new();
    let bytes = std::io::copy(&mut file, &mut hasher).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    Ok((bytes, hex::encode(hasher.finalize())))
}

/// Every regular file under `dir`, as paths relative to `dir`, sorted.
fn files_under(dir: &Path) -> Result<Vec<PathBuf>, BoxError> {
    let mut out = Vec::new();
    let mut pending = vec![PathBuf::new()];
    while let Some(relative) = pending.pop() {
        let folder = dir.join(&relative);
        for entry in std::fs::read_dir(&folder).map_err(|e| format!("cannot read {}: {e}", folder.display()))? {
            let entry = entry?;
            let kind = entry.file_type()?;
            let path = relative.join(entry.file_name());
            if kind.is_dir() {
                pending.push(path);
            } else if kind.is_file() {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Copies `from` to `to` (a new file), owner-only.
fn copy_private(from: &Path, to: &Path) -> Result<(), BoxError> {
    if let Some(parent) = to.parent() {
        private_dir(parent).map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    create_file(to, b"").map_err(|e| format!("cannot create {}: {e}", to.display()))?;
    let mut source = std::fs::File::open(from).map_err(|e| format!("cannot read {}: {e}", from.display()))?;
    let mut target = std::fs::OpenOptions::new().write(true).truncate(true).open(to)?;
    std::io::copy(&mut source, &mut target).map_err(|e| format!("cannot copy {}: {e}", from.display()))?;
    target.sync_all()?;
    Ok(())
}

async fn open(path: &Path) -> Result<Database, BoxError> {
    Database::open_sqlite_file(path, 1).await.map_err(|e| format!("cannot open {}: {e}", path.display()).into())
}

/// The newest sequence in a copied audit log, read without writing a byte to the copy
/// (read-only and immutable: no journal-mode change, no WAL), so its checksum holds.
async fn newest_audit_event(copy: &Path) -> Result<i64, BoxError> {
    use sqlx::ConnectOptions;
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(copy).read_only(true).immutable(true);
    let mut connection = options.connect().await.map_err(|e| format!("cannot read {}: {e}", copy.display()))?;
    let last: Option<i64> = sqlx::query_scalar("SELECT MAX(sequence) FROM audit_events")
        .fetch_one(&mut connection)
        .await
        .map_err(|e| e.to_string())?;
    sqlx::Connection::close(connection).await.map_err(|e| e.to_string())?;
    Ok(last.unwrap_or(0))
}

impl Backup {
    pub(super) async fn run(self, json: bool) -> Result<(), BoxError> {
        let data = &self.data_dir;
        if !data.join("secrets").is_dir() {
            return Err(
                format!("{} is not a govmedia up data folder (it has no secrets folder)", data.display()).into()
            );
        }
        if !data.join("audit.db").is_file() {
            return Err(format!(
                "{} holds no SQLite databases: its databases are in PostgreSQL; back them up with pg_dump per \
                 schema (docs/operations.md, \"Backup and restore\") and this folder's secrets with them",
                data.display()
            )
            .into());
        }
        if !is_empty_or_missing(&self.output)? {
            return Err(format!("{} is not empty; back up into a new folder", self.output.display()).into());
        }
        private_dir(&self.output).map_err(|e| format!("cannot create {}: {e}", self.output.display()))?;

        let mut audit_events = 0;
        for name in DATABASES {
            let source = data.join(format!("{name}.db"));
            let target = self.output.join(format!("{name}.db"));
            // VACUUM INTO writes a consistent snapshot (one read transaction) while the
            // services go on writing; into an empty owner-only file, so the copy is never
            // readable by others, not even for a moment.
            create_file(&target, b"").map_err(|e| format!("cannot create {}: {e}", target.display()))?;
            let db = open(&source).await?;
            let Database::Sqlite(pool) = &db else { return Err("a data folder database is not SQLite".into()) };
            sqlx::query("VACUUM INTO ?1")
                .bind(target.to_str().ok_or("the output folder's path is not UTF-8")?)
                .execute(pool)
                .await
                .map_err(|e| format!("copying {} failed: {e}", source.display()))?;
            db.close().await;
            if name == "audit" {
                audit_events = newest_audit_event(&target).await?;
            }
        }
        for folder in ["secrets", "publications"] {
            let source = data.join(folder);
            if !source.is_dir() {
                continue;
            }
            for file in files_under(&source)? {
                copy_private(&source.join(&file), &self.output.join(folder).join(&file))?;
            }
        }

        let mut files = Vec::new();
        for path in files_under(&self.output)? {
            let (bytes, sha256) = sha256_of(&self.output.join(&path))?;
            files.push(ManifestFile { path: path.to_string_lossy().into_owned(), bytes, sha256 });
        }
        let total: u64 = files.iter().map(|f| f.bytes).sum();
        let count = files.len();
        let manifest = Manifest {
            format: 1,
            govmedia_version: env!("CARGO_PKG_VERSION").to_owned(),
            created_at: chrono::Utc::now(),
            audit_events,
            files,
        };
        create_file(&self.output.join(MANIFEST), &serde_json::to_vec_pretty(&manifest)?)
            .map_err(|e| format!("cannot write the manifest: {e}"))?;
        print_record(
            &[
                ("backup", self.output.display().to_string()),
                ("files", count.to_string()),
                ("bytes", total.to_string()),
                ("audit_events", audit_events.to_string()),
                ("created_at", manifest.created_at.to_rfc3339()),
            ],
            json,
        )
    }
}

impl Restore {
    pub(super) async fn run(self, json: bool) -> Result<(), BoxError> {
        let text = std::fs::read_to_string(self.from.join(MANIFEST))
            .map_err(|e| format!("{} is not a complete backup (no {MANIFEST}: {e})", self.from.display()))?;
        let manifest: Manifest = serde_json::from_str(&text)
            .map_err(|e| format!("{MANIFEST} in {} is unreadable: {e}", self.from.display()))?;
        if manifest.format != 1 {
            return Err(format!("the backup's format {} is not one this govmedia reads (1)", manifest.format).into());
        }
        if !is_empty_or_missing(&self.data_dir)? {
            return Err(format!(
                "{} is not empty; restore into a new folder (a data folder in use is never overwritten)",
                self.data_dir.display()
            )
            .into());
        }
        for file in &manifest.files {
            let relative = Path::new(&file.path);
            if relative.is_absolute() || relative.components().any(|c| matches!(c, std::path::Component::ParentDir)) {
                return Err(format!("the manifest names {:?}, outside the backup", file.path).into());
            }
            let (bytes, sha256) = sha256_of(&self.from.join(relative))?;
            if bytes != file.bytes || sha256 != file.sha256 {
                return Err(format!(
                    "{} changed since the backup was taken: it does not match its manifest",
                    file.path
                )
                .into());
            }
        }

        // Staged beside the target and renamed into place only once it verifies: a
        // failed restore leaves no folder anyone could start on.
        let target = std::path::absolute(&self.data_dir)?;
        let parent = target.parent().ok_or("the data folder has no parent folder")?;
        // Only a missing parent is made (owner-only); an existing one (`/var/lib`) keeps
        // its mode: it is not ours.
        if !parent.exists() {
            private_dir(parent).map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        let staging = parent.join(format!(".govmedia-restore-{}", uuid::Uuid::now_v7().simple()));
        let result = self.stage(&manifest, &staging).await;
        let verified = match result {
            Ok(v) => v,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&staging);
                return Err(e);
            }
        };
        if target.exists() {
            std::fs::remove_dir(&target).map_err(|e| format!("cannot replace {}: {e}", target.display()))?;
        }
        std::fs::rename(&staging, &target).map_err(|e| format!("cannot move the restored folder into place: {e}"))?;
        print_record(
            &[
                ("data_dir", target.display().to_string()),
                ("backup_created_at", manifest.created_at.to_rfc3339()),
                ("files", manifest.files.len().to_string()),
                ("audit_events_verified", verified.verified_events.to_string()),
                ("audit_checkpoints_verified", verified.verified_checkpoints.to_string()),
            ],
            json,
        )
    }

    /// Copies the backup into `staging`, checks each database's integrity and verifies
    /// the audit chain against the checkpoint key in the backup's secrets.
    async fn stage(
        &self,
        manifest: &Manifest,
        staging: &Path,
    ) -> Result<govmedia_audit::verification::Verification, BoxError> {
        private_dir(staging).map_err(|e| format!("cannot create {}: {e}", staging.display()))?;
        for file in &manifest.files {
            copy_private(&self.from.join(&file.path), &staging.join(&file.path))?;
        }
        for name in DATABASES {
            let db = open(&staging.join(format!("{name}.db"))).await?;
            let Database::Sqlite(pool) = &db else { return Err("a restored database is not SQLite".into()) };
            let check: String =
                sqlx::query_scalar("PRAGMA integrity_check").fetch_one(pool).await.map_err(|e| e.to_string())?;
            db.close().await;
            if check != "ok" {
                return Err(format!("the {name} database in the backup is damaged: {check}").into());
            }
        }
        let key_file = staging.join("secrets").join("audit-checkpoint-key");
        let key = std::fs::read_to_string(&key_file)
            .map_err(|e| format!("the backup holds no audit checkpoint key ({}): {e}", key_file.display()))?;
        let key = govmedia_audit::parse_checkpoint_key(&key).map_err(|e| format!("the audit checkpoint key {e}"))?;
        let db = open(&staging.join("audit.db")).await?;
        let verification = govmedia_audit::verification::verify(&db, 1, 0, &key.verifying_key().to_bytes(), None).await;
        db.close().await;
        let verification = verification.map_err(|e| format!("verifying the audit log failed: {e}"))?;
        if let Some((sequence, kind, detail)) = &verification.broken {
            return Err(format!(
                "the backup's audit log does not verify (R1.3.5): {kind:?} at sequence {sequence}: {detail}; nothing was restored"
            )
            .into());
        }
        if verification.last < manifest.audit_events {
            return Err(format!(
                "the backup's audit log ends at {} but the manifest says {}; nothing was restored",
                verification.last, manifest.audit_events
            )
            .into());
        }
        let mut out = std::io::stderr().lock();
        writeln!(
            out,
            "audit log verified: {} events, {} checkpoints",
            verification.verified_events, verification.verified_checkpoints
        )?;
        Ok(verification)
    }
}
