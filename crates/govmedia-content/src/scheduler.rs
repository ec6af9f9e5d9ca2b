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
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use govmedia_domain::Error;
use govmedia_domain::audit::{Actor, AuditAction, AuditRecord, AuditResourceRef};
use govmedia_domain::ids::{PlatformAccountId, UserId};
use govmedia_domain::workflow::DraftState;
use govmedia_kit::outbox;
use tokio_util::sync::CancellationToken;

use crate::connector::{Connector, Outgoing};
use crate::domain::plan::PlanState;
use crate::domain::publication::{AfterFailure, DueVerdict, PublicationState, Readiness, RetryPolicy, on_due};
use crate::domain::review;
use crate::store::{drafts, publications, publications::Publication};
use crate::{Core, PRODUCER};

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
            let result = connector.publish(&claim.outgoing).await;
            self.record(claim.publication, connector.name(), result, &mut tick).await?;
        }
        Ok(tick)
    }

    async fn claim(&self, tick: &mut Tick) -> Result<Vec<Claim>, Error> {
        let now = self.core.now();
        let mut tx = self.core.db().begin().await?;
        let due = publications::lock_due(&mut tx, now, self.settings.batch).await?;
        let mut claims = Vec::new();
        let mut records = Vec::new();
        for mut p in due {
            let draft = drafts::get(&mut tx, p.draft, false)
                .await?
                .ok_or_else(|| Error::internal(format!("publication {} has no draft", p.id)))?;
            let signoffs = drafts::signoffs(&mut tx, draft.id, draft.current_version).await?;
            let account = self.core.account(p.account).await?;
            let verdict = on_due(&Readiness {
                draft: draft.state,
                signoffs: signoffs.len(),
                required_signoffs: self.core.proofreading_passes(),
                account_active: account.active,
            });
            let expected = p.version;
            p.updated_at = now;
            p.version += 1;
            match verdict {
                DueVerdict::Publish => {
                    let decisions = drafts::decisions(&mut tx, draft.id).await?;
                    let state = drafts::review_state(&draft, &decisions);
                    let content = drafts::content(&mut tx, draft.id, draft.current_version).await?;
                    p.state = PublicationState::Publishing;
                    p.draft_version = draft.current_version;
                    p.approvers = review::approvers(&state);
                    p.proofreaders = signoffs.iter().map(|s| s.proofreader).collect();
                    p.attempt_count += 1;
                    p.next_attempt_at = None;
                    p.lease_until = Some(now + chrono::Duration::from_std(self.settings.lease).unwrap_or_default());
                    publications::save(&mut tx, &p, expected).await?;
                    let variant = content.variants.iter().find(|v| v.platform_account_id == p.account.to_string());
                    let outgoing = Outgoing {
                        publication_id: p.id.to_string(),
                        platform_account_id: p.account.to_string(),
                        platform: account.platform.name().to_owned(),
                        draft_id: draft.id.to_string(),
                        draft_version: draft.current_version,
                        title: variant.map_or(content.title.clone(), |v| v.title.clone()),
                        body: variant.map_or(content.body.clone(), |v| v.body.clone()),
                        media: content.cover.iter().chain(content.media.iter()).map(|m| m.uri.clone()).collect(),
                        scheduled_at: p.scheduled_at,
                        approvers: ids(&p.approvers),
                        proofreaders: ids(&p.proofreaders),
                    };
                    claims.push(Claim { publication: p, outgoing });
                }
                DueVerdict::Expire(why) => {
                    p.state = PublicationState::Expired;
                    p.last_error = why.clone();
                    p.lease_until = None;
                    publications::save(&mut tx, &p, expected).await?;
                    records.push(record(AuditAction::PublicationExpired, &p, now, "R3.2.1").reason(why));
                    tick.expired += 1;
                }
                DueVerdict::Refuse(why) => {
                    p.state = PublicationState::Failed;
                    p.last_error = why.clone();
                    p.lease_until = None;
                    publications::save(&mut tx, &p, expected).await?;
                    records.push(record(AuditAction::PublicationFailed, &p, now, "R2.3.3").reason(why));
                    tick.failed += 1;
                }
            }
        }
        outbox::enqueue(&mut tx, &records).await?;
        tx.commit().await?;
        if !records.is_empty() {
            self.core.relay().notify_one();
        }
        Ok(claims)
    }

    async fn record(
        &self,
        claimed: Publication,
        connector: &'static str,
        result: Result<crate::connector::Receipt, crate::connector::ConnectorError>,
        tick: &mut Tick,
    ) -> Result<(), Error> {
        let now = self.core.now();
        let mut tx = self.core.db().begin().await?;
        let Some(mut p) = publications::get(&mut tx, claimed.id, true).await? else {
            return Err(Error::internal(format!("publication {} vanished", claimed.id)));
        };
        if p.version != claimed.version {
            // Our lease ran out and another replica owns it now; its outcome counts.
            tracing::warn!(publication = %p.id, "publication taken over by another scheduler; outcome dropped");
            tick.superseded += 1;
            return Ok(());
        }
        let expected = p.version;
        p.version += 1;
        p.updated_at = now;
        p.connector = connector.to_owned();
        p.lease_until = None;
        let audit = match result {
            Ok(receipt) => {
                p.state = PublicationState::Published;
                p.published_at = Some(now);
                p.platform_post_id = receipt.platform_post_id;
                p.url = receipt.url;
                p.last_error.clear();
                mark_draft_published(&mut tx, &p, now).await?;
                tick.published += 1;
                record(AuditAction::PublicationPublished, &p, now, "R3.3.1").attr("url", &p.url)
            }
            Err(e) => {
                p.last_error = e.to_string();
                let attempts = u32::try_from(p.attempt_count).unwrap_or(u32::MAX);
                match self.settings.retry.after_failure(attempts, e.is_transient(), now) {
                    AfterFailure::RetryAt(at) => {
                        p.next_attempt_at = Some(at);
                        tick.retrying += 1;
                        record(AuditAction::PublicationAttemptFailed, &p, now, "R3.3.1")
                            .reason(e.to_string())
                            .attr("next_attempt_at", at.to_rfc3339())
                    }
                    AfterFailure::Fail => {
                        p.state = PublicationState::Failed;
                        tick.failed += 1;
                        record(AuditAction::PublicationFailed, &p, now, "R3.3.1").reason(e.to_string())
                    }
                }
            }
        };
        publications::save(&mut tx, &p, expected).await?;
        outbox::enqueue(&mut tx, &[audit]).await?;
        tx.commit().await?;
        self.core.relay().notify_one();
        Ok(())
    }
}

/// The draft (and its plan) is published once its first publication is; later targets
/// keep it so.
pub(crate) async fn mark_draft_published(
    tx: &mut govmedia_kit::db::Tx,
    p: &Publication,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    let Some(mut draft) = drafts::get(tx, p.draft, true).await? else { return Ok(()) };
    if draft.state == DraftState::Published {
        return Ok(());
    }
    let expected = draft.version;
    draft.state = DraftState::Published;
    draft.updated_at = now;
    draft.version += 1;
    drafts::save(tx, &draft, expected).await?;
    // The plan the draft realises is done once something of it went out (R3.1.1).
    if let Some(plan) = draft.plan
        && let Some(mut p) = crate::store::plans::lock(tx, plan).await?
        && matches!(p.state, PlanState::Planned | PlanState::Drafted)
    {
        let previous = p.version;
        p.state = PlanState::Published;
        p.updated_at = now;
        p.version += 1;
        crate::store::plans::save(tx, &p, previous).await?;
    }
    Ok(())
}

fn ids(users: &[UserId]) -> Vec<String> {
    users.iter().map(ToString::to_string).collect()
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
