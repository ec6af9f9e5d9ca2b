//! Content plans (R3.1.1, R3.1.2): the calendar of what each department means to
//! publish, why now, where and when. A plan is planned until a draft links to it, then
//! drafted, and published when one of its drafts is; it can be cancelled until then.

use chrono::{DateTime, Utc};
use govmedia_domain::Error;
use govmedia_domain::audit::AuditAction;
use govmedia_domain::ids::{DepartmentId, PlanId, PlatformAccountId, UserId};

/// Where a plan is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanState {
    /// No draft yet.
    Planned,
    /// A draft links to it.
    Drafted,
    /// One of its drafts was published.
    Published,
    /// Cancelled.
    Cancelled,
}

impl PlanState {
    /// Stored form.
    pub const fn as_str(self) -> &'static str {
        match self {
            PlanState::Planned => "planned",
            PlanState::Drafted => "drafted",
            PlanState::Published => "published",
            PlanState::Cancelled => "cancelled",
        }
    }

    /// From the stored form.
    pub fn parse(s: &str) -> Option<Self> {
        [PlanState::Planned, PlanState::Drafted, PlanState::Published, PlanState::Cancelled]
            .into_iter()
            .find(|p| p.as_str() == s)
    }
}

/// Why a topic is planned now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanReason {
    /// A work priority.
    WorkPriority,
    /// A hot topic.
    HotTopic,
    /// A recurring date.
    CalendarDate,
    /// Something else.
    Other,
}

impl PlanReason {
    /// Stored form.
    pub const fn as_str(self) -> &'static str {
        match self {
            PlanReason::WorkPriority => "work_priority",
            PlanReason::HotTopic => "hot_topic",
            PlanReason::CalendarDate => "calendar_date",
            PlanReason::Other => "other",
        }
    }

    /// From the stored form.
    pub fn parse(s: &str) -> Option<Self> {
        [PlanReason::WorkPriority, PlanReason::HotTopic, PlanReason::CalendarDate, PlanReason::Other]
            .into_iter()
            .find(|r| r.as_str() == s)
    }
}

/// Checks that a plan in `state` may still be changed or cancelled.
pub fn check_open(plan: &str, state: PlanState, action: &str) -> Result<(), Error> {
    match state {
        PlanState::Planned | PlanState::Drafted => Ok(()),
        PlanState::Published | PlanState::Cancelled => {
            Err(Error::rule("R3.1.1", format!("plan/{plan}"), format!("a {} plan cannot be {action}", state.as_str())))
        }
    }
}

/// A plan: what a department means to publish, why now, where and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Id.
    pub id: PlanId,
    /// Department.
    pub department: DepartmentId,
    /// Topic.
    pub topic: String,
    /// Why now.
    pub reason: PlanReason,
    /// Details.
    pub reason_detail: String,
    /// Target accounts.
    pub targets: Vec<PlatformAccountId>,
    /// Window start.
    pub window_start: Option<DateTime<Utc>>,
    /// Window end.
    pub window_end: Option<DateTime<Utc>>,
    /// Owner.
    pub owner: UserId,
    /// State.
    pub state: PlanState,
    /// Why cancelled.
    pub cancel_reason: String,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Changed.
    pub updated_at: DateTime<Utc>,
    /// Version (etag).
    pub version: i64,
}

/// When a plan means to publish: start and end, either open.
pub type Window = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);

/// The fields an update may change; `None` leaves one as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlanChanges {
    /// Topic.
    pub topic: Option<String>,
    /// Why now.
    pub reason: Option<PlanReason>,
    /// Details.
    pub reason_detail: Option<String>,
    /// Target accounts.
    pub targets: Option<Vec<PlatformAccountId>>,
    /// The window (start, end).
    pub window: Option<Window>,
    /// Owner.
    pub owner: Option<UserId>,
}

impl Plan {
    /// A new plan, planned.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        department: DepartmentId,
        topic: String,
        reason: PlanReason,
        reason_detail: String,
        targets: Vec<PlatformAccountId>,
        window: Window,
        owner: UserId,
        now: DateTime<Utc>,
    ) -> Self {
        Plan {
            id: PlanId::new(),
            department,
            topic,
            reason,
            reason_detail,
            targets,
            window_start: window.0,
            window_end: window.1,
            owner,
            state: PlanState::Planned,
            cancel_reason: String::new(),
            created_at: now,
            updated_at: now,
            version: 1,
        }
    }

    fn touch(&mut self, now: DateTime<Utc>) {
        self.updated_at = now;
        self.version += 1;
    }

    /// Changes what `changes` names, while the plan is open (R3.1.1).
    pub fn update(&mut self, changes: PlanChanges, now: DateTime<Utc>) -> Result<AuditAction, Error> {
        check_open(&self.id.to_string(), self.state, "changed")?;
        let PlanChanges { topic, reason, reason_detail, targets, window, owner } = changes;
        self.topic = topic.unwrap_or(std::mem::take(&mut self.topic));
        self.reason = reason.unwrap_or(self.reason);
        self.reason_detail = reason_detail.unwrap_or(std::mem::take(&mut self.reason_detail));
        self.targets = targets.unwrap_or(std::mem::take(&mut self.targets));
        if let Some((start, end)) = window {
            (self.window_start, self.window_end) = (start, end);
        }
        self.owner = owner.unwrap_or(self.owner);
        self.touch(now);
        Ok(AuditAction::PlanUpdated)
    }

    /// Cancels an open plan, keeping why (R3.1.1).
    pub fn cancel(&mut self, reason: &str, now: DateTime<Utc>) -> Result<AuditAction, Error> {
        check_open(&self.id.to_string(), self.state, "cancelled")?;
        self.state = PlanState::Cancelled;
        self.cancel_reason = reason.to_owned();
        self.touch(now);
        Ok(AuditAction::PlanCancelled)
    }

    /// A draft links to the plan: planned becomes drafted. `Ok(false)` when nothing
    /// changed (already drafted); refused when the plan is closed.
    pub fn link_draft(&mut self, now: DateTime<Utc>) -> Result<bool, Error> {
        check_open(&self.id.to_string(), self.state, "drafted")?;
        if self.state != PlanState::Planned {
            return Ok(false);
        }
        self.state = PlanState::Drafted;
        self.touch(now);
        Ok(true)
    }

    /// Something of the plan went out: it is published, unless already closed. Returns
    /// whether it changed.
    pub fn mark_published(&mut self, now: DateTime<Utc>) -> bool {
        if !matches!(self.state, PlanState::Planned | PlanState::Drafted) {
            return false;
        }
        self.state = PlanState::Published;
        self.touch(now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_and_cancelled_plans_are_closed() {
        assert!(check_open("p", PlanState::Planned, "cancelled").is_ok());
        assert!(check_open("p", PlanState::Drafted, "changed").is_ok());
        assert!(check_open("p", PlanState::Published, "cancelled").is_err());
        assert!(check_open("p", PlanState::Cancelled, "changed").is_err());
        for s in [PlanState::Planned, PlanState::Drafted, PlanState::Published, PlanState::Cancelled] {
            assert_eq!(PlanState::parse(s.as_str()), Some(s));
        }
    }
}
