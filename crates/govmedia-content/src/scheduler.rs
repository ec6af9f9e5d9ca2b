//! The scheduler: publishes due publications through their connector, exactly once per
//! publication also with several replicas running (R3.3.1: "at the set time").
//!
//! One tick claims due items in a short transaction (leases, `FOR UPDATE SKIP LOCKED`;
//! see `store::publications`), decides each against the rules (`domain::publication`),
//! sends the claimed ones outside any transaction, and records each outcome in its own
//! transaction fenced by the row version it claimed. A replica that dies mid-send leaves
//! a lease that runs out; the next claimant sends again with the same idempotency key,
//! which the connector or its receiver answers with the first receipt. Every state
//! change is audited through the outbox in the transaction that makes it.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::metrics::Histogram;

use chrono::{DateTime, Utc};
use govmedia_domain::Error;
use govmedia_domain::audit::{Actor, AuditAction, AuditRecord, AuditResourceRef};
use govmedia_domain::ids::{PlatformAccountId, UserId};
use govmedia_kit::access::Authorized;
use govmedia_kit::db::Tx;
use tokio_util::sync::CancellationToken;

use crate::connector::{Connector, Outgoing};
use crate::domain::draft::{Content, Draft};
use crate::domain::publication::{
    AfterFailure, DueVerdict, Publication, PublicationState, Readiness, RetryPolicy, on_due,
};
use crate::domain::review;
use crate::store::{drafts, publications};
use crate::{AccountFacts, Core, PRODUCER};

/// Which connector publishes for which account.
#[derive(Debug, Clone)]
pub struct Connectors {
    default: Arc<dyn Connector>,
    by_account: HashMap<PlatformAccountId, Arc<dyn Connector>>,
}

impl Connectors {
    /// Every account publishes through `default`.
    pub fn new(default: Arc<dyn Connector>) -> Self {
        Self { default, by_account: HashMap::new() }
    }

    /// `account` publishes through `connector` instead.
    pub fn with_account(mut self, account: PlatformAccountId, connector: Arc<dyn Connector>) -> Self {
        self.by_account.insert(account, connector);
        self
    }

    /// The connector of `account`.
    pub fn for_account(&self, account: PlatformAccountId) -> &Arc<dyn Connector> {
        self.by_account.get(&account).unwrap_or(&self.default)
    }
}

/// How the scheduler runs.
#[derive(Debug, Clone, Copy)]
pub struct SchedulerSettings {
    /// How often to look for due work.
    pub poll: Duration,
    /// How long a claim holds; longer than one connector call with its own retries.
    pub lease: Duration,
    /// Items claimed per tick.
    pub batch: u32,
    /// Retries after failed attempts.
    pub retry: RetryPolicy,
}

impl Default for SchedulerSettings {
    fn default() -> Self {
        Self { poll: Duration::from_secs(1), lease: Duration::from_secs(120), batch: 20, retry: RetryPolicy::default() }
    }
}

/// What one tick did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tick {
    /// Published.
    pub published: usize,
    /// Failed an attempt and will be retried.
    pub retrying: usize,
    /// Failed for good (refused, attempts used up, or the account not active).
    pub failed: usize,
    /// Not approved and proofread in time.
    pub expired: usize,
    /// Outcomes not recorded because another replica took the item over.
    pub superseded: usize,
}

/// One scheduler replica.
#[derive(Debug, Clone)]
pub struct Scheduler {
    core: Arc<Core>,
    connectors: Connectors,
    settings: SchedulerSettings,
}

/// A claimed publication and what to send.
struct Claim {
    publication: Publication,
    outgoing: Outgoing,
}

impl Scheduler {
    /// A replica over the service's core.
    pub fn new(core: Arc<Core>, connectors: Connectors, settings: SchedulerSettings) -> Self {
        Self { core, connectors, settings }
    }

    /// Runs ticks until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        loop {
            match self.tick().await {
                // A full batch means more may be due: go again at once.
                Ok(t) if t.published + t.retrying + t.failed + t.expired >= self.settings.batch as usize => continue,
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "scheduler tick failed"),
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(self.settings.poll) => {}
            }
        }
    }

    /// Claims what is due now, sends it, records the outcomes.
    pub async fn tick(&self) -> Result<Tick, Error> {
        let mut tick = Tick::default();
        let claims = self.claim(&mut tick).await?;
        for claim in claims {
            let connector = self.connectors.for_account(claim.publication.account).clone();
            let result = match self.screen_again(&claim.outgoing).await {
                Ok(()) => connector.publish(&claim.outgoing).await,
                Err(refused) => Err(refused),
            };
            self.record(claim.publication, connector.name(), result, &mut tick).await?;
        }
        Ok(tick)
    }

    /// Screens what is about to go out once more (R7.1.1): the lexicon may have grown
    /// since the draft was submitted and approved. A block finding stops it for good
    /// (the publication fails, naming the term); screening that cannot be reached holds
    /// it for a retry. Nothing is published unscreened.
    async fn screen_again(&self, outgoing: &Outgoing) -> Result<(), crate::connector::ConnectorError> {
        use crate::connector::ConnectorError;
        let texts = vec![("title".to_owned(), outgoing.title.clone()), ("body".to_owned(), outgoing.body.clone())];
        let screened = self
            .core
            .screen(texts)
            .await
            .map_err(|e| ConnectorError::Transient(format!("screening before publishing is unavailable: {e}")))?;
        let blocking = screened.blocking();
        if blocking.is_empty() {
            return Ok(());
        }
        let found: Vec<String> = blocking.iter().map(|f| format!("{} \"{}\"", f.text_key, f.excerpt)).collect();
        Err(ConnectorError::Permanent(format!(
            "R7.1.1: screened again before publishing with lexicon version {}, blocked: {}",
            screened.lexicon_version,
            found.join("; ")
        )))
    }

    async fn claim(&self, tick: &mut Tick) -> Result<Vec<Claim>, Error> {
        let now = self.core.now();
        // Identity is asked about the accounts before the claim's transaction begins; an
        // item that fell due in between waits for the next tick. Several replicas may skip
        // each other's rows, so the facts cover a few batches' worth.
        let due =
            publications::due_accounts(&mut self.core.db().begin_read().await?, now, self.settings.batch * 4).await?;
        let mut accounts = HashMap::new();
        for account in due {
            accounts.insert(account, self.core.account(account).await?);
        }
        let grant = Authorized::service("scheduler");
        self.core
            .work()
            .run_unkeyed(async |m| {
                let mut claims = Vec::new();
                for mut p in publications::lock_due(m.tx(), now, self.settings.batch).await? {
                    let Some(account) = accounts.get(&p.account) else { continue };
                    let draft = drafts::lock(m.tx(), p.draft, &grant).await?;
                    let signoffs = drafts::signoffs(m.tx(), draft.id, draft.current_version).await?;
                    let verdict = on_due(&Readiness {
                        draft: draft.state,
                        signoffs: signoffs.len(),
                        required_signoffs: self.core.proofreading_passes(),
                        account_active: account.active,
                    });
                    match verdict {
                        DueVerdict::Publish => {
                            let due_at = p.next_attempt_at.unwrap_or(p.scheduled_at);
                            let late = (now - due_at).to_std().unwrap_or_default();
                            let attempt = if p.next_attempt_at.is_some() { "retry" } else { "first" };
                            scheduler_lag().record(late.as_secs_f64(), &[KeyValue::new("attempt", attempt)]);
                            let past = drafts::past(&drafts::decisions(m.tx(), draft.id).await?);
                            let content = drafts::content(m.tx(), draft.id, draft.current_version).await?;
                            let approvers = review::approvers(&draft.review_state(&past));
                            let proofreaders = signoffs.iter().map(|s| s.proofreader).collect();
                            p.claim(&draft, approvers, proofreaders, now, self.settings.lease);
                            publications::save(m.tx(), &p).await?;
                            let outgoing = outgoing(&p, account, &draft, &content);
                            claims.push(Claim { publication: p, outgoing });
                        }
                        DueVerdict::Expire(why) => {
                            p.give_up(PublicationState::Expired, &why, now);
                            publications::save(m.tx(), &p).await?;
                            m.audit(record(AuditAction::PublicationExpired, &p, now, "R3.2.1").reason(why));
                            tick.expired += 1;
                        }
                        DueVerdict::Refuse(why) => {
                            p.give_up(PublicationState::Failed, &why, now);
                            publications::save(m.tx(), &p).await?;
                            m.audit(record(AuditAction::PublicationFailed, &p, now, "R2.3.3").reason(why));
                            tick.failed += 1;
                        }
                    }
                }
                Ok(claims)
            })
            .await
    }

    async fn record(
        &self,
        claimed: Publication,
        connector: &'static str,
        result: Result<crate::connector::Receipt, crate::connector::ConnectorError>,
        tick: &mut Tick,
    ) -> Result<(), Error> {
        let grant = Authorized::service("scheduler");
        let now = self.core.now();
        self.core
            .work()
            .run_unkeyed(async |m| {
                let mut p = publications::lock(m.tx(), claimed.id, &grant).await?;
                if p.version != claimed.version {
                    // Our lease ran out and another replica owns it now; its outcome counts.
                    tracing::warn!(publication = %p.id, "publication taken over by another scheduler; outcome dropped");
                    tick.superseded += 1;
                    return Ok(());
                }
                let audit = match result {
                    Ok(receipt) => {
                        p.published(connector, receipt.platform_post_id, receipt.url, now);
                        let mut draft = drafts::lock(m.tx(), p.draft, &grant).await?;
                        mark_draft_published(m.tx(), &mut draft, now).await?;
                        tick.published += 1;
                        record(AuditAction::PublicationPublished, &p, now, "R3.3.1").attr("url", &p.url)
                    }
                    Err(e) => {
                        let attempts = u32::try_from(p.attempt_count).unwrap_or(u32::MAX);
                        match self.settings.retry.after_failure(attempts, e.is_transient(), now) {
                            AfterFailure::RetryAt(at) => {
                                p.attempt_failed(connector, &e.to_string(), Some(at), now);
                                tick.retrying += 1;
                                record(AuditAction::PublicationAttemptFailed, &p, now, "R3.3.1")
                                    .reason(e.to_string())
                                    .attr("next_attempt_at", at.to_rfc3339())
                            }
                            AfterFailure::Fail => {
                                p.attempt_failed(connector, &e.to_string(), None, now);
                                tick.failed += 1;
                                record(AuditAction::PublicationFailed, &p, now, "R3.3.1").reason(e.to_string())
                            }
                        }
                    }
                };
                publications::save(m.tx(), &p).await?;
                m.audit(audit);
                Ok(())
            })
            .await
    }
}

/// What the connector sends for `p`: the variant for its account where there is one.
fn outgoing(p: &Publication, account: &AccountFacts, draft: &Draft, content: &Content) -> Outgoing {
    let (title, body) = content.for_account(p.account);
    Outgoing {
        publication_id: p.id.to_string(),
        platform_account_id: p.account.to_string(),
        platform: account.platform.name().to_owned(),
        draft_id: draft.id.to_string(),
        draft_version: draft.current_version,
        title: title.to_owned(),
        body: body.to_owned(),
        media: content.cover.iter().chain(content.media.iter()).map(|m| m.uri.clone()).collect(),
        scheduled_at: p.scheduled_at,
        approvers: ids(&p.approvers),
        proofreaders: ids(&p.proofreaders),
    }
}

/// The draft (locked by the caller) is published once its first publication is; later
/// targets keep it so. The plan it realises is done once something of it went out
/// (R3.1.1): a consequence by rule, which the service makes itself.
pub(crate) async fn mark_draft_published(tx: &mut Tx, draft: &mut Draft, now: DateTime<Utc>) -> Result<(), Error> {
    if !draft.mark_published(now) {
        return Ok(());
    }
    drafts::save(tx, draft).await?;
    if let Some(plan) = draft.plan {
        let mut p = crate::store::plans::lock(tx, plan, &Authorized::service("publishing")).await?;
        if p.mark_published(now) {
            crate::store::plans::save(tx, &p).await?;
        }
    }
    Ok(())
}

fn ids(users: &[UserId]) -> Vec<String> {
    users.iter().map(ToString::to_string).collect()
}

/// How late a due publication is claimed: from its scheduled time (or the retry time it
/// was given) to the claim. It grows when the scheduler falls behind or stops.
fn scheduler_lag() -> &'static Histogram<f64> {
    static LAG: OnceLock<Histogram<f64>> = OnceLock::new();
    LAG.get_or_init(|| {
        govmedia_kit::telemetry::meter(Some("content"))
            .f64_histogram("govmedia.scheduler.lag")
            .with_unit("s")
            .with_description("Delay from a publication's due time to its claim by the scheduler")
            .with_boundaries(vec![0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0])
            .build()
    })
}

fn record(action: AuditAction, p: &Publication, now: DateTime<Utc>, rule: &str) -> AuditRecord {
    let mut resource = AuditResourceRef::new("publication", p.id);
    resource.platform_account = Some(p.account);
    AuditRecord::new(action, Actor::system("scheduler"), resource, PRODUCER, now)
        .rule(rule)
        .attr("draft_id", p.draft)
        .attr("draft_version", p.draft_version)
        .attr("attempt", p.attempt_count)
}
