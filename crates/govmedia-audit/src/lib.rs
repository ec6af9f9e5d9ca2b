//! The audit & security service (`govmedia.audit.v1`; R1.3.5, R7, R8, R9): the
//! tamper-evident audit log every service ships its records to, screening against the
//! sensitive lexicon, and supervision: the inspection-readiness monitor (next: security
//! checks, inspections, rectification, violations).
//!
//! Layout: `api/` (one file per gRPC service), `domain/` (the rules: the hash chain,
//! screening, compliance), `store/` (SQL), `appender` (the group-commit writer),
//! `compliance_monitor` (the daily assessment), `migrations/`; this file wires them and
//! [`serve`]s.

pub mod api;
pub mod appender;
pub mod compliance_monitor;
pub mod containment;
pub mod domain;
pub mod lexicon;
pub mod store;
pub mod verification;
pub mod violation_watch;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::SigningKey;
use govmedia_domain::Error;
use govmedia_domain::audit::{Actor, AuditAction, AuditRecord, AuditResourceRef};
use govmedia_domain::clock::{Clock, SystemClock};
use govmedia_domain::holidays::{self, OfficialCalendar};
use govmedia_kit::access::{DEFAULT_TTL, PermissionChecker};
use govmedia_kit::auth::{AuthLayer, AuthPolicy, TokenVerifier};
use govmedia_kit::client::{CallCredentials, ClientCredentials, lazy_channel};
use govmedia_kit::config::{
    ConfigFileSettings, DatabaseSettings, PeerSettings, Secret, ServerSettings, TelemetrySettings, parse_duration,
};
use govmedia_kit::db::{Database, ServiceMigrations};
use govmedia_kit::server::ServerBuilder;
use sqlx::migrate::Migrator;
use tokio_util::sync::CancellationToken;

use crate::appender::{Appender, CheckpointPolicy};
pub use crate::compliance_monitor::AccountRegister;
use crate::compliance_monitor::ComplianceMonitor;
pub use crate::domain::appending::AppendPolicy;
use crate::domain::chain::ChainedEvent;
use crate::domain::screening::Lexicon;
use govmedia_kit::mutation::UnitOfWork;
use govmedia_kit::outbox::{AppendReceipt, AuditSink, Relay, SinkError};

static POSTGRES: Migrator = sqlx::migrate!("migrations/postgres");
static SQLITE: Migrator = sqlx::migrate!("migrations/sqlite");

/// The audit service's migrations.
pub const MIGRATIONS: ServiceMigrations = ServiceMigrations { service: "audit", postgres: &POSTGRES, sqlite: &SQLITE };

/// The producer name of the audit service's own records.
pub const PRODUCER: &str = "audit";

/// The audit service's own settings.
#[derive(Debug, Clone, clap::Args)]
pub struct AuditOptions {
    /// The Ed25519 key signing checkpoints: 32 random bytes in base64
    /// (openssl rand -base64 32). Keep it outside the database it protects.
    #[arg(long, env = "GOVMEDIA_AUDIT_CHECKPOINT_KEY", value_name = "BASE64", hide_env_values = true)]
    pub checkpoint_key: Option<Secret>,
    /// The checkpoint key's id, recorded with every checkpoint.
    #[arg(long, env = "GOVMEDIA_AUDIT_CHECKPOINT_KEY_ID", default_value = "audit-1")]
    pub checkpoint_key_id: String,
    /// Sign a checkpoint after this many events.
    #[arg(long, env = "GOVMEDIA_AUDIT_CHECKPOINT_EVERY_EVENTS", default_value_t = 1000)]
    pub checkpoint_every_events: u32,
    /// Or after this long, when anything new arrived.
    #[arg(long, env = "GOVMEDIA_AUDIT_CHECKPOINT_INTERVAL", default_value = "60s", value_parser = parse_duration)]
    pub checkpoint_interval: Duration,
    /// Service principals that may append events of a producer other than their own
    /// (`govmedia-<producer>` writes `<producer>`), as CLIENT_ID=PRODUCER[,...]: an
    /// outside system keeping its own records in the bureau's trail.
    #[arg(
        long = "audit-appender",
        env = "GOVMEDIA_AUDIT_APPENDERS",
        value_name = "CLIENT_ID=PRODUCER",
        value_delimiter = ',',
        value_parser = parse_appender
    )]
    pub appenders: Vec<(String, String)>,
    /// How old an event may be when it is appended: longer than any audit outage the
    /// services' outboxes must wait out, short enough that nobody back-dates.
    #[arg(long, env = "GOVMEDIA_AUDIT_MAX_EVENT_AGE", default_value = "7d", value_parser = parse_duration)]
    pub max_event_age: Duration,
    /// How often the compliance monitor assesses every account (R8.1.1).
    #[arg(long, env = "GOVMEDIA_AUDIT_COMPLIANCE_INTERVAL", default_value = "1h", value_parser = parse_duration)]
    pub compliance_interval: Duration,
    /// The time zone whose dates inspection readiness counts in (an IANA name).
    #[arg(long = "audit-time-zone", env = "GOVMEDIA_AUDIT_TIME_ZONE", default_value = "Asia/Shanghai")]
    pub time_zone: String,
    /// Holidays beyond the shipped official schedule (YYYY-MM-DD, separated by commas),
    /// for rectification deadlines in working days; the same setting as interaction's.
    #[arg(long = "audit-holidays", env = "GOVMEDIA_HOLIDAYS", default_value = "")]
    pub holidays: String,
    /// Make-up working days (调休) beyond the shipped schedule (YYYY-MM-DD, separated by
    /// commas); the same setting as interaction's.
    #[arg(long = "audit-makeup-working-days", env = "GOVMEDIA_MAKEUP_WORKING_DAYS", default_value = "")]
    pub makeup_working_days: String,
}

/// Parses CLIENT_ID=PRODUCER.
fn parse_appender(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((client, producer)) if !client.trim().is_empty() && !producer.trim().is_empty() => {
            Ok((client.trim().to_owned(), producer.trim().to_owned()))
        }
        _ => Err(format!("{s:?} is not CLIENT_ID=PRODUCER")),
    }
}

impl AuditOptions {
    /// The time zone of compliance dates.
    pub fn time_zone(&self) -> Result<chrono_tz::Tz, govmedia_kit::config::InvalidSetting> {
        self.time_zone.parse().map_err(|_| {
            govmedia_kit::config::InvalidSetting::new(
                "GOVMEDIA_AUDIT_TIME_ZONE",
                format!("{:?} is not an IANA time zone", self.time_zone),
            )
        })
    }

    /// The official calendar with the configured additions.
    pub fn calendar(&self) -> Result<OfficialCalendar, govmedia_kit::config::InvalidSetting> {
        let dates = |name: &'static str, value: &str| {
            holidays::parse_dates(value).map_err(|e| govmedia_kit::config::InvalidSetting::new(name, e))
        };
        OfficialCalendar::with_additions(
            &dates("GOVMEDIA_HOLIDAYS", &self.holidays)?,
            &dates("GOVMEDIA_MAKEUP_WORKING_DAYS", &self.makeup_working_days)?,
        )
        .map_err(|both| {
            govmedia_kit::config::InvalidSetting::new(
                "GOVMEDIA_MAKEUP_WORKING_DAYS",
                format!("{both} is also listed as a holiday"),
            )
        })
    }

    /// The rules for appending these options set.
    pub fn append_policy(&self) -> AppendPolicy {
        let max_age = chrono::Duration::from_std(self.max_event_age).unwrap_or(chrono::Duration::MAX);
        AppendPolicy::new(&self.appenders, max_age, chrono::Duration::minutes(5))
    }
}

/// Everything the audit service is configured with.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "govmedia-audit", about = "The govmedia audit & security service")]
pub struct AuditSettings {
    /// The configuration file.
    #[command(flatten)]
    pub config: ConfigFileSettings,
    /// The gRPC server.
    #[command(flatten)]
    pub server: ServerSettings,
    /// The database.
    #[command(flatten)]
    pub database: DatabaseSettings,
    /// Logs, traces, metrics.
    #[command(flatten)]
    pub telemetry: TelemetrySettings,
    /// Other services (identity: token keys and permission checks).
    #[command(flatten)]
    pub peers: PeerSettings,
    /// Audit's own settings.
    #[command(flatten)]
    pub audit: AuditOptions,
}

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A setting is unusable.
    #[error("{0}")]
    Setting(#[source] govmedia_kit::config::InvalidSetting),
    /// The database failed.
    #[error(transparent)]
    Database(#[from] govmedia_kit::db::DatabaseError),
}

/// Parses a base64 Ed25519 seed.
pub fn parse_checkpoint_key(text: &str) -> Result<SigningKey, String> {
    let bytes = STANDARD.decode(text.trim()).map_err(|_| "is not base64".to_owned())?;
    let seed: [u8; 32] = bytes.try_into().map_err(|_| "must be 32 bytes".to_owned())?;
    Ok(SigningKey::from_bytes(&seed))
}

/// The service's shared state.
#[derive(Debug)]
pub struct Core {
    work: UnitOfWork,
    appender: Appender,
    permissions: PermissionChecker,
    checkpoint_public_key: [u8; 32],
    appending: AppendPolicy,
    lexicon: std::sync::RwLock<Arc<Lexicon>>,
    register: AccountRegister,
    containment: containment::Containment,
    time_zone: chrono_tz::Tz,
    calendar: OfficialCalendar,
    stopped: tokio::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

/// What supervision needs beyond the log: identity's register of accounts and the time
/// zone whose dates count.
#[derive(Debug, Clone)]
pub struct Supervision {
    /// identity's register.
    pub register: AccountRegister,
    /// The content service, to retract publications when containing an incident.
    pub content: Option<tonic::transport::Channel>,
    /// The time zone of compliance dates and rectification deadlines.
    pub time_zone: chrono_tz::Tz,
    /// The official holiday schedule rectification deadlines count working days on.
    pub calendar: OfficialCalendar,
}

/// The audit service's own outbox ships straight into its appender: its records (lexicon
/// changes) are written in the same transaction as the change, like every service's.
#[derive(Debug, Clone)]
struct LocalSink(Appender);

impl AuditSink for LocalSink {
    async fn append(&self, records: Vec<AuditRecord>) -> Result<AppendReceipt, SinkError> {
        let events = records.iter().map(api::audit_log::record_to_event).collect();
        let appended = self.0.append(events).await.map_err(|e| match e {
            Error::InvalidArgument(_) | Error::RuleViolated(_) => SinkError::invalid(e.to_string()),
            other => SinkError::unavailable(other.to_string()),
        })?;
        Ok(AppendReceipt {
            appended: appended.appended,
            duplicates: u32::try_from(appended.duplicates.len()).unwrap_or(u32::MAX),
        })
    }
}

impl Core {
    /// The service on a migrated database: seeds the default lexicon on first start,
    /// builds the screening engine, and starts the writer and the own-outbox relay.
    pub async fn open(
        db: Database,
        clock: Arc<dyn Clock>,
        checkpoints: CheckpointPolicy,
        appending: AppendPolicy,
        permissions: PermissionChecker,
        supervision: Supervision,
        stop: CancellationToken,
    ) -> Result<Arc<Self>, govmedia_domain::Error> {
        let checkpoint_public_key = checkpoints.key.verifying_key().to_bytes();
        // At `stop` the own outbox's relay ships what is left first, then the writer
        // drains and stops: the relay's last batch still finds a writer.
        let writer_stop = CancellationToken::new();
        let (appender, writer) = Appender::spawn(db.clone(), Arc::clone(&clock), checkpoints, writer_stop.clone());
        lexicon::seed_default(&db, clock.now()).await?;
        let built = lexicon::build(&db).await?;
        let work = UnitOfWork::new(db.clone(), clock);
        let relay = Relay::new(db, LocalSink(appender.clone())).named("audit").with_waker(work.relay_waker());
        let relay = tokio::spawn(relay.run(stop.clone()));
        let stopped = tokio::spawn(async move {
            stop.cancelled().await;
            let _ = relay.await;
            writer_stop.cancel();
            let _ = writer.await;
        });
        Ok(Arc::new(Self {
            work,
            appender,
            permissions,
            checkpoint_public_key,
            appending,
            lexicon: std::sync::RwLock::new(Arc::new(built)),
            containment: containment::Containment::new(supervision.register.identity(), supervision.content),
            register: supervision.register,
            time_zone: supervision.time_zone,
            calendar: supervision.calendar,
            stopped: tokio::sync::Mutex::new(Some(stopped)),
        }))
    }

    /// Waits, once `stop` was cancelled, until the own outbox has shipped what it held
    /// and the writer has appended everything queued: then the database may close.
    pub async fn stopped(&self) {
        if let Some(task) = self.stopped.lock().await.take() {
            let _ = task.await;
        }
    }

    /// The lexicon screening uses now. Screening holds this `Arc` for a whole request,
    /// so an update swapped in meanwhile never shows half-built.
    pub fn lexicon(&self) -> Arc<Lexicon> {
        Arc::clone(&self.lexicon.read().unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    /// Rebuilds the engine from the stored lexicon and swaps it in (only forward: a
    /// slower rebuild of an older version never replaces a newer one).
    pub async fn reload_lexicon(&self) -> Result<u64, govmedia_domain::Error> {
        let built = Arc::new(lexicon::build(self.db()).await?);
        let mut current = self.lexicon.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        if built.version() >= current.version() {
            *current = built;
        }
        Ok(current.version())
    }

    /// The unit of work every change runs in.
    pub fn work(&self) -> &UnitOfWork {
        &self.work
    }

    /// The database.
    pub fn db(&self) -> &Database {
        self.work.db()
    }

    /// identity's register of platform accounts.
    pub fn register(&self) -> &AccountRegister {
        &self.register
    }

    /// The services an incident is contained through.
    pub fn containment(&self) -> &containment::Containment {
        &self.containment
    }

    /// The time zone whose dates compliance counts in.
    pub fn time_zone(&self) -> chrono_tz::Tz {
        self.time_zone
    }

    /// The official holiday schedule.
    pub fn calendar(&self) -> &OfficialCalendar {
        &self.calendar
    }

    /// The writer.
    pub fn appender(&self) -> &Appender {
        &self.appender
    }

    /// Who may append what.
    pub fn append_policy(&self) -> &AppendPolicy {
        &self.appending
    }

    /// The permission authority's client.
    pub fn permissions(&self) -> &PermissionChecker {
        &self.permissions
    }

    /// Now.
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.work.now()
    }

    /// The public key checkpoints are signed with.
    pub fn checkpoint_public_key(&self) -> [u8; 32] {
        self.checkpoint_public_key
    }

    /// Appends the audit service's own record (exports, verifications) to the log.
    pub async fn record_own(
        &self,
        action: AuditAction,
        actor: Actor,
        resource: AuditResourceRef,
        attributes: &[(&str, String)],
    ) {
        let mut record = AuditRecord::new(action, actor, resource, PRODUCER, self.now())
            .request(govmedia_kit::telemetry::current_trace_id(), None)
            .rule("R8.1.1");
        for (key, value) in attributes {
            record = record.attr(key, value);
        }
        let event = api::audit_log::record_to_event(&record);
        if let Err(e) = self.appender.append(vec![event]).await {
            tracing::error!(error = %e, action = %action, "the audit service could not record its own action");
        }
    }
}

/// The server for `core`: the audit log service behind authentication.
pub fn server(core: &Arc<Core>, settings: ServerSettings, verifier: Arc<TokenVerifier>) -> ServerBuilder {
    let limit = settings.max_message_bytes;
    ServerBuilder::new(settings)
        .with_auth(
            AuthLayer::new(verifier, AuthPolicy::standard())
                .with_refusal_audit(govmedia_kit::refusals::RefusalAudit::new(core.work().clone(), PRODUCER)),
        )
        .add_service(api::audit_log::server(core).max_decoding_message_size(limit))
        .add_service(api::screening::server(core).max_decoding_message_size(limit))
        .add_service(api::compliance::server(core).max_decoding_message_size(limit))
        .add_service(api::rectification::server(core).max_decoding_message_size(limit))
        .add_service(api::violation::server(core).max_decoding_message_size(limit))
        .add_service(api::public_feedback::server(core).max_decoding_message_size(limit))
        .add_service(api::inspection::server(core).max_decoding_message_size(limit))
        .add_service(api::security_control::server(core).max_decoding_message_size(limit))
        .add_service(api::security_check::server(core).max_decoding_message_size(limit))
        .add_service(api::security_incident::server(core).max_decoding_message_size(limit))
}

/// Runs the audit service until `shutdown` completes.
pub async fn serve(
    settings: AuditSettings,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let setting = |setting: &'static str, message: &str| {
        StartError::Setting(govmedia_kit::config::InvalidSetting::new(setting, message.to_owned()))
    };
    let url = settings
        .database
        .database_url
        .as_ref()
        .ok_or_else(|| setting("GOVMEDIA_DATABASE_URL", "the audit service needs a database"))?;
    let key = settings
        .audit
        .checkpoint_key
        .as_ref()
        .ok_or_else(|| setting("GOVMEDIA_AUDIT_CHECKPOINT_KEY", "is required"))?;
    let key = parse_checkpoint_key(key.expose()).map_err(|m| setting("GOVMEDIA_AUDIT_CHECKPOINT_KEY", &m))?;
    let identity = settings
        .peers
        .identity_endpoint
        .as_deref()
        .ok_or_else(|| setting("GOVMEDIA_IDENTITY_ENDPOINT", "is required"))?;
    let identity = lazy_channel(identity)?;
    let client_id = settings.peers.client_id.clone().ok_or_else(|| setting("GOVMEDIA_CLIENT_ID", "is required"))?;
    let secret =
        settings.peers.client_secret.clone().ok_or_else(|| setting("GOVMEDIA_CLIENT_SECRET", "is required"))?;
    let credentials =
        CallCredentials::ClientCredentials(Arc::new(ClientCredentials::new(identity.clone(), client_id, secret)));

    let time_zone = settings.audit.time_zone().map_err(StartError::Setting)?;
    let calendar = settings.audit.calendar().map_err(StartError::Setting)?;
    let db = Database::open_migrated(
        url,
        settings.database.database_owner_url.as_ref(),
        settings.database.database_max_connections,
        settings.database.database_connect_patience,
        &MIGRATIONS,
    )
    .await
    .map_err(StartError::from)?;
    let stop = CancellationToken::new();
    let policy = CheckpointPolicy {
        every_events: i64::from(settings.audit.checkpoint_every_events.max(1)),
        every: settings.audit.checkpoint_interval,
        key_id: settings.audit.checkpoint_key_id.clone(),
        key,
    };
    let core = Core::open(
        db,
        Arc::new(SystemClock),
        policy,
        settings.audit.append_policy(),
        PermissionChecker::new(identity.clone(), credentials.clone(), DEFAULT_TTL),
        Supervision {
            register: AccountRegister::new(identity.clone(), credentials),
            content: settings.peers.content_endpoint.as_deref().map(lazy_channel).transpose()?,
            time_zone,
            calendar,
        },
        stop.clone(),
    )
    .await?;
    tokio::spawn(ComplianceMonitor::new(Arc::clone(&core), settings.audit.compliance_interval).run(stop.clone()));
    let verifier = Arc::new(TokenVerifier::from_identity(identity));
    let bound = server(&core, settings.server.clone(), verifier).bind().await?;
    bound.serve(shutdown).await?;
    stop.cancel();
    core.stopped().await;
    core.db().close().await;
    Ok(())
}

/// An event for tests and tools: the fields a producer sets.
pub fn new_event(record: &AuditRecord) -> ChainedEvent {
    api::audit_log::record_to_event(record)
}
