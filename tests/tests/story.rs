//! The whole story of a bureau's day, through the gateway only, against `govmedia up`
//! started as a real process — on SQLite files and on PostgreSQL:
//!
//! the administrator signs in with the first password and must change it, then sets up a
//! department, its staff and their scoped roles, a Weibo account and the platform
//! integration's service principal; an editor drafts, the department reviewer, the
//! supervising leader and the principal leader approve (R3.2.2), three people proofread
//! (R3.3.2), a publisher schedules, and the scheduler publishes to the archive connector,
//! whose file holds the text; a comment carrying a classified marking arrives and is
//! hidden (R4.1), a moderator replies to another; and the audit log holds every step and
//! verifies intact (R1.3, R9.2). SIGTERM then stops everything cleanly.

use std::time::{Duration, Instant};

use govmedia_proto::audit::v1 as apb;
use govmedia_proto::audit::v1::audit_log_service_client::AuditLogServiceClient;
use govmedia_proto::common::v1 as cpb;
use govmedia_proto::content::v1 as pb;
use govmedia_proto::content::v1::draft_service_client::DraftServiceClient;
use govmedia_proto::content::v1::publication_service_client::PublicationServiceClient;
use govmedia_proto::identity::v1 as ipb;
use govmedia_proto::identity::v1::authentication_service_client::AuthenticationServiceClient;
use govmedia_proto::identity::v1::directory_service_client::DirectoryServiceClient;
use govmedia_proto::identity::v1::platform_account_service_client::PlatformAccountServiceClient;
use govmedia_proto::interaction::v1 as xpb;
use govmedia_proto::interaction::v1::comment_service_client::CommentServiceClient;
use govmedia_testkit::with_token;
use govmedia_tests::Up;
use govmedia_world::{grant_in_scope, staff_member};
use tonic::transport::Channel;

const FIRST: &str = "Harbour#Lights2026";
const ADMIN: &str = "Quiet#Forest2027!";
const STAFF: &str = "River#Stones2027?";
const TITLE: &str = "汛期安全提示";
const BODY: &str = "主汛期已至，请市民关注预警信息，减少不必要的外出。";

fn rid() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// The gateway, as every caller in the story reaches the system.
struct Gateway {
    channel: Channel,
    admin: String,
}

impl Gateway {
    async fn connect(url: &str) -> Channel {
        tonic::transport::Endpoint::from_shared(url.to_owned()).expect("url").connect().await.expect("the gateway")
    }

    /// A member of staff of `department` holding `roles` there (or globally for
    /// `auditor`), signed in with their own password; (id, token).
    async fn staff(&self, username: &str, department: &str, roles: &[&str]) -> (String, String) {
        let scoped: Vec<(&str, cpb::ScopeKind, &str)> = roles
            .iter()
            .map(|role| match *role {
                "auditor" | "principal_leader" => (*role, cpb::ScopeKind::Global, ""),
                _ => (*role, cpb::ScopeKind::Department, department),
            })
            .collect();
        staff_member(self.channel.clone(), &self.admin, username, department, &scoped, STAFF).await
    }
}

fn all_met() -> pb::ReviewCriteria {
    let m = pb::CriterionResult::Met as i32;
    pb::ReviewCriteria { legality: m, truthfulness: m, objectivity: m, accuracy: m, standardisation: m }
}

async fn story(database_url: Option<&str>) {
    let up = tokio::task::block_in_place(|| Up::start(database_url, FIRST));
    let channel = Gateway::connect(&up.gateway).await;

    // The administrator's first sign-in may only change the password.
    let mut auth = AuthenticationServiceClient::new(channel.clone());
    let first = auth
        .login(ipb::LoginRequest { username: "admin".into(), password: FIRST.into() })
        .await
        .expect("the administrator signs in")
        .into_inner();
    assert!(first.password_change_required);
    let refused = DirectoryServiceClient::new(channel.clone())
        .list_users(with_token(ipb::ListUsersRequest::default(), &first.tokens.as_ref().expect("tokens").access_token))
        .await
        .expect_err("nothing before the password is changed");
    assert_eq!(refused.code(), tonic::Code::FailedPrecondition, "{refused:?}");
    let admin = auth
        .change_password(with_token(
            ipb::ChangePasswordRequest { current_password: FIRST.into(), new_password: ADMIN.into() },
            &first.tokens.expect("tokens").access_token,
        ))
        .await
        .expect("the administrator's own password")
        .into_inner()
        .tokens
        .expect("tokens")
        .access_token;
    let gw = Gateway { channel: channel.clone(), admin };

    // The office: a department, its staff and their roles, an account, an integration.
    let department = DirectoryServiceClient::new(channel.clone())
        .create_department(with_token(
            ipb::CreateDepartmentRequest {
                request_id: rid(),
                department: Some(ipb::Department {
                    name: "宣传处".into(), code: "PUB".into(), ..Default::default()
                }),
            },
            &gw.admin,
        ))
        .await
        .expect("department")
        .into_inner()
        .department
        .expect("department")
        .id;
    let (editor_id, editor) = gw.staff("editor", &department, &["editor"]).await;
    let (_, reviewer) = gw.staff("reviewer", &department, &["department_reviewer"]).await;
    let (_, reviewer2) = gw.staff("reviewer2", &department, &["department_reviewer"]).await;
    let (_, leader) = gw.staff("leader", &department, &["supervising_leader"]).await;
    let (_, principal) = gw.staff("principal", &department, &["principal_leader"]).await;
    let (_, publisher) = gw.staff("publisher", &department, &["publisher"]).await;
    let (_, moderator) = gw.staff("moderator", &department, &["moderator"]).await;
    let (_, auditor) = gw.staff("auditor", &department, &["auditor"]).await;
    let account = PlatformAccountServiceClient::new(channel.clone())
        .create_platform_account(with_token(
            ipb::CreatePlatformAccountRequest {
                request_id: rid(),
                platform_account: Some(ipb::PlatformAccount {
                    platform: cpb::Platform::Weibo as i32,
                    handle: "bureau_weibo".into(),
                    profile: Some(ipb::PlatformAccountProfile {
                        display_name: "市局发布".into(),
                        ..Default::default()
                    }),
                    department_id: department.clone(),
                    responsible_user_id: editor_id.clone(),
                    ..Default::default()
                }),
            },
            &gw.admin,
        ))
        .await
        .expect("account")
        .into_inner()
        .platform_account
        .expect("account")
        .id;
    let integration = DirectoryServiceClient::new(channel.clone())
        .create_service_principal(with_token(
            ipb::CreateServicePrincipalRequest {
                request_id: rid(),
                service_principal: Some(ipb::ServicePrincipal {
                    client_id: "weibo-connector".into(),
                    display_name: "Weibo integration".into(),
                    ..Default::default()
                }),
            },
            &gw.admin,
        ))
        .await
        .expect("service principal")
        .into_inner();
    let integration_id = integration.service_principal.as_ref().expect("principal").id.clone();
    grant_in_scope(channel.clone(), &gw.admin, &integration_id, "platform_integration", cpb::ScopeKind::Global, "")
        .await;

    // The draft, its three reviews and three proofreading passes.
    let mut drafts = DraftServiceClient::new(channel.clone());
    let draft = drafts
        .create_draft(with_token(
            pb::CreateDraftRequest {
                request_id: rid(),
                department_id: department.clone(),
                target_platform_account_ids: vec![account.clone()],
                content: Some(pb::DraftContent { title: TITLE.into(), body: BODY.into(), ..Default::default() }),
                ..Default::default()
            },
            &editor,
        ))
        .await
        .expect("drafted")
        .into_inner()
        .draft
        .expect("draft");
    let mut draft = drafts
        .submit_draft(with_token(
            pb::SubmitDraftRequest { request_id: rid(), draft_id: draft.id.clone(), etag: draft.etag.clone() },
            &editor,
        ))
        .await
        .expect("submitted")
        .into_inner()
        .draft
        .expect("draft");
    for (stage, token) in [
        (pb::ReviewStage::Department, &reviewer),
        (pb::ReviewStage::SupervisingLeader, &leader),
        (pb::ReviewStage::PrincipalLeader, &principal),
    ] {
        draft = drafts
            .approve_draft(with_token(
                pb::ApproveDraftRequest {
                    request_id: rid(),
                    draft_id: draft.id.clone(),
                    version: draft.current_version,
                    stage: stage as i32,
                    criteria: Some(all_met()),
                    comment: "符合要求".into(),
                },
                token,
            ))
            .await
            .unwrap_or_else(|e| panic!("{stage:?} approves: {e}"))
            .into_inner()
            .draft
            .expect("draft");
    }
    assert_eq!(draft.state, pb::DraftState::Approved as i32);
    for token in [&editor, &reviewer, &reviewer2] {
        drafts
            .sign_off_proofreading(with_token(
                pb::SignOffProofreadingRequest {
                    request_id: rid(),
                    draft_id: draft.id.clone(),
                    version: draft.current_version,
                    note: "已校对".into(),
                },
                token,
            ))
            .await
            .expect("proofread");
    }

    // Scheduled by the publisher; the scheduler publishes it to the archive.
    let mut publications = PublicationServiceClient::new(channel.clone());
    let publication = publications
        .schedule_publication(with_token(
            pb::SchedulePublicationRequest {
                request_id: rid(),
                draft_id: draft.id.clone(),
                platform_account_id: account.clone(),
                scheduled_time: None,
            },
            &publisher,
        ))
        .await
        .expect("scheduled")
        .into_inner()
        .publication
        .expect("publication");
    let published = eventually("the scheduler publishes", || {
        let (mut publications, id, token) = (publications.clone(), publication.id.clone(), publisher.clone());
        async move {
            let p = publications
                .get_publication(with_token(pb::GetPublicationRequest { publication_id: id }, &token))
                .await
                .ok()?
                .into_inner()
                .publication?;
            (p.state == pb::PublicationState::Published as i32).then_some(p)
        }
    })
    .await;
    assert_eq!(published.draft_version, draft.current_version);
    assert_eq!(published.approver_user_ids.len(), 3, "the three signatures travel with it (R3.2.2)");
    assert_eq!(published.proofreader_user_ids.len(), 3, "and the three proofreaders (R3.3.2)");
    let archived = up.data.path().join("publications").join(&account).join(format!("{}.json", publication.id));
    let file = std::fs::read_to_string(&archived).unwrap_or_else(|e| panic!("{}: {e}", archived.display()));
    assert!(file.contains(BODY), "the archive holds the text: {file}");

    // The public: a classified marking is hidden at once; a question is answered.
    let mut comments = CommentServiceClient::new(channel.clone());
    let integration_token = AuthenticationServiceClient::new(channel.clone())
        .exchange_client_credentials(ipb::ExchangeClientCredentialsRequest {
            client_id: "weibo-connector".into(),
            client_secret: integration.client_secret.clone(),
        })
        .await
        .expect("the integration's token")
        .into_inner()
        .tokens
        .expect("tokens")
        .access_token;
    let incoming = |id: &str, text: &str| xpb::IncomingComment {
        platform_comment_id: id.into(),
        platform_post_id: "post-1".into(),
        author_platform_id: format!("fan-{id}"),
        author_name: "市民".into(),
        text: text.into(),
        ..Default::default()
    };
    let batch = comments
        .ingest_comments(with_token(
            xpb::IngestCommentsRequest {
                platform_account_id: account.clone(),
                comments: vec![
                    incoming("c-1", "内部资料：绝密级会议纪要，速看"),
                    incoming("c-2", "请问汛期地铁会停运吗？"),
                ],
            },
            &integration_token,
        ))
        .await
        .expect("comments arrive")
        .into_inner();
    let status: Vec<i32> = batch.results.iter().map(|r| r.status).collect();
    assert_eq!(status, [xpb::CommentStatus::Hidden as i32, xpb::CommentStatus::Open as i32]);
    comments
        .reply_to_comment(with_token(
            xpb::ReplyToCommentRequest {
                request_id: rid(),
                comment_id: batch.results[1].comment_id.clone(),
                text: "您好，地铁运营安排以官方通告为准，请关注实时信息。".into(),
            },
            &moderator,
        ))
        .await
        .expect("the moderator replies");

    // The audit log: every step, relayed by each service, and the chain intact.
    let mut audit = AuditLogServiceClient::new(channel.clone());
    let content_story = [
        "draft.created",
        "draft.submitted",
        "draft.approved",
        "draft.approved",
        "draft.approved",
        "draft.proofread",
        "draft.proofread",
        "draft.proofread",
        "publication.scheduled",
        "publication.published",
    ];
    let interaction_story = ["comment.ingested", "comment.hidden", "comment.ingested", "reply.created"];
    let events = eventually("every step reaches the audit log", || {
        let (mut audit, token) = (audit.clone(), auditor.clone());
        async move {
            let events = all_events(&mut audit, &token).await?;
            let of = |producer: &str| -> Vec<String> {
                events.iter().filter(|e| e.producer == producer).map(|e| e.action.clone()).collect()
            };
            (of("content") == content_story && of("interaction") == interaction_story).then_some(events)
        }
    })
    .await;
    let identity: Vec<&str> = events.iter().filter(|e| e.producer == "identity").map(|e| e.action.as_str()).collect();
    let count = |action: &str| identity.iter().filter(|a| **a == action).count();
    assert_eq!(count("department.created"), 1, "{identity:?}");
    assert_eq!(count("user.created"), 8, "{identity:?}");
    assert_eq!(count("role_binding.created"), 9, "{identity:?}");
    assert_eq!(count("platform_account.created"), 1, "{identity:?}");
    // The four services' own, provisioned by `up` on first start, and the integration.
    assert_eq!(count("service_principal.created"), 5, "{identity:?}");
    assert_eq!(count("administrator.bootstrapped"), 1, "{identity:?}");
    assert!(count("user.password.changed") >= 9, "{identity:?}");
    let sequences: Vec<u64> = events.iter().map(|e| e.sequence).collect();
    assert!(sequences.windows(2).all(|w| w[0] < w[1]), "events come in sequence order");
    let report =
        audit.verify_log(with_token(apb::VerifyLogRequest::default(), &auditor)).await.expect("verify").into_inner();
    assert!(report.intact, "{}", report.detail);
    assert!(report.verified_event_count >= events.len() as u64, "{report:?}");

    tokio::task::block_in_place(|| up.stop());
}

/// Every event of the log, page by page (None if a call fails).
async fn all_events(audit: &mut AuditLogServiceClient<Channel>, token: &str) -> Option<Vec<apb::AuditEvent>> {
    let mut events = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = audit
            .query_events(with_token(
                apb::QueryEventsRequest { filter: Some(apb::EventFilter::default()), page_size: 500, page_token },
                token,
            ))
            .await
            .ok()?
            .into_inner();
        events.extend(page.events);
        if page.next_page_token.is_empty() {
            return Some(events);
        }
        page_token = page.next_page_token;
    }
}

/// Polls `check` until it yields a value (30 s at most): the scheduler and the outbox
/// relays work in the background.
async fn eventually<T, F, Fut>(what: &str, check: F) -> T
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "{what}: not within 30 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_story_through_the_gateway_on_sqlite() {
    story(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_story_through_the_gateway_on_postgres() {
    let database = govmedia_testkit::TestDatabase::postgres().await;
    story(Some(database.url().expose())).await;
}
