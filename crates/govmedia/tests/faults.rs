//! The short versions of the fault scenarios that run the `govmedia` binary as processes
//! (the full runs: `cargo run --release -p govmedia-faults -- <scenario>`,
//! docs/reliability.md). They live here because this package builds the binary.

use std::path::Path;
use std::time::Duration;

use govmedia_faults::ScenarioError;
use govmedia_faults::report::Report;
use govmedia_testkit::TestDatabase;

/// The binary the scenarios run as processes.
fn govmedia() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_govmedia"))
}

/// The report of a scenario that ran, printed, once every promise is seen to hold.
fn held(ran: Result<Report, ScenarioError>) -> Report {
    let report = ran.expect("the scenario runs");
    eprintln!("{report}");
    assert!(report.holds(), "{report}");
    report
}

/// R1.3.5, R9.2: while the audit service is killed and restarted, every acknowledged
/// change across identity, content and interaction reaches the audit log exactly once,
/// and the chain verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_audit_record_is_lost_or_doubled_while_the_audit_service_dies_r1_3_5_r9_2() {
    let db = TestDatabase::postgres().await;
    let work = tempfile::tempdir().expect("work");
    let options = govmedia_faults::audit_completeness::Options {
        changes: 600,
        callers: 4,
        up_at_most: Duration::from_millis(700),
        down_at_most: Duration::from_millis(700),
        seed: rand::random(),
    };
    let report =
        held(govmedia_faults::audit_completeness::run(govmedia(), db.url().expose(), work.path(), &options).await);
    let kills = report.value("audit service killed (SIGKILL) and restarted").unwrap_or_default();
    assert!(!kills.starts_with("0 "), "the audit service was killed during the run: {kills}");
}

/// R3.3.1, R3.2.1: two content processes on one database, one SIGKILLed mid-run: each
/// approved publication reaches the webhook receiver as exactly one post (a repeat only
/// for the dead replica's claims, answered with the first post), nothing unapproved
/// reaches it, and each is audited as published once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_publication_goes_out_exactly_once_while_a_replica_dies_r3_3_1() {
    let db = TestDatabase::postgres().await;
    let work = tempfile::tempdir().expect("work");
    let options = govmedia_faults::exactly_once::Options {
        publications: 60,
        accounts: 6,
        kill_after: 0.3,
        receiver_latency: Duration::from_millis(40),
        lease: Duration::from_secs(3),
    };
    let report = held(govmedia_faults::exactly_once::run(govmedia(), db.url().expose(), work.path(), &options).await);
    let by_replica = report.value("deliveries by replica").unwrap_or_default();
    assert!(
        by_replica.contains("content ") && by_replica.contains("content-2 "),
        "both replicas published: {by_replica}"
    );
}

/// R1.3.5: PostgreSQL (a cluster of the test's own) crashes and restarts under load:
/// every service answers from its database again within 5 s without being restarted,
/// and every acknowledged change is there afterwards, audited once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_ride_out_a_database_restart_and_lose_no_acknowledged_write_r1_3_5() {
    let work = tempfile::tempdir().expect("work");
    let options = govmedia_faults::database_restart::Options {
        changes: 300,
        callers: 4,
        restarts: 2,
        every: Duration::from_secs(2),
        mode: "immediate".into(),
    };
    held(govmedia_faults::database_restart::run(govmedia(), work.path(), &options).await);
}
