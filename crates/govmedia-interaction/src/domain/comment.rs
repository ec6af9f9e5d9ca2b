//! A comment's moderation status and a reply's state, and which moves between them the
//! rules allow (R4.1.1–R4.1.3). Refusals are FAILED_PRECONDITION naming the rule.

use chrono::{DateTime, Utc};
use govmedia_domain::Error;
use govmedia_domain::audit::AuditAction;
use govmedia_domain::ids::{CommentId, PlatformAccountId, PublicationId, ReplyId, UserId};

use super::moderation::{self, Verdict};

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

/// The reply's first state (R4.1.2): pending when the account wants replies approved,
/// and also when screening found something to review in it, so no reply with a review
/// finding goes out unread by a second person.
pub const fn new_reply_state(approval_required: bool, review_findings: usize) -> ReplyState {
    if approval_required || review_findings > 0 { ReplyState::PendingApproval } else { ReplyState::Approved }
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

/// A comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comment {
    /// Id.
    pub id: CommentId,
    /// The account it was made on.
    pub account: PlatformAccountId,
    /// The publication it is under, when known.
    pub publication: Option<PublicationId>,
    /// The platform's post id.
    pub platform_post_id: String,
    /// The platform's comment id.
    pub platform_comment_id: String,
    /// The platform's id of the comment it answers.
    pub parent_platform_comment_id: String,
    /// The author's platform id.
    pub author_platform_id: String,
    /// The author's name.
    pub author_name: String,
    /// The text.
    pub text: String,
    /// When written on the platform.
    pub posted_at: Option<DateTime<Utc>>,
    /// When ingested.
    pub ingested_at: DateTime<Utc>,
    /// When the response clock started.
    pub arrived_at: DateTime<Utc>,
    /// Status.
    pub status: CommentStatus,
    /// Findings on arrival (stored form).
    pub screening_findings: String,
    /// Lexicon version used.
    pub screening_lexicon: i64,
    /// Assigned moderator.
    pub assignee: Option<UserId>,
    /// Tags.
    pub tags: Vec<String>,
    /// First-response target in business minutes.
    pub response_target_minutes: i32,
    /// When a first response is due.
    pub response_due_at: DateTime<Utc>,
    /// When the first response was given.
    pub first_response_at: Option<DateTime<Utc>>,
    /// Who gave it.
    pub first_responder: Option<UserId>,
    /// Version (etag).
    pub version: i64,
}

impl Comment {
    /// No response by the due time: still waiting past it, or answered late.
    pub fn overdue(&self, now: DateTime<Utc>) -> bool {
        match self.first_response_at {
            Some(t) => t > self.response_due_at,
            None => self.status.awaits_response() && now > self.response_due_at,
        }
    }
}

/// A reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// Id.
    pub id: ReplyId,
    /// The comment it answers.
    pub comment: CommentId,
    /// The text.
    pub text: String,
    /// Who wrote it.
    pub author: UserId,
    /// State.
    pub state: ReplyState,
    /// Review findings (stored form).
    pub screening_findings: String,
    /// Who approved or rejected it.
    pub approver: Option<UserId>,
    /// Why rejected.
    pub reject_reason: String,
    /// The platform's id once posted.
    pub platform_reply_id: String,
    /// How it was posted.
    pub channel: Channel,
    /// Evidence of a manual post (stored JSON).
    pub evidence: String,
    /// Written.
    pub created_at: DateTime<Utc>,
    /// Posted.
    pub posted_at: Option<DateTime<Utc>>,
    /// Version.
    pub version: i64,
}

/// One moderation action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionRecord {
    /// The comment.
    pub comment: CommentId,
    /// "hide", "delete", "restore", "flag", "assign", "tag", "dismiss".
    pub action: String,
    /// Why.
    pub reason: String,
    /// The moderator; none when a rule acted.
    pub actor: Option<UserId>,
    /// The rule that acted.
    pub rule_id: String,
    /// How it reached the platform.
    pub channel: Channel,
    /// Evidence of a manual action (stored JSON).
    pub evidence: String,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// One comment of an ingest batch, checked: what the platform told about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingComment {
    /// The platform's comment id.
    pub platform_comment_id: String,
    /// The platform's post id.
    pub platform_post_id: String,
    /// The publication it is under, when known.
    pub publication: Option<PublicationId>,
    /// The platform's id of the comment it answers.
    pub parent: String,
    /// The author's platform id.
    pub author_platform_id: String,
    /// The author's name.
    pub author_name: String,
    /// The text.
    pub text: String,
    /// When written on the platform.
    pub posted_at: Option<DateTime<Utc>>,
}

impl IncomingComment {
    /// When the response clock starts: when the public wrote it, never later than its
    /// arrival here (R4.1.1).
    pub fn arrived_at(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        self.posted_at.map_or(now, |p| p.min(now))
    }
}

/// How a comment arriving is screened and moderated (R4.1.3), and the response target
/// it gets (R4.1.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arrived {
    /// The moderation rules' decision.
    pub verdict: Verdict,
    /// The screening findings (stored form).
    pub screening_findings: String,
    /// The lexicon version screened with.
    pub screening_lexicon: i64,
    /// First-response target in business minutes.
    pub response_target_minutes: i32,
    /// When a first response is due.
    pub response_due_at: DateTime<Utc>,
}

impl Comment {
    /// A comment as it arrives on `account`: landing where the moderation rules put it,
    /// assigned and tagged by them, its response clock running from its arrival.
    pub fn arrive(account: PlatformAccountId, c: &IncomingComment, arrived: Arrived, now: DateTime<Utc>) -> Self {
        Comment {
            id: CommentId::new(),
            account,
            publication: c.publication,
            platform_post_id: c.platform_post_id.clone(),
            platform_comment_id: c.platform_comment_id.clone(),
            parent_platform_comment_id: c.parent.clone(),
            author_platform_id: c.author_platform_id.clone(),
            author_name: c.author_name.clone(),
            text: c.text.clone(),
            posted_at: c.posted_at,
            ingested_at: now,
            arrived_at: c.arrived_at(now),
            status: arrived.verdict.status.into(),
            screening_findings: arrived.screening_findings,
            screening_lexicon: arrived.screening_lexicon,
            assignee: arrived.verdict.assignee.as_deref().and_then(|a| a.parse().ok()),
            tags: arrived.verdict.tags,
            response_target_minutes: arrived.response_target_minutes,
            response_due_at: arrived.response_due_at,
            first_response_at: None,
            first_responder: None,
            version: 1,
        }
    }

    /// What the rules did to it on arrival, as its first moderation actions: hidden or
    /// flagged (with `why`), assigned, tagged.
    pub fn arrival_actions(&self, rule_id: &str, why: &str) -> Vec<ActionRecord> {
        let mut done: Vec<(&str, String)> = Vec::new();
        match self.status {
            CommentStatus::Hidden => done.push(("hide", why.to_owned())),
            CommentStatus::NeedsReview => done.push(("flag", why.to_owned())),
            _ => {}
        }
        if let Some(a) = self.assignee {
            done.push(("assign", a.to_string()));
        }
        done.extend(self.tags.iter().map(|t| ("tag", t.clone())));
        done.into_iter()
            .map(|(action, reason)| ActionRecord {
                comment: self.id,
                action: action.to_owned(),
                reason,
                actor: None,
                rule_id: rule_id.to_owned(),
                channel: Channel::Recorded,
                evidence: String::new(),
                created_at: self.ingested_at,
            })
            .collect()
    }
}

impl From<moderation::Status> for CommentStatus {
    fn from(s: moderation::Status) -> Self {
        match s {
            moderation::Status::Open => Self::Open,
            moderation::Status::NeedsReview => Self::NeedsReview,
            moderation::Status::Hidden => Self::Hidden,
        }
    }
}

impl CommentStatus {
    /// The audit action beyond the arrival itself of a comment landing in this status:
    /// hidden or flagged for review (R4.1.3).
    pub const fn arrival_action(self) -> Option<AuditAction> {
        match self {
            Self::Hidden => Some(AuditAction::CommentHidden),
            Self::NeedsReview => Some(AuditAction::CommentFlagged),
            _ => None,
        }
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
        assert_eq!(new_reply_state(true, 0), ReplyState::PendingApproval);
        assert_eq!(new_reply_state(false, 0), ReplyState::Approved);
        assert_eq!(new_reply_state(false, 1), ReplyState::PendingApproval, "a review finding holds it");
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
