//! `govmedia backup` and `govmedia restore` (R1.3.5, issue 14): a backup taken while the
//! office keeps writing restores into a folder where `govmedia up` starts, with the
//! administrator's password, the data written before the copy and a verified audit
//! chain; a backup altered afterwards, in a file or in the audit log itself, is refused
//! and leaves no folder behind.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use common::{FIRST, Person};

const ADMIN: &str = "Copper#Kettle2029!";

fn govmedia(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_govmedia"))
        .args(args)
        .env("GOVMEDIA_CLI_CONFIG_DIR", "/nonexistent")
        .output()
        .expect("runs")
}

fn json(out: &std::process::Output) -> serde_json::Value {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

fn text(v: &serde_json::Value, key: &str) -> String {
    match &v[key] {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8")
}

/// A folder holding an office's data, written through `govmedia up`, and a backup of it
/// taken while departments were being created; answers how many were created before
/// the backup began.
async fn office_with_backup(root: &Path) -> usize {
    let data = root.join("data");
    let up = common::start(&data, None).await;
    let admin = Person::new(root, "admin", &up.gateway);
    admin.first_sign_in("admin", FIRST, ADMIN);

    // The write load: departments created one after another until told to stop.
    let (stop, created) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicUsize::new(0)));
    let load = {
        let (stop, created, admin) = (Arc::clone(&stop), Arc::clone(&created), admin.clone());
        std::thread::spawn(move || {
            let mut i = 0;
            while !stop.load(Ordering::SeqCst) {
                i += 1;
                admin.json(&["departments", "create", "--name", &format!("科室{i}"), "--code", &format!("L{i}")]);
                created.fetch_add(1, Ordering::SeqCst);
            }
        })
    };
    while created.load(Ordering::SeqCst) < 5 {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let before = created.load(Ordering::SeqCst);
    let backup = root.join("backup");
    let (data_arg, backup_arg) = (path(&data).to_owned(), path(&backup).to_owned());
    let taken = tokio::task::spawn_blocking(move || {
        govmedia(&["backup", "--data-dir", &data_arg, "--output", &backup_arg, "--json"])
    })
    .await
    .expect("backup");
    let summary = json(&taken);
    while created.load(Ordering::SeqCst) < before + 3 {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    stop.store(true, Ordering::SeqCst);
    load.join().expect("load");
    up.stop().await;
    assert!(text(&summary, "audit_events").parse::<u64>().expect("events") > 0, "{summary}");
    // The backup holds the installation's secrets: owner-only, like the data folder.
    use std::os::unix::fs::PermissionsExt;
    for file in ["audit.db", "secrets/audit-checkpoint-key", "backup.json"] {
        let mode = std::fs::metadata(backup.join(file)).expect(file).permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{file}");
    }
    before
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_under_write_load_restores_and_its_audit_chain_verifies_r1_3_5() {
    let root = tempfile::tempdir().expect("root");
    let before = office_with_backup(root.path()).await;
    // Restored into a folder others may read (like /var/lib): it keeps its mode.
    let shared = root.path().join("shared");
    std::fs::create_dir(&shared).expect("shared");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o755)).expect("mode");
    let (backup, restored) = (root.path().join("backup"), shared.join("restored"));
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(backup.join("backup.json")).expect("manifest")).expect("json");

    let answer = json(&govmedia(&["restore", "--from", path(&backup), "--data-dir", path(&restored), "--json"]));
    assert_eq!(text(&answer, "audit_events_verified"), manifest["audit_events"].to_string(), "{answer}");

    assert_eq!(std::fs::metadata(&shared).expect("shared").permissions().mode() & 0o777, 0o755);
    assert_eq!(std::fs::metadata(&restored).expect("restored").permissions().mode() & 0o777, 0o700);
    // A second restore onto it is refused: a folder in use is never overwritten.
    let again = govmedia(&["restore", "--from", path(&backup), "--data-dir", path(&restored)]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("not empty"));

    // The restored folder runs: the administrator's own password, the departments
    // written before the copy.
    let up = common::start(&restored, None).await;
    let admin = Person::new(&root.path().join("after"), "admin", &up.gateway);
    let signed_in = admin.run(&["login", "--username", "admin", "--password-stdin"], &format!("{ADMIN}\n"));
    assert!(signed_in.status.success(), "{}", String::from_utf8_lossy(&signed_in.stderr));
    let departments = admin.json(&["departments", "list"]);
    let codes: Vec<String> =
        departments.as_array().expect("rows").iter().map(|d| text(d, "code")).filter(|c| c.starts_with('L')).collect();
    assert!(codes.len() >= before, "{} departments restored, {before} were created before the backup", codes.len());
    // And writes go on, chained after the restored log.
    admin.json(&["departments", "create", "--name", "恢复后", "--code", "AFTER"]);
    up.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_altered_backup_is_refused_and_nothing_is_restored() {
    let root = tempfile::tempdir().expect("root");
    office_with_backup(root.path()).await;
    let backup = root.path().join("backup");

    // A file changed after the backup: its checksum no longer matches.
    let spare = root.path().join("spare");
    copy_dir(&backup, &spare);
    let key = spare.join("secrets/audit-checkpoint-key");
    std::fs::write(&key, "AAAA").expect("altered");
    let refused = govmedia(&["restore", "--from", path(&spare), "--data-dir", path(&root.path().join("r1"))]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("does not match its manifest"));
    assert!(!root.path().join("r1").exists());

    // An audit event rewritten by someone who also rewrote the manifest: the chain
    // does not verify, so nothing is restored.
    // In rollback-journal mode, so the change is in the file itself when the statement
    // returns (a WAL would be folded in only as the last connection closes, after the
    // manifest below was computed).
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(backup.join("audit.db"))
        .journal_mode(sqlx::sqlite::SqliteJournalMode::Delete);
    let audit = sqlx::SqlitePool::connect_with(options).await.expect("open");
    let triggers: Vec<String> =
        sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'audit_events'")
            .fetch_all(&audit)
            .await
            .expect("triggers");
    for trigger in triggers {
        sqlx::query(&format!("DROP TRIGGER \"{trigger}\"")).execute(&audit).await.expect("dropped");
    }
    sqlx::query("UPDATE audit_events SET reason = 'nothing happened' WHERE sequence = 3")
        .execute(&audit)
        .await
        .expect("rewritten");
    audit.close().await;
    let manifest_path = backup.join("backup.json");
    let mut manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&manifest_path).expect("manifest")).expect("json");
    for file in manifest["files"].as_array_mut().expect("files") {
        let on_disk = backup.join(file["path"].as_str().expect("path"));
        let bytes = std::fs::read(&on_disk).expect("read");
        use sha2::Digest;
        file["sha256"] = hex::encode(sha2::Sha256::digest(&bytes)).into();
        file["bytes"] = bytes.len().into();
    }
    std::fs::write(&manifest_path, serde_json::to_vec(&manifest).expect("json")).expect("manifest rewritten");
    let target = root.path().join("r2");
    let refused = govmedia(&["restore", "--from", path(&backup), "--data-dir", path(&target)]);
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "a rewritten audit log was restored");
    assert!(message.contains("R1.3.5") && message.contains("sequence 3"), "{message}");
    assert!(!target.exists());
    let leftovers: Vec<_> = std::fs::read_dir(root.path())
        .expect("root")
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with(".govmedia-restore"))
        .collect();
    assert!(leftovers.is_empty(), "a failed restore left its staging folder");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("dir");
    for entry in std::fs::read_dir(from).expect("read") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// The documented PostgreSQL procedure (docs/operations.md): one `pg_dump` of the four
/// schemas (one snapshot for all), the secrets folder beside it; `pg_restore` into an
/// empty database; the audit chain verifies there against the checkpoint key, and
/// `govmedia up` runs on it with the restored secrets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_postgresql_procedure_pg_dump_and_pg_restore_keeps_a_verifiable_log_r1_3_5() {
    let tool = |name: &str| {
        govmedia_testkit::postgres::find_binary(name).unwrap_or_else(|| {
            panic!(
                "{name} not found on PATH or under /usr/lib/postgresql/*/bin (Debian: apt install postgresql-client)"
            )
        })
    };
    let (source, target) =
        (govmedia_testkit::TestDatabase::postgres().await, govmedia_testkit::TestDatabase::postgres().await);
    let root = tempfile::tempdir().expect("root");
    let data = root.path().join("data");
    let up = common::start(&data, Some(source.url().expose())).await;
    let admin = Person::new(root.path(), "admin", &up.gateway);
    admin.first_sign_in("admin", FIRST, ADMIN);
    for i in 0..3 {
        admin.json(&["departments", "create", "--name", &format!("科室{i}"), "--code", &format!("P{i}")]);
    }
    // Taken while running, as in production; the relay may still be delivering.
    let dump = root.path().join("govmedia.dump");
    let mut command = Command::new(tool("pg_dump"));
    command.args(["--format=custom", "--file", path(&dump)]);
    for schema in ["govmedia_identity", "govmedia_content", "govmedia_interaction", "govmedia_audit"] {
        command.args(["--schema", schema]);
    }
    let dumped = command.arg(source.url().expose()).output().expect("pg_dump");
    assert!(dumped.status.success(), "{}", String::from_utf8_lossy(&dumped.stderr));
    up.stop().await;
    let restored = Command::new(tool("pg_restore"))
        .args(["--exit-on-error", "--single-transaction", "--no-owner", "--dbname", target.url().expose(), path(&dump)])
        .output()
        .expect("pg_restore");
    assert!(restored.status.success(), "{}", String::from_utf8_lossy(&restored.stderr));

    let key = std::fs::read_to_string(data.join("secrets/audit-checkpoint-key")).expect("key");
    let key = govmedia_audit::parse_checkpoint_key(&key).expect("key").verifying_key().to_bytes();
    let url = format!("{}?options=-c%20search_path%3Dgovmedia_audit", target.url().expose());
    let audit = govmedia_kit::db::Database::connect(&url.parse().expect("url"), 1).await.expect("audit schema");
    let verified = govmedia_audit::verification::verify(&audit, 1, 0, &key, None).await.expect("verified");
    assert!(verified.intact(), "{:?}", verified.broken);
    assert!(verified.verified_events > 5, "{verified:?}");
    audit.close().await;

    // The secrets go with the dump: the restored database opens with them.
    let moved = root.path().join("moved");
    copy_dir(&data.join("secrets"), &moved.join("secrets"));
    let up = common::start(&moved, Some(target.url().expose())).await;
    let admin = Person::new(&root.path().join("after"), "admin", &up.gateway);
    let signed_in = admin.run(&["login", "--username", "admin", "--password-stdin"], &format!("{ADMIN}\n"));
    assert!(signed_in.status.success(), "{}", String::from_utf8_lossy(&signed_in.stderr));
    let departments = admin.json(&["departments", "list"]);
    let codes: Vec<String> = departments.as_array().expect("rows").iter().map(|d| text(d, "code")).collect();
    assert!(["P0", "P1", "P2"].iter().all(|c| codes.contains(&(*c).to_owned())), "{codes:?}");
    up.stop().await;
}
