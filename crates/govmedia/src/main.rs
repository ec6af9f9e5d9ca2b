//! `govmedia`: the one binary of the product. `govmedia up` runs the whole system in one
//! process (see `up`). `govmedia serve <service>` runs one service
//! alone — identity, audit, content, interaction or the gateway — configured by a TOML
//! file, `GOVMEDIA_*` environment variables and options (`govmedia serve <service>
//! --help` lists every setting); this is what containers run. Every other command is the
//! staff's and operators' command line (`govmedia::cli`).
//!
//! One clap definition is the usage text of all of it. Exit codes: 0 after a clean
//! shutdown or `--help`, 2 for a command line or a setting that is missing or malformed
//! (the message names it), 1 when a command or a service fails while running.

// A command line prints its help and version to stdout.
#![allow(clippy::print_stdout)]

use std::ffi::OsString;
use std::process::ExitCode;

use clap::Parser;
use govmedia_kit::config::{ConfigError, Environment, TelemetrySettings, is_invalid_setting, load};

/// How settings reach a service, under every command's help.
const SETTINGS: &str = "\
Settings of `up` and `serve` come from, in rising precedence: defaults, a TOML file
(--config or GOVMEDIA_CONFIG), GOVMEDIA_* environment variables, command-line options.
Daily work goes through the gateway as the signed-in user (`govmedia login` first).";

/// The command line.
#[derive(Debug, clap::Parser)]
#[command(
    name = "govmedia",
    version,
    about = "govmedia — run a government bureau's official social-media accounts by the rules",
    after_help = SETTINGS,
    arg_required_else_help = true
)]
struct Govmedia {
    /// Print JSON for scripts instead of tables.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Top,
}

/// What to run.
#[derive(Debug, clap::Subcommand)]
enum Top {
    /// Run everything in one process on SQLite files in the data folder (or one
    /// PostgreSQL database); `govmedia up --help` lists its settings.
    #[command(disable_help_flag = true)]
    Up {
        /// The settings (`--data-dir DIR`, `--listen-address HOST:PORT`, …).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, value_name = "SETTINGS")]
        settings: Vec<OsString>,
    },
    /// Run one service: `govmedia serve <service> [settings]`, the service one of
    /// identity, audit, content, interaction or gateway; `govmedia serve <service> --help`
    /// lists every setting with its GOVMEDIA_* variable and default.
    #[command(disable_help_flag = true)]
    Serve {
        /// identity, audit, content, interaction or gateway.
        #[arg(value_name = "SERVICE")]
        service: String,
        /// The service's settings.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, value_name = "SETTINGS")]
        settings: Vec<OsString>,
    },
    #[command(flatten)]
    Work(govmedia::cli::Command),
}

const SERVICES: &str = "identity, audit, content, interaction, gateway";

fn main() -> ExitCode {
    let parsed = match Govmedia::try_parse() {
        Ok(p) => p,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { ExitCode::from(2) } else { ExitCode::SUCCESS };
        }
    };
    match parsed.command {
        Top::Up { settings: rest } => {
            let args = std::iter::once(OsString::from("govmedia up")).chain(rest);
            let s: govmedia::up::UpSettings = match settings(args.collect()) {
                Ok(s) => s,
                Err(code) => return code,
            };
            let telemetry = s.telemetry.clone();
            // Each component reports as itself, as under `serve`.
            let components = ["identity", "audit", "content", "interaction", "gateway"];
            run("govmedia", &components, &telemetry, move |shutdown| Box::pin(govmedia::up::up(s, shutdown, None)))
        }
        // The service's own settings parser sees `govmedia-<service> [settings]`.
        Top::Serve { service, settings: rest } => {
            let args = std::iter::once(OsString::from(format!("govmedia-{service}"))).chain(rest);
            serve(&service, args.collect())
        }
        Top::Work(command) => work(govmedia::cli::Cli { json: parsed.json, command }),
    }
}

/// One of the staff's and operators' commands, on a small runtime.
fn work(command: govmedia::cli::Cli) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("govmedia: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(govmedia::cli::run(command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("govmedia: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Loads a service's settings, or says why not (help is not an error).
fn settings<T: clap::Parser>(args: Vec<OsString>) -> Result<T, ExitCode> {
    match load::<T>(args, &Environment::from_process()) {
        Ok(s) => Ok(s),
        Err(ConfigError::Help(text)) => {
            print!("{text}");
            Err(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("{e}");
            Err(ExitCode::from(2))
        }
    }
}

type Served = Result<(), Box<dyn std::error::Error + Send + Sync>>;

fn serve(service: &str, args: Vec<OsString>) -> ExitCode {
    macro_rules! run {
        ($settings:ty, $name:literal, $serve:path) => {{
            let s: $settings = match settings(args) {
                Ok(s) => s,
                Err(code) => return code,
            };
            let telemetry = s.telemetry.clone();
            run($name, &[], &telemetry, move |shutdown| Box::pin($serve(s, shutdown)))
        }};
    }
    match service {
        "identity" => run!(govmedia_identity::IdentitySettings, "govmedia-identity", govmedia_identity::serve),
        "audit" => run!(govmedia_audit::AuditSettings, "govmedia-audit", govmedia_audit::serve),
        "content" => run!(govmedia_content::ContentSettings, "govmedia-content", govmedia_content::serve),
        "interaction" => {
            run!(govmedia_interaction::InteractionSettings, "govmedia-interaction", govmedia_interaction::serve)
        }
        "gateway" => run!(govmedia_gateway::GatewaySettings, "govmedia-gateway", govmedia_gateway::serve),
        other => {
            eprintln!("govmedia serve: unknown service {other:?} (one of {SERVICES})");
            ExitCode::from(2)
        }
    }
}

type ShutdownFuture = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// Runs a service on a multi-threaded runtime with telemetry, until Ctrl-C or SIGTERM.
fn run(
    name: &str,
    components: &[&'static str],
    telemetry: &TelemetrySettings,
    service: impl FnOnce(ShutdownFuture) -> std::pin::Pin<Box<dyn std::future::Future<Output = Served> + Send>>,
) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{name}: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let _guard = match govmedia_kit::telemetry::init_components(name, components, telemetry) {
            Ok(g) => g,
            Err(e) => {
                eprintln!("{name}: cannot start telemetry: {e}");
                return ExitCode::FAILURE;
            }
        };
        match service(Box::pin(govmedia_kit::server::shutdown_signal())).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!(error = %e, "{name} stopped with an error");
                eprintln!("{name}: {e}");
                // A setting refused before start is the operator's to fix: say so by code.
                if is_invalid_setting(e.as_ref()) { ExitCode::from(2) } else { ExitCode::FAILURE }
            }
        }
    })
}
