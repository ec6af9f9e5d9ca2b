//! Tampering with the audit log (R1.3.5): is every change to a stored log found, and the
//! first bad event named?
//!
//! A real log is written first, through the audit service's own writer (chained events
//! of the kinds the services record, with Chinese text, signed checkpoints every so many
//! events, the log ending on one). Then each case takes a fresh copy of that database
//! file and makes one change an attacker holding the file could make — the append-only
//! triggers dropped first — and runs the verification `VerifyLog` runs, with the newest
//! checkpoint kept outside the database as `govmedia audit checkpoint` exports it:
//!
//! - alter one column of one event (any stored column, its hash and link included);
//! - delete one event;
//! - swap two events;
//! - cut the log's end off (the chain head left as it was);
//! - drop the tail after a checkpoint together with its checkpoints, the head rewound (only
//!   the kept checkpoint can tell);
//! - forge a checkpoint's signature (bytes changed, or re-signed with another key).
//!
//! A case holds when the verification reports the log broken at exactly the event the
//! change made the first bad one, with a kind of break that fits the change. Untampered
//! copies are verified too: a false alarm breaks the promise as much as a miss.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use govmedia_audit::domain::chain::{self, Break};
use govmedia_domain::audit::{Actor, ActorKind, AuditAction, AuditRecord, AuditResourceRef, Outcome};
use govmedia_kit::db::Database;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use sqlx::SqlitePool;

use crate::ScenarioError;
use crate::report::Report;

/// How big a run is.
#[derive(Debug, Clone)]
pub struct Options {
    /// Tampered copies to check.
    pub cases: u32,
    /// Events in the log.
    pub events: u32,
    /// A checkpoint after this many events.
    pub checkpoint_every: i64,
    /// The random seed (printed, so a run can be repeated exactly).
    pub seed: u64,
}

impl Default for Options {
    /// The full run: 1,000 cases on a log of 5,000 events.
    fn default() -> Self {
        Self { cases: 1000, events: 5000, checkpoint_every: 250, seed: rand::random() }
    }
}

/// One change to a copy of the log.
#[derive(Debug, Clone, PartialEq)]
enum Tampering {
    /// A column of one event altered.
    Alter { sequence: i64, column: String },
    /// One event deleted.
    Delete { sequence: i64 },
    /// Two events' places exchanged.
    Swap { first: i64, second: i64 },
    /// The events after `after` removed; head and checkpoints left.
    Truncate { after: i64 },
    /// The events and checkpoints after the checkpoint `at` removed and the head rewound.
    DropTail { at: i64 },
    /// A checkpoint's signature broken, or made with another key.
    Forge { at: i64, resigned: bool },
    /// Nothing: a control.
    None,
}

impl Tampering {
    fn kind(&self) -> &'static str {
        match self {
            Tampering::Alter { .. } => "alter a column",
            Tampering::Delete { .. } => "delete an event",
            Tampering::Swap { .. } => "swap two events",
            Tampering::Truncate { .. } => "cut the end off",
            Tampering::DropTail { .. } => "drop the tail after a checkpoint",
            Tampering::Forge { .. } => "forge a checkpoint signature",
            Tampering::None => "untampered (control)",
        }
    }

    /// The first bad sequence the verification must name, and the kinds of break that
    /// fit; `None` for a control, which must verify intact.
    fn expected(&self, log: &Log) -> Option<(i64, &'static [Break])> {
        match self {
            Tampering::Alter { sequence, column } if column == "previous_hash" => {
                Some((*sequence, &[Break::ChainMismatch]))
            }
            Tampering::Alter { sequence, .. } => Some((*sequence, &[Break::HashMismatch])),
            Tampering::Delete { sequence } if *sequence == log.last => Some((*sequence, &[Break::TailMissing])),
            Tampering::Delete { sequence } => Some((*sequence, &[Break::SequenceGap])),
            // The sequence number is part of what is hashed.
            Tampering::Swap { first, .. } => Some((*first, &[Break::HashMismatch, Break::ChainMismatch])),
            Tampering::Truncate { after } | Tampering::DropTail { at: after } => {
                Some((after + 1, &[Break::TailMissing]))
            }
            Tampering::Forge { at, .. } => Some((*at, &[Break::CheckpointSignatureInvalid])),
            Tampering::None => None,
        }
    }
}

/// What the untampered log holds, read once.
#[derive(Debug, Clone)]
struct Log {
    last: i64,
    checkpoints: Vec<i64>,
    /// The newest checkpoint, kept outside the database: its sequence and hash.
    kept: (i64, [u8; 32]),
    /// Every column of `audit_events` an attacker could change, sequence aside.
    columns: Vec<String>,
}

/// Runs the scenario in `work` (a folder it may fill): builds the log, checks
/// `options.cases` tampered copies and a tenth as many untampered ones.
pub async fn run(work: &Path, options: &Options) -> Result<Report, ScenarioError> {
    let mut rng = StdRng::seed_from_u64(options.seed);
    let key = SigningKey::from_bytes(&rng.random());
    let original = work.join("audit-log.db");
    let started = Instant::now();
    write_log(&original, &key, options, &mut rng).await?;
    let built = started.elapsed();
    let log = read_log(&original).await?;

    let mut report = Report::new(
        "tampering",
        format!(
            "cargo run --release -p govmedia-faults -- tampering --cases {} --events {} --checkpoint-every {} --seed {}",
            options.cases, options.events, options.checkpoint_every, options.seed
        ),
    );
    report.note(
        "log",
        format!("{} events, {} signed checkpoints, written in {built:.1?}", log.last, log.checkpoints.len()),
    );

    let controls = (options.cases / 10).max(1);
    let mut tally: BTreeMap<&'static str, (u32, u32)> = BTreeMap::new();
    let mut verifying = Duration::ZERO;
    for case in 0..options.cases + controls {
        let tampering = if case < options.cases { random_tampering(&log, &mut rng) } else { Tampering::None };
        let copy = work.join(format!("case-{case}.db"));
        std::fs::copy(&original, &copy).map_err(|e| ScenarioError::setup("copying the log", e))?;
        let (found, took) = check(&copy, &tampering, &log, &key).await?;
        verifying += took;
        let _ = std::fs::remove_file(&copy);
        let holds = match (tampering.expected(&log), &found) {
            (None, Ok(None)) => true,
            (Some((sequence, kinds)), Ok(Some((at, kind, _)))) => *at == sequence && kinds.contains(kind),
            _ => false,
        };
        let entry = tally.entry(tampering.kind()).or_default();
        entry.0 += 1;
        if holds {
            entry.1 += 1;
        } else if report.failures.len() < 10 {
            report.failures.push(format!(
                "case {case}, {tampering:?}: expected {:?}, the verification said {found:?}",
                tampering.expected(&log)
            ));
        }
    }

    let tampered: u32 = tally.iter().filter(|(k, _)| **k != Tampering::None.kind()).map(|(_, (n, _))| n).sum();
    let named: u32 = tally.iter().filter(|(k, _)| **k != Tampering::None.kind()).map(|(_, (_, ok))| ok).sum();
    for (kind, (cases, ok)) in &tally {
        report.note(&format!("  {kind}"), format!("{ok} of {cases}"));
    }
    let percent = if tampered == 0 { 100.0 } else { f64::from(named) * 100.0 / f64::from(tampered) };
    report.require(
        "tampered copies found, first bad event named",
        format!("{named} of {tampered} ({percent:.1} %)"),
        "100 %",
        named == tampered,
    );
    let (control_cases, control_ok) = tally.get(Tampering::None.kind()).copied().unwrap_or_default();
    report.require(
        "untampered copies verified intact",
        format!("{control_ok} of {control_cases}"),
        "all",
        control_ok == control_cases,
    );
    let checked = options.cases + controls;
    report.note("verification time per copy", format!("{:.1?}", verifying / checked.max(1)));
    Ok(report)
}

/// Writes `events` realistic events through the audit writer, signing a checkpoint every
/// `checkpoint_every` and once at the end.
async fn write_log(path: &Path, key: &SigningKey, options: &Options, rng: &mut StdRng) -> Result<(), ScenarioError> {
    let db = Database::open_sqlite_file(path, 4).await.map_err(|e| ScenarioError::setup("opening the log", e))?;
    db.migrate(&govmedia_audit::MIGRATIONS).await.map_err(|e| ScenarioError::setup("migrating the log", e))?;
    let stop = tokio_util::sync::CancellationToken::new();
    let (appender, writer) = govmedia_audit::appender::Appender::spawn(
        db.clone(),
        Arc::new(govmedia_domain::clock::SystemClock),
        govmedia_audit::appender::CheckpointPolicy {
            every_events: options.checkpoint_every.max(1),
            every: Duration::from_secs(3600),
            key_id: "fault-suite".into(),
            key: key.clone(),
        },
        stop.clone(),
    );
    let mut written = 0;
    while written < options.events {
        let batch = (options.events - written).min(25);
        let events = (written..written + batch).map(|n| govmedia_audit::new_event(&record(n, rng))).collect();
        appender.append(events).await.map_err(|e| ScenarioError::setup("appending", e))?;
        written += batch;
    }
    appender.checkpoint().await.map_err(|e| ScenarioError::setup("signing the last checkpoint", e))?;
    stop.cancel();
    let _ = writer.await;
    db.close().await;
    Ok(())
}

/// An event of the kinds the services record.
fn record(n: u32, rng: &mut StdRng) -> AuditRecord {
    const PEOPLE: [(&str, &str); 5] =
        [("王晓明", "editor"), ("李娜", "reviewer"), ("张伟", "proofreader"), ("刘洋", "officer"), ("陈静", "admin")];
    let (name, role) = PEOPLE[n as usize % PEOPLE.len()];
    let actor = Actor { kind: ActorKind::User, id: format!("user-{}", n % 23), display_name: name.to_owned() };
    let (action, kind, reason) = *[
        (AuditAction::DraftSubmitted, "draft", "提交初审：区政府办公室关于防汛工作的通知"),
        (AuditAction::DraftApproved, "draft", "三审通过，内容符合发布规范"),
        (AuditAction::PublicationPublished, "publication", "按计划发布至官方微博"),
        (AuditAction::UserLoginSucceeded, "user", ""),
        (AuditAction::CommentHidden, "comment", "含有他人手机号，依规隐藏"),
    ]
    .choose(rng)
    .unwrap_or(&(AuditAction::DraftSubmitted, "draft", ""));
    let mut record = AuditRecord::new(
        action,
        actor,
        AuditResourceRef::new(kind, format!("{kind}-{n}")),
        "fault-suite",
        chrono::Utc::now(),
    )
    .attr("role", role)
    .attr("version", n % 7)
    .client_address(Some(format!("10.0.{}.{}", n % 4, n % 250 + 1)));
    if !reason.is_empty() {
        record = record.reason(reason);
    }
    if rng.random_ratio(1, 20) {
        record = record.outcome(Outcome::Denied).rule("R2.1.3");
    }
    record
}

async fn read_log(path: &Path) -> Result<Log, ScenarioError> {
    let (db, pool) = open(path).await?;
    let read = |e: sqlx::Error| ScenarioError::setup("reading the log", e);
    let last: i64 =
        sqlx::query_scalar("SELECT MAX(sequence) FROM audit_events").fetch_one(&pool).await.map_err(read)?;
    let checkpoints: Vec<i64> = sqlx::query_scalar("SELECT sequence FROM audit_checkpoints ORDER BY sequence")
        .fetch_all(&pool)
        .await
        .map_err(read)?;
    let newest = *checkpoints.last().ok_or_else(|| ScenarioError::Setup("the log has no checkpoint".into()))?;
    let hash: Vec<u8> = sqlx::query_scalar("SELECT hash FROM audit_checkpoints WHERE sequence = ?")
        .bind(newest)
        .fetch_one(&pool)
        .await
        .map_err(read)?;
    let hash: [u8; 32] =
        hash.try_into().map_err(|_| ScenarioError::Setup("a checkpoint hash is not 32 bytes".into()))?;
    let columns: Vec<String> = sqlx::query_scalar("SELECT name FROM pragma_table_info('audit_events')")
        .fetch_all(&pool)
        .await
        .map_err(read)?;
    db.close().await;
    Ok(Log {
        last,
        checkpoints,
        kept: (newest, hash),
        columns: columns.into_iter().filter(|c| c != "sequence").collect(),
    })
}

fn random_tampering(log: &Log, rng: &mut StdRng) -> Tampering {
    let any_event = |rng: &mut StdRng| rng.random_range(1..=log.last);
    let before_last: Vec<i64> = log.checkpoints.iter().copied().filter(|c| *c < log.last).collect();
    match rng.random_range(0..6) {
        0 => Tampering::Alter {
            sequence: any_event(rng),
            column: log.columns.choose(rng).cloned().unwrap_or_else(|| "reason".to_owned()),
        },
        1 => Tampering::Delete { sequence: any_event(rng) },
        2 => {
            let first = rng.random_range(1..log.last);
            Tampering::Swap { first, second: rng.random_range(first + 1..=log.last) }
        }
        3 => Tampering::Truncate { after: rng.random_range(1..log.last) },
        4 if !before_last.is_empty() => Tampering::DropTail { at: *before_last.choose(rng).unwrap_or(&1) },
        _ => Tampering::Forge { at: *log.checkpoints.choose(rng).unwrap_or(&log.last), resigned: rng.random() },
    }
}

async fn open(path: &Path) -> Result<(Database, SqlitePool), ScenarioError> {
    let db = Database::open_sqlite_file(path, 1).await.map_err(|e| ScenarioError::setup("opening a copy", e))?;
    match &db {
        Database::Sqlite(pool) => {
            let pool = pool.clone();
            Ok((db, pool))
        }
        Database::Postgres(_) => Err(ScenarioError::Setup("a file opened as PostgreSQL".into())),
    }
}

/// The first break the verification finds (`Ok(None)`: intact; `Err`: it could not
/// verify), and how long it took.
type Found = Result<Option<(i64, Break, String)>, String>;

/// Tampers with `copy` and verifies it as `VerifyLog` would.
async fn check(
    copy: &Path,
    tampering: &Tampering,
    log: &Log,
    key: &SigningKey,
) -> Result<(Found, Duration), ScenarioError> {
    let (db, pool) = open(copy).await?;
    tamper(&pool, tampering).await.map_err(|e| ScenarioError::setup(&format!("tampering ({tampering:?})"), e))?;
    let started = Instant::now();
    let verified =
        govmedia_audit::verification::verify(&db, 1, 0, &key.verifying_key().to_bytes(), Some(log.kept)).await;
    let took = started.elapsed();
    db.close().await;
    Ok((verified.map(|v| v.broken).map_err(|e| e.to_string()), took))
}

/// What an attacker with the file does: drops the guard, then changes the rows.
async fn tamper(pool: &SqlitePool, tampering: &Tampering) -> Result<(), sqlx::Error> {
    let triggers: Vec<String> =
        sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetch_all(pool).await?;
    for trigger in triggers {
        sqlx::query(&format!("DROP TRIGGER \"{trigger}\"")).execute(pool).await?;
    }
    let run = |sql: String| async move { sqlx::query(&sql).execute(pool).await.map(|_| ()) };
    match tampering {
        Tampering::Alter { sequence, column } => {
            let change = match column.as_str() {
                "hash" | "previous_hash" => format!("{column} = randomblob(32)"),
                "attributes" => "attributes = json_set(attributes, '$.version', 'altered')".to_owned(),
                // A year earlier, still a valid time on odd events; no longer a time on even.
                "occur_time" | "record_time" if sequence % 2 == 1 => {
                    format!(
                        "{column} = CAST(CAST(substr({column}, 1, 4) AS INTEGER) - 1 AS TEXT) || substr({column}, 5)"
                    )
                }
                _ => format!("{column} = {column} || '·'"),
            };
            run(format!("UPDATE audit_events SET {change} WHERE sequence = {sequence}")).await
        }
        Tampering::Delete { sequence } => run(format!("DELETE FROM audit_events WHERE sequence = {sequence}")).await,
        Tampering::Swap { first, second } => {
            run(format!("UPDATE audit_events SET sequence = -1 WHERE sequence = {first}")).await?;
            run(format!("UPDATE audit_events SET sequence = {first} WHERE sequence = {second}")).await?;
            run(format!("UPDATE audit_events SET sequence = {second} WHERE sequence = -1")).await
        }
        Tampering::Truncate { after } => run(format!("DELETE FROM audit_events WHERE sequence > {after}")).await,
        Tampering::DropTail { at } => {
            run(format!("DELETE FROM audit_events WHERE sequence > {at}")).await?;
            run(format!("DELETE FROM audit_checkpoints WHERE sequence > {at}")).await?;
            run(format!(
                "UPDATE audit_chain_head SET sequence = {at}, hash = (SELECT hash FROM audit_events WHERE sequence = {at})"
            ))
            .await
        }
        Tampering::Forge { at, resigned: false } => {
            // One bit of the signature flipped.
            let mut signature: Vec<u8> =
                sqlx::query_scalar("SELECT signature FROM audit_checkpoints WHERE sequence = ?")
                    .bind(at)
                    .fetch_one(pool)
                    .await?;
            if let Some(first) = signature.first_mut() {
                *first ^= 1;
            }
            sqlx::query("UPDATE audit_checkpoints SET signature = ? WHERE sequence = ?")
                .bind(signature)
                .bind(at)
                .execute(pool)
                .await
                .map(|_| ())
        }
        Tampering::Forge { at, resigned: true } => {
            // A valid signature, by a key that is not the audit service's.
            let stored = sqlx::query_as::<_, (Vec<u8>, String)>(
                "SELECT hash, created_at FROM audit_checkpoints WHERE sequence = ?",
            )
            .bind(at)
            .fetch_one(pool)
            .await?;
            let hash: [u8; 32] = stored.0.try_into().unwrap_or([0; 32]);
            let created_at = chrono::DateTime::parse_from_rfc3339(&stored.1)
                .map(|t| t.with_timezone(&chrono::Utc))
                .map_err(|e| sqlx::Error::Decode(e.into()))?;
            let forger = SigningKey::from_bytes(&[7; 32]);
            let signature = chain::sign_checkpoint(&forger, *at, &hash, created_at);
            sqlx::query("UPDATE audit_checkpoints SET signature = ?, public_key = ? WHERE sequence = ?")
                .bind(signature.to_vec())
                .bind(forger.verifying_key().to_bytes().to_vec())
                .bind(at)
                .execute(pool)
                .await
                .map(|_| ())
        }
        Tampering::None => Ok(()),
    }
}
