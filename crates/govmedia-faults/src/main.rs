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
