//! `serve()`: missing settings are refused by name before anything starts, and a
//! configured service starts on its own SQLite file against real identity and audit,
//! answers gRPC, and stops cleanly on shutdown.

use clap::Parser;
use govmedia_content::{ConnectorKind, ContentSettings, connectors, serve};
use govmedia_proto::content::v1 as pb;
use govmedia_proto::content::v1::plan_service_client::PlanServiceClient;
use govmedia_testkit::{TestDatabase, with_token};
use govmedia_world::World;

fn settings(args: &[&str]) -> ContentSettings {
    ContentSettings::try_parse_from(std::iter::once("govmedia-content").chain(args.iter().copied())).expect("parsed")
}

#[tokio::test]
async fn missing_settings_are_named() {
    let err = serve(settings(&[]), async {}).await.expect_err("no database");
    assert!(err.to_string().contains("GOVMEDIA_DATABASE_URL"), "{err}");
    let err = serve(settings(&["--database-url", "sqlite::memory:"]), async {}).await.expect_err("no identity");
    assert!(err.to_string().contains("GOVMEDIA_IDENTITY_ENDPOINT"), "{err}");

    let mut options = settings(&[]).content;
    options.connector = ConnectorKind::Webhook;
    let err = connectors(&options).expect_err("no url");
    assert_eq!(err.setting, "GOVMEDIA_CONTENT_WEBHOOK_URL");
    options.webhook_url = Some("http://gateway.example/hook".into());
    options.webhook_secret = Some(govmedia_kit::config::Secret::new("a-long-enough-secret"));
    let err = connectors(&options).expect_err("clear text to another host");
    assert_eq!(err.setting, "GOVMEDIA_CONTENT_WEBHOOK_URL");
    assert!(err.message.contains("plain http only to this host"), "{err}");
    options.webhook_url = Some("https://gateway.example/hook".into());
    options.webhook_ca = Some("/nonexistent/bureau-ca.pem".into());
    let err = connectors(&options).expect_err("no CA file");
    assert_eq!(err.setting, "GOVMEDIA_CONTENT_WEBHOOK_CA");
    options.webhook_ca = None;
    connectors(&options).expect("https with the system's roots");
}

#[tokio::test]
async fn a_configured_service_starts_answers_and_stops() {
    let world = World::start(TestDatabase::sqlite()).await;
    let folder = tempfile::tempdir().expect("dir");
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let database = format!("sqlite://{}?mode=rwc", folder.path().join("content.db").display());
    let archive = folder.path().join("publications");
    let listen = format!("127.0.0.1:{port}");
    let identity = world.identity.endpoint();
    let audit = world.audit.endpoint();
    let s = settings(&[
        "--database-url",
        &database,
        "--listen-address",
        &listen,
        "--identity-endpoint",
        &identity,
        "--audit-endpoint",
        &audit,
        "--client-id",
        "govmedia-content",
        "--client-secret",
        &world.content_secret,
        "--archive-dir",
        archive.to_str().expect("utf-8 path"),
    ]);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(serve(s, async move {
        let _ = stopped.await;
    }));

    let department = world.department("Publicity", "PUB").await;
    let (_, editor) = world
        .staff("editor", &department, &[("editor", govmedia_proto::common::v1::ScopeKind::Department, &department)])
        .await;
    let endpoint = format!("http://{listen}");
    let mut client =
        govmedia_testkit::eventually("the service came up", std::time::Duration::from_secs(5), async || {
            PlanServiceClient::connect(endpoint.clone()).await.ok()
        })
        .await;
    let request = pb::ListPlansRequest { department_id: department.clone(), ..Default::default() };
    let plans = client.list_plans(with_token(request, &editor)).await.expect("listed").into_inner();
    assert!(plans.plans.is_empty());

    stop.send(()).expect("stop");
    running.await.expect("joined").expect("stopped cleanly");
}
