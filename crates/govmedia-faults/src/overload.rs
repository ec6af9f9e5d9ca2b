//! Overload at the gateway: twice what the deployment can serve is offered; the excess
//! must be refused fast (UNAVAILABLE or RESOURCE_EXHAUSTED, with retry info), the calls
//! let in must keep their latency (p99 at most twice the unloaded p99), and the gateway's
//! memory must stay bounded.
//!
//! The compose deployment runs as processes on PostgreSQL, with the gateway's per-caller
//! rate limit off (it is a different defence, against one caller; this is many callers
//! together). The call is an authenticated read through the gateway
//! (`DirectoryService/GetDepartment`: the gateway checks the token, identity checks it
//! again, asks its permission rules and reads the database). Three phases:
//!
//! 1. unloaded: one call at a time — the latency a caller sees when nothing waits;
//! 2. capacity: the most calls completed per second with 4, 8, 16 or 32 in flight;
//! 3. overload: calls started at twice that rate whatever the answers (an open loop, as
//!    independent callers behave), each answer's code and latency kept, the gateway's
//!    resident memory sampled.

use std::path::Path;
use std::time::{Duration, Instant};

use govmedia_proto::identity::v1 as ipb;
use tonic::transport::Channel;
use tonic_types::StatusExt;

use crate::ScenarioError;
use crate::deployment::{COMPONENTS, Deployment};
use crate::office::{Cli, authorized, gateway};
use crate::report::Report;

/// How long each phase runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Calls in the unloaded phase.
    pub unloaded_calls: u32,
    /// How long capacity is measured.
    pub capacity_for: Duration,
    /// How long the overload lasts.
    pub overload_for: Duration,
    /// The overload as a multiple of the capacity.
    pub factor: f64,
}

impl Default for Options {
    /// The full run: 2,000 unloaded calls, 10 s at capacity, 20 s at twice it.
    fn default() -> Self {
        Self {
            unloaded_calls: 2000,
            capacity_for: Duration::from_secs(10),
            overload_for: Duration::from_secs(20),
            factor: 2.0,
        }
    }
}

/// One answer: its gRPC code, its latency, whether a refusal said when to retry.
#[derive(Debug, Clone, Copy)]
struct Answer {
    code: tonic::Code,
    took: Duration,
    retry_info: bool,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn latencies(answers: &[Answer], ok: bool) -> Vec<Duration> {
    let mut out: Vec<Duration> = answers.iter().filter(|a| (a.code == tonic::Code::Ok) == ok).map(|a| a.took).collect();
    out.sort();
    out
}

/// The resident memory of process `pid`, in MiB.
fn resident_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

async fn call(channel: Channel, token: &str, department: &str) -> Answer {
    let started = Instant::now();
    let answer = ipb::directory_service_client::DirectoryServiceClient::new(channel)
        .get_department(authorized(ipb::GetDepartmentRequest { department_id: department.to_owned() }, token))
        .await;
    let took = started.elapsed();
    match answer {
        Ok(_) => Answer { code: tonic::Code::Ok, took, retry_info: false },
        Err(status) => Answer { code: status.code(), took, retry_info: status.get_details_retry_info().is_some() },
    }
}

/// The numbers of calls in flight the capacity is measured at.
const CAPACITY_LEVELS: [usize; 4] = [4, 8, 16, 32];

/// Keeps `in_flight` calls going for `lasting`: how many completed.
async fn closed_loop(
    channels: &[Channel],
    token: &str,
    department: &str,
    in_flight: usize,
    lasting: Duration,
) -> Result<u64, ScenarioError> {
    let until = Instant::now() + lasting;
    let mut workers = Vec::new();
    for w in 0..in_flight {
        let (channel, token, department) =
            (channels[w % channels.len()].clone(), token.to_owned(), department.to_owned());
        workers.push(tokio::spawn(async move {
            let mut done = 0_u64;
            while Instant::now() < until {
                if call(channel.clone(), &token, &department).await.code == tonic::Code::Ok {
                    done += 1;
                }
            }
            done
        }));
    }
    let mut completed = 0;
    for w in workers {
        completed += w.await.map_err(|e| ScenarioError::setup("a worker", e))?;
    }
    Ok(completed)
}

/// Runs the scenario with `govmedia` (the binary) on the PostgreSQL database at
/// `database_url`, in `work`.
pub async fn run(govmedia: &Path, database_url: &str, work: &Path, options: &Options) -> Result<Report, ScenarioError> {
    let mut deployment = Deployment::prepare(govmedia, database_url, work, "").await?;
    deployment.set("gateway", "GOVMEDIA_GATEWAY_RATE_LIMIT", "0");
    for name in COMPONENTS {
        deployment.start(name, Duration::from_secs(60)).await?;
    }
    let admin = Cli::administrator(govmedia, &deployment, work)?;
    let department = admin.json(&["departments", "create", "--name", "压力测试处", "--code", "LOAD"])?[0]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let token = admin.access_token()?;
    // A few connections, as several callers would open.
    let mut channels = Vec::new();
    for _ in 0..4 {
        channels.push(gateway(&deployment).await?);
    }
    let gateway_pid = deployment.pid("gateway").unwrap_or_default();

    // 1. Unloaded.
    let mut unloaded = Vec::new();
    for i in 0..options.unloaded_calls {
        unloaded.push(call(channels[i as usize % channels.len()].clone(), &token, &department).await);
    }
    let unloaded_ok = latencies(&unloaded, true);
    if unloaded_ok.len() != unloaded.len() {
        return Err(ScenarioError::Setup(format!(
            "{} of {} unloaded calls failed",
            unloaded.len() - unloaded_ok.len(),
            unloaded.len()
        )));
    }
    let unloaded_p99 = percentile(&unloaded_ok, 99.0);

    // 2. Capacity: the most completed per second, over a few numbers of calls in
    // flight (past the best, more in flight only waits or is refused).
    let mut capacity = 0.0_f64;
    let mut best_in_flight = 0;
    let step = options.capacity_for / CAPACITY_LEVELS.len() as u32;
    for in_flight in CAPACITY_LEVELS {
        let completed = closed_loop(&channels, &token, &department, in_flight, step).await?;
        let rate = completed as f64 / step.as_secs_f64();
        if rate > capacity {
            (capacity, best_in_flight) = (rate, in_flight);
        }
    }
    let memory_before = resident_mib(gateway_pid);

    // 3. Overload: an open loop at factor × capacity.
    let rate = capacity * options.factor;
    let interval = Duration::from_secs_f64(1.0 / rate.max(1.0));
    let started = Instant::now();
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut calls = tokio::task::JoinSet::new();
    let (mut offered, mut memory_peak) = (0_u64, memory_before);
    let mut sampled = Instant::now();
    while started.elapsed() < options.overload_for {
        ticker.tick().await;
        offered += 1;
        let (channel, token, department) =
            (channels[offered as usize % channels.len()].clone(), token.clone(), department.clone());
        calls.spawn(async move { call(channel, &token, &department).await });
        if sampled.elapsed() > Duration::from_millis(200) {
            memory_peak = memory_peak.max(resident_mib(gateway_pid));
            sampled = Instant::now();
        }
    }
    let mut answers = Vec::new();
    while let Some(answer) = calls.join_next().await {
        answers.push(answer.map_err(|e| ScenarioError::setup("a call", e))?);
    }
    let lasted = started.elapsed();
    memory_peak = memory_peak.max(resident_mib(gateway_pid));

    let admitted = latencies(&answers, true);
    let refused = latencies(&answers, false);
    let refusals: Vec<&Answer> = answers.iter().filter(|a| a.code != tonic::Code::Ok).collect();
    let clear = refusals
        .iter()
        .filter(|a| matches!(a.code, tonic::Code::Unavailable | tonic::Code::ResourceExhausted) && a.retry_info)
        .count();
    let other: Vec<String> = {
        let mut codes: Vec<String> = refusals
            .iter()
            .filter(|a| !matches!(a.code, tonic::Code::Unavailable | tonic::Code::ResourceExhausted))
            .map(|a| format!("{:?}", a.code))
            .collect();
        codes.sort();
        codes.dedup();
        codes
    };
    let admitted_p99 = percentile(&admitted, 99.0);
    let refused_p99 = percentile(&refused, 99.0);

    let mut report = Report::new(
        "gateway-overload",
        format!(
            "cargo run --release -p govmedia-faults -- gateway-overload --unloaded-calls {} --capacity-for {}ms --overload-for {}ms --factor {}",
            options.unloaded_calls,
            options.capacity_for.as_millis(),
            options.overload_for.as_millis(),
            options.factor
        ),
    );
    report.note(
        "unloaded (one call at a time)",
        format!("p50 {:.2?}, p99 {unloaded_p99:.2?} over {} calls", percentile(&unloaded_ok, 50.0), unloaded_ok.len()),
    );
    report.note("capacity", format!("{capacity:.0} calls/s (best with {best_in_flight} in flight)"));
    report.note(
        "offered",
        format!(
            "{offered} calls in {lasted:.1?} ({:.0}/s, {}× capacity)",
            offered as f64 / lasted.as_secs_f64(),
            options.factor
        ),
    );
    report.note(
        "admitted",
        format!(
            "{} ({:.0}/s), p50 {:.2?}",
            admitted.len(),
            admitted.len() as f64 / lasted.as_secs_f64(),
            percentile(&admitted, 50.0)
        ),
    );
    report.require(
        "admitted calls' p99",
        format!("{admitted_p99:.2?}"),
        &format!("≤ 2 × unloaded p99 = {:.2?}", unloaded_p99 * 2),
        admitted_p99 <= unloaded_p99 * 2,
    );
    report.require(
        "refused with UNAVAILABLE or RESOURCE_EXHAUSTED and retry info",
        format!("{clear} of {} refusals", refusals.len()),
        "all",
        clear == refusals.len(),
    );
    if !other.is_empty() {
        report.failures.push(format!("other answers: {}", other.join(", ")));
    }
    report.require(
        "refusals' p99",
        format!("{refused_p99:.2?}"),
        &format!("≤ 2 × unloaded p99 = {:.2?}", unloaded_p99 * 2),
        refused_p99 <= unloaded_p99 * 2,
    );
    report.require(
        "gateway resident memory",
        format!("{memory_before:.0} MiB at capacity, at most {memory_peak:.0} MiB under overload"),
        "≤ +64 MiB",
        memory_peak <= memory_before + 64.0,
    );
    deployment.remove(database_url).await?;
    Ok(report)
}
