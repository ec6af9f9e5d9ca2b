//! Content lifecycle benchmark: drafts per second through the whole workflow — create,
//! submit (with screening through the audit service), three review approvals, three
//! proofreading passes, scheduling and publishing by the scheduler through the archive
//! connector — over loopback gRPC with real identity and audit, on PostgreSQL; beside
//! pgbench's TPC-B figure measured on the same PostgreSQL in the same run (the baseline:
//! what the database alone does with small write transactions).
//!
//! Run: `cargo bench -p govmedia-content --bench lifecycle` (GOVMEDIA_BENCH_SECONDS sets
//! each measurement's length, default 5). pgbench is looked up on PATH and under
//! /usr/lib/postgresql/*/bin; without it the baseline line says so.

// A benchmark exists to print its figures.
#![allow(clippy::print_stdout)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{Desk, approve, create, desk, submit};
use govmedia_content::scheduler::{Scheduler, SchedulerSettings};
use govmedia_proto::common::v1 as cpb;
use govmedia_proto::content::v1 as pb;
use govmedia_testkit::{TestBackend, TestDatabase, with_token};
use govmedia_world::rid;

const CONCURRENCY: usize = 4;

/// One draft from creation to published.
async fn lifecycle(d: &Desk, publisher: &str, scheduler: &Scheduler, published: &AtomicUsize) {
    let draft = submit(d, &create(d, "市局发布今日工作动态，请市民关注。").await).await.expect("submitted");
    let draft = approve(d, &draft, pb::ReviewStage::Department, &d.reviewer).await.expect("department");
    let draft = approve(d, &draft, pb::ReviewStage::SupervisingLeader, &d.leader).await.expect("supervising");
    let draft = approve(d, &draft, pb::ReviewStage::PrincipalLeader, &d.principal).await.expect("principal");
    for token in [&d.author, &d.reviewer2, &d.reviewer] {
        d.c.drafts()
            .sign_off_proofreading(with_token(
                pb::SignOffProofreadingRequest {
                    request_id: rid(),
                    draft_id: draft.id.clone(),
                    version: draft.current_version,
                    note: String::new(),
                },
                token,
            ))
            .await
            .expect("proofread");
    }
    d.c.publications()
        .schedule_publication(with_token(
            pb::SchedulePublicationRequest {
                request_id: rid(),
                draft_id: draft.id.clone(),
                platform_account_id: d.account.clone(),
                scheduled_time: None,
            },
            publisher,
        ))
        .await
        .expect("scheduled");
    let tick = scheduler.tick().await.expect("tick");
    published.fetch_add(tick.published, Ordering::SeqCst);
}

fn pgbench() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join("pgbench"));
    let installed = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|version| version.path().join("bin/pgbench"));
    on_path.chain(installed).find(|p| p.is_file())
}

/// pgbench's TPC-B-like run on `url`: transactions per second, or why there is none.
fn tpc_b(url: &str, seconds: u64) -> Result<f64, String> {
    let pgbench = pgbench().ok_or("pgbench not found")?;
    let init =
        std::process::Command::new(&pgbench).args(["-i", "-q", "-s", "1", url]).output().map_err(|e| e.to_string())?;
    if !init.status.success() {
        return Err(String::from_utf8_lossy(&init.stderr).into_owned());
    }
    let clients = CONCURRENCY.to_string();
    let run = std::process::Command::new(&pgbench)
        .args(["-c", &clients, "-j", "2", "-T", &seconds.to_string(), url])
        .output()
        .map_err(|e| e.to_string())?;
    let out = String::from_utf8_lossy(&run.stdout);
    out.lines()
        .find(|l| l.starts_with("tps = "))
        .and_then(|l| l.trim_start_matches("tps = ").split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| format!("no tps in pgbench output: {out}"))
}

fn main() {
    let seconds: u64 = std::env::var("GOVMEDIA_BENCH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(5);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let database = TestDatabase::new(TestBackend::Postgres).await;
        let url = database.url().expose().to_owned();
        let d = Arc::new(desk(database).await);
        let (_, publisher) =
            d.c.world
                .staff("publisher", &d.department, &[("publisher", cpb::ScopeKind::Department, &d.department)])
                .await;
        let scheduler = Scheduler::new(d.c.core.clone(), d.c.connectors.clone(), SchedulerSettings::default());
        let published = Arc::new(AtomicUsize::new(0));

        // Warm up: one draft through everything.
        lifecycle(&d, &publisher, &scheduler, &published).await;
        published.store(0, Ordering::SeqCst);

        let deadline = Instant::now() + Duration::from_secs(seconds);
        let started = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..CONCURRENCY {
            let (d, publisher, scheduler, published) =
                (Arc::clone(&d), publisher.clone(), scheduler.clone(), Arc::clone(&published));
            tasks.push(tokio::spawn(async move {
                while Instant::now() < deadline {
                    lifecycle(&d, &publisher, &scheduler, &published).await;
                }
            }));
        }
        for t in tasks {
            t.await.expect("task");
        }
        // Anything a concurrent tick left behind goes out now, inside the measurement.
        loop {
            let tick = scheduler.tick().await.expect("tick");
            if tick.published == 0 {
                break;
            }
            published.fetch_add(tick.published, Ordering::SeqCst);
        }
        let elapsed = started.elapsed().as_secs_f64();
        let done = published.load(Ordering::SeqCst);
        println!(
            "{:<64} {:>8.1} drafts/s  ({done} drafts, {CONCURRENCY} at a time; each 9 calls, a screening and a scheduler tick)",
            "content lifecycle on PostgreSQL (create → published)",
            done as f64 / elapsed
        );
        match tpc_b(&url, seconds) {
            Ok(tps) => println!(
                "{:<64} {:>8.1} tps       (baseline: pgbench TPC-B, {CONCURRENCY} clients, same server)",
                "pgbench -c 4 -j 2, scale 1", tps
            ),
            Err(why) => println!("pgbench baseline not measured: {why}"),
        }
    });
}
