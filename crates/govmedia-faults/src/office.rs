//! A bureau office for the process scenarios: its people at the command line (each with
//! their own session, as staff use `govmedia`), their tokens for calls made straight
//! over gRPC, and what a client does with an error (try again, same request id).

use std::path::{Path, PathBuf};

use govmedia_proto::identity::v1 as ipb;
use tonic::transport::Channel;

use crate::ScenarioError;
use crate::deployment::Deployment;

/// Debug for govmedia's own code; libraries stay at info (HTTP/2 frames and every SQL
/// statement's text would drown the rest, and carry no values). The secrets scans read
/// logs this talkative.
pub const DEBUG_LOGS: &str = "info,govmedia=debug,govmedia_kit=debug,govmedia_identity=debug,govmedia_audit=debug,\
                              govmedia_content=debug,govmedia_interaction=debug,govmedia_gateway=debug";

/// The administrator's own password after the first sign-in.
pub const ADMIN_PASSWORD: &str = "Fault#Suite2027!";
/// Every other person's own password after the first sign-in.
pub const STAFF_PASSWORD: &str = "Kill#Restart2027?";

/// A text field of a JSON answer, or empty.
pub fn text(value: &serde_json::Value, key: &str) -> String {
    value[key].as_str().unwrap_or_default().to_owned()
}

/// `message` with `token` as its bearer.
pub fn authorized<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Ok(value) = format!("Bearer {token}").parse() {
        request.metadata_mut().insert("authorization", value);
    }
    request
}

/// What a client tries again: the service or a dependency was away, or the call was
/// shed or cut off.
pub fn retryable(code: tonic::Code) -> bool {
    matches!(
        code,
        tonic::Code::Unavailable
            | tonic::Code::DeadlineExceeded
            | tonic::Code::ResourceExhausted
            | tonic::Code::Aborted
            | tonic::Code::Unknown
            | tonic::Code::Internal
            | tonic::Code::Cancelled
    )
}

/// Calls `call` until it is answered, as a careful client does: an answer that asks to
/// be tried again (shed by the gateway's rate limit, a service away) is, after the delay
/// its RetryInfo names (or 100 ms), for up to two minutes; the request inside keeps its
/// request id, so a change is made once however often it is sent.
pub async fn patiently<T, F, Fut>(what: &str, mut call: F) -> Result<T, ScenarioError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
{
    use tonic_types::StatusExt;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        match call().await {
            Ok(answer) => return Ok(answer.into_inner()),
            Err(status) if retryable(status.code()) && std::time::Instant::now() < deadline => {
                let delay = status
                    .get_details_retry_info()
                    .and_then(|r| r.retry_delay)
                    .unwrap_or(std::time::Duration::from_millis(100));
                tokio::time::sleep(delay.min(std::time::Duration::from_secs(5))).await;
            }
            Err(status) => return Err(ScenarioError::Setup(format!("{what}: {status:?}"))),
        }
    }
}

/// A new request id (UUID v7).
pub fn request_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// A channel to the deployment's gateway.
pub async fn gateway(deployment: &Deployment) -> Result<Channel, ScenarioError> {
    Channel::from_shared(deployment.endpoint("gateway"))
        .map_err(|e| ScenarioError::setup("the gateway's address", e))?
        .connect()
        .await
        .map_err(|e| ScenarioError::setup("connecting to the gateway", e))
}

/// Registers a platform integration as the service principal `client_id`, as another
/// government system would (there is no command for it): its id and client secret.
pub async fn register_integration(
    gateway: &Channel,
    admin_token: &str,
    client_id: &str,
) -> Result<(String, String), ScenarioError> {
    let created = ipb::directory_service_client::DirectoryServiceClient::new(gateway.clone())
        .create_service_principal(authorized(
            ipb::CreateServicePrincipalRequest {
                request_id: request_id(),
                service_principal: Some(ipb::ServicePrincipal {
                    client_id: client_id.to_owned(),
                    display_name: format!("{client_id} (platform integration)"),
                    ..Default::default()
                }),
            },
            admin_token,
        ))
        .await
        .map_err(|e| ScenarioError::setup("registering the integration", e))?
        .into_inner();
    Ok((created.service_principal.map(|p| p.id).unwrap_or_default(), created.client_secret))
}

/// One person at the command line, with their own session.
#[derive(Debug, Clone)]
pub struct Cli {
    govmedia: PathBuf,
    config: PathBuf,
    gateway: String,
}

impl Cli {
    /// `who` at the command line of `govmedia`, talking to `deployment`'s gateway, their
    /// session kept under `work/people/<who>`.
    pub fn new(govmedia: &Path, deployment: &Deployment, work: &Path, who: &str) -> Self {
        Self {
            govmedia: govmedia.to_owned(),
            config: work.join("people").join(who),
            gateway: deployment.endpoint("gateway"),
        }
    }

    /// The administrator, signed in for the first time with identity's announced
    /// one-time password and their own password set.
    pub fn administrator(govmedia: &Path, deployment: &Deployment, work: &Path) -> Result<Self, ScenarioError> {
        let admin = Self::new(govmedia, deployment, work, "admin");
        admin.first_sign_in("admin", &deployment.first_password()?, ADMIN_PASSWORD)?;
        Ok(admin)
    }

    /// Runs `govmedia args…` with `stdin`: what it printed.
    pub fn run(&self, args: &[&str], stdin: &str) -> Result<String, ScenarioError> {
        use std::io::Write;
        let mut child = std::process::Command::new(&self.govmedia)
            .args(args)
            .env("GOVMEDIA_CLI_CONFIG_DIR", &self.config)
            .env("GOVMEDIA_GATEWAY", &self.gateway)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| ScenarioError::setup("running govmedia", e))?;
        if let Some(mut input) = child.stdin.take() {
            input.write_all(stdin.as_bytes()).map_err(|e| ScenarioError::setup("writing to govmedia", e))?;
        }
        let out = child.wait_with_output().map_err(|e| ScenarioError::setup("running govmedia", e))?;
        if !out.status.success() {
            return Err(ScenarioError::Setup(format!("govmedia {args:?}: {}", String::from_utf8_lossy(&out.stderr))));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Runs `govmedia args… --json`: what it printed, parsed.
    pub fn json(&self, args: &[&str]) -> Result<serde_json::Value, ScenarioError> {
        let mut args = args.to_vec();
        args.push("--json");
        let out = self.run(&args, "")?;
        serde_json::from_str(&out).map_err(|e| ScenarioError::setup(&format!("govmedia {args:?} printed no JSON"), e))
    }

    /// Signs in with `one_time` and sets `own` as the password.
    pub fn first_sign_in(&self, username: &str, one_time: &str, own: &str) -> Result<(), ScenarioError> {
        self.run(&["login", "--username", username, "--password-stdin"], &format!("{one_time}\n"))?;
        self.run(&["change-password", "--password-stdin"], &format!("{one_time}\n{own}\n"))?;
        Ok(())
    }

    /// The session's access token.
    pub fn access_token(&self) -> Result<String, ScenarioError> {
        let session = std::fs::read_to_string(self.config.join("session.json"))
            .map_err(|e| ScenarioError::setup("reading the session", e))?;
        let session: serde_json::Value =
            serde_json::from_str(&session).map_err(|e| ScenarioError::setup("reading the session", e))?;
        Ok(text(&session, "access_token"))
    }

    /// As the administrator: creates `username` in `department`, grants each of `roles`
    /// there, and signs them in for the first time. Their id, their command line, and
    /// the one-time password they were given.
    pub fn add_person(
        &self,
        username: &str,
        display_name: &str,
        department: &str,
        roles: &[&str],
    ) -> Result<(String, Cli, String), ScenarioError> {
        let created = self.json(&[
            "users",
            "create",
            "--username",
            username,
            "--display-name",
            display_name,
            "--department",
            department,
        ])?;
        let (id, one_time) = (text(&created, "id"), text(&created, "one_time_password"));
        for role in roles {
            self.grant(&id, role, Some(department))?;
        }
        let person = Self { config: self.config.with_file_name(username), ..self.clone() };
        person.first_sign_in(username, &one_time, STAFF_PASSWORD)?;
        Ok((id, person, one_time))
    }

    /// As the administrator: registers the Weibo account `handle` of `department`, with
    /// `responsible` the person answering for it: its id.
    pub fn create_account(
        &self,
        handle: &str,
        display_name: &str,
        department: &str,
        responsible: &str,
    ) -> Result<String, ScenarioError> {
        let account = self.json(&[
            "accounts",
            "create",
            "--platform",
            "weibo",
            "--handle",
            handle,
            "--display-name",
            display_name,
            "--department",
            department,
            "--responsible",
            responsible,
        ])?;
        Ok(text(&account, "id"))
    }

    /// As the administrator: grants `role` to `principal` in `department`, or everywhere.
    pub fn grant(&self, principal: &str, role: &str, department: Option<&str>) -> Result<(), ScenarioError> {
        let mut args = vec!["roles", "grant", "--principal", principal, "--role", role, "--reason", "fault suite"];
        if let Some(department) = department {
            args.extend(["--department", department]);
        }
        self.json(&args).map(drop)
    }
}
