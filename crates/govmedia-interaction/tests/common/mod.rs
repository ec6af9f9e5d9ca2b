//! The interaction service in-process over real gRPC, with real identity and audit
//! services (`govmedia-world`) and a clock the test moves.

#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use govmedia_domain::clock::ManualClock;
use govmedia_kit::access::{DEFAULT_TTL, PermissionChecker};
use govmedia_kit::auth::TokenVerifier;
use govmedia_kit::client::{CallCredentials, ClientCredentials};
use govmedia_kit::config::{Secret, ServerSettings};
use govmedia_kit::db::Database;
use govmedia_proto::common::v1 as cpb;
use govmedia_proto::interaction::v1 as pb;
use govmedia_proto::interaction::v1::comment_service_client::CommentServiceClient;
use govmedia_proto::interaction::v1::moderation_service_client::ModerationServiceClient;
use govmedia_testkit::{TestDatabase, TestServer, with_token};
use govmedia_world::World;
use tonic::transport::Channel;

/// Friday 2026-11-27 16:00 in Beijing: 90 working minutes are left before the weekend.
pub fn friday_afternoon() -> DateTime<Utc> {
    chrono_tz::Asia::Shanghai.with_ymd_and_hms(2026, 11, 27, 16, 0, 0).single().expect("a time").with_timezone(&Utc)
}

/// A Beijing wall-clock time as an instant.
pub fn beijing(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
    chrono_tz::Asia::Shanghai.with_ymd_and_hms(y, m, d, h, min, 0).single().expect("a time").with_timezone(&Utc)
}

pub struct Interaction {
    pub world: World,
    pub core: Arc<govmedia_interaction::Core>,
    pub clock: ManualClock,
    pub server: TestServer,
    pub db: Database,
    pub credentials: CallCredentials,
    _database: TestDatabase,
}

impl Interaction {
    pub async fn start(database: TestDatabase) -> Self {
        Self::start_with(database, govmedia_interaction::Policy::standard().expect("policy")).await
    }

    pub async fn start_with(database: TestDatabase, policy: govmedia_interaction::Policy) -> Self {
        let world = World::start(TestDatabase::sqlite()).await;
        let db = database.connect(&govmedia_interaction::MIGRATIONS).await;
        let credentials = CallCredentials::ClientCredentials(Arc::new(ClientCredentials::new(
            world.identity.channel(),
            "govmedia-interaction".into(),
            Secret::new(world.interaction_secret.clone()),
        )));
        let clock = ManualClock::new(friday_afternoon());
        let core = govmedia_interaction::Core::new(
            db.clone(),
            Arc::new(clock.clone()),
            PermissionChecker::new(world.identity.channel(), credentials.clone(), DEFAULT_TTL),
            world.identity.channel(),
            Some(world.audit.channel()),
            credentials.clone(),
            policy,
        );
        let verifier = Arc::new(TokenVerifier::from_identity(world.identity.channel()));
        let server = TestServer::start(govmedia_interaction::server(&core, ServerSettings::loopback(), verifier)).await;
        Self { world, core, clock, server, db, credentials, _database: database }
    }

    pub fn comments(&self) -> CommentServiceClient<Channel> {
        CommentServiceClient::new(self.server.channel())
    }

    pub fn moderation(&self) -> ModerationServiceClient<Channel> {
        ModerationServiceClient::new(self.server.channel())
    }

    pub fn conversations(
        &self,
    ) -> govmedia_proto::interaction::v1::conversation_service_client::ConversationServiceClient<Channel> {
        govmedia_proto::interaction::v1::conversation_service_client::ConversationServiceClient::new(
            self.server.channel(),
        )
    }

    pub fn audience(&self) -> govmedia_proto::interaction::v1::audience_service_client::AudienceServiceClient<Channel> {
        govmedia_proto::interaction::v1::audience_service_client::AudienceServiceClient::new(self.server.channel())
    }

    /// The actions of the audit records waiting in the outbox, in order.
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

/// A department with a Weibo account, a moderator and a moderation lead on it, a
/// platform integration delivering comments, and someone with no role.
pub struct Desk {
    pub i: Interaction,
    pub department: String,
    pub account: String,
    pub moderator: String,
    pub moderator_id: String,
    pub lead: String,
    pub lead_id: String,
    pub connector: String,
}

pub async fn desk(db: TestDatabase) -> Desk {
    desk_with(db, govmedia_interaction::Policy::standard().expect("policy")).await
}

pub async fn desk_with(db: TestDatabase, policy: govmedia_interaction::Policy) -> Desk {
    let i = Interaction::start_with(db, policy).await;
    let w = &i.world;
    let department = w.department("Publicity", "PUB").await;
    let d = cpb::ScopeKind::Department;
    let (moderator_id, moderator) = w.staff("moderator", &department, &[("moderator", d, &department)]).await;
    let (lead_id, lead) = w.staff("lead", &department, &[("moderation_lead", d, &department)]).await;
    let account = w.platform_account(cpb::Platform::Weibo, "bureau_weibo", &department, &moderator_id).await;
    let connector = w.service_token("weibo-connector", "platform_integration").await;
    Desk { i, department, account, moderator, moderator_id, lead, lead_id, connector }
}

pub fn incoming(platform_id: &str, text: &str) -> pb::IncomingComment {
    pb::IncomingComment {
        platform_comment_id: platform_id.into(),
        platform_post_id: "post-1".into(),
        author_platform_id: format!("fan-{platform_id}"),
        author_name: "市民".into(),
        text: text.into(),
        ..Default::default()
    }
}

impl Desk {
    pub async fn ingest(&self, comments: Vec<pb::IncomingComment>) -> pb::IngestCommentsResponse {
        self.i
            .comments()
            .ingest_comments(with_token(
                pb::IngestCommentsRequest { platform_account_id: self.account.clone(), comments },
                &self.connector,
            ))
            .await
            .expect("ingested")
            .into_inner()
    }

    pub async fn comment(&self, id: &str) -> pb::Comment {
        self.i
            .comments()
            .get_comment(with_token(pb::GetCommentRequest { comment_id: id.into() }, &self.moderator))
            .await
            .expect("comment")
            .into_inner()
            .comment
            .expect("comment")
    }
}

/// The rule that a status error names in its precondition failure.
pub fn violated_rule(status: &tonic::Status) -> String {
    use tonic_types::StatusExt;
    status
        .get_details_precondition_failure()
        .and_then(|p| p.violations.first().map(|v| v.r#type.clone()))
        .unwrap_or_default()
}
