//! The interaction moderation service (`govmedia.interaction.v1`; R4): comments and
//! replies, moderation rules and queues, reply deadlines on a business-hours clock,
//! private messages with referrals, followers and campaigns.
//!
//! Layout, as in every service crate: `api/` (one file per gRPC service), `domain/`
//! (the rules), `store/` (SQL), `migrations/`; [`deadline_watch`] is the background job
//! that escalates missed deadlines; this file wires them: the shared [`Core`], the
//! settings, and [`serve`].

pub mod api;
pub mod deadline_watch;
pub mod domain;
pub mod store;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, NaiveTime, Utc, Weekday};
use govmedia_domain::Error;
use govmedia_domain::clock::Clock;
use govmedia_domain::holidays::{self, OfficialCalendar};
use govmedia_domain::ids::{DepartmentId, PlatformAccountId};
use govmedia_domain::scope::Resource;
use govmedia_kit::access::PermissionChecker;
use govmedia_kit::auth::{AuthLayer, AuthPolicy, TokenVerifier};
use govmedia_kit::client::CallCredentials;
use govmedia_kit::config::ServerSettings;
use govmedia_kit::db::{Database, ServiceMigrations};
use govmedia_kit::mutation::UnitOfWork;
use govmedia_kit::screening::Screener;
use govmedia_kit::server::ServerBuilder;
use sqlx::migrate::Migrator;
use tonic::transport::Channel;

use crate::domain::calendar::{BusinessCalendar, Period};

static POSTGRES: Migrator = sqlx::migrate!("migrations/postgres");
static SQLITE: Migrator = sqlx::migrate!("migrations/sqlite");

/// The interaction service's migrations.
pub const MIGRATIONS: ServiceMigrations =
    ServiceMigrations { service: "interaction", postgres: &POSTGRES, sqlite: &SQLITE };

/// The name interaction uses as producer of audit records.
pub const PRODUCER: &str = "interaction";

/// The item types response targets are set for.
pub const ITEM_COMMENT: &str = "comment";
/// Private messages.
pub const ITEM_PRIVATE_MESSAGE: &str = "private_message";

/// What interaction knows of a platform account, from identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountFacts {
    /// The account.
    pub id: PlatformAccountId,
    /// Its department.
    pub department: Option<DepartmentId>,
    /// Closed.
    pub closed: bool,
    /// Frozen: nothing is said from it (an anomaly, a suspected takeover) until unfrozen.
    pub frozen: bool,
}

impl AccountFacts {
    /// Refuses speaking from the account (a reply, an answer to a private message) while
    /// it is frozen or closed (R2.3.3): a frozen account may be in someone else's hands.
    pub fn may_speak(&self) -> Result<(), Error> {
        if self.frozen || self.closed {
            let state = if self.frozen { "frozen" } else { "closed" };
            return Err(Error::rule(
                "R2.3.3",
                format!("platform_account/{}", self.id),
                format!("the account is {state}: nothing is replied or answered from it until it is active again"),
            ));
        }
        Ok(())
    }

    /// The account as a permission resource.
    pub fn resource(&self) -> Resource {
        Resource::platform_account(self.id, self.department)
    }
}

/// How the service measures and limits the work of answering the public.
#[derive(Debug, Clone)]
pub struct Policy {
    /// The bureau's working time.
    pub calendar: BusinessCalendar,
    /// First-response targets in business minutes by item type, unless an account sets
    /// its own.
    pub response_targets: BTreeMap<String, u32>,
    /// Most open conversations one person holds (R4.2.1).
    pub max_open_conversations: u32,
    /// Working days a referral's department has by default (R4.2.2).
    pub referral_working_days: u32,
}

impl Policy {
    /// The product defaults: the mainland office calendar with the official holiday
    /// schedule, a comment answered within 4 working hours, a private message within one
    /// working day (its length: 7 hours of 09:00-12:00 and 13:30-17:30), 20 open
    /// conversations a person, referrals due in 5 working days.
    pub fn standard() -> Result<Self, domain::calendar::CalendarError> {
        let official = OfficialCalendar::shipped();
        let calendar = BusinessCalendar::china_office(official.holidays(), official.working_dates())?;
        let one_working_day = calendar.working_day_minutes();
        Ok(Self {
            calendar,
            response_targets: BTreeMap::from([
                (ITEM_COMMENT.to_owned(), DEFAULT_COMMENT_TARGET_MINUTES),
                (ITEM_PRIVATE_MESSAGE.to_owned(), one_working_day),
            ]),
            max_open_conversations: DEFAULT_MAX_OPEN_CONVERSATIONS,
            referral_working_days: DEFAULT_REFERRAL_WORKING_DAYS,
        })
    }

    /// The target for `item_type` given an account's own targets.
    pub fn target(&self, item_type: &str, account_targets: &BTreeMap<String, u32>) -> u32 {
        account_targets
            .get(item_type)
            .or_else(|| self.response_targets.get(item_type))
            .copied()
            .unwrap_or(DEFAULT_COMMENT_TARGET_MINUTES)
    }

    /// When a response to an item arriving at `arrived` with `minutes` of target is due.
    pub fn due(&self, arrived: DateTime<Utc>, minutes: u32) -> Result<DateTime<Utc>, Error> {
        self.calendar
            .add(arrived, chrono::Duration::minutes(i64::from(minutes)))
            .map_err(|e| Error::internal(format!("business calendar: {e}")))
    }
}

/// Default first-response target of comments, in business minutes (R4.1.1).
pub const DEFAULT_COMMENT_TARGET_MINUTES: u32 = 240;
/// Default cap of open conversations per person.
pub const DEFAULT_MAX_OPEN_CONVERSATIONS: u32 = 20;
/// Default working days of a referral (R4.2.2).
pub const DEFAULT_REFERRAL_WORKING_DAYS: u32 = 5;

/// The service's shared state.
#[derive(Debug)]
pub struct Core {
    work: UnitOfWork,
    permissions: PermissionChecker,
    identity: Channel,
    screener: Screener,
    credentials: CallCredentials,
    policy: Policy,
    accounts: moka::sync::Cache<PlatformAccountId, AccountFacts>,
}

impl Core {
    /// The service on a migrated database, asking identity (on `identity`, as
    /// `credentials`) for permissions and account facts, and the audit service (on
    /// `audit`) to screen comments, replies and messages. Without an audit channel
    /// nothing can be ingested or answered: screening is never skipped (R7.1.1).
    pub fn new(
        db: Database,
        clock: Arc<dyn Clock>,
        permissions: PermissionChecker,
        identity: Channel,
        audit: Option<Channel>,
        credentials: CallCredentials,
        policy: Policy,
    ) -> Arc<Self> {
        Arc::new(Self {
            work: UnitOfWork::new(db, clock),
            permissions,
            identity,
            screener: Screener::new(audit, credentials.clone()),
            credentials,
            policy,
            // Account facts change rarely (a department move, a closure); a short cache
            // keeps ingest from asking identity for every batch.
            accounts: moka::sync::Cache::builder().max_capacity(10_000).time_to_live(Duration::from_secs(30)).build(),
        })
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
    pub fn now(&self) -> DateTime<Utc> {
        self.work.now()
    }

    /// The permission authority's client.
    pub fn permissions(&self) -> &PermissionChecker {
        &self.permissions
    }

    /// Screening through the audit service.
    pub fn screener(&self) -> &Screener {
        &self.screener
    }

    /// Calendar, targets and caps.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Facts about an account as identity knows them now, not as cached: for deciding
    /// whether the account may speak, where a freeze must count at once.
    pub async fn account_now(&self, account: PlatformAccountId) -> Result<AccountFacts, Error> {
        self.accounts.invalidate(&account);
        self.account(account).await
    }

    /// Facts about an account from identity; NOT_FOUND when it is not registered.
    pub async fn account(&self, account: PlatformAccountId) -> Result<AccountFacts, Error> {
        if let Some(facts) = self.accounts.get(&account) {
            return Ok(facts);
        }
        let a = govmedia_kit::client::platform_account(&self.identity, &self.credentials, &account.to_string())
            .await?
            .ok_or_else(|| Error::not_found("platform_account", account))?;
        let facts = AccountFacts {
            id: account,
            department: a.department_id.parse().ok(),
            closed: a.state == govmedia_proto::identity::v1::PlatformAccountState::Closed as i32,
            frozen: a.state == govmedia_proto::identity::v1::PlatformAccountState::Frozen as i32,
        };
        self.accounts.insert(account, facts);
        Ok(facts)
    }

    /// NOT_FOUND unless the department is registered with identity.
    pub async fn check_department(&self, department: DepartmentId) -> Result<(), Error> {
        govmedia_kit::client::department(&self.identity, &self.credentials, &department.to_string())
            .await?
            .map(|_| ())
            .ok_or_else(|| Error::not_found("department", department))
    }
}

/// The server for `core`: every service of `govmedia.interaction.v1`.
pub fn server(core: &Arc<Core>, settings: ServerSettings, verifier: Arc<TokenVerifier>) -> ServerBuilder {
    let limit = settings.max_message_bytes;
    ServerBuilder::new(settings)
        .with_auth(
            AuthLayer::new(verifier, AuthPolicy::standard())
                .with_refusal_audit(govmedia_kit::refusals::RefusalAudit::new(core.work().clone(), PRODUCER)),
        )
        .add_service(api::comment::server(core).max_decoding_message_size(limit))
        .add_service(api::moderation::server(core).max_decoding_message_size(limit))
        .add_service(api::conversation::server(core).max_decoding_message_size(limit))
        .add_service(api::audience::server(core).max_decoding_message_size(limit))
        .add_service(api::escalation::server(core).max_decoding_message_size(limit))
}

/// Interaction's own settings.
#[derive(Debug, Clone, clap::Args)]
pub struct InteractionOptions {
    /// The bureau's time zone (IANA name), in which working hours are read.
    #[arg(long, env = "GOVMEDIA_INTERACTION_TIME_ZONE", default_value = "Asia/Shanghai")]
    pub time_zone: String,
    /// Working periods of a working day, `HH:MM-HH:MM` separated by commas.
    #[arg(long, env = "GOVMEDIA_INTERACTION_WORKING_HOURS", default_value = "09:00-12:00,13:30-17:30")]
    pub working_hours: String,
    /// Working weekdays, three-letter English names separated by commas.
    #[arg(long, env = "GOVMEDIA_INTERACTION_WORKING_WEEKDAYS", default_value = "mon,tue,wed,thu,fri")]
    pub working_weekdays: String,
    /// Holidays beyond the shipped official schedule (YYYY-MM-DD, separated by commas):
    /// a year published after this release, or a bureau's own.
    #[arg(long, env = "GOVMEDIA_HOLIDAYS", default_value = "")]
    pub holidays: String,
    /// Make-up working days (调休) beyond the shipped schedule (YYYY-MM-DD, separated by
    /// commas); a date listed here is working even if the schedule has it as a holiday.
    #[arg(long, env = "GOVMEDIA_MAKEUP_WORKING_DAYS", default_value = "")]
    pub makeup_working_days: String,
    /// First-response target of comments, in business minutes (R4.1.1).
    #[arg(long, env = "GOVMEDIA_INTERACTION_COMMENT_TARGET_MINUTES", default_value_t = DEFAULT_COMMENT_TARGET_MINUTES)]
    pub comment_target_minutes: u32,
    /// First-response target of private messages, in business minutes (R4.2.1); unset,
    /// one working day: the length of the working periods.
    #[arg(long, env = "GOVMEDIA_INTERACTION_MESSAGE_TARGET_MINUTES")]
    pub message_target_minutes: Option<u32>,
    /// Most open conversations one person may hold.
    #[arg(long, env = "GOVMEDIA_INTERACTION_MAX_OPEN_CONVERSATIONS", default_value_t = DEFAULT_MAX_OPEN_CONVERSATIONS)]
    pub max_open_conversations: u32,
    /// Working days a department has to answer a referral (R4.2.2).
    #[arg(long, env = "GOVMEDIA_INTERACTION_REFERRAL_WORKING_DAYS", default_value_t = DEFAULT_REFERRAL_WORKING_DAYS)]
    pub referral_working_days: u32,
    /// How often the deadline watch looks for missed deadlines to escalate (R4.1.1,
    /// R4.2.1, R4.2.2): an escalation reaches the department head at most this late.
    #[arg(long, env = "GOVMEDIA_INTERACTION_DEADLINE_WATCH_INTERVAL", default_value = "60s", value_parser = govmedia_kit::config::parse_duration)]
    pub deadline_watch_interval: Duration,
}

/// Everything the interaction service is configured with.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "govmedia-interaction", about = "The govmedia interaction moderation service")]
pub struct InteractionSettings {
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
    /// Interaction's own settings.
    #[command(flatten)]
    pub interaction: InteractionOptions,
}

/// Why the service could not start: the setting and what is wrong with it.
pub use govmedia_kit::config::InvalidSetting as SettingError;

fn setting(setting: &'static str, message: impl Into<String>) -> SettingError {
    SettingError::new(setting, message)
}

fn list(value: &str) -> impl Iterator<Item = &str> {
    value.split(',').map(str::trim).filter(|s| !s.is_empty())
}

fn dates(name: &'static str, value: &str) -> Result<Vec<NaiveDate>, SettingError> {
    holidays::parse_dates(value).map_err(|e| setting(name, e))
}

/// The policy the settings describe; every setting checked before anything starts.
pub fn policy(o: &InteractionOptions) -> Result<Policy, SettingError> {
    let zone: chrono_tz::Tz = o.time_zone.parse().map_err(|_| {
        setting("GOVMEDIA_INTERACTION_TIME_ZONE", format!("{:?} is not an IANA time zone", o.time_zone))
    })?;
    let hours = "GOVMEDIA_INTERACTION_WORKING_HOURS";
    let mut periods = Vec::new();
    for p in list(&o.working_hours) {
        let (a, b) = p.split_once('-').ok_or_else(|| setting(hours, format!("{p:?} is not HH:MM-HH:MM")))?;
        let t = |x: &str| {
            NaiveTime::parse_from_str(x.trim(), "%H:%M").map_err(|_| setting(hours, format!("{x:?} is not HH:MM")))
        };
        periods.push(Period { start: t(a)?, end: t(b)? });
    }
    let days = "GOVMEDIA_INTERACTION_WORKING_WEEKDAYS";
    let weekdays = list(&o.working_weekdays)
        .map(|d| d.parse::<Weekday>().map_err(|_| setting(days, format!("{d:?} is not a weekday"))))
        .collect::<Result<Vec<_>, _>>()?;
    let official = OfficialCalendar::with_additions(
        &dates("GOVMEDIA_HOLIDAYS", &o.holidays)?,
        &dates("GOVMEDIA_MAKEUP_WORKING_DAYS", &o.makeup_working_days)?,
    )
    .map_err(|both| setting("GOVMEDIA_MAKEUP_WORKING_DAYS", format!("{both} is also listed as a holiday")))?;
    let calendar = BusinessCalendar::new(zone, periods, &weekdays, official.holidays(), official.working_dates())
        .map_err(|e| setting(hours, e.to_string()))?;
    let message_target_minutes = o.message_target_minutes.unwrap_or_else(|| calendar.working_day_minutes());
    if o.comment_target_minutes == 0 {
        return Err(setting("GOVMEDIA_INTERACTION_COMMENT_TARGET_MINUTES", "must be at least 1"));
    }
    if message_target_minutes == 0 {
        return Err(setting("GOVMEDIA_INTERACTION_MESSAGE_TARGET_MINUTES", "must be at least 1"));
    }
    if o.max_open_conversations == 0 {
        return Err(setting("GOVMEDIA_INTERACTION_MAX_OPEN_CONVERSATIONS", "must be at least 1"));
    }
    if o.deadline_watch_interval.is_zero() {
        return Err(setting("GOVMEDIA_INTERACTION_DEADLINE_WATCH_INTERVAL", "must be longer than zero"));
    }
    if o.referral_working_days == 0 {
        return Err(setting("GOVMEDIA_INTERACTION_REFERRAL_WORKING_DAYS", "must be at least 1"));
    }
    Ok(Policy {
        calendar,
        response_targets: BTreeMap::from([
            (ITEM_COMMENT.to_owned(), o.comment_target_minutes),
            (ITEM_PRIVATE_MESSAGE.to_owned(), message_target_minutes),
        ]),
        max_open_conversations: o.max_open_conversations,
        referral_working_days: o.referral_working_days,
    })
}

/// Runs the interaction service until `shutdown` completes: the gRPC server and the
/// outbox relay to the audit service.
pub async fn serve(
    settings: InteractionSettings,
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
        .ok_or_else(|| setting("GOVMEDIA_DATABASE_URL", "the interaction service needs a database"))?;
    let identity =
        peers.identity_endpoint.as_deref().ok_or_else(|| setting("GOVMEDIA_IDENTITY_ENDPOINT", "is required"))?;
    // Screening is never skipped (R7.1.1), and audit records must reach the log.
    let audit = peers.audit_endpoint.as_deref().ok_or_else(|| setting("GOVMEDIA_AUDIT_ENDPOINT", "is required"))?;
    let client_id = peers.client_id.clone().ok_or_else(|| setting("GOVMEDIA_CLIENT_ID", "is required"))?;
    let secret = peers.client_secret.clone().ok_or_else(|| setting("GOVMEDIA_CLIENT_SECRET", "is required"))?;
    let policy = policy(&settings.interaction)?;
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
        policy,
    );
    let stop = tokio_util::sync::CancellationToken::new();
    let relay = Relay::new(core.db().clone(), GrpcAuditSink::new(audit, credentials))
        .named("interaction")
        .with_waker(core.work().relay_waker());
    let relay = tokio::spawn(relay.run(stop.clone()));
    let watch = deadline_watch::DeadlineWatch::new(Arc::clone(&core), settings.interaction.deadline_watch_interval);
    let watch = tokio::spawn(watch.run(stop.clone()));
    let verifier = Arc::new(TokenVerifier::from_identity(identity));
    let bound = server(&core, settings.server.clone(), verifier).bind().await?;
    bound.serve(shutdown).await?;
    stop.cancel();
    let _ = watch.await;
    let _ = relay.await;
    core.db().close().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn shanghai(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        chrono_tz::Asia::Shanghai.with_ymd_and_hms(y, m, d, h, min, 0).single().expect("time").with_timezone(&Utc)
    }

    #[test]
    fn deadlines_skip_the_official_holidays_and_count_make_up_days_r4_1_1_r4_2_1() {
        let policy = Policy::standard().expect("the standard policy");
        // A private message is due in one working day: 7 hours, not 8.
        let day = policy.target(ITEM_PRIVATE_MESSAGE, &BTreeMap::new());
        assert_eq!(day, 7 * 60);
        // Friday 2026-02-13 16:30: an hour that day, then Saturday the 14th is a make-up
        // working day for Spring Festival.
        let comment = policy.target(ITEM_COMMENT, &BTreeMap::new());
        assert_eq!(policy.due(shanghai(2026, 2, 13, 16, 30), comment).expect("due"), shanghai(2026, 2, 14, 12, 0));
        // Saturday the 14th 13:30: four hours that day, then nothing until Spring
        // Festival ends; three more hours on Tuesday the 24th.
        assert_eq!(policy.due(shanghai(2026, 2, 14, 13, 30), day).expect("due"), shanghai(2026, 2, 24, 12, 0));
        // National Day: a message on Wednesday 2026-09-30 at 17:00 waits out the week.
        assert_eq!(policy.due(shanghai(2026, 9, 30, 17, 0), day).expect("due"), shanghai(2026, 10, 8, 17, 0));
    }
}
