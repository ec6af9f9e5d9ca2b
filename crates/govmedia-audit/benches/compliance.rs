//! Inspection-readiness benchmark (R8.1.1): how long the compliance monitor's daily
//! computation takes for 200 accounts with 90 days of history in the audit log (a
//! publication, six comments received and five replies posted per account per day, and a
//! retraction and a missed deadline now and then), on PostgreSQL and on SQLite. A round
//! is the monitor's work without identity's register: read the log's facts for the date's
//! window and write every account's assessment with its alerts in one unit of work.
//! Baseline: one full `COUNT(*)` scan of the same events table, the cheapest question
//! that touches all of it.
//!
//! Run: `cargo bench -p govmedia-audit --bench compliance` (GOVMEDIA_BENCH_ROUNDS,
//! default 10; GOVMEDIA_BENCH_ACCOUNTS, default 200; GOVMEDIA_BENCH_DAYS, default 90).

// A benchmark exists to print its figures.
#![allow(clippy::print_stdout)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use chrono::Utc;
use common::World;
use govmedia_audit::compliance_monitor::{self as monitor, COMPONENT};
use govmedia_audit::domain::compliance::{RegisteredAccount, local_date};
use govmedia_domain::audit::{Actor, AuditAction, AuditRecord, AuditResourceRef};
use govmedia_domain::ids::PlatformAccountId;
use govmedia_kit::db::Database;
use govmedia_testkit::{TestBackend, TestDatabase};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}

fn record(action: AuditAction, kind: &str, account: PlatformAccountId, at: chrono::DateTime<Utc>) -> AuditRecord {
    on(action, (kind, &uuid::Uuid::now_v7().to_string()), account, at)
}

fn on(
    action: AuditAction,
    (kind, id): (&str, &str),
    account: PlatformAccountId,
    at: chrono::DateTime<Utc>,
) -> AuditRecord {
    let mut resource = AuditResourceRef::new(kind, id);
    resource.platform_account = Some(account);
    AuditRecord::new(action, Actor::system("bench"), resource, "bench", at)
}

/// Appends the history straight to the writer, in batches the relays would send.
async fn seed(w: &World, accounts: &[RegisteredAccount], days: i64) -> usize {
    let now = Utc::now();
    let mut batch = Vec::new();
    let mut total = 0;
    for day in (1..=days).rev() {
        for (n, a) in accounts.iter().enumerate() {
            let base = now - chrono::Duration::days(day) + chrono::Duration::minutes(i64::try_from(n).unwrap_or(0));
            let publication = uuid::Uuid::now_v7().to_string();
            let published = on(AuditAction::PublicationPublished, ("publication", &publication), a.id, base);
            batch.push(govmedia_audit::new_event(&published));
            if (day + i64::try_from(n).unwrap_or(0)) % 17 == 0 {
                let later = base + chrono::Duration::hours(1);
                let retracted = on(AuditAction::PublicationRetracted, ("publication", &publication), a.id, later);
                batch.push(govmedia_audit::new_event(&retracted));
            }
            for c in 0..6 {
                let at = base + chrono::Duration::minutes(10 * c);
                batch.push(govmedia_audit::new_event(&record(AuditAction::CommentIngested, "comment", a.id, at)));
                let answer =
                    if c == 5 && day % 9 == 0 { AuditAction::CommentEscalated } else { AuditAction::ReplyPosted };
                batch.push(govmedia_audit::new_event(&record(answer, "reply", a.id, at + chrono::Duration::hours(2))));
            }
            if batch.len() >= 1000 {
                total += batch.len();
                w.core.appender().append(std::mem::take(&mut batch)).await.expect("seeded");
            }
        }
    }
    total += batch.len();
    w.core.appender().append(batch).await.expect("seeded");
    total
}

async fn full_scan(db: &Database) -> Duration {
    let started = Instant::now();
    let n: i64 = match db {
        Database::Postgres(pool) => sqlx::query_scalar("SELECT COUNT(*) FROM audit_events").fetch_one(pool).await,
        Database::Sqlite(pool) => sqlx::query_scalar("SELECT COUNT(*) FROM audit_events").fetch_one(pool).await,
    }
    .expect("count");
    assert!(n > 0);
    started.elapsed()
}

fn main() {
    let rounds = env("GOVMEDIA_BENCH_ROUNDS", 10);
    let n_accounts = env("GOVMEDIA_BENCH_ACCOUNTS", 200);
    let days = i64::try_from(env("GOVMEDIA_BENCH_DAYS", 90)).unwrap_or(90);
    println!("compliance benchmark: {n_accounts} accounts, {days} days of history, {rounds} rounds per store");
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        for backend in [TestBackend::Postgres, TestBackend::Sqlite] {
            let w = World::start(TestDatabase::new(backend).await).await;
            let registered = Utc::now() - chrono::Duration::days(days + 1);
            let accounts: Vec<RegisteredAccount> = (0..n_accounts)
                .map(|i| RegisteredAccount {
                    id: PlatformAccountId::new(),
                    department: None,
                    platform: "weibo".into(),
                    handle: format!("bench-{i}"),
                    registered_at: registered,
                    responsible_active: true,
                    credential_rotation_due: None,
                })
                .collect();
            let started = Instant::now();
            let events = seed(&w, &accounts, days).await;
            println!("[{backend:?}] seeded {events} events in {:.1} s", started.elapsed().as_secs_f64());
            let mut scans: Vec<Duration> = Vec::new();
            let mut took: Vec<(Duration, Duration)> = Vec::new();
            for _ in 0..rounds {
                scans.push(full_scan(&w.audit_db).await);
                let now = Utc::now();
                let date = local_date(now, w.core.time_zone());
                let started = Instant::now();
                let assessed = monitor::facts(&w.core, &accounts, date, now).await.expect("facts");
                let read = started.elapsed();
                let summary = w
                    .core
                    .work()
                    .run_unkeyed(async |m| monitor::write(m, date, assessed, &Actor::system(COMPONENT)).await)
                    .await
                    .expect("written");
                assert_eq!(summary.accounts as usize, n_accounts);
                took.push((read, started.elapsed()));
            }
            scans.sort();
            took.sort_by_key(|t| t.1);
            let median = took[took.len() / 2];
            let scan = scans[scans.len() / 2];
            println!(
                "[{backend:?}] baseline: SELECT COUNT(*) over the events table     {:>8.1} ms",
                scan.as_secs_f64() * 1000.0
            );
            println!(
                "[{backend:?}] daily compliance round (median of {rounds})        {:>8.1} ms  (reading the log {:.1} ms; {:.1}x baseline)",
                median.1.as_secs_f64() * 1000.0,
                median.0.as_secs_f64() * 1000.0,
                median.1.as_secs_f64() / scan.as_secs_f64()
            );
        }
    });
}
