//! Workflow states shared across services: the review chain of R3.2.2 and the states of
//! drafts, publications, comments and referrals as the contract names them. The
//! transition rules of each live in the owning service's domain; what is here is the
//! vocabulary and the facts every service agrees on (the order of the review stages and
//! which permission decides each).

use crate::permission::Permission;

/// The stages of the review chain, in order (R3.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ReviewStage {
    /// Department first review (部门初审).
    Department,
    /// Supervising leader review (分管领导审核).
    SupervisingLeader,
    /// Principal leader approval (主要领导审批).
    PrincipalLeader,
}

impl ReviewStage {
    /// The stages in the order a draft passes them.
    pub const CHAIN: [ReviewStage; 3] =
        [ReviewStage::Department, ReviewStage::SupervisingLeader, ReviewStage::PrincipalLeader];

    /// The stage after this one; `None` after the principal leader's approval.
    pub const fn next(self) -> Option<ReviewStage> {
        match self {
            ReviewStage::Department => Some(ReviewStage::SupervisingLeader),
            ReviewStage::SupervisingLeader => Some(ReviewStage::PrincipalLeader),
            ReviewStage::PrincipalLeader => None,
        }
    }

    /// The permission that decides this stage.
    pub const fn permission(self) -> Permission {
        match self {
            ReviewStage::Department => Permission::DraftReviewDepartment,
            ReviewStage::SupervisingLeader => Permission::DraftReviewSupervising,
            ReviewStage::PrincipalLeader => Permission::DraftApprovePrincipal,
        }
    }

    /// The stable name.
    pub const fn as_str(self) -> &'static str {
        match self {
            ReviewStage::Department => "department",
            ReviewStage::SupervisingLeader => "supervising_leader",
            ReviewStage::PrincipalLeader => "principal_leader",
        }
    }
}

/// Where a draft is (mirrors `govmedia.content.v1.DraftState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DraftState {
    /// Being written.
    Drafting,
    /// In the review chain at a stage.
    InReview(ReviewStage),
    /// Back with the author.
    ChangesRequested,
    /// Rejected.
    Rejected,
    /// Approved by all three stages.
    Approved,
    /// Its scheduled time passed before full approval and proofreading.
    Expired,
    /// Published.
    Published,
    /// Abandoned.
    Abandoned,
}

impl DraftState {
    /// True when the author may save a new version.
    pub const fn is_editable(self) -> bool {
        matches!(self, DraftState::Drafting | DraftState::ChangesRequested | DraftState::Rejected | DraftState::Expired)
    }
}

/// Where a publication is (mirrors `govmedia.content.v1.PublicationState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PublicationState {
    /// Waiting for its time.
    Scheduled,
    /// Being sent.
    Publishing,
    /// On the platform.
    Published,
    /// Every attempt failed.
    Failed,
    /// Not approved in time.
    Expired,
    /// Cancelled before it went out.
    Cancelled,
    /// Taken down.
    Retracted,
}

impl PublicationState {
    /// True when nothing more happens without a person acting.
    pub const fn is_terminal(self) -> bool {
        matches!(
            self,
            PublicationState::Published
                | PublicationState::Failed
                | PublicationState::Expired
                | PublicationState::Cancelled
                | PublicationState::Retracted
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn review_chain_runs_department_supervising_principal_r3_2_2() {
        let mut stage = Some(ReviewStage::CHAIN[0]);
        let mut seen = Vec::new();
        while let Some(s) = stage {
            seen.push(s);
            stage = s.next();
        }
        assert_eq!(seen, ReviewStage::CHAIN);
        assert_eq!(ReviewStage::PrincipalLeader.permission(), Permission::DraftApprovePrincipal);
    }
}
