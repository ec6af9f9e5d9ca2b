//! deploy/docker-compose.yml run without Docker: every component as its own
//! `govmedia serve` process on PostgreSQL, with exactly the environment the compose file
//! gives its container (read from the file; host names mapped to loopback ports, mounted
//! secrets to the folder `govmedia secrets` made, the data volume to a folder), and the
//! database roles made by the shipped deploy/postgres/service-roles.sql as init.sh makes
//! them. Processes can be stopped, killed and started again one by one: what the fault
//! scenarios do to them, and what the compose test starts in the compose file's order.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::ScenarioError;

/// The components, in the compose file's start order.
pub const COMPONENTS: [&str; 5] = ["identity", "audit", "content", "interaction", "gateway"];

/// The components with a database of their own.
pub const DATABASE_COMPONENTS: [&str; 4] = ["identity", "audit", "content", "interaction"];

/// The repository's deploy folder.
pub fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy")
}

/// `${NAME-default}` and `${NAME:-default}` as docker-compose reads them, with `set` the
/// variables of the compose command's own environment.
fn interpolate(value: &str, set: &BTreeMap<&str, &str>) -> String {
    let mut out = String::new();
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let Some(end) = rest[start..].find('}').map(|e| e + start) else { break };
        let inner = &rest[start + 2..end];
        let (name, default, empty_counts) = match (inner.find(":-"), inner.find('-')) {
            (Some(i), _) => (&inner[..i], &inner[i + 2..], true),
            (None, Some(i)) => (&inner[..i], &inner[i + 1..], false),
            (None, None) => (inner, "", false),
        };
        out.push_str(match set.get(name) {
            Some(v) if !(empty_counts && v.is_empty()) => v,
            _ => default,
        });
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

/// A service of the compose file: its command and environment, mapped to this host.
#[derive(Debug, Clone)]
pub struct Container {
    /// `serve <component>`.
    pub command: Vec<String>,
    /// Its environment.
    pub environment: BTreeMap<String, String>,
    /// What it waits for.
    pub depends_on: Vec<String>,
}

/// The compose file's components as processes of `govmedia` on this host.
#[derive(Debug)]
pub struct Deployment {
    govmedia: PathBuf,
    /// Where the secrets, data and logs are.
    pub root: PathBuf,
    /// Each component's loopback port.
    pub ports: BTreeMap<String, u16>,
    /// Each component's container, as mapped.
    pub containers: BTreeMap<String, Container>,
    /// The prefix of its database roles (`<prefix>_<component>`, `…_owner`).
    pub prefix: String,
    running: BTreeMap<String, Child>,
    starts: BTreeMap<String, u32>,
}

fn free_port() -> Result<u16, ScenarioError> {
    let listener =
        std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| ScenarioError::setup("finding a free port", e))?;
    Ok(listener.local_addr().map_err(|e| ScenarioError::setup("finding a free port", e))?.port())
}

impl Deployment {
    /// Prepares a deployment under `root` on the PostgreSQL database at `database_url`
    /// (an account that may create roles): secrets made by `govmedia secrets`, the
    /// service roles made, each container's environment mapped. `collector` is the OTLP
    /// endpoint, or empty for none. Nothing runs yet.
    pub async fn prepare(
        govmedia: &Path,
        database_url: &str,
        root: &Path,
        collector: &str,
    ) -> Result<Self, ScenarioError> {
        let url = url::Url::parse(database_url).map_err(|e| ScenarioError::setup("the database URL", e))?;
        let host = format!("{}:{}", url.host_str().unwrap_or("127.0.0.1"), url.port().unwrap_or(5432));
        let database = url.path().trim_start_matches('/').to_owned();
        let (secrets, data, logs) = (root.join("secrets"), root.join("data"), root.join("logs"));
        for dir in [&data, &logs] {
            std::fs::create_dir_all(dir).map_err(|e| ScenarioError::setup("making the folders", e))?;
        }
        // Role names are per deployment, so several can share one server.
        let suffix = uuid::Uuid::now_v7().simple().to_string();
        let prefix = format!("gmt{}", &suffix[24..]);
        let made = Command::new(govmedia)
            .args(["secrets", "--dir", &secrets.display().to_string(), "--database-host", &host])
            .args(["--database-name", &database, "--role-prefix", &prefix])
            .output()
            .map_err(|e| ScenarioError::setup("running govmedia secrets", e))?;
        if !made.status.success() {
            return Err(ScenarioError::Setup(format!(
                "govmedia secrets failed: {}",
                String::from_utf8_lossy(&made.stderr)
            )));
        }
        let admin = sqlx::PgPool::connect(database_url).await.map_err(|e| ScenarioError::setup("connecting", e))?;
        let read = |name: &str| {
            std::fs::read_to_string(secrets.join(name))
                .map(|s| s.trim().to_owned())
                .map_err(|e| ScenarioError::setup(&format!("reading the secret {name}"), e))
        };
        for service in DATABASE_COMPONENTS {
            let script = govmedia_testkit::service_roles_sql(
                &format!("govmedia_{service}"),
                &format!("{prefix}_{service}_owner"),
                &format!("{prefix}_{service}"),
                &read(&format!("{service}-database-owner-password"))?,
                &read(&format!("{service}-database-password"))?,
            );
            sqlx::raw_sql(&script).execute(&admin).await.map_err(|e| ScenarioError::setup("making the roles", e))?;
        }
        admin.close().await;
        let mut ports = BTreeMap::new();
        for name in COMPONENTS {
            ports.insert(name.to_owned(), free_port()?);
        }
        let containers = containers(&ports, &secrets, &data, collector)?;
        Ok(Self {
            govmedia: govmedia.to_owned(),
            root: root.to_owned(),
            ports,
            containers,
            prefix,
            running: BTreeMap::new(),
            starts: BTreeMap::new(),
        })
    }

    /// Sets `key` to `value` in every container's environment (for the starts to come).
    pub fn set_everywhere(&mut self, key: &str, value: &str) {
        for container in self.containers.values_mut() {
            container.environment.insert(key.to_owned(), value.to_owned());
        }
    }

    /// Adds `name`, a second process of the component `of` with the same settings on a
    /// port of its own (a replica, as `docker compose up --scale` would run it).
    pub fn add_replica(&mut self, name: &str, of: &str) -> Result<(), ScenarioError> {
        let mut container =
            self.containers.get(of).cloned().ok_or_else(|| ScenarioError::Setup(format!("no {of} to replicate")))?;
        let port = free_port()?;
        container.environment.insert("GOVMEDIA_LISTEN_ADDRESS".into(), format!("127.0.0.1:{port}"));
        self.ports.insert(name.to_owned(), port);
        self.containers.insert(name.to_owned(), container);
        Ok(())
    }

    /// Sets `key` to `value` in `name`'s environment (for its starts to come).
    pub fn set(&mut self, name: &str, key: &str, value: &str) {
        if let Some(container) = self.containers.get_mut(name) {
            container.environment.insert(key.to_owned(), value.to_owned());
        }
    }

    /// `name`'s address for clients (`http://127.0.0.1:<port>`).
    pub fn endpoint(&self, name: &str) -> String {
        format!("http://127.0.0.1:{}", self.ports.get(name).copied().unwrap_or_default())
    }

    /// The folder of the generated secrets.
    pub fn secrets(&self) -> PathBuf {
        self.root.join("secrets")
    }

    /// `name`'s log: every start's output, appended.
    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.root.join("logs").join(format!("{name}.log"))).unwrap_or_default()
    }

    /// Starts `name` and waits, up to `patience`, until it answers its health check.
    pub async fn start(&mut self, name: &str, patience: Duration) -> Result<(), ScenarioError> {
        self.launch(name)?;
        self.wait_healthy(name, patience).await
    }

    /// Starts `name` without waiting for it (several at once: see
    /// [`Deployment::wait_healthy`]).
    pub fn launch(&mut self, name: &str) -> Result<(), ScenarioError> {
        let container = self.containers.get(name).ok_or_else(|| ScenarioError::Setup(format!("no {name}")))?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.root.join("logs").join(format!("{name}.log")))
            .map_err(|e| ScenarioError::setup("opening the log", e))?;
        let output = log.try_clone().map_err(|e| ScenarioError::setup("opening the log", e))?;
        let child = Command::new(&self.govmedia)
            .args(&container.command)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .envs(&container.environment)
            .stdout(output)
            .stderr(log)
            .spawn()
            .map_err(|e| ScenarioError::setup(&format!("starting {name}"), e))?;
        self.running.insert(name.to_owned(), child);
        *self.starts.entry(name.to_owned()).or_default() += 1;
        Ok(())
    }

    /// Waits, up to `patience`, until `name` (launched) answers its health check.
    pub async fn wait_healthy(&mut self, name: &str, patience: Duration) -> Result<(), ScenarioError> {
        let deadline = Instant::now() + patience;
        while !self.healthy(name) {
            if let Some(child) = self.running.get_mut(name)
                && let Ok(Some(status)) = child.try_wait()
            {
                return Err(ScenarioError::Setup(format!("{name} exited with {status}:\n{}", self.log(name))));
            }
            if Instant::now() > deadline {
                return Err(ScenarioError::Setup(format!(
                    "{name} not healthy within {patience:?}:\n{}",
                    self.log(name)
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(())
    }

    /// How often `name` was started.
    pub fn starts(&self, name: &str) -> u32 {
        self.starts.get(name).copied().unwrap_or_default()
    }

    /// Whether `name` answers SERVING (`govmedia health`).
    pub fn healthy(&self, name: &str) -> bool {
        Command::new(&self.govmedia)
            .args(["health", "--address", &self.endpoint(name), "--timeout", "1s"])
            .env("GOVMEDIA_CLI_CONFIG_DIR", "/nonexistent")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// Kills `name` at once (SIGKILL): no shutdown, nothing flushed.
    pub fn kill(&mut self, name: &str) {
        if let Some(mut child) = self.running.remove(name) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops `name` as an orchestrator would (SIGTERM) and waits for it to exit.
    pub fn stop(&mut self, name: &str) {
        if let Some(mut child) = self.running.remove(name) {
            let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
            let _ = child.wait();
        }
    }

    /// The process id of `name`, while it runs.
    pub fn pid(&self, name: &str) -> Option<u32> {
        self.running.get(name).map(Child::id)
    }

    /// The administrator's one-time password, which identity's first start announces.
    pub fn first_password(&self) -> Result<String, ScenarioError> {
        self.log("identity")
            .lines()
            .find_map(|l| l.split_once("one-time password: ").map(|(_, p)| p.trim().to_owned()))
            .ok_or_else(|| ScenarioError::Setup(format!("identity announced no password:\n{}", self.log("identity"))))
    }
}

impl Deployment {
    /// Stops everything still running, all at once (SIGTERM), then waits for each.
    pub fn stop_all(&mut self) {
        for child in self.running.values() {
            let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
        }
        for child in self.running.values_mut() {
            let _ = child.wait();
        }
        self.running.clear();
    }

    /// Removes what [`Deployment::prepare`] made on the server: the schemas and roles.
    pub async fn remove(&mut self, database_url: &str) -> Result<(), ScenarioError> {
        self.stop_all();
        let admin = sqlx::PgPool::connect(database_url).await.map_err(|e| ScenarioError::setup("connecting", e))?;
        let prefix = &self.prefix;
        for service in DATABASE_COMPONENTS {
            for statement in [
                format!("DROP SCHEMA IF EXISTS \"govmedia_{service}\" CASCADE"),
                format!("DROP OWNED BY \"{prefix}_{service}_owner\", \"{prefix}_{service}\""),
                format!("DROP ROLE \"{prefix}_{service}\""),
                format!("DROP ROLE \"{prefix}_{service}_owner\""),
            ] {
                sqlx::query(&statement)
                    .execute(&admin)
                    .await
                    .map_err(|e| ScenarioError::setup(&format!("cleaning up ({statement})"), e))?;
            }
        }
        admin.close().await;
        Ok(())
    }
}

impl Drop for Deployment {
    fn drop(&mut self) {
        self.stop_all();
    }
}

/// The compose file's containers, mapped to this host.
fn containers(
    ports: &BTreeMap<String, u16>,
    secrets: &Path,
    data: &Path,
    collector: &str,
) -> Result<BTreeMap<String, Container>, ScenarioError> {
    let bad = |what: &str| ScenarioError::Setup(format!("docker-compose.yml: {what}"));
    let text = std::fs::read_to_string(deploy_dir().join("docker-compose.yml"))
        .map_err(|e| ScenarioError::setup("reading docker-compose.yml", e))?;
    let mut compose: serde_norway::Value =
        serde_norway::from_str(&text).map_err(|e| ScenarioError::setup("docker-compose.yml", e))?;
    compose.apply_merge().map_err(|e| ScenarioError::setup("docker-compose.yml merge keys", e))?;
    // The compose command's environment as deploy/.env leaves it: the collector on.
    let set = BTreeMap::new();
    let mut out = BTreeMap::new();
    for name in COMPONENTS {
        let service = &compose["services"][name];
        let command = service["command"]
            .as_sequence()
            .ok_or_else(|| bad(&format!("{name} has no command")))?
            .iter()
            .map(|c| c.as_str().map(str::to_owned).ok_or_else(|| bad("a command that is not text")))
            .collect::<Result<Vec<_>, _>>()?;
        let mut environment = BTreeMap::new();
        for (key, value) in service["environment"].as_mapping().ok_or_else(|| bad(&format!("{name}: environment")))? {
            let key = key.as_str().ok_or_else(|| bad("a variable name that is not text"))?.to_owned();
            let value = match value {
                serde_norway::Value::String(s) => s.clone(),
                other => serde_norway::to_string(other).map(|s| s.trim().to_owned()).unwrap_or_default(),
            };
            let mut value = interpolate(&value, &set)
                .replace("/run/secrets/", &format!("{}/", secrets.display()))
                .replace("/var/lib/govmedia", &data.display().to_string())
                .replace("172.28.0.10", "127.0.0.1")
                .replace("http://otel-collector:4317", collector);
            for (host, port) in ports {
                value = value.replace(&format!("http://{host}:50051"), &format!("http://127.0.0.1:{port}"));
            }
            if key == "GOVMEDIA_LISTEN_ADDRESS" {
                value = format!("127.0.0.1:{}", ports.get(name).copied().unwrap_or_default());
            }
            environment.insert(key, value);
        }
        let depends_on = match &service["depends_on"] {
            serde_norway::Value::Mapping(m) => m.keys().filter_map(|k| k.as_str().map(str::to_owned)).collect(),
            _ => Vec::new(),
        };
        out.insert(name.to_owned(), Container { command, environment, depends_on });
    }
    Ok(out)
}
