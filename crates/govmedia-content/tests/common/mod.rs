//! The content service in-process over real gRPC, with real identity and audit services
//! (`govmedia-world`).

#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;

use govmedia_kit::access::{DEFAULT_TTL, PermissionChecker};
use govmedia_kit::auth::TokenVerifier;
use govmedia_kit::client::{CallCredentials, ClientCredentials};
use govmedia_kit::config::{Secret, ServerSettings};
use govmedia_kit::db::Database;
use govmedia_proto::content::v1::draft_service_client::DraftServiceClient;
use govmedia_proto::content::v1::plan_service_client::PlanServiceClient;
use govmedia_testkit::{TestDatabase, TestServer};
use govmedia_world::World;
use tonic::transport::Channel;

pub struct Content {
    pub world: World,
    pub server: TestServer,
    pub db: Database,
    _database: TestDatabase,
}

impl Content {
    pub async fn start(database: TestDatabase) -> Self {
        let world = World::start(TestDatabase::sqlite()).await;
        let db = database.connect(&govmedia_content::MIGRATIONS).await;
        let credentials = CallCredentials::ClientCredentials(Arc::new(ClientCredentials::new(
            world.identity.channel(),
            "govmedia-content".into(),
            Secret::new(world.content_secret.clone()),
        )));
        let core = govmedia_content::Core::new(
            db.clone(),
            Arc::new(govmedia_domain::clock::SystemClock),
            PermissionChecker::new(world.identity.channel(), credentials.clone(), DEFAULT_TTL),
            world.identity.channel(),
            Some(world.audit.channel()),
            credentials,
        );
        let verifier = Arc::new(TokenVerifier::from_identity(world.identity.channel()));
        let server = TestServer::start(govmedia_content::server(&core, ServerSettings::loopback(), verifier)).await;
        Self { world, server, db, _database: database }
    }

    pub fn plans(&self) -> PlanServiceClient<Channel> {
        PlanServiceClient::new(self.server.channel())
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
