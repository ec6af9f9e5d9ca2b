//! `govmedia-faults <scenario>`: runs one scenario of the fault suite in full and prints
//! its figures; exits non-zero when a promise was broken.

// A report is the program's output.
#![allow(clippy::print_stdout)]

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "govmedia-faults", about = "The govmedia fault suite: break things on purpose, measure the promises")]
struct Cli {
    #[command(subcommand)]
    scenario: Scenario,
    /// Where the scenario keeps its files (a fresh temporary folder by default).
    #[arg(long, global = true)]
    work: Option<std::path::PathBuf>,
}

#[derive(Debug, Subcommand)]
enum Scenario {
    /// Audit completeness: audited changes across identity, content and interaction
    /// while the audit service is killed and restarted; every change recorded exactly
    /// once, the chain intact (R1.3.5, R9.2). Runs the `govmedia` binary as processes.
    AuditCompleteness {
        /// Audited changes to make.
        #[arg(long, default_value_t = 10_000)]
        changes: u32,
        /// Callers making them at once.
        #[arg(long, default_value_t = 8)]
        callers: u32,
        /// The audit service is up for a random time up to this, then killed.
        #[arg(long, default_value = "3s", value_parser = govmedia_kit::config::parse_duration)]
        up_at_most: std::time::Duration,
        /// And down for a random time up to this.
        #[arg(long, default_value = "3s", value_parser = govmedia_kit::config::parse_duration)]
        down_at_most: std::time::Duration,
        /// The random seed of the kill schedule.
        #[arg(long)]
        seed: Option<u64>,
        #[command(flatten)]
        processes: Processes,
    },
    /// Exactly-once publishing: two content processes on one database publish due
    /// publications to a webhook receiver; one is SIGKILLed mid-run. Each approved
    /// publication reaches the receiver as exactly one post, nothing unapproved does
    /// (R3.3.1, R3.2.1).
    ExactlyOncePublishing {
        /// Approved publications due at once.
        #[arg(long, default_value_t = 1000)]
        publications: u32,
        /// Accounts they go to (every draft targets each).
        #[arg(long, default_value_t = 10)]
        accounts: u32,
        /// The share delivered before one replica is killed.
        #[arg(long, default_value_t = 0.3)]
        kill_after: f64,
        /// The receiver answers after a random time up to this.
        #[arg(long, default_value = "20ms", value_parser = govmedia_kit::config::parse_duration)]
        receiver_latency: std::time::Duration,
        /// How long a replica's claim holds.
        #[arg(long, default_value = "10s", value_parser = govmedia_kit::config::parse_duration)]
        lease: std::time::Duration,
        #[command(flatten)]
        processes: Processes,
    },
    /// Database restart: PostgreSQL (a cluster of the scenario's own) restarted under
    /// load; every service answers again within 5 s without a restart of its own, and no
    /// acknowledged write is missing (R1.3.5).
    DatabaseRestart {
        /// Audited changes to make at least.
        #[arg(long, default_value_t = 3000)]
        changes: u32,
        /// Callers making them at once.
        #[arg(long, default_value_t = 8)]
        callers: u32,
        /// Restarts of the server.
        #[arg(long, default_value_t = 5)]
        restarts: u32,
        /// Load between restarts.
        #[arg(long, default_value = "4s", value_parser = govmedia_kit::config::parse_duration)]
        every: std::time::Duration,
        /// How the server stops: immediate (a crash) or fast (a clean shutdown).
        #[arg(long, default_value = "immediate", value_parser = ["immediate", "fast"])]
        mode: String,
        #[command(flatten)]
        binary: Binary,
    },
    /// Overload at the gateway: twice the measured capacity offered; the excess refused
    /// fast with retry info, the admitted calls' p99 at most twice the unloaded p99, the
    /// gateway's memory bounded.
    GatewayOverload {
        /// Calls in the unloaded phase.
        #[arg(long, default_value_t = 2000)]
        unloaded_calls: u32,
        /// How long capacity is measured.
        #[arg(long, default_value = "10s", value_parser = govmedia_kit::config::parse_duration)]
        capacity_for: std::time::Duration,
        /// How long the overload lasts.
        #[arg(long, default_value = "20s", value_parser = govmedia_kit::config::parse_duration)]
        overload_for: std::time::Duration,
        /// The overload as a multiple of the capacity.
        #[arg(long, default_value_t = 2.0)]
        factor: f64,
        #[command(flatten)]
        processes: Processes,
    },
    /// Tampering with the audit log: random single-row changes to copies of a real log,
    /// each to be found with its first bad event named (R1.3.5).
    Tampering {
        /// Tampered copies to check.
        #[arg(long, default_value_t = 1000)]
        cases: u32,
        /// Events in the log.
        #[arg(long, default_value_t = 5000)]
        events: u32,
        /// A signed checkpoint after this many events.
        #[arg(long, default_value_t = 250)]
        checkpoint_every: i64,
        /// The random seed (a fresh one by default; printed to rerun the same cases).
        #[arg(long)]
        seed: Option<u64>,
    },
}

/// The `govmedia` binary the processes run.
#[derive(Debug, clap::Args)]
struct Binary {
    /// The `govmedia` binary (by default the one beside this program: `cargo build
    /// --release -p govmedia` first).
    #[arg(long)]
    govmedia: Option<std::path::PathBuf>,
}

/// Where the processes' binary and database come from.
#[derive(Debug, clap::Args)]
struct Processes {
    #[command(flatten)]
    binary: Binary,
    /// A PostgreSQL database on a server where roles may be created; by default one the
    /// test kit provides (`TEST_DATABASE_URL`, or a throwaway cluster from the local
    /// PostgreSQL binaries).
    #[arg(long, env = "FAULTS_DATABASE_URL")]
    database_url: Option<String>,
}

impl Binary {
    fn govmedia(&self) -> Result<std::path::PathBuf, govmedia_faults::ScenarioError> {
        let beside = std::env::current_exe().ok().and_then(|e| e.parent().map(|d| d.join("govmedia")));
        let path = self.govmedia.clone().or(beside).unwrap_or_default();
        if path.is_file() {
            Ok(path)
        } else {
            Err(govmedia_faults::ScenarioError::Setup(format!(
                "no govmedia binary at {}: build it first (cargo build --release -p govmedia) or name it with --govmedia",
                path.display()
            )))
        }
    }
}

impl Processes {
    /// The binary, the test kit's database if none was named (kept for the run), and the
    /// database's URL.
    async fn resolve(
        &self,
    ) -> Result<(std::path::PathBuf, Option<govmedia_testkit::TestDatabase>, String), govmedia_faults::ScenarioError>
    {
        let govmedia = self.binary.govmedia()?;
        Ok(match &self.database_url {
            Some(url) => (govmedia, None, url.clone()),
            None => {
                let db = govmedia_testkit::TestDatabase::postgres().await;
                let url = db.url().expose().to_owned();
                (govmedia, Some(db), url)
            }
        })
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("govmedia-faults: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let temporary = match &cli.work {
        Some(_) => None,
        None => match tempfile::tempdir() {
            Ok(t) => Some(t),
            Err(e) => {
                eprintln!("govmedia-faults: cannot make a work folder: {e}");
                return ExitCode::FAILURE;
            }
        },
    };
    let work = cli.work.clone().or_else(|| temporary.as_ref().map(|t| t.path().to_owned())).unwrap_or_default();
    if let Err(e) = std::fs::create_dir_all(&work) {
        eprintln!("govmedia-faults: cannot make {}: {e}", work.display());
        return ExitCode::FAILURE;
    }
    let report = runtime.block_on(async {
        match cli.scenario {
            Scenario::Tampering { cases, events, checkpoint_every, seed } => {
                let options = govmedia_faults::tampering::Options {
                    cases,
                    events,
                    checkpoint_every,
                    seed: seed.unwrap_or_else(rand::random),
                };
                govmedia_faults::tampering::run(&work, &options).await
            }
            Scenario::AuditCompleteness { changes, callers, up_at_most, down_at_most, seed, processes } => {
                let options = govmedia_faults::audit_completeness::Options {
                    changes,
                    callers,
                    up_at_most,
                    down_at_most,
                    seed: seed.unwrap_or_else(rand::random),
                };
                let (govmedia, _provided, url) = processes.resolve().await?;
                govmedia_faults::audit_completeness::run(&govmedia, &url, &work, &options).await
            }
            Scenario::DatabaseRestart { changes, callers, restarts, every, mode, binary } => {
                let options = govmedia_faults::database_restart::Options { changes, callers, restarts, every, mode };
                govmedia_faults::database_restart::run(&binary.govmedia()?, &work, &options).await
            }
            Scenario::GatewayOverload { unloaded_calls, capacity_for, overload_for, factor, processes } => {
                let options = govmedia_faults::overload::Options { unloaded_calls, capacity_for, overload_for, factor };
                let (govmedia, _provided, url) = processes.resolve().await?;
                govmedia_faults::overload::run(&govmedia, &url, &work, &options).await
            }
            Scenario::ExactlyOncePublishing {
                publications,
                accounts,
                kill_after,
                receiver_latency,
                lease,
                processes,
            } => {
                let options = govmedia_faults::exactly_once::Options {
                    publications,
                    accounts,
                    kill_after,
                    receiver_latency,
                    lease,
                };
                let (govmedia, _provided, url) = processes.resolve().await?;
                govmedia_faults::exactly_once::run(&govmedia, &url, &work, &options).await
            }
        }
    });
    match report {
        Ok(report) => {
            println!("{report}");
            if report.holds() { ExitCode::SUCCESS } else { ExitCode::from(1) }
        }
        Err(e) => {
            eprintln!("govmedia-faults: the scenario could not run: {e}");
            ExitCode::from(2)
        }
    }
}
