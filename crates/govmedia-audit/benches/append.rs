//! Audit append benchmark: events per second through `AppendEvents` over loopback gRPC
//! (hash chaining, group commit, idempotency check), beside the baseline of a plain
//! single-row INSERT loop (one autocommit INSERT per event, no chain) into a copy of the
//! events table on the same PostgreSQL, and the same on SQLite.
//!
//! Run: `cargo bench -p govmedia-audit --bench append` (GOVMEDIA_BENCH_SECONDS, default 3).

// A benchmark exists to print its figures.
#![allow(clippy::print_stdout)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::World;
use govmedia_kit::db::Database;
use govmedia_proto::audit::v1 as pb;
use govmedia_proto::common::v1 as cpb;
use govmedia_testkit::{TestBackend, TestDatabase, with_token};

fn event(n: u64) -> pb::AuditEvent {
    pb::AuditEvent {
        id: uuid::Uuid::now_v7().to_string(),
        occur_time: Some(prost_types::Timestamp {
            seconds: 1_795_000_000 + i64::try_from(n % 1_000_000).unwrap_or(0),
            nanos: 0,
        }),
        action: "comment.ingested".into(),
        actor: Some(cpb::PrincipalRef {
            kind: cpb::PrincipalKind::Service as i32,
            id: "svc".into(),
            display_name: "interaction".into(),
        }),
        producer: "interaction".into(),
        resource: Some(pb::AuditResource { r#type: "comment".into(), id: n.to_string(), ..Default::default() }),
        outcome: pb::AuditOutcome::Success as i32,
        rule_id: "R4.1.3".into(),
        ..Default::default()
    }
}

async fn appends(w: &World, seconds: u64, callers: usize, batch: usize) -> f64 {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..callers {
        let mut client = w.client();
        let token = w.content_token.clone();
        tasks.push(tokio::spawn(async move {
            let mut n = 0_u64;
            while Instant::now() < deadline {
                let events = (0..batch).map(|i| event(c as u64 * 1_000_000 + n + i as u64)).collect();
                client.append_events(with_token(pb::AppendEventsRequest { events }, &token)).await.expect("append");
                n += batch as u64;
            }
            n
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.expect("task");
    }
    total as f64 / started.elapsed().as_secs_f64()
}

async fn plain_inserts(db: &Database, seconds: u64) -> f64 {
    let create = "CREATE TABLE bench_plain (sequence BIGINT, id TEXT, action TEXT, resource_id TEXT, occur_time TEXT, hash BYTEA)";
    let insert =
        "INSERT INTO bench_plain (sequence, id, action, resource_id, occur_time, hash) VALUES ($1, $2, $3, $4, $5, $6)";
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut n = 0_i64;
    match db {
        Database::Postgres(pool) => {
            sqlx::query(create).execute(pool).await.expect("create");
            while Instant::now() < deadline {
                sqlx::query(insert)
                    .bind(n)
                    .bind(uuid::Uuid::now_v7().to_string())
                    .bind("comment.ingested")
                    .bind(n.to_string())
                    .bind("2026-11-27T02:00:00.000000Z")
                    .bind(vec![0_u8; 32])
                    .execute(pool)
                    .await
                    .expect("insert");
                n += 1;
            }
        }
        Database::Sqlite(pool) => {
            sqlx::query(&create.replace("BYTEA", "BLOB")).execute(pool).await.expect("create");
            let insert = insert.replace('$', "?");
            while Instant::now() < deadline {
                sqlx::query(&insert)
                    .bind(n)
                    .bind(uuid::Uuid::now_v7().to_string())
                    .bind("comment.ingested")
                    .bind(n.to_string())
                    .bind("2026-11-27T02:00:00.000000Z")
                    .bind(vec![0_u8; 32])
                    .execute(pool)
                    .await
                    .expect("insert");
                n += 1;
            }
        }
    }
    n as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    let seconds: u64 = std::env::var("GOVMEDIA_BENCH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(3);
    println!("audit append benchmark: {seconds} s per measurement");
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        for backend in [TestBackend::Postgres, TestBackend::Sqlite] {
            let w = World::start(TestDatabase::new(backend).await).await;
            let baseline = plain_inserts(&w.audit_db, seconds).await;
            println!("[{backend:?}] baseline: plain single-row INSERT loop, autocommit      {baseline:>10.0} rows/s");
            for (callers, batch) in [(1, 1), (16, 1), (4, 100)] {
                let rate = appends(&w, seconds, callers, batch).await;
                println!(
                    "[{backend:?}] AppendEvents, {callers:>2} callers x {batch:>3} events per call      {rate:>10.0} events/s  ({:.1}x baseline)",
                    rate / baseline
                );
            }
            let report = w.client().verify_log(with_token(pb::VerifyLogRequest::default(), &w.auditor_token)).await.expect("verify").into_inner();
            assert!(report.intact, "{}", report.detail);
            println!("[{backend:?}] chain of {} events verified intact", report.verified_event_count);
        }
    });
}
