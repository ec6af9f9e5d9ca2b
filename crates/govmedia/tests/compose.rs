//! deploy/docker-compose.yml, run without Docker (`govmedia_faults::deployment`, which
//! the fault scenarios use too): every service as its own `govmedia serve` process on
//! PostgreSQL, with exactly the environment the compose file gives its container, the
//! database roles made by the shipped deploy/postgres/service-roles.sql as init.sh makes
//! them, started in the compose file's dependency order on `govmedia health`; then the office's whole story
//! through the gateway, exporting to an OTLP receiver in the test where the compose file
//! names the collector: what the dashboards and the trace store would be given is checked
//! (one trace from a caller to its audit record, each component's resource, histograms in
//! seconds, no call counted twice, log lines with their trace, every metric a dashboard
//! queries).

mod common;

use std::path::Path;

use govmedia_faults::deployment::{COMPONENTS, Deployment};
use govmedia_testkit::TestDatabase;

#[path = "compose/telemetry.rs"]
mod telemetry;

const SERVICES: [&str; 5] = COMPONENTS;

/// Issue 16, secrets in logs: no password, one-time password, token, client secret, key
/// or database URL the run used is in any service's log or in anything exported over
/// OTLP. The one exception is by design: identity's first start names the administrator's
/// one-time password once, on its standard output, for the operator to sign in with (it
/// is never exported, and the first sign-in must change it).
fn no_secret_was_written(
    mut used: Vec<String>,
    deployment: &Deployment,
    sessions: &Path,
    received: &common::otlp::Received,
    first_password: &str,
) {
    used.extend(govmedia_faults::secrets::in_files(&deployment.secrets()));
    used.extend(govmedia_faults::secrets::in_files(sessions));
    assert!(used.len() > 40, "the secrets of the run were collected: {}", used.len());
    let (mut finds, lines) = govmedia_faults::secrets::in_logs(deployment, &used, first_password);
    let dump = received.dump();
    // The dump is what was exported: the scan reads real items, with their names in it.
    assert!(dump.iter().any(|(_, text)| text.contains("govmedia.identity.v1.AuthenticationService/Login")));
    let exports = dump.len();
    for (what, text) in dump {
        finds.extend(govmedia_faults::secrets::finds(&used, &what, &text));
    }
    eprintln!("secrets scan: {} secrets over {lines} log lines and {exports} OTLP exports", used.len());
    assert!(finds.is_empty(), "secrets were written: {finds:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_compose_deployment_runs_the_whole_story_as_separate_processes() {
    let db = TestDatabase::postgres().await;
    let admin = sqlx::PgPool::connect(db.url().expose()).await.expect("admin");
    let root = tempfile::tempdir().expect("root");
    let (collector, received) = common::otlp::start().await;
    let mut deployment =
        Deployment::prepare(Path::new(env!("CARGO_BIN_EXE_govmedia")), db.url().expose(), root.path(), &collector)
            .await
            .expect("prepared as the operator would");
    assert!(
        deployment.containers.values().all(|c| c.environment.get("OTEL_EXPORTER_OTLP_ENDPOINT") == Some(&collector)),
        "every service exports to the collector"
    );
    let mut started: Vec<&str> = Vec::new();
    for name in SERVICES {
        for dependency in &deployment.containers[name].depends_on {
            assert!(
                dependency == "postgres" || started.contains(&dependency.as_str()),
                "{name} depends on {dependency}, which the compose order starts later"
            );
        }
        deployment.start(name, std::time::Duration::from_secs(60)).await.expect("healthy");
        started.push(name);
    }
    let first_password = deployment.first_password().expect("announced");
    let prefix = deployment.prefix.clone();
    let home = tempfile::tempdir().expect("home");
    let gateway = deployment.endpoint("gateway");
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
    for name in SERVICES {
        let pid = deployment.pid(name).expect("running");
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let peak = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap_or("VmHWM: ?");
        eprintln!("compose story: {name} peak resident memory {}", peak.trim_start_matches("VmHWM:").trim());
    }
    deployment.stop_all();
    no_secret_was_written(used, &deployment, home.path(), &received, &first_password);
    // Logs are JSON lines; each written inside a call names the call's trace.
    let mut in_calls = 0;
    for name in SERVICES {
        let log = deployment.log(name);
        for line in log.lines().filter(|l| l.starts_with('{')) {
            let line: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{name}: {e}: {line}"));
            if line["span"]["name"] == "grpc.server" {
                in_calls += 1;
                let trace_id = line["span"]["trace_id"].as_str().unwrap_or_default();
                assert_eq!(trace_id.len(), 32, "{name}: a log line inside a call without its trace id: {line}");
            }
        }
    }
    let sample = deployment.log("content");
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
    deployment.remove(db.url().expose()).await.expect("removed");
}
