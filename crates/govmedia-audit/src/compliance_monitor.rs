//! The compliance monitor: assesses every platform account for inspection readiness
//! (R8.1.1) on every Beijing date and keeps the day's assessment.
//!
//! A round asks identity for the register (accounts that are not closed, and which
//! users are active), reads the audit log's facts for the date's window, and writes every
//! account's assessment in one unit of work, with an audit record for each account that
//! crossed into a warning or a veto (or back to compliant) and one `compliance.assessed`
//! for the round. The date in progress is rewritten each round; the first round after a
//! date ends writes that date once more, as of its last instant, and marks it final.
//! Replicas may run together: the assessment of (account, date) is one row, the last
//! write wins, and both compute it from the same facts.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use govmedia_domain::Error;
use govmedia_domain::audit::{Actor, AuditAction, AuditRecord, AuditResourceRef};
use govmedia_kit::client::CallCredentials;
use govmedia_kit::mutation::Mutation;
use govmedia_proto::identity::v1 as ipb;
use govmedia_proto::identity::v1::directory_service_client::DirectoryServiceClient;
use govmedia_proto::identity::v1::platform_account_service_client::PlatformAccountServiceClient;
use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Gauge};
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

use crate::Core;
use crate::domain::compliance::{Assessment, Level, Period, RegisteredAccount, local_date};
use crate::store::compliance as store;

/// The component named as the actor of what the monitor does.
pub const COMPONENT: &str = "audit.compliance_monitor";
/// The rule the monitor serves.
pub const RULE: &str = "R8.1.1";

/// What one assessment of a date found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// The date assessed.
    pub date: NaiveDate,
    /// Accounts assessed.
    pub accounts: u32,
    /// Of which at warning.
    pub warnings: u32,
    /// Of which at veto.
    pub vetoes: u32,
    /// Accounts that crossed into a warning or veto, or back.
    pub alerts: u32,
}

/// identity's register of platform accounts, read as the audit service's principal.
#[derive(Debug, Clone)]
pub struct AccountRegister {
    identity: Channel,
    credentials: CallCredentials,
}

impl AccountRegister {
    /// The register at `identity`, called with `credentials`.
    pub fn new(identity: Channel, credentials: CallCredentials) -> Self {
        Self { identity, credentials }
    }

    async fn call<T>(&self, body: T) -> Result<tonic::Request<T>, Error> {
        let mut request = tonic::Request::new(body);
        self.credentials.authorize(&mut request).await.map_err(unavailable)?;
        govmedia_kit::telemetry::inject_context(request.metadata_mut());
        Ok(request)
    }

    /// Every account that is not closed, with whether its responsible person is active.
    pub async fn accounts(&self) -> Result<Vec<RegisteredAccount>, Error> {
        let mut active = std::collections::HashSet::new();
        let mut token = String::new();
        loop {
            let request = self
                .call(ipb::ListUsersRequest {
                    page_size: 500,
                    page_token: token,
                    status: ipb::UserStatus::Active as i32,
                    ..Default::default()
                })
                .await?;
            let page =
                DirectoryServiceClient::new(self.identity.clone()).list_users(request).await.map_err(unavailable)?;
            let page = page.into_inner();
            active.extend(page.users.into_iter().map(|u| u.id));
            if page.next_page_token.is_empty() {
                break;
            }
            token = page.next_page_token;
        }
        let rotations = self.rotations().await?;
        let mut accounts = Vec::new();
        let mut token = String::new();
        loop {
            let request = self
                .call(ipb::ListPlatformAccountsRequest { page_size: 500, page_token: token, ..Default::default() })
                .await?;
            let page = PlatformAccountServiceClient::new(self.identity.clone())
                .list_platform_accounts(request)
                .await
                .map_err(unavailable)?
                .into_inner();
            for a in page.platform_accounts {
                if a.state == ipb::PlatformAccountState::Closed as i32 {
                    continue;
                }
                let registered_at = a
                    .create_time
                    .and_then(|t| DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).unwrap_or(0)))
                    .ok_or_else(|| Error::internal("identity answered an account without create_time"))?;
                let credential_rotation_due = rotations.get(&a.id).copied();
                accounts.push(RegisteredAccount {
                    id: a.id.parse().map_err(|_| Error::internal("identity answered an account id that is not one"))?,
                    department: a.department_id.parse().ok(),
                    platform: platform_name(a.platform),
                    handle: a.handle,
                    registered_at,
                    responsible_active: active.contains(&a.responsible_user_id),
                    credential_rotation_due,
                });
            }
            if page.next_page_token.is_empty() {
                break;
            }
            token = page.next_page_token;
        }
        Ok(accounts)
    }
}

/// What identity says of a user, for naming a person responsible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserFacts {
    /// The user's department.
    pub department: Option<govmedia_domain::ids::DepartmentId>,
    /// Whether the user may log in.
    pub active: bool,
}

impl AccountRegister {
    /// A user, or none when identity knows no such user.
    pub async fn user(&self, user: govmedia_domain::ids::UserId) -> Result<Option<UserFacts>, Error> {
        let request = self.call(ipb::GetUserRequest { user_id: user.to_string() }).await?;
        match DirectoryServiceClient::new(self.identity.clone()).get_user(request).await {
            Ok(r) => Ok(r.into_inner().user.map(|u| UserFacts {
                department: u.department_id.parse().ok(),
                active: u.status == ipb::UserStatus::Active as i32,
            })),
            Err(s) if s.code() == tonic::Code::NotFound => Ok(None),
            Err(s) => Err(unavailable(s)),
        }
    }

    /// When each account's stored credential must be rotated by, from identity's vault.
    async fn rotations(&self) -> Result<std::collections::HashMap<String, DateTime<Utc>>, Error> {
        use govmedia_proto::identity::v1::credential_vault_service_client::CredentialVaultServiceClient;
        // Every credential: those due before the end of year 9999.
        let far = prost_types::Timestamp { seconds: 253_402_214_399, nanos: 0 };
        let mut due = std::collections::HashMap::new();
        let mut token = String::new();
        loop {
            let request = self
                .call(ipb::ListCredentialRotationsDueRequest {
                    page_size: 500,
                    page_token: token,
                    due_before: Some(far),
                })
                .await?;
            let page = CredentialVaultServiceClient::new(self.identity.clone())
                .list_credential_rotations_due(request)
                .await
                .map_err(unavailable)?
                .into_inner();
            for c in page.credentials {
                if let Some(t) = c.rotation_due_time
                    && let Some(at) = DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).unwrap_or(0))
                {
                    due.insert(c.platform_account_id, at);
                }
            }
            if page.next_page_token.is_empty() {
                return Ok(due);
            }
            token = page.next_page_token;
        }
    }

    /// The identity service's channel.
    pub fn identity(&self) -> Channel {
        self.identity.clone()
    }

    /// The account of identity's incident `incident`, or none when identity knows no
    /// such incident.
    pub async fn account_incident(&self, incident: &str) -> Result<Option<String>, Error> {
        let request = self.call(ipb::GetAccountIncidentRequest { incident_id: incident.to_owned() }).await?;
        match PlatformAccountServiceClient::new(self.identity.clone()).get_account_incident(request).await {
            Ok(r) => Ok(r.into_inner().incident.map(|i| i.platform_account_id)),
            Err(s) if matches!(s.code(), tonic::Code::NotFound | tonic::Code::InvalidArgument) => Ok(None),
            Err(s) => Err(unavailable(s)),
        }
    }

    /// An account's owning department, or none when identity knows no such account.
    pub async fn account_department(
        &self,
        account: govmedia_domain::ids::PlatformAccountId,
    ) -> Result<Option<Option<govmedia_domain::ids::DepartmentId>>, Error> {
        let found =
            govmedia_kit::client::platform_account(&self.identity, &self.credentials, &account.to_string()).await?;
        Ok(found.map(|a| a.department_id.parse().ok()))
    }
}

fn unavailable(s: tonic::Status) -> Error {
    Error::Unavailable { dependency: "identity service", source: Box::new(s) }
}

/// The platform's stored name: `PLATFORM_WEIBO` is `weibo`.
pub fn platform_name(platform: i32) -> String {
    govmedia_proto::common::v1::Platform::try_from(platform)
        .map(|p| p.as_str_name().trim_start_matches("PLATFORM_").to_ascii_lowercase())
        .unwrap_or_default()
}

/// Assesses the service's accounts every so often.
#[derive(Debug, Clone)]
pub struct ComplianceMonitor {
    core: Arc<Core>,
    every: Duration,
}

impl ComplianceMonitor {
    /// A monitor over `core`, assessing `every` so often.
    pub fn new(core: Arc<Core>, every: Duration) -> Self {
        Self { core, every }
    }

    /// Runs rounds until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        loop {
            // A failed round (identity not reachable yet) is tried again within a
            // minute, not after a whole interval.
            let next = match self.round().await {
                Ok(_) => {
                    // The violation detectors ride on the same rhythm: an order overdue
                    // since the last round is proposed now.
                    if let Err(e) = crate::violation_watch::round(&self.core, self.core.now()).await {
                        tracing::warn!(error = %e, "violation detectors failed");
                    }
                    self.every
                }
                Err(e) => {
                    tracing::warn!(error = %e, "compliance assessment round failed");
                    self.every.min(Duration::from_secs(60))
                }
            };
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(next) => {}
            }
        }
    }

    /// Assesses every account now: finishes the last date assessed if it is over, then
    /// today so far.
    pub async fn round(&self) -> Result<Summary, Error> {
        let accounts = self.core.register().accounts().await?;
        let now = self.core.now();
        let pending = self.pending_dates(now).await?;
        let mut summary = None;
        for date in pending {
            let facts = facts(&self.core, &accounts, date, now).await?;
            let done =
                self.core.work().run_unkeyed(async |m| write(m, date, facts, &Actor::system(COMPONENT)).await).await?;
            summary = Some(done);
        }
        let summary = summary.ok_or_else(|| Error::internal("no date to assess"))?;
        record_metrics(&summary);
        Ok(summary)
    }

    /// The dates a round writes: the last date assessed if it is over and not final yet,
    /// and today.
    pub async fn pending_dates(&self, now: DateTime<Utc>) -> Result<Vec<NaiveDate>, Error> {
        pending_dates(&self.core, now).await
    }
}

/// The dates to write at `now`: an unfinished earlier date, then today.
pub async fn pending_dates(core: &Core, now: DateTime<Utc>) -> Result<Vec<NaiveDate>, Error> {
    let today = local_date(now, core.time_zone());
    let mut tx = core.db().begin_read().await?;
    let mut dates = Vec::new();
    if let Some((latest, is_final)) = store::latest_date(&mut tx).await?
        && latest < today
        && !is_final
    {
        dates.push(latest);
    }
    dates.push(today);
    Ok(dates)
}

/// Every account's assessment of `date` as seen at `now`, from the audit log's facts:
/// read outside any write transaction.
pub async fn facts(
    core: &Core,
    accounts: &[RegisteredAccount],
    date: NaiveDate,
    now: DateTime<Utc>,
) -> Result<Vec<Assessment>, Error> {
    let tz = core.time_zone();
    let period = Period::of(date, tz, now);
    let mut tx = core.db().begin_read().await?;
    let last = store::last_publications(&mut tx, period.end).await?;
    let counts = store::window_counts(&mut tx, period.start, period.end).await?;
    let orders = crate::store::rectifications::open_per_account(&mut tx, period.end).await?;
    Ok(accounts
        .iter()
        .map(|a| {
            let key = a.id.to_string();
            let mut facts = counts.get(&key).copied().unwrap_or_default();
            facts.last_publication_at = last.get(&key).copied();
            if let Some((open, overdue)) = orders.get(&key) {
                facts.open_rectifications = *open;
                facts.overdue_rectifications = *overdue;
            }
            Assessment::assess(a, facts, &period, tz, now)
        })
        .collect())
}

/// Writes a date's assessments with their alerts, in the caller's unit of work.
pub async fn write(
    m: &mut Mutation,
    date: NaiveDate,
    assessments: Vec<Assessment>,
    actor: &Actor,
) -> Result<Summary, Error> {
    let before = store::levels_before(m.tx(), date).await?;
    let mut summary = Summary { date, accounts: 0, warnings: 0, vetoes: 0, alerts: 0 };
    for a in &assessments {
        store::upsert(m.tx(), a).await?;
        summary.accounts += 1;
        match a.level {
            Level::Warning => summary.warnings += 1,
            Level::Veto => summary.vetoes += 1,
            Level::Compliant => {}
        }
        let previous = before.get(&a.account).copied();
        if let Some(action) = a.level.alert_from(previous) {
            summary.alerts += 1;
            m.audit(alert(action, a, previous, actor.clone(), m.now()));
            alert_counter().add(1, &[KeyValue::new("level", a.level.as_str())]);
        }
    }
    let resource = AuditResourceRef::new("compliance_assessment", date);
    m.audit(
        AuditRecord::new(AuditAction::ComplianceAssessed, actor.clone(), resource, crate::PRODUCER, m.now())
            .rule(RULE)
            .attr("assessment_date", date)
            .attr("accounts", summary.accounts)
            .attr("warnings", summary.warnings)
            .attr("vetoes", summary.vetoes)
            .attr("final", assessments.iter().all(|a| a.is_final) && !assessments.is_empty()),
    );
    Ok(summary)
}

fn alert(
    action: AuditAction,
    a: &Assessment,
    previous: Option<Level>,
    actor: Actor,
    now: DateTime<Utc>,
) -> AuditRecord {
    let mut resource = AuditResourceRef::new("platform_account", a.account);
    resource.platform_account = Some(a.account);
    resource.department = a.department;
    let rule = a.items.iter().find(|i| i.level == a.level).map_or(RULE, |i| i.indicator.rule());
    AuditRecord::new(action, actor, resource, crate::PRODUCER, now)
        .rule(rule)
        .reason(if a.level == Level::Compliant { "no veto item holds or is near".to_owned() } else { a.alert_detail() })
        .attr("assessment_date", a.date)
        .attr("level", a.level.as_str())
        .attr("previous_level", previous.unwrap_or(Level::Compliant).as_str())
        .attr("score", a.score)
        .attr("days_since_last_publication", a.days_since_last_publication)
}

/// Exports today's counts per level.
pub fn record_metrics(summary: &Summary) {
    let compliant = summary.accounts.saturating_sub(summary.warnings + summary.vetoes);
    for (level, n) in [(Level::Compliant, compliant), (Level::Warning, summary.warnings), (Level::Veto, summary.vetoes)]
    {
        accounts_gauge().record(u64::from(n), &[KeyValue::new("level", level.as_str())]);
        // Each level's alert count exists from the first round, so a dashboard shows 0.
        alert_counter().add(0, &[KeyValue::new("level", level.as_str())]);
    }
}

fn alert_counter() -> &'static Counter<u64> {
    static COUNTER: OnceLock<Counter<u64>> = OnceLock::new();
    COUNTER.get_or_init(|| {
        govmedia_kit::telemetry::meter(Some("audit"))
            .u64_counter("govmedia.audit.compliance.alerts")
            .with_description("Accounts that crossed into an inspection warning or veto, or back (R8.1.1)")
            .with_unit("{alert}")
            .build()
    })
}

fn accounts_gauge() -> &'static Gauge<u64> {
    static GAUGE: OnceLock<Gauge<u64>> = OnceLock::new();
    GAUGE.get_or_init(|| {
        govmedia_kit::telemetry::meter(Some("audit"))
            .u64_gauge("govmedia.audit.compliance.accounts")
            .with_description("Platform accounts at each inspection-readiness level today (R8.1.1)")
            .with_unit("{account}")
            .build()
    })
}
