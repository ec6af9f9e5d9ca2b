//! The operators' command line: sign in once, then do the daily work through the gateway —
//! staff, departments and roles, platform accounts, drafts and their review, schedules and
//! publications, the comments queue, and the audit log. The session (access and refresh
//! tokens, the gateway's address) is kept in the user's config folder
//! (`~/.config/govmedia/session.json`, or `GOVMEDIA_CLI_CONFIG_DIR`), owner-only; an
//! expired access token is renewed with the refresh token. Output is a table, or JSON with
//! `--json` for scripts. A refused call prints the rule it violated; long operations
//! (verify, export) show their progress on a terminal.
//!
//! Layout: `session` (the kept session and the client), `output` (tables, JSON,
//! explanations), and one module per area of work: `people`, `accounts`, `content`,
//! `comments`, `audit`; `outbox` works on a service's database instead of the gateway.

pub mod accounts;
pub mod audit;
pub mod backup;
pub mod comments;
pub mod compliance;
pub mod content;
pub mod deployment;
pub mod escalations;
pub mod feedback;
pub mod incidents;
pub mod inspections;
pub mod outbox;
pub mod output;
pub mod people;
pub mod rectifications;
pub mod report;
pub mod security;
pub mod security_checks;
pub mod session;
pub mod violations;

use std::io::{BufRead, Write};

use govmedia_proto::identity::v1 as ipb;
use govmedia_proto::identity::v1::authentication_service_client::AuthenticationServiceClient;

pub use output::explain;
use session::{Client, Session, authorized, connect, save};

/// The default gateway, as `govmedia up` starts it.
pub const DEFAULT_GATEWAY: &str = "http://127.0.0.1:50051";

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn read_secret(prompt: &str, from_stdin: bool, stdin: &mut impl BufRead) -> Result<String, BoxError> {
    if from_stdin {
        let mut line = String::new();
        stdin.read_line(&mut line)?;
        let line = line.trim_end_matches(['\r', '\n']).to_owned();
        if line.is_empty() {
            return Err("expected a password on standard input".into());
        }
        return Ok(line);
    }
    Ok(rpassword::prompt_password(prompt)?)
}

/// A parsed command of the command line (the binary's clap definition parses it, beside
/// `up` and `serve`).
#[derive(Debug)]
pub struct Cli {
    /// Print JSON for scripts instead of tables.
    pub json: bool,
    /// What to do.
    pub command: Command,
}

/// The commands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Sign in through the gateway and keep the session.
    Login {
        /// The gateway.
        #[arg(long, env = "GOVMEDIA_GATEWAY", default_value = DEFAULT_GATEWAY)]
        gateway: String,
        /// The username.
        #[arg(long)]
        username: String,
        /// Read the password from standard input instead of prompting.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Change the password (required after the first login): current, then new.
    ChangePassword {
        /// Read both passwords from standard input, one per line.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Who the session is, and its roles.
    Whoami,
    /// End the session here and at identity.
    Logout,
    /// Staff users.
    #[command(subcommand)]
    Users(people::Users),
    /// Departments.
    #[command(subcommand)]
    Departments(people::Departments),
    /// Roles and who holds them where.
    #[command(subcommand)]
    Roles(people::Roles),
    /// The bureau's platform accounts.
    #[command(subcommand)]
    Accounts(accounts::Accounts),
    /// Drafts and their review.
    #[command(subcommand)]
    Drafts(content::Drafts),
    /// Schedule an approved, proofread draft on an account (publisher).
    Schedule(content::Schedule),
    /// Publications: scheduled, published, failed.
    #[command(subcommand)]
    Publications(content::Publications),
    /// The comments queue and its moderation.
    #[command(subcommand)]
    Comments(comments::Comments),
    /// Missed reply deadlines escalated to department heads.
    #[command(subcommand)]
    Escalations(escalations::Escalations),
    /// The audit log: query, verify, export.
    #[command(subcommand)]
    Audit(audit::Audit),
    /// Inspection readiness: each account's veto items and score, day by day.
    #[command(subcommand)]
    Compliance(compliance::Compliance),
    /// Rectification orders: issue, evidence, verification (R8.1.2).
    #[command(subcommand)]
    Rectifications(rectifications::Rectifications),
    /// Violations: the catalogue, the detectors' proposals, decisions (R9).
    #[command(subcommand)]
    Violations(violations::Violations),
    /// Public feedback about the accounts: record, triage, answer, close (R8.2).
    #[command(subcommand)]
    Feedback(feedback::Feedback),
    /// Inspections and random spot checks: draw a sample, judge it (R8.1.1).
    #[command(subcommand)]
    Inspections(inspections::Inspections),
    /// Information security: controls, checks and hidden dangers, incidents (R7.2).
    #[command(subcommand)]
    Security(security::Security),
    /// A service's audit outbox on its database: dead letters and their re-drive.
    #[command(subcommand)]
    Outbox(outbox::Outbox),
    /// Ask a service whether it serves (grpc.health.v1); exit 0 if so. For container
    /// health checks: the image has no shell or curl.
    Health(deployment::Health),
    /// Make the secrets a docker-compose or Kubernetes deployment mounts, one file each;
    /// existing ones are kept.
    Secrets(deployment::Secrets),
    /// Copy a `govmedia up` data folder while it runs: every SQLite database (a
    /// consistent snapshot), the secrets and the archive, with a manifest of checksums.
    Backup(backup::Backup),
    /// Restore a backup into a new data folder; the audit chain is verified first.
    Restore(backup::Restore),
}

/// Runs a command; `Err` carries the message to print.
pub async fn run(cli: Cli) -> Result<(), BoxError> {
    let json = cli.json;
    match cli.command {
        Command::Login { gateway, username, password_stdin } => login(gateway, username, password_stdin).await,
        Command::ChangePassword { password_stdin } => change_password(password_stdin).await,
        Command::Whoami => whoami(json).await,
        Command::Logout => logout().await,
        Command::Users(c) => c.run(&mut Client::open().await?, json).await,
        Command::Departments(c) => c.run(&mut Client::open().await?, json).await,
        Command::Roles(c) => c.run(&mut Client::open().await?, json).await,
        Command::Accounts(c) => c.run(&mut Client::open().await?, json).await,
        Command::Drafts(c) => c.run(&mut Client::open().await?, json).await,
        Command::Schedule(c) => c.run(&mut Client::open().await?, json).await,
        Command::Publications(c) => c.run(&mut Client::open().await?, json).await,
        Command::Comments(c) => c.run(&mut Client::open().await?, json).await,
        Command::Escalations(c) => c.run(&mut Client::open().await?, json).await,
        Command::Audit(c) => c.run(&mut Client::open().await?, json).await,
        Command::Compliance(c) => c.run(&mut Client::open().await?, json).await,
        Command::Rectifications(c) => c.run(&mut Client::open().await?, json).await,
        Command::Violations(c) => c.run(&mut Client::open().await?, json).await,
        Command::Feedback(c) => c.run(&mut Client::open().await?, json).await,
        Command::Inspections(c) => c.run(&mut Client::open().await?, json).await,
        Command::Security(c) => c.run(&mut Client::open().await?, json).await,
        Command::Outbox(c) => c.run(json).await,
        Command::Health(c) => c.run(json).await,
        Command::Secrets(c) => c.run(json),
        Command::Backup(c) => c.run(json).await,
        Command::Restore(c) => c.run(json).await,
    }
}

async fn login(gateway: String, username: String, password_stdin: bool) -> Result<(), BoxError> {
    let password = read_secret("password: ", password_stdin, &mut std::io::stdin().lock())?;
    let channel = connect(&gateway).await?;
    let answer = AuthenticationServiceClient::new(channel)
        .login(ipb::LoginRequest { username: username.clone(), password })
        .await
        .map_err(|s| explain(&s))?
        .into_inner();
    let tokens = answer.tokens.ok_or("identity answered without tokens")?;
    save(&Session {
        gateway,
        username: username.clone(),
        access_token: tokens.access_token,
        refresh_token: tokens.refresh_token,
    })?;
    if answer.password_change_required {
        eprintln!("signed in as {username}; the password must be changed now: `govmedia change-password`");
    } else {
        eprintln!("signed in as {username}");
    }
    if let Some(history) = answer.login_history.as_ref().filter(|h| !h.password_set_by.is_empty()) {
        eprintln!(
            "note: your password was set by {} at {}; if you did not ask for it, tell the security officer",
            history.password_set_by,
            history.password_set_time.map(|t| t.to_string()).unwrap_or_default()
        );
    }
    if let Some(history) = answer.login_history.filter(|h| h.failed_attempts > 0) {
        let when = |t: Option<prost_types::Timestamp>| t.map(|t| t.to_string()).unwrap_or_default();
        eprintln!(
            "warning: {} failed sign-in attempts since your last sign-in, the latest at {} from {}",
            history.failed_attempts,
            when(history.last_failed_attempt_time),
            history.last_failed_attempt_client_address
        );
        if history.throttled_until.is_some() {
            eprintln!(
                "warning: sign-ins from one address were throttled until {}; if this was not you, tell the security officer",
                when(history.throttled_until)
            );
        }
    }
    Ok(())
}

async fn change_password(password_stdin: bool) -> Result<(), BoxError> {
    let mut session = session::load()?;
    let mut stdin = std::io::stdin().lock();
    let current = read_secret("current password: ", password_stdin, &mut stdin)?;
    let new = read_secret("new password: ", password_stdin, &mut stdin)?;
    let channel = connect(&session.gateway).await?;
    let request =
        authorized(ipb::ChangePasswordRequest { current_password: current, new_password: new }, &session.access_token);
    let tokens = AuthenticationServiceClient::new(channel)
        .change_password(request)
        .await
        .map_err(|s| explain(&s))?
        .into_inner()
        .tokens
        .ok_or("identity answered without tokens")?;
    session.access_token = tokens.access_token;
    session.refresh_token = tokens.refresh_token;
    save(&session)?;
    eprintln!("password changed");
    Ok(())
}

async fn whoami(json: bool) -> Result<(), BoxError> {
    let mut client = Client::open().await?;
    let me = client
        .call(|channel, token| async move {
            AuthenticationServiceClient::new(channel)
                .get_current_principal(authorized(ipb::GetCurrentPrincipalRequest {}, &token))
                .await
        })
        .await?;
    let session = &client.session;
    let principal = me.principal.unwrap_or_default();
    let mut out = std::io::stdout().lock();
    if json {
        let roles: Vec<serde_json::Value> = me
            .role_bindings
            .iter()
            .map(|b| {
                let scope = b.scope.clone().unwrap_or_default();
                serde_json::json!({"role": b.role, "scope_kind": scope.kind, "scope_id": scope.id})
            })
            .collect();
        let value = serde_json::json!({
            "username": session.username,
            "principal_id": principal.id,
            "display_name": principal.display_name,
            "department_id": me.department_id,
            "password_change_required": me.password_change_required,
            "role_bindings": roles,
            "gateway": session.gateway,
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
    } else {
        writeln!(out, "{} ({}) via {}", session.username, principal.id, session.gateway)?;
        if me.password_change_required {
            writeln!(out, "the password must be changed: govmedia change-password")?;
        }
        for b in &me.role_bindings {
            let (kind, id) = people::scope_text(b.scope.as_ref());
            writeln!(out, "  {:<22} {kind} {id}", b.role)?;
        }
    }
    Ok(())
}

async fn logout() -> Result<(), BoxError> {
    let session = session::load()?;
    if let Ok(channel) = connect(&session.gateway).await {
        // An expired session is ended anyway; forget it here either way.
        let _ = AuthenticationServiceClient::new(channel)
            .logout(authorized(ipb::LogoutRequest {}, &session.access_token))
            .await;
    }
    std::fs::remove_file(session::session_path()?)?;
    eprintln!("signed out");
    Ok(())
}
