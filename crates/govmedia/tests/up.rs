//! `govmedia up` in-process on a fresh data folder, on SQLite files and on PostgreSQL
//! (a schema per service): every service starts behind the gateway; the administrator logs in through the gateway with the configured first
//! password and must change it; a department created through the gateway is there after
//! a restart on the same folder, whose secrets and credentials are reused.

mod common;

use common::FIRST;
use govmedia_proto::identity::v1 as ipb;
use govmedia_proto::identity::v1::authentication_service_client::AuthenticationServiceClient;
use govmedia_proto::identity::v1::directory_service_client::DirectoryServiceClient;
use govmedia_testkit::with_token;

const SECOND: &str = "Quiet#Forest2027!";

async fn channel(url: &str) -> tonic::transport::Channel {
    let endpoint = tonic::transport::Endpoint::from_shared(url.to_owned()).expect("url");
    govmedia_testkit::eventually("the gateway answered", std::time::Duration::from_secs(5), async || {
        endpoint.connect().await.ok()
    })
    .await
}

async fn login(gateway: &tonic::transport::Channel, password: &str) -> Result<ipb::LoginResponse, tonic::Status> {
    AuthenticationServiceClient::new(gateway.clone())
        .login(ipb::LoginRequest { username: "admin".into(), password: password.into() })
        .await
        .map(tonic::Response::into_inner)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_sqlite_everything_starts_behind_the_gateway_and_survives_a_restart() {
    story(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_everything_starts_behind_the_gateway_and_survives_a_restart() {
    let database = govmedia_testkit::TestDatabase::postgres().await;
    story(Some(database.url().expose())).await;
}

/// Under the usual umask (022), every folder of the data folder is 0700 and every file
/// in it 0600: the SQLite databases with their WAL and SHM files, the secrets, the
/// archive of publications (R7.1.1).
fn data_folder_is_owner_only_r7_1_1(root: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    let mut pending = vec![root.to_path_buf()];
    let mut files = 0;
    while let Some(dir) = pending.pop() {
        let mode = std::fs::metadata(&dir).expect("metadata").permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "{} is {mode:o}", dir.display());
        for entry in std::fs::read_dir(&dir).expect("read_dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                pending.push(path);
            } else {
                files += 1;
                let mode = std::fs::metadata(&path).expect("metadata").permissions().mode() & 0o777;
                assert_eq!(mode, 0o600, "{} is {mode:o}", path.display());
            }
        }
    }
    assert!(files > 0, "the folder holds files");
}

async fn story(database: Option<&str>) {
    let dir = tempfile::tempdir().expect("dir");
    let running = common::start(dir.path(), database).await;
    let gateway = channel(&running.gateway).await;
    let first = login(&gateway, FIRST).await.expect("first login through the gateway");
    assert!(first.password_change_required, "the first password must be changed");
    let token = AuthenticationServiceClient::new(gateway.clone())
        .change_password(with_token(
            ipb::ChangePasswordRequest { current_password: FIRST.into(), new_password: SECOND.into() },
            &first.tokens.expect("tokens").access_token,
        ))
        .await
        .expect("changed")
        .into_inner()
        .tokens
        .expect("tokens")
        .access_token;
    DirectoryServiceClient::new(gateway.clone())
        .create_department(with_token(
            ipb::CreateDepartmentRequest {
                request_id: uuid(),
                department: Some(ipb::Department {
                    name: "Publicity".into(),
                    code: "PUB".into(),
                    ..Default::default()
                }),
            },
            &token,
        ))
        .await
        .expect("created through the gateway");
    // The services reach each other with their provisioned credentials: content asks
    // identity whether the administrator may read plans, and identity explains why not.
    let status = govmedia_proto::content::v1::plan_service_client::PlanServiceClient::new(gateway.clone())
        .list_plans(with_token(govmedia_proto::content::v1::ListPlansRequest::default(), &token))
        .await
        .expect_err("an administrator reads no plans");
    assert_eq!(status.code(), tonic::Code::PermissionDenied);
    assert!(status.message().contains("needs one of the roles"), "identity's answer: {status:?}");
    running.stop().await;

    let files: &[&str] = match database {
        None => &["identity.db", "audit.db", "content.db", "interaction.db", "secrets/govmedia-content"],
        Some(_) => &["secrets/govmedia-content"],
    };
    for name in files {
        assert!(dir.path().join(name).exists(), "{name}");
    }
    data_folder_is_owner_only_r7_1_1(dir.path());
    if database.is_some() {
        assert!(!dir.path().join("identity.db").exists(), "PostgreSQL, not SQLite");
    }
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir.path().join("secrets/govmedia-audit")).expect("secret").permissions().mode();
    assert_eq!(mode & 0o077, 0, "secrets are the owner's only: {mode:o}");

    // Again on the same folder: the changed password holds, the department is there.
    let running = common::start(dir.path(), database).await;
    let gateway = channel(&running.gateway).await;
    let again = login(&gateway, SECOND).await.expect("login after restart");
    let token = again.tokens.expect("tokens").access_token;
    let departments = DirectoryServiceClient::new(gateway.clone())
        .list_departments(with_token(ipb::ListDepartmentsRequest::default(), &token))
        .await
        .expect("listed")
        .into_inner()
        .departments;
    assert!(departments.iter().any(|d| d.code == "PUB"));
    running.stop().await;
}

fn uuid() -> String {
    govmedia_domain::ids::RequestId::new().to_string()
}

/// Issue 14: two `up`s on one data folder would share its SQLite files and secrets; a
/// start that cannot listen used to make secrets and print a password first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_up_on_the_same_folder_or_port_is_refused_and_leaves_nothing_behind() {
    use clap::Parser;
    let data = tempfile::tempdir().expect("data");
    let running = common::start(data.path(), None).await;
    let port: u16 = running.gateway.rsplit(':').next().expect("port").parse().expect("number");
    let settings = |dir: &std::path::Path, port: u16| {
        govmedia::up::UpSettings::try_parse_from([
            "govmedia up",
            "--data-dir",
            dir.to_str().expect("utf-8"),
            "--listen-address",
            &format!("127.0.0.1:{port}"),
        ])
        .expect("settings")
    };
    let free = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let refused = govmedia::up::up(settings(data.path(), free), std::future::pending(), None)
        .await
        .expect_err("the folder is taken");
    assert!(refused.to_string().contains("another govmedia up is running"), "{refused}");

    let other = tempfile::tempdir().expect("other");
    let refused = govmedia::up::up(settings(other.path(), port), std::future::pending(), None)
        .await
        .expect_err("the port is taken");
    assert!(refused.to_string().contains(&format!("cannot listen on 127.0.0.1:{port}")), "{refused}");
    assert!(!other.path().join("secrets").exists(), "no secret is made by a start that cannot listen");
    running.stop().await;
}

/// Issue 14: a normal start and stop of `govmedia up` (the process, as an operator runs
/// it) logs no warning, and a stop delivers every audit record before the databases
/// close: the audit service stops last, each outbox is empty afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_normal_start_and_stop_is_quiet_and_leaves_no_audit_record_behind() {
    use std::io::{BufRead, BufReader};
    use std::process::Command;
    let root = tempfile::tempdir().expect("root");
    let data = root.path().join("data");
    let (mut child, mut stderr, mut said, gateway) = spawn_up(&data, None);
    let stdout = child.stdout.take().expect("stdout");
    let logged = std::thread::spawn(move || BufReader::new(stdout).lines().map_while(Result::ok).collect::<Vec<_>>());
    // Work that writes audit records in identity, and stop at once: they are in flight.
    let admin = common::Person::new(root.path(), "admin", &gateway);
    admin.first_sign_in("admin", common::FIRST, "Quiet#Harbour2030");
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let status = child.wait().expect("exits");
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).expect("stderr");
    said.push_str(&rest);
    let logged = logged.join().expect("stdout").join("\n");
    assert!(status.success(), "up stopped with {status}:\n{said}\n{logged}");
    for level in [" WARN ", " ERROR "] {
        assert!(
            !logged.contains(level) && !said.contains(level),
            "a normal start and stop logged{level}:\n{logged}\n{said}"
        );
    }
    for service in ["identity", "audit", "content", "interaction"] {
        let db = sqlx::SqlitePool::connect(&format!("sqlite:{}", data.join(format!("{service}.db")).display()))
            .await
            .expect("open");
        let waiting: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM govmedia_outbox").fetch_one(&db).await.expect("count");
        assert_eq!(waiting, 0, "{service}'s outbox kept records at stop");
        db.close().await;
    }
}

/// Issue 14: under `govmedia up` (one process) each component still reports as itself:
/// the gateway's spans as `govmedia-gateway`, identity's as `govmedia-identity`, the
/// audit service's append as `govmedia-audit`, identity's outbox delivery and log lines
/// inside identity's calls as identity's; and each component's metrics as its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_up_each_component_exports_as_itself() {
    use std::process::Command;
    let (collector, received) = common::otlp::start().await;
    let root = tempfile::tempdir().expect("root");
    let (mut child, _stderr, _said, gateway) = spawn_up(&root.path().join("data"), Some(&collector));
    // Its log lines are read (and dropped), so a full pipe never stops it.
    let mut stdout = child.stdout.take().expect("stdout");
    std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    let admin = common::Person::new(root.path(), "admin", &gateway);
    admin.first_sign_in("admin", common::FIRST, "Own#Names2031");
    let wrong = admin.run(&["login", "--username", "admin", "--password-stdin"], "not the password\n");
    assert!(!wrong.status.success());
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    assert!(child.wait().expect("exits").success());

    let spans = received.spans();
    let service_of = |name: &str| -> Vec<String> {
        let mut services: Vec<String> =
            spans.iter().filter(|s| s.span.name == name).map(|s| s.service().to_owned()).collect();
        services.sort();
        services.dedup();
        services
    };
    assert_eq!(service_of("gateway govmedia.identity.v1.AuthenticationService/Login"), ["govmedia-gateway"]);
    assert_eq!(service_of("govmedia.identity.v1.AuthenticationService/Login"), ["govmedia-identity"]);
    assert!(service_of("govmedia.audit.v1.AuditLogService/AppendEvents").contains(&"govmedia-audit".to_owned()));
    assert!(
        spans.iter().any(|s| s.span.name == "outbox deliver" && s.service() == "govmedia-identity"),
        "identity's relay delivers as identity"
    );
    // A statement run inside identity's Login is identity's, not the gateway's.
    let login =
        spans.iter().find(|s| s.span.name == "govmedia.identity.v1.AuthenticationService/Login").expect("login span");
    assert!(
        spans
            .iter()
            .filter(|s| s.span.trace_id == login.span.trace_id && s.scope == "govmedia.database")
            .all(|s| s.service() == "govmedia-identity"),
        "database spans of identity's call are identity's"
    );
    let logs = received.logs();
    assert!(
        logs.iter().any(|l| l.resource.get("service.name").map(String::as_str) == Some("govmedia-identity")
            && !l.record.trace_id.is_empty()),
        "identity's log lines inside calls are identity's: {:?}",
        logs.iter().map(|l| l.resource.get("service.name").cloned()).collect::<std::collections::BTreeSet<_>>()
    );

    // Metrics too: each component's figures under its own name, none under another's.
    let metrics = received.metrics();
    let reported = |name: &str, key: &str| -> std::collections::BTreeSet<(String, String)> {
        metrics
            .iter()
            .filter(|m| m.metric.name == name)
            .flat_map(|m| {
                let service = m.resource.get("service.name").cloned().unwrap_or_default();
                common::otlp::point_attribute_values(&m.metric, key).into_iter().map(move |v| (service.clone(), v))
            })
            .collect()
    };
    let calls = reported("rpc.server.call.duration", "rpc.service");
    assert!(
        calls.contains(&("govmedia-identity".into(), "govmedia.identity.v1.AuthenticationService".into())),
        "{calls:?}"
    );
    for (service, rpc_service) in &calls {
        let component = rpc_service.split('.').nth(1).unwrap_or_default();
        assert_eq!(service, &format!("govmedia-{component}"), "{rpc_service}'s calls reported by {service}");
    }
    let through_gateway = reported("govmedia.gateway.call.duration", "rpc.service");
    assert!(!through_gateway.is_empty() && through_gateway.iter().all(|(s, _)| s == "govmedia-gateway"));
    let outboxes = reported("govmedia.outbox.backlog", "outbox");
    assert!(outboxes.contains(&("govmedia-identity".into(), "identity".into())), "{outboxes:?}");
    assert!(
        outboxes.iter().all(|(s, o)| *s == format!("govmedia-{o}")),
        "each relay's backlog as its own: {outboxes:?}"
    );
    let events = reported("govmedia.audit.events", "action");
    assert!(!events.is_empty() && events.iter().all(|(s, _)| s == "govmedia-audit"), "{events:?}");
    let waits = reported("govmedia.db.begin_wait", "db.system.name");
    assert!(waits.contains(&("govmedia-identity".into(), "sqlite".into())), "identity's transactions: {waits:?}");
}

/// `govmedia up` as its own process on `data` (first password [`common::FIRST`]), with
/// `otlp` as its collector or none; answers the child (stdout piped), its stderr reader,
/// what it said on stderr until it was up, and the gateway's URL.
fn spawn_up(
    data: &std::path::Path,
    otlp: Option<&str>,
) -> (std::process::Child, std::io::BufReader<std::process::ChildStderr>, String, String) {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    let mut command = Command::new(env!("CARGO_BIN_EXE_govmedia"));
    command
        .args(["up", "--data-dir", data.to_str().expect("utf-8"), "--listen-address", "127.0.0.1:0"])
        .args(["--bootstrap-password", common::FIRST])
        .env("GOVMEDIA_CLI_CONFIG_DIR", "/nonexistent")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    match otlp {
        Some(endpoint) => command.env("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint),
        None => command.env_remove("OTEL_EXPORTER_OTLP_ENDPOINT"),
    };
    let mut child = command.spawn().expect("started");
    let mut stderr = std::io::BufReader::new(child.stderr.take().expect("stderr"));
    let mut said = String::new();
    let gateway = loop {
        let mut line = String::new();
        assert!(stderr.read_line(&mut line).expect("stderr") > 0, "up exited:\n{said}");
        said.push_str(&line);
        if let Some((_, rest)) = line.split_once("the gateway listens on ") {
            break rest.split_whitespace().next().expect("url").to_owned();
        }
    };
    (child, stderr, said, gateway)
}
