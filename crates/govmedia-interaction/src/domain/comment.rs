//! A comment's moderation status and a reply's state, and which moves between them the
//! rules allow (R4.1.1–R4.1.3). Refusals are FAILED_PRECONDITION naming the rule.

use govmedia_domain::Error;
use govmedia_domain::audit::AuditAction;

macro_rules! named {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident => $text:literal,)* }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[$vm])* $variant,)* }

        impl $name {
            /// The stored name.
            pub const fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text,)* }
            }

            /// From the stored name.
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($text => Some(Self::$variant),)* _ => None }
            }
        }
    };
}
pub(crate) use named;

named! {
    /// Where a comment is in moderation.
    CommentStatus {
        /// Visible, waiting for a response.
        Open => "open",
        /// A moderator must look at it.
        NeedsReview => "needs_review",
        /// Hidden by a rule or a moderator.
        Hidden => "hidden",
        /// Deleted; kept for the record.
        Deleted => "deleted",
        /// Replied to.
        Answered => "answered",
        /// Closed without reply.
        Dismissed => "dismissed",
    }
}

named! {
    /// Where a staff reply is.
    ReplyState {
        /// Waiting for a moderator lead.
        PendingApproval => "pending_approval",
        /// Ready to be posted.
        Approved => "approved",
        /// Posted on the platform.
        Posted => "posted",
        /// Rejected by the approver.
        Rejected => "rejected",
    }
}

named! {
    /// How a moderation action or a reply reached the platform.
    Channel {
        /// Only recorded in govmedia.
        Recorded => "recorded",
        /// Through the platform's API.
        PlatformApi => "platform_api",
        /// By hand on the platform, with evidence.
        Manual => "manual",
    }
}

named! {
    /// What a moderator does to one comment.
    ModeratorAction {
        /// Hide it from the public (R4.1.3).
        Hide => "hide",
        /// Delete it, keeping it for the record (R4.1.3).
        Delete => "delete",
        /// Show a hidden comment again (R4.1.3).
        Restore => "restore",
        /// Close it without a reply (R4.1.1).
        Dismiss => "dismiss",
    }
}

impl ModeratorAction {
    /// The audit action it is recorded as.
    pub const fn audit_action(self) -> AuditAction {
        match self {
            Self::Hide => AuditAction::CommentHidden,
            Self::Delete => AuditAction::CommentDeleted,
            Self::Restore => AuditAction::CommentRestored,
            Self::Dismiss => AuditAction::CommentDismissed,
        }
    }

    /// The rule that governs it.
    pub const fn rule(self) -> &'static str {
        match self {
            Self::Dismiss => "R4.1.1",
            Self::Hide | Self::Delete | Self::Restore => "R4.1.3",
        }
    }

    /// Whether it may be done by hand on the platform, with evidence.
    pub const fn takes_evidence(self) -> bool {
        matches!(self, Self::Hide | Self::Delete)
    }

    /// The status a comment `from` moves to, or the rule refusing the move.
    pub fn next(self, comment: &str, from: CommentStatus, responded: bool) -> Result<CommentStatus, Error> {
        match self {
            Self::Hide => hide(comment, from),
            Self::Delete => delete(comment, from),
            Self::Restore => restore(comment, from, responded),
            Self::Dismiss => dismiss(comment, from),
        }
    }

    /// Whether doing it answers the comment (its first response, for the deadline).
    pub const fn responds(self) -> bool {
        matches!(self, Self::Dismiss)
    }
}

impl CommentStatus {
    /// Still waiting for a first response: the statuses the deadline runs for.
    pub const fn awaits_response(self) -> bool {
        matches!(self, Self::Open | Self::NeedsReview)
    }
}

fn refuse(rule: &str, comment: &str, status: CommentStatus, what: &str) -> Error {
    Error::rule(rule, format!("comment/{comment}"), format!("a {} comment cannot be {what}", status.as_str()))
}

/// Hiding: anything not already hidden or deleted (R4.1.3).
pub fn hide(comment: &str, from: CommentStatus) -> Result<CommentStatus, Error> {
    match from {
        CommentStatus::Hidden | CommentStatus::Deleted => Err(refuse("R4.1.3", comment, from, "hidden")),
        _ => Ok(CommentStatus::Hidden),
    }
}

/// Deleting: anything not deleted already (R4.1.3).
pub fn delete(comment: &str, from: CommentStatus) -> Result<CommentStatus, Error> {
    match from {
        CommentStatus::Deleted => Err(refuse("R4.1.3", comment, from, "deleted")),
        _ => Ok(CommentStatus::Deleted),
    }
}

/// Restoring a hidden comment: back to answered when it had a response, else open.
pub fn restore(comment: &str, from: CommentStatus, responded: bool) -> Result<CommentStatus, Error> {
    match from {
        CommentStatus::Hidden if responded => Ok(CommentStatus::Answered),
        CommentStatus::Hidden => Ok(CommentStatus::Open),
        _ => Err(refuse("R4.1.3", comment, from, "restored (only hidden ones are)")),
    }
}

/// Dismissing: only a comment still waiting for a response (R4.1.1).
pub fn dismiss(comment: &str, from: CommentStatus) -> Result<CommentStatus, Error> {
    if from.awaits_response() {
        Ok(CommentStatus::Dismissed)
    } else {
        Err(refuse("R4.1.1", comment, from, "dismissed"))
    }
}

/// Replying: to a visible comment (open, in review or answered before).
pub fn check_replyable(comment: &str, from: CommentStatus) -> Result<(), Error> {
    match from {
        CommentStatus::Open | CommentStatus::NeedsReview | CommentStatus::Answered => Ok(()),
        _ => Err(refuse("R4.1.2", comment, from, "replied to")),
    }
}

/// The reply's first state: pending when the account wants replies approved (R4.1.2).
pub const fn new_reply_state(approval_required: bool) -> ReplyState {
    if approval_required { ReplyState::PendingApproval } else { ReplyState::Approved }
}

/// Approving or rejecting a pending reply; never by its author (R4.1.2).
pub fn decide_reply(
    reply: &str,
    from: ReplyState,
    author: &str,
    approver: &str,
    approve: bool,
) -> Result<ReplyState, Error> {
    if from != ReplyState::PendingApproval {
        return Err(Error::rule(
            "R4.1.2",
            format!("reply/{reply}"),
            format!("a {} reply is not waiting for approval", from.as_str()),
        ));
    }
    if author == approver {
        return Err(Error::rule(
            "R4.1.2",
            format!("reply/{reply}"),
            "the author of a reply cannot approve or reject it",
        ));
    }
    Ok(if approve { ReplyState::Approved } else { ReplyState::Rejected })
}

/// Posting: only an approved reply.
pub fn post_reply(reply: &str, from: ReplyState) -> Result<ReplyState, Error> {
    if from == ReplyState::Approved {
        Ok(ReplyState::Posted)
    } else {
        Err(Error::rule(
            "R4.1.2",
            format!("reply/{reply}"),
            format!("a {} reply cannot be posted: only approved replies go out", from.as_str()),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use CommentStatus as S;

    fn rule_of(e: Error) -> String {
        match e {
            Error::RuleViolated(v) => v[0].rule_id.clone(),
            other => panic!("not a rule violation: {other:?}"),
        }
    }

    #[test]
    fn names_round_trip() {
        for s in [S::Open, S::NeedsReview, S::Hidden, S::Deleted, S::Answered, S::Dismissed] {
            assert_eq!(S::parse(s.as_str()), Some(s));
        }
        assert_eq!(S::parse("gone"), None);
    }

    #[test]
    fn hide_delete_restore_r4_1_3() {
        assert_eq!(hide("c", S::Open).ok(), Some(S::Hidden));
        assert_eq!(rule_of(hide("c", S::Hidden).expect_err("twice")), "R4.1.3");
        assert_eq!(rule_of(hide("c", S::Deleted).expect_err("deleted")), "R4.1.3");
        assert_eq!(delete("c", S::Hidden).ok(), Some(S::Deleted));
        assert!(delete("c", S::Deleted).is_err());
        assert_eq!(restore("c", S::Hidden, false).ok(), Some(S::Open));
        assert_eq!(restore("c", S::Hidden, true).ok(), Some(S::Answered));
        assert!(restore("c", S::Open, false).is_err());
        assert!(restore("c", S::Deleted, false).is_err());
    }

    #[test]
    fn only_waiting_comments_are_dismissed_and_only_visible_ones_answered() {
        assert_eq!(dismiss("c", S::NeedsReview).ok(), Some(S::Dismissed));
        assert_eq!(rule_of(dismiss("c", S::Answered).expect_err("answered")), "R4.1.1");
        assert!(check_replyable("c", S::Answered).is_ok());
        assert_eq!(rule_of(check_replyable("c", S::Hidden).expect_err("hidden")), "R4.1.2");
        assert!(check_replyable("c", S::Deleted).is_err());
    }

    #[test]
    fn a_reply_is_approved_by_someone_else_then_posted_r4_1_2() {
        assert_eq!(new_reply_state(true), ReplyState::PendingApproval);
        assert_eq!(new_reply_state(false), ReplyState::Approved);
        assert_eq!(
            rule_of(decide_reply("r", ReplyState::PendingApproval, "u1", "u1", true).expect_err("own")),
            "R4.1.2"
        );
        assert_eq!(decide_reply("r", ReplyState::PendingApproval, "u1", "u2", true).ok(), Some(ReplyState::Approved));
        assert_eq!(decide_reply("r", ReplyState::PendingApproval, "u1", "u2", false).ok(), Some(ReplyState::Rejected));
        assert!(decide_reply("r", ReplyState::Approved, "u1", "u2", true).is_err());
        assert!(post_reply("r", ReplyState::PendingApproval).is_err());
        assert!(post_reply("r", ReplyState::Rejected).is_err());
        assert_eq!(post_reply("r", ReplyState::Approved).ok(), Some(ReplyState::Posted));
    }
}
