//! deploy/docker-compose.yml, run without Docker: every service as its own
//! `govmedia serve` process on PostgreSQL, with exactly the environment the compose file
//! gives its container (read from the file; host names mapped to loopback ports, mounted
//! secrets to the folder `govmedia secrets` made), the database roles made by the
//! shipped deploy/postgres/service-roles.sql as init.sh makes them, started in the
//! compose file's dependency order on `govmedia health`; then the office's whole story
//! through the gateway, exporting to an OTLP receiver in the test where the compose file
//! names the collector: what the dashboards and the trace store would be given is checked
//! (one trace from a caller to its audit record, each component's resource, histograms in
//! seconds, no call counted twice, log lines with their trace, every metric a dashboard
//! queries).

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use govmedia_testkit::TestDatabase;

#[path = "compose/telemetry.rs"]
mod telemetry;

const SERVICES: [&str; 5] = ["identity", "audit", "content", "interaction", "gateway"];
const DATABASE_SERVICES: [&str; 4] = ["identity", "audit", "content", "interaction"];

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy")
}

/// `${NAME-default}` and `${NAME:-default}` as docker-compose reads them, with `set` the
/// variables of the compose command's own environment.
fn interpolate(value: &str, set: &BTreeMap<&str, &str>) -> String {
    let mut out = String::new();
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').expect("closed") + start;
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
struct Container {
    command: Vec<String>,
    environment: BTreeMap<String, String>,
    depends_on: Vec<String>,
}

fn containers(
    ports: &BTreeMap<&str, u16>,
    secrets: &Path,
    data: &Path,
    collector: &str,
) -> BTreeMap<String, Container> {
    let text = std::fs::read_to_string(deploy().join("docker-compose.yml")).expect("compose file");
    let mut compose: serde_norway::Value = serde_norway::from_str(&text).expect("yaml");
    compose.apply_merge().expect("merge keys");
    // The compose command's environment as deploy/.env leaves it: the collector on.
    let set = BTreeMap::new();
    let mut out = BTreeMap::new();
    for name in SERVICES {
        let service = &compose["services"][name];
        let command = service["command"]
            .as_sequence()
            .expect("command")
            .iter()
            .map(|c| c.as_str().expect("text").to_owned())
            .collect();
        let mut environment = BTreeMap::new();
        for (key, value) in service["environment"].as_mapping().expect("environment") {
            let key = key.as_str().expect("key").to_owned();
            let value = match value {
                serde_norway::Value::String(s) => s.clone(),
                other => serde_norway::to_string(other).expect("scalar").trim().to_owned(),
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
                value = format!("127.0.0.1:{}", ports[name]);
            }
            environment.insert(key, value);
        }
        let depends_on = match &service["depends_on"] {
            serde_norway::Value::Mapping(m) => m.keys().map(|k| k.as_str().expect("name").to_owned()).collect(),
            _ => Vec::new(),
        };
        out.insert(name.to_owned(), Container { command, environment, depends_on });
    }
    out
}

/// The processes, stopped (SIGTERM, then waited for) when dropped.
struct Running(Vec<(String, Child)>);

impl Drop for Running {
    fn drop(&mut self) {
        for (_, child) in &mut self.0 {
            let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
        }
        for (_, child) in &mut self.0 {
            let _ = child.wait();
        }
    }
}

fn healthy(port: u16) -> bool {
    Command::new(env!("CARGO_BIN_EXE_govmedia"))
        .args(["health", "--address", &format!("http://127.0.0.1:{port}"), "--timeout", "1s"])
        .env("GOVMEDIA_CLI_CONFIG_DIR", "/nonexistent")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Issue 16, secrets in logs: no password, one-time password, token, client secret, key
/// or database URL the run used is in any service's log or in anything exported over
/// OTLP. The one exception is by design: identity's first start names the administrator's
/// one-time password once, on its standard output, for the operator to sign in with (it
/// is never exported, and the first sign-in must change it).
fn no_secret_was_written(
    mut used: Vec<String>,
    secrets: &std::path::Path,
    sessions: &std::path::Path,
    logs: &std::path::Path,
    received: &common::otlp::Received,
    first_password: &str,
) {
    used.extend(common::secrets::in_files(secrets));
    used.extend(common::secrets::in_files(sessions));
    assert!(used.len() > 40, "the secrets of the run were collected: {}", used.len());
    let mut finds = Vec::new();
    let mut lines = 0;
    for name in SERVICES {
        let log = std::fs::read_to_string(logs.join(format!("{name}.log"))).expect("log");
        let announced = format!("one-time password: {first_password}");
        if name == "identity" {
            assert_eq!(log.matches(&announced).count(), 1, "the bootstrap line, once");
        }
        let log = log.replace(&announced, "one-time password: (announced)");
        lines += log.lines().count();
        finds.extend(common::secrets::finds(&used, &format!("{name}.log"), &log));
    }
    let dump = received.dump();
    // The dump is what was exported: the scan reads real items, with their names in it.
    assert!(dump.iter().any(|(_, text)| text.contains("govmedia.identity.v1.AuthenticationService/Login")));
    let exports = dump.len();
    for (what, text) in dump {
        finds.extend(common::secrets::finds(&used, &what, &text));
    }
    eprintln!("secrets scan: {} secrets over {lines} log lines and {exports} OTLP exports", used.len());
    assert!(finds.is_empty(), "secrets were written: {finds:#?}");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_compose_deployment_runs_the_whole_story_as_separate_processes() {
    let db = TestDatabase::postgres().await;
    let url = url::Url::parse(db.url().expose()).expect("url");
    let host = format!("{}:{}", url.host_str().expect("host"), url.port().unwrap_or(5432));
    let database = url.path().trim_start_matches('/').to_owned();
    let root = tempfile::tempdir().expect("root");
    let (secrets, data, logs) = (root.path().join("secrets"), root.path().join("data"), root.path().join("logs"));
    std::fs::create_dir_all(&data).expect("data");
    std::fs::create_dir_all(&logs).expect("logs");
    let prefix = format!("gmt{}", &uuid::Uuid::now_v7().simple().to_string()[24..]);

    // The operator's steps: secrets, then what init.sh does on the database.
    let made = Command::new(env!("CARGO_BIN_EXE_govmedia"))
        .args(["secrets", "--dir", secrets.to_str().expect("utf-8"), "--database-host", &host])
        .args(["--database-name", &database, "--role-prefix", &prefix])
        .output()
        .expect("secrets");
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let admin = sqlx::PgPool::connect(db.url().expose()).await.expect("admin");
    let read = |name: &str| std::fs::read_to_string(secrets.join(name)).expect(name).trim().to_owned();
    for service in DATABASE_SERVICES {
        let script = govmedia_testkit::service_roles_sql(
            &format!("govmedia_{service}"),
            &format!("{prefix}_{service}_owner"),
            &format!("{prefix}_{service}"),
            &read(&format!("{service}-database-owner-password")),
            &read(&format!("{service}-database-password")),
        );
        sqlx::raw_sql(&script).execute(&admin).await.expect("roles");
    }

    let ports: BTreeMap<&str, u16> = SERVICES.iter().map(|s| (*s, free_port())).collect();
    let (collector, received) = common::otlp::start().await;
    let containers = containers(&ports, &secrets, &data, &collector);
    assert!(
        containers.values().all(|c| c.environment.get("OTEL_EXPORTER_OTLP_ENDPOINT") == Some(&collector)),
        "every service exports to the collector"
    );
    let mut running = Running(Vec::new());
    let mut started: Vec<&str> = Vec::new();
    for name in SERVICES {
        let container = &containers[name];
        for dependency in &container.depends_on {
            assert!(
                dependency == "postgres" || started.contains(&dependency.as_str()),
                "{name} depends on {dependency}, which the compose order starts later"
            );
        }
        let log = std::fs::File::create(logs.join(format!("{name}.log"))).expect("log");
        let child = Command::new(env!("CARGO_BIN_EXE_govmedia"))
            .args(&container.command)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .envs(&container.environment)
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("started");
        running.0.push((name.to_owned(), child));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while !healthy(ports[name]) {
            let output = std::fs::read_to_string(logs.join(format!("{name}.log"))).unwrap_or_default();
            assert!(std::time::Instant::now() < deadline, "{name} never became healthy:\n{output}");
            if let Some((_, child)) = running.0.last_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!("{name} exited with {status}:\n{output}");
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        started.push(name);
    }

    let identity_log = std::fs::read_to_string(logs.join("identity.log")).expect("identity log");
    let first_password = identity_log
        .lines()
        .find_map(|l| l.split_once("one-time password: ").map(|(_, p)| p.trim().to_owned()))
        .unwrap_or_else(|| panic!("identity printed no one-time password:\n{identity_log}"));
    let home = tempfile::tempdir().expect("home");
    let gateway = format!("http://127.0.0.1:{}", ports["gateway"]);
    let used = common::story::the_office_story(home.path(), &gateway, &first_password).await;

    // The services ran as roles that own nothing: the audit log's guard held.
    let owners: Vec<String> =
        sqlx::query_scalar("SELECT tableowner::text FROM pg_tables WHERE schemaname = 'govmedia_audit'")
            .fetch_all(&admin)
            .await
            .expect("owners");
    assert!(!owners.is_empty() && owners.iter().all(|o| *o == format!("{prefix}_audit_owner")), "{owners:?}");

    // Each process's peak resident memory over the story: the figures the Kubernetes
    // manifests' memory requests come from (docs/operations.md).
    for (name, child) in &running.0 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap_or_default();
        let peak = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap_or("VmHWM: ?");
        eprintln!("compose story: {name} peak resident memory {}", peak.trim_start_matches("VmHWM:").trim());
    }
    drop(running);
    no_secret_was_written(used, &secrets, home.path(), &logs, &received, &first_password);
    // Logs are JSON lines; each written inside a call names the call's trace.
    let mut in_calls = 0;
    for name in SERVICES {
        let log = std::fs::read_to_string(logs.join(format!("{name}.log"))).expect("log");
        for line in log.lines().filter(|l| l.starts_with('{')) {
            let line: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{name}: {e}: {line}"));
            if line["span"]["name"] == "grpc.server" {
                in_calls += 1;
                let trace_id = line["span"]["trace_id"].as_str().unwrap_or_default();
                assert_eq!(trace_id.len(), 32, "{name}: a log line inside a call without its trace id: {line}");
            }
        }
    }
    let sample = std::fs::read_to_string(logs.join("content.log")).unwrap_or_default();
    assert!(
        in_calls > 0,
        "the story logged nothing inside a call:\n{}",
        sample.lines().take(12).collect::<Vec<_>>().join("\n")
    );
    let audited_traces: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT trace_id FROM govmedia_audit.audit_events WHERE action = 'draft.created' AND trace_id <> ''",
    )
    .fetch_all(&admin)
    .await
    .expect("audited traces");
    telemetry::check(&received, &audited_traces, &first_password);
    for service in DATABASE_SERVICES {
        for statement in [
            format!("DROP SCHEMA \"govmedia_{service}\" CASCADE"),
            format!("DROP OWNED BY \"{prefix}_{service}_owner\", \"{prefix}_{service}\""),
            format!("DROP ROLE \"{prefix}_{service}\""),
            format!("DROP ROLE \"{prefix}_{service}_owner\""),
        ] {
            sqlx::query(&statement).execute(&admin).await.unwrap_or_else(|e| panic!("{statement}: {e}"));
        }
    }
}
