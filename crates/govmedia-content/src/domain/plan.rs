//! Content plans (R3.1.1, R3.1.2): the calendar of what each department means to
//! publish, why now, where and when. A plan is planned until a draft links to it, then
//! drafted, and published when one of its drafts is; it can be cancelled until then.

use govmedia_domain::Error;

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
