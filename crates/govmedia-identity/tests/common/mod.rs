//! Starts the identity service in-process on a test database, over real gRPC on
//! loopback, with a clock the test moves.

#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use govmedia_domain::clock::ManualClock;
use govmedia_identity::domain::sealing::Sealer;
use govmedia_identity::{Bootstrap, Core, IdentityOptions, Policy};
use govmedia_kit::config::ServerSettings;
use govmedia_kit::db::Database;
use govmedia_proto::identity::v1::access_service_client::AccessServiceClient;
use govmedia_proto::identity::v1::authentication_service_client::AuthenticationServiceClient;
use govmedia_proto::identity::v1::directory_service_client::DirectoryServiceClient;
use govmedia_testkit::{TestDatabase, TestServer};
use tonic::transport::Channel;

/// The administrator's password after [`Identity::admin_token`].
pub const ADMIN_PASSWORD: &str = "Harbour#Lights2026";

pub struct Identity {
    pub core: Arc<Core>,
    pub db: Database,
    pub clock: ManualClock,
    pub server: TestServer,
    pub bootstrap: Bootstrap,
    _database: TestDatabase,
}

pub fn options() -> IdentityOptions {
    use clap::Parser;
    #[derive(clap::Parser)]
    struct Only {
        #[command(flatten)]
        identity: IdentityOptions,
    }
    let mut options = Only::parse_from(["test"]).identity;
    options.failure_burst_threshold = 8;
    options.bureau_name = "海港市公安局".into();
    options
}

impl Identity {
    /// Friday 2026-11-27 10:00 in Shanghai: inside working hours.
    pub async fn start(database: TestDatabase) -> Self {
        Self::start_at(database, Utc.with_ymd_and_hms(2026, 11, 27, 2, 0, 0).single().expect("time")).await
    }

    /// With the clock at `now`.
    pub async fn start_at(database: TestDatabase, now: chrono::DateTime<Utc>) -> Self {
        let db = database.connect(&govmedia_identity::MIGRATIONS).await;
        let clock = ManualClock::new(now);
        let (sealer, _) = Sealer::generate("k1");
        let options = options();
        let policy = Policy::from_options(&options).expect("policy");
        let (core, bootstrap) =
            Core::open(db.clone(), Arc::new(clock.clone()), sealer, policy, &options).await.expect("identity opens");
        let server = TestServer::start(govmedia_identity::server(&core, ServerSettings::loopback())).await;
        Self { core, db, clock, server, bootstrap: bootstrap.expect("first start bootstraps"), _database: database }
    }

    pub fn auth(&self) -> AuthenticationServiceClient<Channel> {
        AuthenticationServiceClient::new(self.server.channel())
    }

    /// The authentication service as seen from another source address.
    pub fn auth_from(&self, source: [u8; 4]) -> AuthenticationServiceClient<Channel> {
        AuthenticationServiceClient::new(self.server.channel_from(std::net::IpAddr::from(source)))
    }

    pub fn directory(&self) -> DirectoryServiceClient<Channel> {
        DirectoryServiceClient::new(self.server.channel())
    }

    pub fn access(&self) -> AccessServiceClient<Channel> {
        AccessServiceClient::new(self.server.channel())
    }

    /// Logs `username` in with its one-time password and changes it to `new_password`;
    /// returns the access token of the unrestricted session.
    pub async fn activate(&self, username: &str, one_time: &str, new_password: &str) -> String {
        use govmedia_proto::identity::v1 as pb;
        let first = self
            .auth()
            .login(pb::LoginRequest { username: username.into(), password: one_time.into() })
            .await
            .expect("login")
            .into_inner();
        self.auth()
            .change_password(authed(
                pb::ChangePasswordRequest { current_password: one_time.into(), new_password: new_password.into() },
                &first.tokens.expect("tokens").access_token,
            ))
            .await
            .expect("password changed")
            .into_inner()
            .tokens
            .expect("tokens")
            .access_token
    }

    /// The bootstrap administrator, its password changed to [`ADMIN_PASSWORD`].
    pub async fn admin_token(&self) -> String {
        let otp = self.bootstrap.one_time_password.clone().expect("a generated one-time password");
        self.activate("admin", &otp, ADMIN_PASSWORD).await
    }

    /// The actions in the outbox, in order.
    pub async fn audited_actions(&self) -> Vec<String> {
        self.audited().await.iter().map(|r| r["action"].as_str().unwrap_or_default().to_owned()).collect()
    }

    /// The records in the outbox, in order.
    pub async fn audited(&self) -> Vec<serde_json::Value> {
        let payloads: Vec<String> = match &self.db {
            Database::Postgres(pool) => {
                sqlx::query_scalar("SELECT payload::text FROM govmedia_outbox ORDER BY seq").fetch_all(pool).await
            }
            Database::Sqlite(pool) => {
                sqlx::query_scalar("SELECT payload FROM govmedia_outbox ORDER BY seq").fetch_all(pool).await
            }
        }
        .expect("outbox");
        payloads.iter().map(|p| serde_json::from_str::<serde_json::Value>(p).expect("json")).collect()
    }
}

pub fn authed<T>(message: T, token: &str) -> tonic::Request<T> {
    govmedia_testkit::with_token(message, token)
}

pub fn rid() -> String {
    uuid::Uuid::now_v7().to_string()
}
