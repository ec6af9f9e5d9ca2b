//! `govmedia`: the one binary of the product. `govmedia up` runs the whole system in one
//! process (see `up`). `govmedia serve <service>` runs one service
//! alone — identity, audit, content, interaction or the gateway — configured by a TOML
//! file, `GOVMEDIA_*` environment variables and options (`govmedia serve <service>
//! --help` lists every setting); this is what containers run.
//!
//! Exit codes: 0 after a clean shutdown or `--help`, 2 for a setting that is missing or
//! malformed (the message names it), 1 when the service fails while running.

// A command line prints its help and version to stdout.
#![allow(clippy::print_stdout)]

use std::ffi::OsString;
use std::process::ExitCode;

use govmedia_kit::config::{ConfigError, Environment, TelemetrySettings, load};

const SERVICES: &str = "identity, audit, content, interaction, gateway";

const USAGE: &str = "\
govmedia — run a government bureau's official social-media accounts by the rules

Usage:
  govmedia up [--data-dir DIR] [--listen-address HOST:PORT]
                                        run everything in one process on SQLite files in
                                        DIR (default ./govmedia-data); the gateway listens
                                        on HOST:PORT (default 127.0.0.1:50051)
  govmedia serve <service> [settings]   run one service: identity, audit, content,
                                        interaction or gateway
  govmedia serve <service> --help       every setting of that service, with its
                                        GOVMEDIA_* variable and default
  govmedia login --username NAME [--gateway URL] [--password-stdin]
                                        sign in through the gateway (default
                                        http://127.0.0.1:50051 or GOVMEDIA_GATEWAY)
  govmedia change-password [--password-stdin]
                                        change the password (current, then new)
  govmedia whoami                       who the session is, with its roles
  govmedia logout                       end the session

Daily work, through the gateway as the signed-in user (tables; --json for scripts;
`govmedia <command> --help` for each):
  govmedia users list|create|disable|enable|reset-password
  govmedia departments list|create
  govmedia roles catalogue|list|grant|revoke
  govmedia accounts list|show|create
  govmedia drafts list|create|show|submit|queue|approve|reject|request-changes|proofread
  govmedia schedule DRAFT_ID --account ID [--at TIME]
  govmedia publications list|show
  govmedia comments queue|show|reply|hide
  govmedia audit query|verify|export

Operations, on a service's own database:
  govmedia outbox dead-letters|redrive  audit records the audit service refused
  govmedia --help                       this text

Settings come from, in rising precedence: defaults, a TOML file (--config or
GOVMEDIA_CONFIG), GOVMEDIA_* environment variables, command-line options.
";

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    let words: Vec<String> = args.iter().map(|a| a.to_string_lossy().into_owned()).collect();
    match words.get(1).map(String::as_str) {
        Some("serve") => {
            let Some(service) = words.get(2) else {
                eprintln!("govmedia serve: name the service to run ({SERVICES})");
                return ExitCode::from(2);
            };
            // The service's own settings parser sees `govmedia-<service> [settings]`.
            let rest = std::iter::once(OsString::from(format!("govmedia-{service}"))).chain(args[3..].iter().cloned());
            serve(service, rest.collect())
        }
        Some("up") => {
            let rest = std::iter::once(OsString::from("govmedia up")).chain(args[2..].iter().cloned());
            let s: govmedia::up::UpSettings = match settings(rest.collect()) {
                Ok(s) => s,
                Err(code) => return code,
            };
            let telemetry = s.telemetry.clone();
            run("govmedia", &telemetry, move |shutdown| Box::pin(govmedia::up::up(s, shutdown, None)))
        }
        Some(name) if govmedia::cli::COMMANDS.contains(&name) => command(args),
        Some("--help" | "-h" | "help") | None => {
            print!("{USAGE}");
            ExitCode::SUCCESS
        }
        Some("--version" | "-V") => {
            println!("govmedia {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Some(other) => {
            eprintln!("govmedia: unknown command {other:?}\n\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

/// One of the operators' commands, on a small runtime.
fn command(args: Vec<OsString>) -> ExitCode {
    use clap::Parser;
    let command = match govmedia::cli::Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { ExitCode::from(2) } else { ExitCode::SUCCESS };
        }
    };
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
            run($name, &telemetry, move |shutdown| Box::pin($serve(s, shutdown)))
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
        let _guard = match govmedia_kit::telemetry::init(name, telemetry) {
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
                if e.to_string().starts_with("invalid setting") { ExitCode::from(2) } else { ExitCode::FAILURE }
            }
        }
    })
}
