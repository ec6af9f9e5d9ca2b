//! The rules of publishing (R3.3): when a due publication may go out, what happens after
//! a failed attempt, and the stored names of states and channels.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use chrono::{DateTime, Utc};
use govmedia_domain::Error;
use govmedia_domain::audit::AuditAction;
use govmedia_domain::ids::{DraftId, PlatformAccountId, PublicationId, UserId};
use govmedia_domain::workflow::DraftState;

use super::draft::Draft;
pub use govmedia_domain::workflow::PublicationState;

/// R3.3.1: only approved, proofread content on an active account is published.
pub const PUBLISHING_RULE: &str = "R3.3.1";

/// R3.3.1: publications go out as scheduled.
pub const SCHEDULE_RULE: &str = "R3.3.1";

/// A state's stored name.
pub trait StateName: Sized {
    /// The stored name.
    fn name(self) -> &'static str;
    /// From a stored name.
    fn from_name(s: &str) -> Option<Self>;
}

impl StateName for PublicationState {
    fn name(self) -> &'static str {
        match self {
            PublicationState::Scheduled => "scheduled",
            PublicationState::Publishing => "publishing",
            PublicationState::Published => "published",
            PublicationState::Failed => "failed",
            PublicationState::Expired => "expired",
            PublicationState::Cancelled => "cancelled",
            PublicationState::Retracted => "retracted",
        }
    }

    fn from_name(s: &str) -> Option<Self> {
        [
            PublicationState::Scheduled,
            PublicationState::Publishing,
            PublicationState::Published,
            PublicationState::Failed,
            PublicationState::Expired,
            PublicationState::Cancelled,
            PublicationState::Retracted,
        ]
        .into_iter()
        .find(|st| st.name() == s)
    }
}

/// How a publication reaches the platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// Through a connector, by the scheduler.
    Connector,
    /// By hand on the platform, recorded with evidence.
    Manual,
}

impl Channel {
    /// The stored name.
    pub fn name(self) -> &'static str {
        match self {
            Channel::Connector => "connector",
            Channel::Manual => "manual",
        }
    }

    /// From a stored name.
    pub fn from_name(s: &str) -> Option<Self> {
        match s {
            "connector" => Some(Channel::Connector),
            "manual" => Some(Channel::Manual),
            _ => None,
        }
    }
}

/// What the scheduler knows when a publication falls due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Readiness {
    /// The draft's state.
    pub draft: DraftState,
    /// Proofreading sign-offs on the current version.
    pub signoffs: usize,
    /// Sign-offs required.
    pub required_signoffs: usize,
    /// The account may publish (active, not frozen or closed).
    pub account_active: bool,
}

/// What to do with a due publication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DueVerdict {
    /// Send it.
    Publish,
    /// Not approved and proofread by its time: it expires and can be rescheduled.
    Expire(String),
    /// The account may not publish now (frozen): the publication fails with the reason.
    Refuse(String),
}

/// Approval is bound to the schedule: what is not fully approved and proofread when its
/// time comes does not go out (R3.2.2, R3.3.2); a frozen account publishes nothing.
pub fn on_due(r: &Readiness) -> DueVerdict {
    if !r.account_active {
        return DueVerdict::Refuse("R2.3.3: the account is not active (frozen after an anomaly, or closed)".to_owned());
    }
    // Published: another account of the same draft went out first; the version stands.
    if !matches!(r.draft, DraftState::Approved | DraftState::Published) {
        return DueVerdict::Expire(
            "R3.2.1: the draft was not approved by all three stages by its scheduled time".into(),
        );
    }
    if r.signoffs < r.required_signoffs {
        return DueVerdict::Expire(format!(
            "R3.3.2: {} of {} proofreading sign-offs by the scheduled time",
            r.signoffs, r.required_signoffs
        ));
    }
    DueVerdict::Publish
}

/// The scheduler's persisted retries, after the connector's own quick ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts before the publication is failed.
    pub max_attempts: u32,
    /// Wait after the first failed attempt; doubled after each next one.
    pub first_delay: Duration,
    /// The longest wait.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self { max_attempts: 5, first_delay: Duration::from_secs(30), max_delay: Duration::from_secs(30 * 60) }
    }
}

/// After a failed attempt: try again at a time, or give up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterFailure {
    /// Retry at this time.
    RetryAt(DateTime<Utc>),
    /// Fail the publication for a person to act on.
    Fail,
}

impl RetryPolicy {
    /// The next step after attempt number `attempts` (1-based) failed.
    pub fn after_failure(&self, attempts: u32, transient: bool, now: DateTime<Utc>) -> AfterFailure {
        if !transient || attempts >= self.max_attempts {
            return AfterFailure::Fail;
        }
        let delay = ExponentialBuilder::default()
            .with_min_delay(self.first_delay)
            .with_max_delay(self.max_delay)
            .with_max_times(self.max_attempts as usize)
            .build()
            .nth(attempts.saturating_sub(1) as usize)
            .unwrap_or(self.max_delay);
        let delay = chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::MAX);
        AfterFailure::RetryAt(now.checked_add_signed(delay).unwrap_or(DateTime::<Utc>::MAX_UTC))
    }
}

/// A publication: one draft going out on one account at a set time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publication {
    /// Id; the connector's idempotency key.
    pub id: PublicationId,
    /// The draft.
    pub draft: DraftId,
    /// The draft version published (0 until it is frozen at publishing).
    pub draft_version: i64,
    /// The account.
    pub account: PlatformAccountId,
    /// State.
    pub state: PublicationState,
    /// When it is due.
    pub scheduled_at: DateTime<Utc>,
    /// When it went out.
    pub published_at: Option<DateTime<Utc>>,
    /// Who scheduled it.
    pub scheduled_by: UserId,
    /// Connector or manual.
    pub channel: Channel,
    /// Connector name.
    pub connector: String,
    /// The platform's post id.
    pub platform_post_id: String,
    /// The post's URL.
    pub url: String,
    /// Attempts made.
    pub attempt_count: i64,
    /// When the next attempt is due, while retrying.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// Until when a scheduler holds it.
    pub lease_until: Option<DateTime<Utc>>,
    /// The last error.
    pub last_error: String,
    /// Approvers in stage order, frozen when it goes out.
    pub approvers: Vec<UserId>,
    /// Proofreaders, frozen when it goes out.
    pub proofreaders: Vec<UserId>,
    /// Evidence (JSON) of a manual publication or retraction.
    pub evidence: String,
    /// Why it was cancelled or retracted.
    pub withdrawal_reason: String,
    /// Who cancelled or retracted it (empty when none).
    pub withdrawn_by: String,
    /// When.
    pub withdrawn_at: Option<DateTime<Utc>>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Changed.
    pub updated_at: DateTime<Utc>,
    /// Row version (etag and fencing token).
    pub version: i64,
}

impl Publication {
    /// Claimed by a scheduler replica to be sent now: the version of the draft, its
    /// approvers and proofreaders are frozen; the lease keeps other replicas off.
    pub fn claim(
        &mut self,
        draft: &Draft,
        approvers: Vec<UserId>,
        proofreaders: Vec<UserId>,
        now: DateTime<Utc>,
        lease: Duration,
    ) {
        self.state = PublicationState::Publishing;
        self.draft_version = draft.current_version;
        self.approvers = approvers;
        self.proofreaders = proofreaders;
        self.attempt_count += 1;
        self.next_attempt_at = None;
        self.lease_until = Some(now + chrono::Duration::from_std(lease).unwrap_or_default());
        self.updated_at = now;
        self.version += 1;
    }

    /// Not sent, for good: expired unapproved, or refused (R3.2.1, R2.3.3).
    pub fn give_up(&mut self, state: PublicationState, why: &str, now: DateTime<Utc>) {
        self.state = state;
        self.last_error = why.to_owned();
        self.lease_until = None;
        self.updated_at = now;
        self.version += 1;
    }

    /// Went out through `connector`.
    pub fn published(&mut self, connector: &str, platform_post_id: String, url: String, now: DateTime<Utc>) {
        self.state = PublicationState::Published;
        self.published_at = Some(now);
        self.platform_post_id = platform_post_id;
        self.url = url;
        self.last_error.clear();
        self.connector = connector.to_owned();
        self.lease_until = None;
        self.updated_at = now;
        self.version += 1;
    }

    /// An attempt through `connector` failed: retried at `retry_at`, or failed for good.
    pub fn attempt_failed(
        &mut self,
        connector: &str,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) {
        self.last_error = error.to_owned();
        self.connector = connector.to_owned();
        self.lease_until = None;
        match retry_at {
            Some(at) => self.next_attempt_at = Some(at),
            None => self.state = PublicationState::Failed,
        }
        self.updated_at = now;
        self.version += 1;
    }

    /// Not gone out and not being sent right now (its lease, if any, has run out).
    pub fn is_waiting(&self, now: DateTime<Utc>) -> bool {
        self.state == PublicationState::Scheduled
            || (self.state == PublicationState::Publishing && self.lease_until.is_none_or(|l| l <= now))
    }

    /// Cancelled before it went out (R3.3.1).
    pub fn cancel(&mut self, by: String, reason: &str, now: DateTime<Utc>) -> Result<AuditAction, Error> {
        if !self.is_waiting(now) {
            return Err(Error::rule(
                SCHEDULE_RULE,
                format!("publication/{}", self.id),
                "only a publication that has not gone out and is not being sent right now is cancelled",
            ));
        }
        self.withdraw(PublicationState::Cancelled, by, reason, now);
        Ok(AuditAction::PublicationCancelled)
    }

    /// Scheduled again after it expired or failed, at `when` or now.
    pub fn reschedule(&mut self, when: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Result<AuditAction, Error> {
        if !matches!(self.state, PublicationState::Expired | PublicationState::Failed) {
            return Err(Error::rule(
                SCHEDULE_RULE,
                format!("publication/{}", self.id),
                "only an expired or failed publication is rescheduled",
            ));
        }
        self.state = PublicationState::Scheduled;
        self.scheduled_at = when.map_or(now, |t| t.max(now));
        self.next_attempt_at = None;
        self.lease_until = None;
        self.attempt_count = 0;
        self.last_error.clear();
        self.updated_at = now;
        self.version += 1;
        Ok(AuditAction::PublicationRescheduled)
    }

    /// Taken down after it went out (R3.3.3); `evidence` is the new stored evidence
    /// when it was taken down by hand.
    pub fn retract(
        &mut self,
        by: String,
        reason: &str,
        evidence: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<AuditAction, Error> {
        if self.state != PublicationState::Published {
            return Err(not_published(self.id));
        }
        if let Some(evidence) = evidence {
            self.evidence = evidence;
        }
        self.withdraw(PublicationState::Retracted, by, reason, now);
        Ok(AuditAction::PublicationRetracted)
    }

    /// Cancels or retracts: who, why and when are kept with it (R3.3.3).
    pub fn withdraw(&mut self, state: PublicationState, by: String, reason: &str, now: DateTime<Utc>) {
        self.state = state;
        self.next_attempt_at = None;
        self.withdrawal_reason = reason.to_owned();
        self.withdrawn_by = by;
        self.withdrawn_at = Some(now);
        self.updated_at = now;
        self.version += 1;
    }
}

/// How a publication made by hand went out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManualOutcome {
    /// When it went out.
    pub published_at: DateTime<Utc>,
    /// Where it is.
    pub url: String,
    /// The stored evidence (JSON).
    pub evidence: String,
    /// The approvers of the version, in stage order.
    pub approvers: Vec<UserId>,
    /// Its proofreaders.
    pub proofreaders: Vec<UserId>,
}

impl Publication {
    fn blank(draft: &Draft, account: PlatformAccountId, by: UserId, now: DateTime<Utc>) -> Self {
        Publication {
            id: PublicationId::new(),
            draft: draft.id,
            draft_version: draft.current_version,
            account,
            state: PublicationState::Scheduled,
            scheduled_at: now,
            published_at: None,
            scheduled_by: by,
            channel: Channel::Connector,
            connector: String::new(),
            platform_post_id: String::new(),
            url: String::new(),
            attempt_count: 0,
            next_attempt_at: None,
            lease_until: None,
            last_error: String::new(),
            approvers: vec![],
            proofreaders: vec![],
            evidence: String::new(),
            withdrawal_reason: String::new(),
            withdrawn_by: String::new(),
            withdrawn_at: None,
            created_at: now,
            updated_at: now,
            version: 1,
        }
    }

    /// `draft` scheduled on `account` at `when` (now, if earlier or unset) through
    /// `connector`. A draft goes out only once approved and proofread: the scheduler
    /// checks that at the time; here it must at least be submitted (R3.2.1).
    pub fn schedule(
        draft: &Draft,
        account: PlatformAccountId,
        when: Option<DateTime<Utc>>,
        by: UserId,
        connector: &str,
        now: DateTime<Utc>,
    ) -> Result<Self, Error> {
        check_target(draft, account)?;
        if !matches!(draft.state, DraftState::InReview(_) | DraftState::Approved | DraftState::Published) {
            return Err(Error::rule(
                "R3.2.1",
                format!("draft/{}", draft.id),
                "only a submitted draft is scheduled; it goes out only once approved and proofread",
            ));
        }
        let mut p = Self::blank(draft, account, by, now);
        p.scheduled_at = when.map_or(now, |t| t.max(now));
        p.connector = connector.to_owned();
        Ok(p)
    }

    /// The record of `draft` published by hand on `account` (readiness checked by the
    /// caller against the rules of [`on_due`]).
    pub fn manual(
        draft: &Draft,
        account: PlatformAccountId,
        outcome: ManualOutcome,
        by: UserId,
        now: DateTime<Utc>,
    ) -> Self {
        let mut p = Self::blank(draft, account, by, now);
        p.state = PublicationState::Published;
        p.scheduled_at = outcome.published_at;
        p.published_at = Some(outcome.published_at);
        p.channel = Channel::Manual;
        p.url = outcome.url;
        p.approvers = outcome.approvers;
        p.proofreaders = outcome.proofreaders;
        p.evidence = outcome.evidence;
        p
    }
}

/// A publication goes to one of the draft's target accounts.
pub fn check_target(draft: &Draft, account: PlatformAccountId) -> Result<(), Error> {
    if draft.targets.contains(&account) {
        Ok(())
    } else {
        Err(Error::invalid("platform_account_id", "is not a target account of the draft"))
    }
}

/// A post made by hand is recorded only if it went out after the version was fully
/// approved and proofread (R3.2.1): one made before is not a publication but a breach of
/// the review, and recording it would launder it. `ready_at` is when the last approval
/// or sign-off of the current version was given.
pub fn check_published_after_review(
    draft: DraftId,
    published_at: DateTime<Utc>,
    ready_at: Option<DateTime<Utc>>,
) -> Result<(), Error> {
    match ready_at {
        Some(ready) if published_at >= ready => Ok(()),
        Some(ready) => Err(Error::rule(
            "R3.2.1",
            format!("draft/{draft}"),
            format!(
                "the post went out at {}, before the review of this version was complete at {}: \
                 content is published only after approval and proofreading",
                published_at.to_rfc3339(),
                ready.to_rfc3339()
            ),
        )),
        None => Err(Error::rule("R3.2.1", format!("draft/{draft}"), "the current version has no approval")),
    }
}

/// The refusal to retract something that is not out.
pub fn not_published(id: PublicationId) -> Error {
    Error::rule("R3.3.3", format!("publication/{id}"), "only a published item is retracted")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ready() -> Readiness {
        Readiness { draft: DraftState::Approved, signoffs: 3, required_signoffs: 3, account_active: true }
    }

    #[test]
    fn only_approved_proofread_content_on_an_active_account_goes_out_r3_3_1() {
        assert_eq!(on_due(&ready()), DueVerdict::Publish);
        let in_review = Readiness {
            draft: DraftState::InReview(govmedia_domain::workflow::ReviewStage::PrincipalLeader),
            ..ready()
        };
        assert!(matches!(on_due(&in_review), DueVerdict::Expire(m) if m.starts_with("R3.2.1")));
        let short = Readiness { signoffs: 2, ..ready() };
        assert_eq!(
            on_due(&short),
            DueVerdict::Expire("R3.3.2: 2 of 3 proofreading sign-offs by the scheduled time".into())
        );
        let frozen = Readiness { account_active: false, ..ready() };
        assert!(matches!(on_due(&frozen), DueVerdict::Refuse(m) if m.starts_with("R2.3.3")));
    }

    #[test]
    fn retries_back_off_then_fail() {
        let p =
            RetryPolicy { max_attempts: 3, first_delay: Duration::from_secs(10), max_delay: Duration::from_secs(15) };
        let now = DateTime::<Utc>::UNIX_EPOCH;
        assert_eq!(p.after_failure(1, true, now), AfterFailure::RetryAt(now + chrono::Duration::seconds(10)));
        assert_eq!(p.after_failure(2, true, now), AfterFailure::RetryAt(now + chrono::Duration::seconds(15)));
        assert_eq!(p.after_failure(3, true, now), AfterFailure::Fail);
        assert_eq!(p.after_failure(1, false, now), AfterFailure::Fail, "a refusal is not retried");
    }
}
