//! Comment ingest benchmark: comments per second through `IngestComments` — screening
//! through the audit service, moderation rules, deadlines on the business calendar, the
//! insert and one audit record per comment in the outbox — over loopback gRPC with real
//! identity and audit, on PostgreSQL and on a SQLite file; beside the baseline of the
//! bare screening of the same comments in the same batches (`ScreenText` on the same
//! audit service), which is the part of ingest the interaction service cannot speed up.
//!
//! Run: `cargo bench -p govmedia-interaction --bench ingest` (GOVMEDIA_BENCH_SECONDS sets
//! each measurement's length, default 5; GOVMEDIA_BENCH_BATCH the batch size, default
//! 100). PostgreSQL comes from the test kit (GOVMEDIA_TEST_DATABASE_URL or a private
//! server); without one only SQLite is measured and the line says so.

// A benchmark exists to print its figures.
#![allow(clippy::print_stdout)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::{Desk, desk, incoming};
use govmedia_proto::audit::v1 as apb;
use govmedia_proto::common::v1 as cpb;
use govmedia_proto::interaction::v1 as pb;
use govmedia_testkit::{TestDatabase, with_token};

/// The kinds of comment a bureau account sees, most of them ordinary.
const TEXTS: [&str; 8] = [
    "请问新版社保卡在哪里领取？需要带什么材料？",
    "老旧小区加装电梯什么时候开始报名？",
    "点赞！这次政策解读很清楚。",
    "垃圾分类的投放时间能不能再延长一些？",
    "你们这帮傻逼只会发通知",
    "附件为机密文件，大家转发一下",
    "我的电话是13800138000，请联系我",
    "希望尽快解决交通拥堵问题，谢谢！",
];

fn batch(round: usize, size: usize) -> Vec<pb::IncomingComment> {
    (0..size).map(|i| incoming(&format!("b{round}-{i}"), TEXTS[(round + i) % TEXTS.len()])).collect()
}

fn seconds() -> Duration {
    Duration::from_secs(std::env::var("GOVMEDIA_BENCH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(5))
}

fn batch_size() -> usize {
    std::env::var("GOVMEDIA_BENCH_BATCH").ok().and_then(|s| s.parse().ok()).unwrap_or(100)
}

/// Comments per second through IngestComments.
async fn ingest(d: &Desk, size: usize) -> f64 {
    let deadline = Instant::now() + seconds();
    let start = Instant::now();
    let (mut round, mut comments) = (0, 0usize);
    while Instant::now() < deadline {
        let answer = d.ingest(batch(round, size)).await;
        assert_eq!(answer.ingested_count as usize, size, "every comment of a batch is new");
        comments += size;
        round += 1;
    }
    comments as f64 / start.elapsed().as_secs_f64()
}

/// Comments per second through ScreenText alone, the same batches.
async fn screening(d: &Desk, size: usize) -> f64 {
    let mut client = d.i.world.screening();
    let deadline = Instant::now() + seconds();
    let start = Instant::now();
    let (mut round, mut comments) = (0, 0usize);
    while Instant::now() < deadline {
        let texts = batch(round, size)
            .into_iter()
            .enumerate()
            .map(|(i, c)| apb::TextToScreen { key: i.to_string(), text: c.text })
            .collect();
        client
            .screen_text(with_token(
                apb::ScreenTextRequest { context: cpb::ScreeningContext::Comment as i32, texts },
                &d.i.world.content_token,
            ))
            .await
            .expect("screened");
        comments += size;
        round += 1;
    }
    comments as f64 / start.elapsed().as_secs_f64()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let size = batch_size();
    println!("comment ingest, batches of {size}, {}s per figure", seconds().as_secs());
    let mut backends = vec![("sqlite", TestDatabase::sqlite())];
    match TestDatabase::try_postgres().await {
        Ok(db) => backends.insert(0, ("postgres", db)),
        Err(e) => println!("postgres: not measured ({e})"),
    }
    for (name, db) in backends {
        let d = desk(db).await;
        // Warm up connections, caches and the lexicon automaton.
        d.ingest(batch(usize::MAX / 2, size)).await;
        let bare = screening(&d, size).await;
        let ingested = ingest(&d, size).await;
        println!(
            "{name:>8}: ingest {ingested:>8.0} comments/s   bare screening {bare:>8.0} comments/s   ingest/screening {:.2}",
            ingested / bare
        );
    }
}
