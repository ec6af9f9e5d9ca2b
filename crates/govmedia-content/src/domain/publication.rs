//! The rules of publishing (R3.3): when a due publication may go out, what happens after
//! a failed attempt, and the stored names of states and channels.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use chrono::{DateTime, Utc};
use govmedia_domain::workflow::DraftState;
pub use govmedia_domain::workflow::PublicationState;

/// R3.3.1: only approved, proofread content on an active account is published.
pub const PUBLISHING_RULE: &str = "R3.3.1";

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
