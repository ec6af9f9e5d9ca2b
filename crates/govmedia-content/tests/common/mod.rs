//! The content service in-process over real gRPC, with real identity and audit services
//! (`govmedia-world`).

#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;

use govmedia_kit::access::{DEFAULT_TTL, PermissionChecker};
use govmedia_kit::auth::TokenVerifier;
use govmedia_kit::client::{CallCredentials, ClientCredentials};
use govmedia_kit::config::{Secret, ServerSettings};
use govmedia_kit::db::Database;
use govmedia_proto::common::v1 as cpb;
use govmedia_proto::content::v1 as pb;
use govmedia_proto::content::v1::draft_service_client::DraftServiceClient;
use govmedia_proto::content::v1::plan_service_client::PlanServiceClient;
use govmedia_proto::identity::v1 as ipb;
use govmedia_proto::identity::v1::access_service_client::AccessServiceClient;
use govmedia_proto::identity::v1::access_service_server::{AccessService, AccessServiceServer};
use govmedia_testkit::with_token;
use govmedia_testkit::{TestDatabase, TestServer};
use govmedia_world::World;
use govmedia_world::rid;
use tonic::transport::Channel;

pub struct Content {
    pub world: World,
    pub core: Arc<govmedia_content::Core>,
    /// The connectors the server retracts through: an archive in `archive`.
    pub connectors: govmedia_content::scheduler::Connectors,
    pub archive: tempfile::TempDir,
    pub server: TestServer,
    pub db: Database,
    _database: TestDatabase,
    /// The slowed permission authority, when there is one.
    _authority: Option<TestServer>,
}

/// identity's `AccessService` passed through, with `CheckPermission` answered only after
/// `delay`: a slow authority, to show that nothing waits for it under a lock.
#[derive(Debug, Clone)]
pub struct SlowAccess {
    identity: Channel,
    delay: std::time::Duration,
}

fn forward<T>(request: tonic::Request<T>) -> tonic::Request<T> {
    let metadata = request.metadata().clone();
    let mut out = tonic::Request::new(request.into_inner());
    if let Some(value) = metadata.get("authorization") {
        out.metadata_mut().insert("authorization", value.clone());
    }
    out
}

#[tonic::async_trait]
impl AccessService for SlowAccess {
    async fn list_roles(
        &self,
        r: tonic::Request<ipb::ListRolesRequest>,
    ) -> Result<tonic::Response<ipb::ListRolesResponse>, tonic::Status> {
        AccessServiceClient::new(self.identity.clone()).list_roles(forward(r)).await
    }

    async fn create_role_binding(
        &self,
        r: tonic::Request<ipb::CreateRoleBindingRequest>,
    ) -> Result<tonic::Response<ipb::CreateRoleBindingResponse>, tonic::Status> {
        AccessServiceClient::new(self.identity.clone()).create_role_binding(forward(r)).await
    }

    async fn delete_role_binding(
        &self,
        r: tonic::Request<ipb::DeleteRoleBindingRequest>,
    ) -> Result<tonic::Response<ipb::DeleteRoleBindingResponse>, tonic::Status> {
        AccessServiceClient::new(self.identity.clone()).delete_role_binding(forward(r)).await
    }

    async fn list_role_bindings(
        &self,
        r: tonic::Request<ipb::ListRoleBindingsRequest>,
    ) -> Result<tonic::Response<ipb::ListRoleBindingsResponse>, tonic::Status> {
        AccessServiceClient::new(self.identity.clone()).list_role_bindings(forward(r)).await
    }

    async fn check_permission(
        &self,
        r: tonic::Request<ipb::CheckPermissionRequest>,
    ) -> Result<tonic::Response<ipb::CheckPermissionResponse>, tonic::Status> {
        tokio::time::sleep(self.delay).await;
        AccessServiceClient::new(self.identity.clone()).check_permission(forward(r)).await
    }

    async fn batch_check_permission(
        &self,
        r: tonic::Request<ipb::BatchCheckPermissionRequest>,
    ) -> Result<tonic::Response<ipb::BatchCheckPermissionResponse>, tonic::Status> {
        tokio::time::sleep(self.delay).await;
        AccessServiceClient::new(self.identity.clone()).batch_check_permission(forward(r)).await
    }
}

impl Content {
    pub async fn start(database: TestDatabase) -> Self {
        Self::start_with(database, None).await
    }

    /// As [`Content::start`]; with `slow_checks`, every permission check waits that long
    /// at identity and none is cached.
    pub async fn start_with(database: TestDatabase, slow_checks: Option<std::time::Duration>) -> Self {
        let world = World::start(TestDatabase::sqlite()).await;
        let db = database.connect(&govmedia_content::MIGRATIONS).await;
        let credentials = CallCredentials::ClientCredentials(Arc::new(ClientCredentials::new(
            world.identity.channel(),
            "govmedia-content".into(),
            Secret::new(world.content_secret.clone()),
        )));
        let authority = match slow_checks {
            Some(delay) => Some(
                TestServer::start(
                    govmedia_kit::server::ServerBuilder::new(ServerSettings::loopback()).add_service(
                        AccessServiceServer::new(SlowAccess { identity: world.identity.channel(), delay }),
                    ),
                )
                .await,
            ),
            None => None,
        };
        let permissions = match &authority {
            Some(slow) => PermissionChecker::new(slow.channel(), credentials.clone(), std::time::Duration::ZERO),
            None => PermissionChecker::new(world.identity.channel(), credentials.clone(), DEFAULT_TTL),
        };
        let core = govmedia_content::Core::new(
            db.clone(),
            Arc::new(govmedia_domain::clock::SystemClock),
            permissions,
            world.identity.channel(),
            Some(world.audit.channel()),
            credentials,
            govmedia_content::DEFAULT_PROOFREADING_PASSES,
        );
        let verifier = Arc::new(TokenVerifier::from_identity(world.identity.channel()));
        let archive = tempfile::tempdir().expect("archive folder");
        let connectors = govmedia_content::scheduler::Connectors::new(Arc::new(
            govmedia_content::connector::archive::ArchiveConnector::new(archive.path()),
        ));
        let server = TestServer::start(govmedia_content::server(
            &core,
            connectors.clone(),
            ServerSettings::loopback(),
            verifier,
        ))
        .await;
        Self { world, core, server, db, connectors, archive, _database: database, _authority: authority }
    }

    pub fn plans(&self) -> PlanServiceClient<Channel> {
        PlanServiceClient::new(self.server.channel())
    }

    pub fn publications(
        &self,
    ) -> govmedia_proto::content::v1::publication_service_client::PublicationServiceClient<Channel> {
        govmedia_proto::content::v1::publication_service_client::PublicationServiceClient::new(self.server.channel())
    }

    pub fn drafts(&self) -> DraftServiceClient<Channel> {
        DraftServiceClient::new(self.server.channel())
    }

    pub async fn outbox_actions(&self) -> Vec<String> {
        let payloads: Vec<String> = match &self.db {
            Database::Postgres(pool) => {
                sqlx::query_scalar("SELECT payload::text FROM govmedia_outbox ORDER BY seq").fetch_all(pool).await
            }
            Database::Sqlite(pool) => {
                sqlx::query_scalar("SELECT payload FROM govmedia_outbox ORDER BY seq").fetch_all(pool).await
            }
        }
        .expect("outbox");
        payloads
            .iter()
            .map(|p| {
                serde_json::from_str::<serde_json::Value>(p).expect("json")["action"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            })
            .collect()
    }
}

/// A department with an author, two department reviewers, a supervising leader, a
/// principal leader, someone holding two review roles, and a Weibo account.
pub struct Desk {
    pub c: Content,
    pub department: String,
    pub account: String,
    pub author: String,
    pub author_id: String,
    pub reviewer: String,
    pub reviewer2: String,
    pub leader: String,
    pub principal: String,
    /// Holds the department reviewer role (the department) and the supervising leader
    /// role (bureau-wide) at once: two stages one person may hold on different scopes.
    pub double: String,
}

pub async fn desk(db: TestDatabase) -> Desk {
    desk_with(db, None).await
}

/// As [`desk`], with every permission check slowed by `slow_checks`.
pub async fn desk_with(db: TestDatabase, slow_checks: Option<std::time::Duration>) -> Desk {
    let c = Content::start_with(db, slow_checks).await;
    let w = &c.world;
    let department = w.department("Publicity", "PUB").await;
    let d = cpb::ScopeKind::Department;
    let (author_id, author) = w.staff("editor", &department, &[("editor", d, &department)]).await;
    let (_, reviewer) = w.staff("reviewer", &department, &[("department_reviewer", d, &department)]).await;
    let (_, reviewer2) = w.staff("reviewer2", &department, &[("department_reviewer", d, &department)]).await;
    let (_, leader) = w.staff("leader", &department, &[("supervising_leader", d, &department)]).await;
    let (_, principal) = w.staff("principal", &department, &[("principal_leader", cpb::ScopeKind::Global, "")]).await;
    let (_, double) = w
        .staff(
            "double",
            &department,
            &[("department_reviewer", d, &department), ("supervising_leader", cpb::ScopeKind::Global, "")],
        )
        .await;
    let account = w.platform_account(cpb::Platform::Weibo, "bureau_weibo", &department, &author_id).await;
    Desk { c, department, account, author, author_id, reviewer, reviewer2, leader, principal, double }
}

pub fn content(title: &str, body: &str) -> pb::DraftContent {
    pb::DraftContent { title: title.into(), body: body.into(), ..Default::default() }
}

pub async fn create(desk: &Desk, body: &str) -> pb::Draft {
    desk.c
        .drafts()
        .create_draft(with_token(
            pb::CreateDraftRequest {
                request_id: rid(),
                department_id: desk.department.clone(),
                target_platform_account_ids: vec![desk.account.clone()],
                content: Some(content("市局发布", body)),
                ..Default::default()
            },
            &desk.author,
        ))
        .await
        .expect("created")
        .into_inner()
        .draft
        .expect("draft")
}

pub async fn submit(desk: &Desk, draft: &pb::Draft) -> Result<pb::Draft, tonic::Status> {
    desk.c
        .drafts()
        .submit_draft(with_token(
            pb::SubmitDraftRequest { request_id: rid(), draft_id: draft.id.clone(), etag: draft.etag.clone() },
            &desk.author,
        ))
        .await
        .map(|r| r.into_inner().draft.expect("draft"))
}

pub fn all_met() -> pb::ReviewCriteria {
    let m = pb::CriterionResult::Met as i32;
    pb::ReviewCriteria { legality: m, truthfulness: m, objectivity: m, accuracy: m, standardisation: m }
}

pub async fn approve(
    desk: &Desk,
    draft: &pb::Draft,
    stage: pb::ReviewStage,
    token: &str,
) -> Result<pb::Draft, tonic::Status> {
    desk.c
        .drafts()
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
        .map(|r| r.into_inner().draft.expect("draft"))
}

/// A draft approved by all three stages and proofread three times.
pub async fn approved(desk: &Desk, body: &str) -> pb::Draft {
    let draft = submit(desk, &create(desk, body).await).await.expect("submitted");
    let draft = approve(desk, &draft, pb::ReviewStage::Department, &desk.reviewer).await.expect("department");
    let draft = approve(desk, &draft, pb::ReviewStage::SupervisingLeader, &desk.leader).await.expect("supervising");
    let draft = approve(desk, &draft, pb::ReviewStage::PrincipalLeader, &desk.principal).await.expect("principal");
    for token in [&desk.author, &desk.reviewer2, &desk.reviewer] {
        desk.c
            .drafts()
            .sign_off_proofreading(with_token(
                pb::SignOffProofreadingRequest {
                    request_id: rid(),
                    draft_id: draft.id.clone(),
                    version: draft.current_version,
                    note: String::new(),
                },
                token,
            ))
            .await
            .expect("signed");
    }
    draft
}

/// A publication row of `draft` on the desk's account, inserted through the store: for
/// tests of what reads publications (the scheduler, reports) without the RPCs that
/// make them.
pub async fn publication_row(
    desk: &Desk,
    draft: &pb::Draft,
    state: govmedia_content::domain::publication::PublicationState,
    scheduled_at: chrono::DateTime<chrono::Utc>,
    published_at: Option<chrono::DateTime<chrono::Utc>>,
) -> govmedia_domain::ids::PublicationId {
    use govmedia_content::domain::publication::{Channel, Publication};
    use govmedia_content::store::publications;
    let now = chrono::Utc::now();
    let p = Publication {
        id: govmedia_domain::ids::PublicationId::new(),
        draft: draft.id.parse().expect("draft id"),
        draft_version: i64::from(draft.current_version),
        account: desk.account.parse().expect("account id"),
        state,
        scheduled_at,
        published_at,
        scheduled_by: desk.author_id.parse().expect("user id"),
        channel: Channel::Connector,
        connector: String::new(),
        platform_post_id: String::new(),
        url: String::new(),
        attempt_count: 0,
        next_attempt_at: None,
        lease_until: None,
        last_error: String::new(),
        approvers: vec![],
        proofreaders: vec![],
        evidence: String::new(),
        withdrawal_reason: String::new(),
        withdrawn_by: String::new(),
        withdrawn_at: None,
        created_at: now,
        updated_at: now,
        version: 1,
    };
    let mut tx = desk.c.db.begin().await.expect("tx");
    publications::insert(&mut tx, &p).await.expect("insert");
    tx.commit().await.expect("commit");
    p.id
}
