//! `serve()`: missing or malformed settings are refused by name before anything starts,
//! and a configured service starts on its own SQLite file against real identity and
//! audit, answers gRPC, and stops cleanly on shutdown.

use clap::Parser;
use govmedia_interaction::{InteractionSettings, policy, serve};
use govmedia_proto::interaction::v1 as pb;
use govmedia_proto::interaction::v1::comment_service_client::CommentServiceClient;
use govmedia_testkit::{TestDatabase, with_token};
use govmedia_world::World;

fn settings(args: &[&str]) -> InteractionSettings {
    InteractionSettings::try_parse_from(std::iter::once("govmedia-interaction").chain(args.iter().copied()))
        .expect("parsed")
}

#[tokio::test]
async fn missing_and_malformed_settings_are_named() {
    let err = serve(settings(&[]), async {}).await.expect_err("no database");
    assert!(err.to_string().contains("GOVMEDIA_DATABASE_URL"), "{err}");
    let err = serve(settings(&["--database-url", "sqlite::memory:"]), async {}).await.expect_err("no identity");
    assert!(err.to_string().contains("GOVMEDIA_IDENTITY_ENDPOINT"), "{err}");

    let defaults = policy(&settings(&[]).interaction).expect("the defaults are valid");
    assert_eq!(defaults.referral_working_days, 5);
    for (args, setting) in [
        (&["--time-zone", "Mars/Olympus"][..], "GOVMEDIA_INTERACTION_TIME_ZONE"),
        (&["--working-hours", "09:00-25:00"][..], "GOVMEDIA_INTERACTION_WORKING_HOURS"),
        (&["--working-hours", "12:00-09:00"][..], "GOVMEDIA_INTERACTION_WORKING_HOURS"),
        (&["--working-weekdays", "mon,someday"][..], "GOVMEDIA_INTERACTION_WORKING_WEEKDAYS"),
        (&["--holidays", "2026-13-01"][..], "GOVMEDIA_HOLIDAYS"),
        (&["--comment-target-minutes", "0"][..], "GOVMEDIA_INTERACTION_COMMENT_TARGET_MINUTES"),
        (&["--max-open-conversations", "0"][..], "GOVMEDIA_INTERACTION_MAX_OPEN_CONVERSATIONS"),
    ] {
        let err = policy(&settings(args).interaction).expect_err("refused");
        assert_eq!(err.setting, setting, "{args:?}: {err}");
    }
    // A holiday that is also a make-up working day is a contradiction.
    let err = policy(&settings(&["--holidays", "2026-10-01", "--makeup-working-days", "2026-10-01"]).interaction)
        .expect_err("both");
    assert!(err.message.contains("2026-10-01"), "{err}");
}

#[tokio::test]
async fn a_configured_service_starts_answers_and_stops() {
    let world = World::start(TestDatabase::sqlite()).await;
    let folder = tempfile::tempdir().expect("dir");
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let database = format!("sqlite://{}?mode=rwc", folder.path().join("interaction.db").display());
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
        "govmedia-interaction",
        "--client-secret",
        &world.interaction_secret,
        "--holidays",
        "2027-01-01",
    ]);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(serve(s, async move {
        let _ = stopped.await;
    }));

    let department = world.department("Publicity", "PUB").await;
    let (moderator_id, moderator) = world
        .staff(
            "moderator",
            &department,
            &[("moderator", govmedia_proto::common::v1::ScopeKind::Department, &department)],
        )
        .await;
    let account = world
        .platform_account(govmedia_proto::common::v1::Platform::Weibo, "bureau_weibo", &department, &moderator_id)
        .await;
    let endpoint = format!("http://{listen}");
    let mut client =
        govmedia_testkit::eventually("the service came up", std::time::Duration::from_secs(5), async || {
            CommentServiceClient::connect(endpoint.clone()).await.ok()
        })
        .await;
    let request = pb::ListCommentsRequest { platform_account_id: account.clone(), ..Default::default() };
    let comments = client.list_comments(with_token(request, &moderator)).await.expect("listed").into_inner();
    assert!(comments.comments.is_empty());

    stop.send(()).expect("stop");
    running.await.expect("joined").expect("stopped cleanly");
}
