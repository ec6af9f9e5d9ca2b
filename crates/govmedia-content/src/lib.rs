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
pub mod published_screening;
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
use govmedia_kit::mutation::UnitOfWork;
use govmedia_kit::server::ServerBuilder;
use govmedia_proto::identity::v1::platform_account_service_client::PlatformAccountServiceClient;
use sqlx::migrate::Migrator;
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
    work: UnitOfWork,
    permissions: PermissionChecker,
    identity: Channel,
    screener: govmedia_kit::screening::Screener,
    credentials: CallCredentials,
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
        proofreading_passes: usize,
    ) -> Arc<Self> {
        Arc::new(Self {
            work: UnitOfWork::new(db, clock),
            permissions,
            identity,
            screener: govmedia_kit::screening::Screener::new(audit, credentials.clone()),
            credentials,
            proofreading_passes: proofreading_passes.max(1),
        })
    }

    /// How many proofreading passes by different people publishing needs (R3.3.2).
    pub fn proofreading_passes(&self) -> usize {
        self.proofreading_passes
    }

    /// Screens a submission's texts through the audit service (R7.1.1).
    pub async fn screen(&self, texts: Vec<(String, String)>) -> Result<govmedia_kit::screening::Screened, Error> {
        self.screener.screen(govmedia_proto::common::v1::ScreeningContext::Post, texts).await
    }

    /// The unit of work every change runs in.
    pub fn work(&self) -> &UnitOfWork {
        &self.work
    }

    /// The database.
    pub fn db(&self) -> &Database {
        self.work.db()
    }

    /// Now.
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.work.now()
    }

    /// The permission authority's client.
    pub fn permissions(&self) -> &PermissionChecker {
        &self.permissions
    }

    /// Facts about an account from identity; NOT_FOUND when it is not registered.
    pub async fn account(&self, account: PlatformAccountId) -> Result<AccountFacts, Error> {
        let a = govmedia_kit::client::platform_account(&self.identity, &self.credentials, &account.to_string())
            .await?
            .ok_or_else(|| Error::not_found("platform_account", account))?;
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
            let mut client = PlatformAccountServiceClient::new(self.identity.clone());
            let page = govmedia_kit::telemetry::client_call(
                "govmedia.identity.v1.PlatformAccountService",
                "ListPlatformAccounts",
                request,
                |r| client.list_platform_accounts(r),
            )
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
        .with_auth(
            AuthLayer::new(verifier, AuthPolicy::standard())
                .with_refusal_audit(govmedia_kit::refusals::RefusalAudit::new(core.work().clone(), PRODUCER)),
        )
        .add_service(api::plan::server(core).max_decoding_message_size(limit))
        .add_service(api::draft::server(core).max_decoding_message_size(limit))
        .add_service(api::metrics::server(core).max_decoding_message_size(limit))
        .add_service(api::publication::server(core, connectors).max_decoding_message_size(limit))
}

/// Proofreading passes by different people before publishing, unless configured (R3.3.2).
pub const DEFAULT_PROOFREADING_PASSES: usize = 3;

/// Which connector publishes by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ConnectorKind {
    /// Write each publication to a folder (nothing leaves the machine).
    Archive,
    /// POST each publication to a webhook, HMAC-signed.
    Webhook,
}

/// Content's own settings.
#[derive(Debug, Clone, clap::Args)]
pub struct ContentOptions {
    /// Proofreading passes by different people before publishing (R3.3.2).
    #[arg(long, env = "GOVMEDIA_CONTENT_PROOFREADING_PASSES", default_value_t = DEFAULT_PROOFREADING_PASSES)]
    pub proofreading_passes: usize,
    /// The connector publications go out through.
    #[arg(long, env = "GOVMEDIA_CONTENT_CONNECTOR", value_enum, default_value = "archive")]
    pub connector: ConnectorKind,
    /// The archive connector's folder.
    #[arg(long, env = "GOVMEDIA_CONTENT_ARCHIVE_DIR", default_value = "var/publications", value_name = "DIR")]
    pub archive_dir: std::path::PathBuf,
    /// The webhook connector's address (`https://…`; `http://` only to this host).
    #[arg(long, env = "GOVMEDIA_CONTENT_WEBHOOK_URL", value_name = "URL")]
    pub webhook_url: Option<String>,
    /// A PEM file of CA certificates the webhook's HTTPS certificate may chain to, beside
    /// the system's trust store (a bureau's own CA).
    #[arg(long, env = "GOVMEDIA_CONTENT_WEBHOOK_CA", value_name = "PEM")]
    pub webhook_ca: Option<std::path::PathBuf>,
    /// Allows a plain `http://` webhook on another host (the network between is trusted).
    #[arg(long, env = "GOVMEDIA_CONTENT_WEBHOOK_ALLOW_PLAIN_HTTP")]
    pub webhook_allow_plain_http: bool,
    /// The webhook connector's signing secret (at least 16 characters).
    #[arg(long, env = "GOVMEDIA_CONTENT_WEBHOOK_SECRET", value_name = "SECRET", hide_env_values = true)]
    pub webhook_secret: Option<govmedia_kit::config::Secret>,
    /// How often the scheduler looks for due publications.
    #[arg(long, env = "GOVMEDIA_CONTENT_SCHEDULER_POLL", default_value = "1s", value_parser = govmedia_kit::config::parse_duration)]
    pub scheduler_poll: std::time::Duration,
    /// How long a scheduler replica holds a publication it is sending.
    #[arg(long, env = "GOVMEDIA_CONTENT_SCHEDULER_LEASE", default_value = "120s", value_parser = govmedia_kit::config::parse_duration)]
    pub scheduler_lease: std::time::Duration,
    /// Attempts before a publication fails.
    #[arg(long, env = "GOVMEDIA_CONTENT_PUBLISH_ATTEMPTS", default_value_t = 5)]
    pub publish_attempts: u32,
    /// How often published content is screened again against the lexicon's current
    /// version (R7.1.1, R3.2.3): a round that finds the version unchanged costs one
    /// screening call.
    #[arg(long, env = "GOVMEDIA_CONTENT_RESCREEN_INTERVAL", default_value = "10m", value_parser = govmedia_kit::config::parse_duration)]
    pub rescreen_interval: std::time::Duration,
}

/// Everything the content service is configured with.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "govmedia-content", about = "The govmedia content workflow service")]
pub struct ContentSettings {
    /// The configuration file.
    #[command(flatten)]
    pub config: govmedia_kit::config::ConfigFileSettings,
    /// The gRPC server.
    #[command(flatten)]
    pub server: ServerSettings,
    /// The database.
    #[command(flatten)]
    pub database: govmedia_kit::config::DatabaseSettings,
    /// Logs, traces, metrics.
    #[command(flatten)]
    pub telemetry: govmedia_kit::config::TelemetrySettings,
    /// Identity (tokens, permissions, accounts) and audit (screening, the log).
    #[command(flatten)]
    pub peers: govmedia_kit::config::PeerSettings,
    /// Content's own settings.
    #[command(flatten)]
    pub content: ContentOptions,
}

/// Why the service could not start: the setting and what is wrong with it.
pub use govmedia_kit::config::InvalidSetting as SettingError;

fn setting(setting: &'static str, message: impl Into<String>) -> SettingError {
    SettingError::new(setting, message)
}

/// The connectors the settings ask for; checked before anything starts.
pub fn connectors(options: &ContentOptions) -> Result<scheduler::Connectors, SettingError> {
    let connector: Arc<dyn connector::Connector> = match options.connector {
        ConnectorKind::Archive => Arc::new(connector::archive::ArchiveConnector::new(&options.archive_dir)),
        ConnectorKind::Webhook => {
            let url = options
                .webhook_url
                .as_deref()
                .ok_or_else(|| setting("GOVMEDIA_CONTENT_WEBHOOK_URL", "is required with the webhook connector"))?;
            let secret = options
                .webhook_secret
                .clone()
                .ok_or_else(|| setting("GOVMEDIA_CONTENT_WEBHOOK_SECRET", "is required with the webhook connector"))?;
            let mut webhook = connector::webhook::WebhookSettings::new(url, secret, options.webhook_allow_plain_http)
                .map_err(|m| setting("GOVMEDIA_CONTENT_WEBHOOK_URL", m))?;
            if let Some(ca) = &options.webhook_ca {
                webhook = webhook.with_ca_file(ca).map_err(|m| setting("GOVMEDIA_CONTENT_WEBHOOK_CA", m))?;
            }
            Arc::new(connector::webhook::WebhookConnector::new(webhook))
        }
    };
    Ok(scheduler::Connectors::new(connector))
}

/// Runs the content service until `shutdown` completes: the gRPC server, the scheduler
/// and the outbox relay to the audit service.
pub async fn serve(
    settings: ContentSettings,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    use govmedia_kit::access::DEFAULT_TTL;
    use govmedia_kit::client::{ClientCredentials, lazy_channel};
    use govmedia_kit::outbox::{GrpcAuditSink, Relay};

    let peers = &settings.peers;
    let url = settings
        .database
        .database_url
        .as_ref()
        .ok_or_else(|| setting("GOVMEDIA_DATABASE_URL", "the content service needs a database"))?;
    let identity =
        peers.identity_endpoint.as_deref().ok_or_else(|| setting("GOVMEDIA_IDENTITY_ENDPOINT", "is required"))?;
    // Screening is never skipped (R7.1.1), and audit records must reach the log.
    let audit = peers.audit_endpoint.as_deref().ok_or_else(|| setting("GOVMEDIA_AUDIT_ENDPOINT", "is required"))?;
    let client_id = peers.client_id.clone().ok_or_else(|| setting("GOVMEDIA_CLIENT_ID", "is required"))?;
    let secret = peers.client_secret.clone().ok_or_else(|| setting("GOVMEDIA_CLIENT_SECRET", "is required"))?;
    if settings.content.proofreading_passes == 0 {
        return Err(setting("GOVMEDIA_CONTENT_PROOFREADING_PASSES", "must be at least 1 (R3.3.2)").into());
    }
    let connectors = connectors(&settings.content)?;
    let identity = lazy_channel(identity)?;
    let audit = lazy_channel(audit)?;
    let credentials =
        CallCredentials::ClientCredentials(Arc::new(ClientCredentials::new(identity.clone(), client_id, secret)));

    let db = Database::open_migrated(
        url,
        settings.database.database_owner_url.as_ref(),
        settings.database.database_max_connections,
        settings.database.database_connect_patience,
        &MIGRATIONS,
    )
    .await?;
    let core = Core::new(
        db,
        Arc::new(govmedia_domain::clock::SystemClock),
        PermissionChecker::new(identity.clone(), credentials.clone(), DEFAULT_TTL),
        identity.clone(),
        Some(audit.clone()),
        credentials.clone(),
        settings.content.proofreading_passes,
    );
    let stop = tokio_util::sync::CancellationToken::new();
    let relay = Relay::new(core.db().clone(), GrpcAuditSink::new(audit, credentials))
        .named("content")
        .with_waker(core.work().relay_waker());
    let relay = tokio::spawn(relay.run(stop.clone()));
    let scheduler_settings = scheduler::SchedulerSettings {
        poll: settings.content.scheduler_poll,
        lease: settings.content.scheduler_lease,
        retry: domain::publication::RetryPolicy {
            max_attempts: settings.content.publish_attempts.max(1),
            ..domain::publication::RetryPolicy::default()
        },
        ..scheduler::SchedulerSettings::default()
    };
    let scheduler = tokio::spawn(
        scheduler::Scheduler::new(Arc::clone(&core), connectors.clone(), scheduler_settings).run(stop.clone()),
    );
    let rescreen = tokio::spawn(
        published_screening::PublishedScreening::new(Arc::clone(&core), settings.content.rescreen_interval)
            .run(stop.clone()),
    );
    let verifier = Arc::new(TokenVerifier::from_identity(identity));
    let bound = server(&core, connectors, settings.server.clone(), verifier).bind().await?;
    bound.serve(shutdown).await?;
    stop.cancel();
    let _ = scheduler.await;
    let _ = rescreen.await;
    let _ = relay.await;
    core.db().close().await;
    Ok(())
}
