//! The scheduler over real identity, audit and content on PostgreSQL and SQLite,
//! publishing to a webhook receiver on loopback: an approved, proofread draft goes out
//! once with its approvers and proofreaders; two scheduler replicas on one database
//! publish each due item exactly once, counted at the receiver; what is not approved in
//! time expires; a frozen account publishes nothing; temporary failures are retried and
//! refusals fail with the error shown (R3.2.1, R3.3.1, R3.3.2, R2.3.3).

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use common::{Desk, approved, create, desk, publication_row, submit};
use govmedia_content::connector::webhook::{WebhookConnector, WebhookSettings};
use govmedia_content::domain::publication::Publication;
use govmedia_content::domain::publication::{PublicationState, RetryPolicy};
use govmedia_content::scheduler::{Connectors, Scheduler, SchedulerSettings, Tick};
use govmedia_content::store::publications;
use govmedia_domain::ids::PublicationId;
use govmedia_kit::config::Secret;
use govmedia_proto::content::v1 as pb;
use govmedia_proto::identity::v1 as ipb;
use govmedia_proto::identity::v1::platform_account_service_client::PlatformAccountServiceClient;
use govmedia_testkit::{TestDatabase, storage_tests, with_token};
use govmedia_world::rid;

const SECRET: &str = "the-bureau-webhook-secret";

/// Counts deliveries per idempotency key; answers 503 while `down` is above zero and
/// 422 when `refuse`.
#[derive(Default)]
struct Receiver {
    per_key: Mutex<HashMap<String, usize>>,
    down: Mutex<usize>,
    refuse: Mutex<bool>,
}

async fn hook(State(r): State<Arc<Receiver>>, headers: HeaderMap) -> (StatusCode, String) {
    let key = headers.get("idempotency-key").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    {
        let mut down = r.down.lock().expect("lock");
        if *down > 0 {
            *down -= 1;
            return (StatusCode::SERVICE_UNAVAILABLE, "maintenance".into());
        }
    }
    if *r.refuse.lock().expect("lock") {
        return (StatusCode::UNPROCESSABLE_ENTITY, "duplicate content".into());
    }
    *r.per_key.lock().expect("lock").entry(key.clone()).or_default() += 1;
    (StatusCode::OK, format!(r#"{{"platform_post_id":"{key}","url":"https://weibo.example/{key}"}}"#))
}

async fn receiver() -> (Arc<Receiver>, String) {
    let r = Arc::new(Receiver::default());
    let app = Router::new().route("/hook", post(hook)).with_state(r.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    (r, url)
}

fn scheduler(desk: &Desk, url: &str) -> Scheduler {
    let mut webhook = WebhookSettings::new(url, Secret::new(SECRET), false).expect("settings");
    webhook.attempts = 1;
    let settings = SchedulerSettings {
        batch: 4,
        retry: RetryPolicy { max_attempts: 2, first_delay: Duration::ZERO, max_delay: Duration::ZERO },
        ..SchedulerSettings::default()
    };
    Scheduler::new(desk.c.core.clone(), Connectors::new(Arc::new(WebhookConnector::new(webhook))), settings)
}

/// A publication of `draft` on the desk's account, due now.
async fn due(desk: &Desk, draft: &pb::Draft) -> PublicationId {
    publication_row(desk, draft, PublicationState::Scheduled, chrono::Utc::now() - chrono::Duration::seconds(1), None)
        .await
}

async fn fetch(desk: &Desk, id: PublicationId) -> Publication {
    let mut tx = desk.c.db.begin_read().await.expect("tx");
    publications::get(&mut tx, id).await.expect("get").expect("exists")
}

async fn an_approved_draft_is_published_once_with_its_reviewers_r3_3_1(db: TestDatabase) {
    let d = desk(db).await;
    let (r, url) = receiver().await;
    let draft = approved(&d, "市局发布防汛通告，请市民减少外出。").await;
    let id = due(&d, &draft).await;
    let s = scheduler(&d, &url);
    assert_eq!(s.tick().await.expect("tick"), Tick { published: 1, ..Tick::default() });
    assert_eq!(s.tick().await.expect("tick"), Tick::default(), "nothing more is due");

    let p = fetch(&d, id).await;
    assert_eq!(p.state, PublicationState::Published);
    assert_eq!((p.connector.as_str(), p.platform_post_id.clone()), ("webhook", format!("{id}:publish")));
    assert_eq!(p.draft_version, i64::from(draft.current_version));
    let approvers: Vec<String> = p.approvers.iter().map(ToString::to_string).collect();
    let expected: Vec<String> = draft.decisions.iter().map(|x| x.reviewer_user_id.clone()).collect();
    assert_eq!(approvers, expected, "department, supervising, principal in order (R3.2.2)");
    assert_eq!(p.proofreaders.len(), 3, "the proofreaders' names go with it (R3.3.2)");
    assert_eq!(r.per_key.lock().expect("lock").get(&format!("{id}:publish")), Some(&1));

    let fetched =
        d.c.drafts()
            .get_draft(with_token(pb::GetDraftRequest { draft_id: draft.id.clone() }, &d.author))
            .await
            .expect("get")
            .into_inner()
            .draft
            .expect("draft");
    assert_eq!(fetched.state, pb::DraftState::Published as i32);
    let actions = d.c.outbox_actions().await;
    assert_eq!(actions.last().map(String::as_str), Some("publication.published"));
}

async fn two_replicas_publish_each_due_item_exactly_once_r3_3_1(db: TestDatabase) {
    let d = desk(db).await;
    let (r, url) = receiver().await;
    let mut ids = Vec::new();
    for i in 0..3 {
        let draft = approved(&d, &format!("第{i}条：市局发布今日工作动态。")).await;
        for _ in 0..4 {
            ids.push(due(&d, &draft).await);
        }
    }
    let (a, b) = (scheduler(&d, &url), scheduler(&d, &url));
    let mut total = Tick::default();
    for _ in 0..10 {
        let (x, y) = tokio::join!(a.tick(), b.tick());
        for t in [x.expect("a"), y.expect("b")] {
            total.published += t.published;
            total.failed += t.failed;
            total.superseded += t.superseded;
        }
    }
    assert_eq!((total.published, total.failed, total.superseded), (12, 0, 0));
    let per_key = r.per_key.lock().expect("lock").clone();
    assert_eq!(per_key.len(), 12);
    assert!(per_key.values().all(|n| *n == 1), "each publication reached the receiver once: {per_key:?}");
    for id in ids {
        assert_eq!(fetch(&d, id).await.state, PublicationState::Published);
    }
}

async fn a_draft_not_approved_by_its_time_expires_r3_2_1(db: TestDatabase) {
    let d = desk(db).await;
    let (r, url) = receiver().await;
    let draft = submit(&d, &create(&d, "待审稿件：周末活动预告。").await).await.expect("submitted");
    let id = due(&d, &draft).await;
    assert_eq!(scheduler(&d, &url).tick().await.expect("tick"), Tick { expired: 1, ..Tick::default() });
    let p = fetch(&d, id).await;
    assert_eq!(p.state, PublicationState::Expired);
    assert!(p.last_error.starts_with("R3.2.1"), "{}", p.last_error);
    assert!(r.per_key.lock().expect("lock").is_empty(), "nothing was sent");
    assert_eq!(d.c.outbox_actions().await.last().map(String::as_str), Some("publication.expired"));
}

async fn a_frozen_account_publishes_nothing_r2_3_3(db: TestDatabase) {
    let d = desk(db).await;
    let (r, url) = receiver().await;
    let draft = approved(&d, "市局发布今日交通提示。").await;
    let id = due(&d, &draft).await;
    PlatformAccountServiceClient::new(d.c.world.identity.channel())
        .freeze_platform_account(with_token(
            ipb::FreezePlatformAccountRequest {
                request_id: rid(),
                platform_account_id: d.account.clone(),
                reason: "异常登录".into(),
                etag: String::new(),
            },
            &d.c.world.admin_token,
        ))
        .await
        .expect("frozen");
    assert_eq!(scheduler(&d, &url).tick().await.expect("tick"), Tick { failed: 1, ..Tick::default() });
    let p = fetch(&d, id).await;
    assert_eq!(p.state, PublicationState::Failed);
    assert!(p.last_error.starts_with("R2.3.3"), "{}", p.last_error);
    assert!(r.per_key.lock().expect("lock").is_empty());
}

async fn temporary_failures_are_retried_and_refusals_fail_visibly_r3_3_1(db: TestDatabase) {
    let d = desk(db).await;
    let (r, url) = receiver().await;
    let s = scheduler(&d, &url);

    let draft = approved(&d, "市局发布今日天气提示。").await;
    let id = due(&d, &draft).await;
    *r.down.lock().expect("lock") = 1;
    assert_eq!(s.tick().await.expect("tick"), Tick { retrying: 1, ..Tick::default() });
    let p = fetch(&d, id).await;
    assert_eq!((p.state, p.attempt_count), (PublicationState::Publishing, 1));
    assert!(p.last_error.contains("503"), "{}", p.last_error);
    assert!(p.next_attempt_at.is_some());
    assert_eq!(s.tick().await.expect("tick"), Tick { published: 1, ..Tick::default() }, "the retry goes out");
    let p = fetch(&d, id).await;
    assert_eq!((p.state, p.attempt_count, p.last_error.as_str()), (PublicationState::Published, 2, ""));

    let draft = approved(&d, "市局发布今日出行提示。").await;
    let id = due(&d, &draft).await;
    *r.refuse.lock().expect("lock") = true;
    assert_eq!(s.tick().await.expect("tick"), Tick { failed: 1, ..Tick::default() });
    let p = fetch(&d, id).await;
    assert_eq!(p.state, PublicationState::Failed);
    assert_eq!(p.last_error, "refused: webhook answered 422 Unprocessable Entity: duplicate content");
    let actions = d.c.outbox_actions().await;
    let story: Vec<&str> = actions.iter().map(String::as_str).filter(|a| a.starts_with("publication.")).collect();
    assert_eq!(story, ["publication.attempt_failed", "publication.published", "publication.failed"]);
}

async fn a_term_blocked_after_approval_stops_the_publication_r7_1_1(db: TestDatabase) {
    let d = desk(db).await;
    let (r, url) = receiver().await;
    let draft = approved(&d, "本周举办云端推介会，欢迎参加。").await;
    let id = due(&d, &draft).await;
    // After the approval the security officer blocks a term the draft holds.
    d.c.world
        .screening()
        .upsert_lexicon_entries(with_token(
            govmedia_proto::audit::v1::UpsertLexiconEntriesRequest {
                request_id: rid(),
                entries: vec![govmedia_proto::audit::v1::LexiconEntry {
                    term: "云端推介会".into(),
                    category: govmedia_proto::common::v1::ScreeningCategory::Illegal as i32,
                    severity: govmedia_proto::common::v1::ScreeningSeverity::Block as i32,
                    rule_id: "R7.1.1".into(),
                    source: "security notice 2026-11".into(),
                    ..Default::default()
                }],
            },
            &d.c.world.officer_token,
        ))
        .await
        .expect("blocked");
    let s = scheduler(&d, &url);
    assert_eq!(s.tick().await.expect("tick"), Tick { failed: 1, ..Tick::default() });
    let p = fetch(&d, id).await;
    assert_eq!(p.state, PublicationState::Failed);
    assert!(p.last_error.contains("R7.1.1") && p.last_error.contains("云端推介会"), "{}", p.last_error);
    assert!(r.per_key.lock().expect("lock").is_empty(), "nothing went out");
}

storage_tests!(
    a_term_blocked_after_approval_stops_the_publication_r7_1_1,
    an_approved_draft_is_published_once_with_its_reviewers_r3_3_1,
    two_replicas_publish_each_due_item_exactly_once_r3_3_1,
    a_draft_not_approved_by_its_time_expires_r3_2_1,
    a_frozen_account_publishes_nothing_r2_3_3,
    temporary_failures_are_retried_and_refusals_fail_visibly_r3_3_1,
);
