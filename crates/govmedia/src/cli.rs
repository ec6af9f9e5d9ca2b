//! The operators' command line: sign in once, then work through the gateway. The session
//! (access and refresh tokens, the gateway's address) is kept in the user's config folder
//! (`~/.config/govmedia/session.json`, or `GOVMEDIA_CLI_CONFIG_DIR`), owner-only; an
//! expired access token is refreshed with the refresh token. Output is a readable summary,
//! or JSON with `--json` for scripts. A refused call prints the rule it violated.

use std::io::{BufRead, Write};
use std::path::PathBuf;

use govmedia_proto::identity::v1 as ipb;
use govmedia_proto::identity::v1::authentication_service_client::AuthenticationServiceClient;
use serde::{Deserialize, Serialize};
use tonic::transport::Channel;

/// The default gateway, as `govmedia up` starts it.
pub const DEFAULT_GATEWAY: &str = "http://127.0.0.1:50051";

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A signed-in session as kept on disk.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    /// The gateway signed in through.
    pub gateway: String,
    /// Who.
    pub username: String,
    /// The short-lived token.
    pub access_token: String,
    /// The token that renews it.
    pub refresh_token: String,
}

fn config_dir() -> Result<PathBuf, BoxError> {
    if let Some(dir) = std::env::var_os("GOVMEDIA_CLI_CONFIG_DIR") {
        return Ok(PathBuf::from(dir));
    }
    Ok(dirs::config_dir().ok_or("no config folder for this user (set GOVMEDIA_CLI_CONFIG_DIR)")?.join("govmedia"))
}

fn session_path() -> Result<PathBuf, BoxError> {
    Ok(config_dir()?.join("session.json"))
}

fn save(session: &Session) -> Result<(), BoxError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let dir = config_dir()?;
    std::fs::create_dir_all(&dir)?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
    let path = session_path()?;
    let mut file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&path)?;
    // An existing file keeps its mode on open: make sure it is the owner's only.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    file.write_all(serde_json::to_string_pretty(session)?.as_bytes())?;
    Ok(())
}

fn load() -> Result<Session, BoxError> {
    let path = session_path()?;
    let text = std::fs::read_to_string(&path).map_err(|_| "not signed in: run `govmedia login`")?;
    Ok(serde_json::from_str(&text)?)
}

async fn connect(gateway: &str) -> Result<Channel, BoxError> {
    tonic::transport::Endpoint::from_shared(gateway.to_owned())?
        .connect()
        .await
        .map_err(|e| format!("cannot reach the gateway at {gateway}: {e}").into())
}

fn authorized<T>(message: T, token: &str) -> Result<tonic::Request<T>, BoxError> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert("authorization", format!("Bearer {token}").parse()?);
    Ok(request)
}

/// A refusal as an operator reads it: the code, the message, and each violated rule or
/// malformed field.
pub fn explain(status: &tonic::Status) -> String {
    use tonic_types::StatusExt;
    let mut text = format!("{:?}: {}", status.code(), status.message());
    if let Some(p) = status.get_details_precondition_failure() {
        for v in p.violations {
            text.push_str(&format!("\n  rule {} ({}): {}", v.r#type, v.subject, v.description));
        }
    }
    if let Some(b) = status.get_details_bad_request() {
        for v in b.field_violations {
            text.push_str(&format!("\n  field {}: {}", v.field, v.description));
        }
    }
    text
}

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

/// The commands.
#[derive(Debug, clap::Parser)]
#[command(name = "govmedia", about = "The govmedia command line")]
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
    Whoami {
        /// JSON for scripts.
        #[arg(long)]
        json: bool,
    },
    /// End the session here and at identity.
    Logout,
}

/// Runs a command; `Err` carries the message to print.
pub async fn run(command: Command) -> Result<(), BoxError> {
    let mut stdin = std::io::stdin().lock();
    match command {
        Command::Login { gateway, username, password_stdin } => {
            let password = read_secret("password: ", password_stdin, &mut stdin)?;
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
            Ok(())
        }
        Command::ChangePassword { password_stdin } => {
            let mut session = load()?;
            let current = read_secret("current password: ", password_stdin, &mut stdin)?;
            let new = read_secret("new password: ", password_stdin, &mut stdin)?;
            let channel = connect(&session.gateway).await?;
            let request = authorized(
                ipb::ChangePasswordRequest { current_password: current, new_password: new },
                &session.access_token,
            )?;
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
        Command::Whoami { json } => {
            let (session, me) = with_refresh(|channel, token| async move {
                AuthenticationServiceClient::new(channel)
                    .get_current_principal(authorized(ipb::GetCurrentPrincipalRequest {}, &token)?)
                    .await
                    .map(tonic::Response::into_inner)
                    .map_err(Into::into)
            })
            .await?;
            let principal = me.principal.unwrap_or_default();
            let roles: Vec<serde_json::Value> = me
                .role_bindings
                .iter()
                .map(|b| {
                    let scope = b.scope.clone().unwrap_or_default();
                    serde_json::json!({"role": b.role, "scope_kind": scope.kind, "scope_id": scope.id})
                })
                .collect();
            let mut out = std::io::stdout().lock();
            if json {
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
                    let scope = b.scope.clone().unwrap_or_default();
                    let kind = govmedia_proto::common::v1::ScopeKind::try_from(scope.kind)
                        .map(|k| k.as_str_name().trim_start_matches("SCOPE_KIND_").to_lowercase())
                        .unwrap_or_default();
                    writeln!(out, "  {:<22} {kind} {}", b.role, scope.id)?;
                }
            }
            Ok(())
        }
        Command::Logout => {
            let session = load()?;
            if let Ok(channel) = connect(&session.gateway).await {
                // An expired session is ended anyway; forget it here either way.
                let _ = AuthenticationServiceClient::new(channel)
                    .logout(authorized(ipb::LogoutRequest {}, &session.access_token)?)
                    .await;
            }
            std::fs::remove_file(session_path()?)?;
            eprintln!("signed out");
            Ok(())
        }
    }
}

/// Calls with the session's access token; when it has expired, renews it once with the
/// refresh token and calls again.
async fn with_refresh<T, F, Fut>(call: F) -> Result<(Session, T), BoxError>
where
    F: Fn(Channel, String) -> Fut,
    Fut: std::future::Future<Output = Result<T, BoxError>>,
{
    let mut session = load()?;
    let channel = connect(&session.gateway).await?;
    match call(channel.clone(), session.access_token.clone()).await {
        Ok(v) => Ok((session, v)),
        Err(e) if e.downcast_ref::<tonic::Status>().is_some_and(|s| s.code() == tonic::Code::Unauthenticated) => {
            let tokens = AuthenticationServiceClient::new(channel.clone())
                .refresh_session(ipb::RefreshSessionRequest { refresh_token: session.refresh_token.clone() })
                .await
                .map_err(|s| format!("the session has ended; sign in again: {}", explain(&s)))?
                .into_inner()
                .tokens
                .ok_or("identity answered without tokens")?;
            session.access_token = tokens.access_token;
            session.refresh_token = tokens.refresh_token;
            save(&session)?;
            let v = call(channel, session.access_token.clone()).await?;
            Ok((session, v))
        }
        Err(e) => Err(match e.downcast::<tonic::Status>() {
            Ok(status) => explain(&status).into(),
            Err(e) => e,
        }),
    }
}
