//! Identity benchmark: logins per second beside the raw argon2id verifications per
//! second on the same machine (the baseline a login cannot beat), and CheckPermission
//! calls per second with p50/p99 latency over loopback gRPC, without and with the kit's
//! client cache, on SQLite and PostgreSQL.
//!
//! Run: `cargo bench -p govmedia-identity --bench identity` (GOVMEDIA_BENCH_SECONDS sets
//! the length of each measurement, default 3).

// A benchmark exists to print its figures.
#![allow(clippy::print_stdout)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Identity, authed};
use govmedia_domain::permission::Permission;
use govmedia_domain::scope::Resource;
use govmedia_identity::domain::password;
use govmedia_kit::access::{PermissionChecker, Subject};
use govmedia_kit::client::{CallCredentials, ClientCredentials};
use govmedia_kit::config::Secret;
use govmedia_proto::identity::v1 as pb;
use govmedia_testkit::{TestBackend, TestDatabase};

const STRONG: &str = "Harbour#Lights2026";
const CONCURRENCY: usize = 4;

struct Figures {
    per_second: f64,
    p50: Duration,
    p99: Duration,
}

fn summarise(mut latencies: Vec<Duration>, elapsed: Duration) -> Figures {
    latencies.sort();
    let at = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    Figures { per_second: latencies.len() as f64 / elapsed.as_secs_f64(), p50: at(0.50), p99: at(0.99) }
}

async fn run<F, Fut>(seconds: u64, task: F) -> Figures
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut handles = Vec::new();
    for _ in 0..CONCURRENCY {
        let task = task.clone();
        handles.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while Instant::now() < deadline {
                let t = Instant::now();
                task().await;
                latencies.push(t.elapsed());
            }
            latencies
        }));
    }
    let mut all = Vec::new();
    for h in handles {
        all.extend(h.await.expect("task"));
    }
    summarise(all, started.elapsed())
}

fn print(label: &str, f: &Figures) {
    println!(
        "{label:<58} {:>10.1}/s   p50 {:>8.2} ms   p99 {:>8.2} ms",
        f.per_second,
        f.p50.as_secs_f64() * 1e3,
        f.p99.as_secs_f64() * 1e3
    );
}

async fn bench_backend(backend: TestBackend, seconds: u64) {
    // The clock at the real time: service tokens are cached by their real remaining life.
    let id = Identity::start_at(TestDatabase::new(backend).await, chrono::Utc::now()).await;
    let otp = id.bootstrap.one_time_password.clone().expect("otp");
    let first = id
        .auth()
        .login(pb::LoginRequest { username: "admin".into(), password: otp.clone() })
        .await
        .expect("login")
        .into_inner();
    let admin = id
        .auth()
        .change_password(authed(
            pb::ChangePasswordRequest { current_password: otp, new_password: STRONG.into() },
            &first.tokens.expect("t").access_token,
        ))
        .await
        .expect("changed")
        .into_inner()
        .tokens
        .expect("tokens")
        .access_token;

    let auth = id.auth();
    let logins = run(seconds, move || {
        let mut auth = auth.clone();
        async move {
            auth.login(pb::LoginRequest { username: "admin".into(), password: STRONG.into() }).await.expect("login");
        }
    })
    .await;
    print(&format!("[{backend:?}] Login over loopback ({CONCURRENCY} clients)"), &logins);

    // The content service, provisioned as the installation does (no role grant gives
    // govmedia_service).
    let secret = "a-provisioned-bench-secret-of-32-characters";
    id.core.provision_service_principal("govmedia-content", secret).await.expect("provisioned");
    let service_id = id
        .directory()
        .list_service_principals(authed(pb::ListServicePrincipalsRequest::default(), &admin))
        .await
        .expect("listed")
        .into_inner()
        .service_principals
        .into_iter()
        .find(|p| p.client_id == "govmedia-content")
        .expect("the provisioned principal")
        .id;
    let credentials = CallCredentials::ClientCredentials(Arc::new(ClientCredentials::new(
        id.server.channel(),
        "govmedia-content".into(),
        Secret::new(secret),
    )));
    let principal = Subject::other(service_id.parse().expect("id"));
    for (label, ttl) in [("uncached", Duration::ZERO), ("cached 5 s", Duration::from_secs(5))] {
        let checker = Arc::new(PermissionChecker::new(id.server.channel(), credentials.clone(), ttl));
        checker.require(principal, Permission::AuditAppend, &Resource::GLOBAL).await.expect("warm up");
        let figures = run(seconds, move || {
            let checker = Arc::clone(&checker);
            async move {
                checker.require(principal, Permission::AuditAppend, &Resource::GLOBAL).await.expect("allowed");
            }
        })
        .await;
        print(&format!("[{backend:?}] CheckPermission, {label} ({CONCURRENCY} callers)"), &figures);
    }
}

fn main() {
    let seconds: u64 = std::env::var("GOVMEDIA_BENCH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(3);
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    println!("identity benchmark: {seconds} s per measurement, {cores} cores");

    // Baseline: raw argon2id verifications with the login's parameters, one per core.
    let hash = password::hash(STRONG).expect("hash");
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let threads: Vec<_> = (0..cores)
        .map(|_| {
            let hash = hash.clone();
            std::thread::spawn(move || {
                let mut n = 0_u64;
                while Instant::now() < deadline {
                    assert!(password::verify(&hash, STRONG));
                    n += 1;
                }
                n
            })
        })
        .collect();
    let total: u64 = threads.into_iter().map(|t| t.join().expect("thread")).sum();
    println!(
        "{:<58} {:>10.1}/s   (baseline: the most logins this machine can verify)",
        "raw argon2id verify (m=19 MiB, t=2, p=1), all cores",
        total as f64 / started.elapsed().as_secs_f64()
    );

    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        bench_backend(TestBackend::Sqlite, seconds).await;
        bench_backend(TestBackend::Postgres, seconds).await;
    });
}
