//! The content workflow service (`govmedia.content.v1`; R3, R5): plans, drafts and their
//! versions, the three-stage review with proofreading, scheduled publishing through
//! connectors, corrections, feedback and metrics.
//!
//! Layout: `api/` (one file per gRPC service), `domain/` (the rules), `store/` (SQL),
//! `migrations/`, `connector/` (how publications leave: the trait, archive and webhook),
//! `scheduler` (publishes due items exactly once across replicas); this file wires them.
//! Every service of `govmedia.content.v1` is built: `PlanService`, `DraftService`,
//! `PublicationService`, `MetricsService`, with the connectors and the scheduler. The
//! `serve()` entry point with settings, and the end-to-end test, follow (issue 5).

pub mod api;
pub mod connector;
pub mod domain;
pub mod scheduler;
pub mod store;

use std::sync::Arc;

use govmedia_domain::Error;
use govmedia_domain::clock::Clock;
use govmedia_domain::ids::PlatformAccountId;
use govmedia_kit::access::PermissionChecker;
use govmedia_kit::auth::{AuthLayer, AuthPolicy, TokenVerifier};
use govmedia_kit::client::CallCredentials;
use govmedia_kit::config::ServerSettings;
use govmedia_kit::db::{Database, ServiceMigrations};
use govmedia_kit::server::ServerBuilder;
use govmedia_proto::identity::v1::GetPlatformAccountRequest;
use govmedia_proto::identity::v1::platform_account_service_client::PlatformAccountServiceClient;
use sqlx::migrate::Migrator;
use tokio::sync::Notify;
use tonic::transport::Channel;

static POSTGRES: Migrator = sqlx::migrate!("migrations/postgres");
static SQLITE: Migrator = sqlx::migrate!("migrations/sqlite");

/// The content service's migrations.
pub const MIGRATIONS: ServiceMigrations =
    ServiceMigrations { service: "content", postgres: &POSTGRES, sqlite: &SQLITE };

/// The name content uses as producer of audit records.
pub const PRODUCER: &str = "content";

/// What content knows of a platform account, from identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountFacts {
    /// The account.
    pub id: PlatformAccountId,
    /// Its department.
    pub department: Option<govmedia_domain::ids::DepartmentId>,
    /// Active (publishable).
    pub active: bool,
    /// Closed.
    pub closed: bool,
    /// The platform, for format rules.
    pub platform: domain::format::Platform,
}

/// The service's shared state.
#[derive(Debug)]
pub struct Core {
    db: Database,
    clock: Arc<dyn Clock>,
    permissions: PermissionChecker,
    identity: Channel,
    audit: Option<Channel>,
    credentials: CallCredentials,
    relay: Arc<Notify>,
    proofreading_passes: usize,
}

impl Core {
    /// The service on a migrated database, asking identity (on `identity`, as
    /// `credentials`) for permissions and account facts, and the audit service (on
    /// `audit`) to screen submissions. Without an audit channel nothing can be submitted:
    /// screening is never skipped (R7.1.1).
    pub fn new(
        db: Database,
        clock: Arc<dyn Clock>,
        permissions: PermissionChecker,
        identity: Channel,
        audit: Option<Channel>,
        credentials: CallCredentials,
    ) -> Arc<Self> {
        Arc::new(Self {
            db,
            clock,
            permissions,
            identity,
            audit,
            credentials,
            relay: Arc::new(Notify::new()),
            proofreading_passes: 3,
        })
    }

    /// How many proofreading passes by different people publishing needs (R3.3.2).
    pub fn proofreading_passes(&self) -> usize {
        self.proofreading_passes
    }

    /// Screens texts through the audit service: the findings (each naming its text's
    /// key) and the lexicon version.
    pub async fn screen(
        &self,
        texts: Vec<(String, String)>,
    ) -> Result<(Vec<govmedia_proto::common::v1::ScreeningFinding>, u64), Error> {
        use govmedia_proto::audit::v1::screening_service_client::ScreeningServiceClient;
        use govmedia_proto::audit::v1::{ScreenTextRequest, TextToScreen};
        let Some(audit) = &self.audit else {
            return Err(Error::Unavailable {
                dependency: "screening (audit service)",
                source: "no audit endpoint is configured".into(),
            });
        };
        let mut request = tonic::Request::new(ScreenTextRequest {
            context: govmedia_proto::common::v1::ScreeningContext::Post as i32,
            texts: texts.into_iter().map(|(key, text)| TextToScreen { key, text }).collect(),
        });
        let unavailable =
            |s: tonic::Status| Error::Unavailable { dependency: "screening (audit service)", source: Box::new(s) };
        self.credentials.authorize(&mut request).await.map_err(unavailable)?;
        govmedia_kit::telemetry::inject_context(request.metadata_mut());
        let answer =
            ScreeningServiceClient::new(audit.clone()).screen_text(request).await.map_err(unavailable)?.into_inner();
        Ok((answer.results.into_iter().flat_map(|r| r.findings).collect(), answer.lexicon_version))
    }

    /// The database.
    pub fn db(&self) -> &Database {
        &self.db
    }

    /// Now.
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }

    /// The permission authority's client.
    pub fn permissions(&self) -> &PermissionChecker {
        &self.permissions
    }

    /// Wakes the outbox relay after a commit.
    pub fn relay(&self) -> &Arc<Notify> {
        &self.relay
    }

    /// Facts about an account from identity; NOT_FOUND when it is not registered.
    pub async fn account(&self, account: PlatformAccountId) -> Result<AccountFacts, Error> {
        let mut request = tonic::Request::new(GetPlatformAccountRequest { platform_account_id: account.to_string() });
        let unavailable = |s: tonic::Status| Error::Unavailable { dependency: "identity service", source: Box::new(s) };
        self.credentials.authorize(&mut request).await.map_err(unavailable)?;
        govmedia_kit::telemetry::inject_context(request.metadata_mut());
        match PlatformAccountServiceClient::new(self.identity.clone()).get_platform_account(request).await {
            Ok(response) => {
                let a = response
                    .into_inner()
                    .platform_account
                    .ok_or_else(|| Error::internal("identity answered without an account"))?;
                use govmedia_proto::common::v1::Platform as P;
                use govmedia_proto::identity::v1::PlatformAccountState as S;
                let platform = match P::try_from(a.platform).unwrap_or(P::Other) {
                    P::WechatOfficialAccount => domain::format::Platform::WechatOfficialAccount,
                    P::Weibo => domain::format::Platform::Weibo,
                    P::Douyin => domain::format::Platform::Douyin,
                    P::Toutiao => domain::format::Platform::Toutiao,
                    P::Bilibili => domain::format::Platform::Bilibili,
                    P::Xiaohongshu => domain::format::Platform::Xiaohongshu,
                    P::Other | P::Unspecified => domain::format::Platform::Other,
                };
                Ok(AccountFacts {
                    id: account,
                    department: a.department_id.parse().ok(),
                    active: a.state == S::Active as i32,
                    closed: a.state == S::Closed as i32,
                    platform,
                })
            }
            Err(status) if status.code() == tonic::Code::NotFound => Err(Error::not_found("platform_account", account)),
            Err(status) => Err(unavailable(status)),
        }
    }

    /// The platform accounts of a department, from identity (every state: a closed
    /// account still has a history to report).
    pub async fn department_accounts(
        &self,
        department: govmedia_domain::ids::DepartmentId,
    ) -> Result<Vec<PlatformAccountId>, Error> {
        use govmedia_proto::identity::v1::ListPlatformAccountsRequest;
        let unavailable = |s: tonic::Status| Error::Unavailable { dependency: "identity service", source: Box::new(s) };
        let mut accounts = Vec::new();
        let mut page_token = String::new();
        loop {
            let mut request = tonic::Request::new(ListPlatformAccountsRequest {
                page_size: 500,
                page_token: page_token.clone(),
                department_id: department.to_string(),
                ..Default::default()
            });
            self.credentials.authorize(&mut request).await.map_err(unavailable)?;
            govmedia_kit::telemetry::inject_context(request.metadata_mut());
            let page = PlatformAccountServiceClient::new(self.identity.clone())
                .list_platform_accounts(request)
                .await
                .map_err(unavailable)?
                .into_inner();
            for a in page.platform_accounts {
                accounts.push(a.id.parse().map_err(|_| Error::internal("identity answered a bad account id"))?);
            }
            if page.next_page_token.is_empty() {
                return Ok(accounts);
            }
            page_token = page.next_page_token;
        }
    }
}

/// The server for `core`; retractions go out through `connectors` (the scheduler's).
pub fn server(
    core: &Arc<Core>,
    connectors: scheduler::Connectors,
    settings: ServerSettings,
    verifier: Arc<TokenVerifier>,
) -> ServerBuilder {
    let limit = settings.max_message_bytes;
    ServerBuilder::new(settings)
        .with_auth(AuthLayer::new(verifier, AuthPolicy::standard()))
        .add_service(api::plan::server(core).max_decoding_message_size(limit))
        .add_service(api::draft::server(core).max_decoding_message_size(limit))
        .add_service(api::metrics::server(core).max_decoding_message_size(limit))
        .add_service(api::publication::server(core, connectors).max_decoding_message_size(limit))
}
