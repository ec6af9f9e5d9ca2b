//! Gateway overhead: requests per second and p50/p99 latency of a cheap read RPC
//! (`DirectoryService/GetDepartment` on the real identity service, token verified and
//! permission checked) called directly and through the gateway, with the same client
//! concurrency; and the gateway's extra CPU per request (this process's CPU time — the
//! client, identity and the gateway all run in it — per request through the gateway,
//! minus the same figure direct).
//!
//! Run: `cargo bench -p govmedia-gateway --bench gateway` (GOVMEDIA_BENCH_SECONDS sets each
//! measurement's length, default 5; GOVMEDIA_BENCH_CONCURRENCY the calls in flight,
//! default 16).

// A benchmark exists to print its figures.
#![allow(clippy::print_stdout)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use govmedia_gateway::{Upstream, server};
use govmedia_kit::auth::TokenVerifier;
use govmedia_kit::config::ServerSettings;
use govmedia_proto::identity::v1 as ipb;
use govmedia_proto::identity::v1::directory_service_client::DirectoryServiceClient;
use govmedia_testkit::{TestDatabase, TestServer, with_token};
use govmedia_world::World;
use tonic::transport::Channel;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}

/// This process's user + system CPU time, from /proc (clock ticks of 10 ms).
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<u64> = rest.split_whitespace().filter_map(|f| f.parse().ok()).collect();
    // utime and stime are fields 14 and 15 of the line; here 11 and 12 (0-based, after state).
    let ticks = fields.get(10).copied().unwrap_or(0) + fields.get(11).copied().unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

struct Figures {
    requests: usize,
    per_second: f64,
    p50: Duration,
    p99: Duration,
    cpu_per_request: Duration,
}

async fn measure(channel: Channel, token: &str, department: &str, seconds: u64, concurrency: u64) -> Figures {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let cpu_before = cpu_time();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let mut client = DirectoryServiceClient::new(channel.clone());
        let (token, department) = (token.to_owned(), department.to_owned());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while Instant::now() < deadline {
                let t = Instant::now();
                client
                    .get_department(with_token(ipb::GetDepartmentRequest { department_id: department.clone() }, &token))
                    .await
                    .expect("answered");
                latencies.push(t.elapsed());
            }
            latencies
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("task"));
    }
    let elapsed = started.elapsed();
    let cpu = cpu_time().saturating_sub(cpu_before);
    all.sort();
    let at = |q: f64| all[((all.len() as f64 - 1.0) * q).round() as usize];
    Figures {
        requests: all.len(),
        per_second: all.len() as f64 / elapsed.as_secs_f64(),
        p50: at(0.50),
        p99: at(0.99),
        cpu_per_request: cpu / u32::try_from(all.len().max(1)).unwrap_or(u32::MAX),
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let (seconds, concurrency) = (env("GOVMEDIA_BENCH_SECONDS", 5), env("GOVMEDIA_BENCH_CONCURRENCY", 16));
    let world = World::start(TestDatabase::sqlite()).await;
    let department = world.department("Publicity", "PUB").await;
    let upstreams = vec![Upstream::new("govmedia.identity.v1", &[world.identity.endpoint()]).expect("identity")];
    let verifier = Arc::new(TokenVerifier::from_identity(world.identity.channel()));
    let gateway = TestServer::start(server(&upstreams, ServerSettings::loopback(), verifier, None)).await;
    let token = world.admin_token.clone();
    // Warm both paths (connections, key caches).
    measure(world.identity.channel(), &token, &department, 1, 2).await;
    measure(gateway.channel(), &token, &department, 1, 2).await;

    println!("GetDepartment, {concurrency} calls in flight, {seconds}s each, 2 worker threads, one process");
    let direct = measure(world.identity.channel(), &token, &department, seconds, concurrency).await;
    let through = measure(gateway.channel(), &token, &department, seconds, concurrency).await;
    for (name, f) in [("direct to identity (baseline)", &direct), ("through the gateway", &through)] {
        println!(
            "{name:>30}: {:>7.0} req/s  p50 {:>6.2} ms  p99 {:>6.2} ms  ({} requests, {:.0} µs CPU each)",
            f.per_second,
            f.p50.as_secs_f64() * 1000.0,
            f.p99.as_secs_f64() * 1000.0,
            f.requests,
            f.cpu_per_request.as_secs_f64() * 1e6
        );
    }
    println!(
        "{:>30}: {:.0} µs CPU per request",
        "gateway's extra",
        (through.cpu_per_request.as_secs_f64() - direct.cpu_per_request.as_secs_f64()) * 1e6
    );
}
