//! Feedback on what was published (R3.3.3): an error report, a complaint, a question,
//! public opinion; tracked from open through handling to closed, with what was done.

use chrono::{DateTime, Utc};
use govmedia_domain::Error;
use govmedia_domain::audit::AuditAction;
use govmedia_domain::ids::{DraftId, FeedbackItemId, PlatformAccountId, PublicationId, UserId};

/// The rule feedback serves.
pub const FEEDBACK_RULE: &str = "R3.3.3";

/// What kind of feedback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedbackKind {
    /// Something published is wrong.
    ErrorReport,
    /// A complaint.
    Complaint,
    /// A question.
    Question,
    /// Public opinion about it.
    PublicOpinion,
    /// Something else.
    Other,
}

/// Where an item is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedbackState {
    /// Nobody handles it yet.
    Open,
    /// Someone handles it.
    InProgress,
    /// Done.
    Closed,
}

impl FeedbackKind {
    const ALL: [FeedbackKind; 5] = [
        FeedbackKind::ErrorReport,
        FeedbackKind::Complaint,
        FeedbackKind::Question,
        FeedbackKind::PublicOpinion,
        FeedbackKind::Other,
    ];

    /// Stored form.
    pub const fn as_str(self) -> &'static str {
        match self {
            FeedbackKind::ErrorReport => "error_report",
            FeedbackKind::Complaint => "complaint",
            FeedbackKind::Question => "question",
            FeedbackKind::PublicOpinion => "public_opinion",
            FeedbackKind::Other => "other",
        }
    }

    /// From the stored form.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl FeedbackState {
    /// Stored form.
    pub const fn as_str(self) -> &'static str {
        match self {
            FeedbackState::Open => "open",
            FeedbackState::InProgress => "in_progress",
            FeedbackState::Closed => "closed",
        }
    }

    /// From the stored form.
    pub fn parse(s: &str) -> Option<Self> {
        [FeedbackState::Open, FeedbackState::InProgress, FeedbackState::Closed].into_iter().find(|k| k.as_str() == s)
    }
}

/// A feedback item on a publication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedbackItem {
    /// Id.
    pub id: FeedbackItemId,
    /// The publication.
    pub publication: PublicationId,
    /// Its account.
    pub account: PlatformAccountId,
    /// What kind.
    pub kind: FeedbackKind,
    /// What was reported.
    pub description: String,
    /// Where it came from.
    pub source: String,
    /// Where it is.
    pub state: FeedbackState,
    /// Who handles it.
    pub assignee: Option<UserId>,
    /// What was done.
    pub resolution: String,
    /// The correction draft it led to.
    pub correction_draft: Option<DraftId>,
    /// Who recorded it.
    pub created_by: String,
    /// When.
    pub created_at: DateTime<Utc>,
    /// When closed.
    pub closed_at: Option<DateTime<Utc>>,
    /// Row version.
    pub version: i64,
}

impl FeedbackItem {
    /// A new open item.
    pub fn new(
        publication: PublicationId,
        account: PlatformAccountId,
        kind: FeedbackKind,
        description: String,
        source: String,
        created_by: String,
        now: DateTime<Utc>,
    ) -> Self {
        FeedbackItem {
            id: FeedbackItemId::new(),
            publication,
            account,
            kind,
            description,
            source,
            state: FeedbackState::Open,
            assignee: None,
            resolution: String::new(),
            correction_draft: None,
            created_by,
            created_at: now,
            closed_at: None,
            version: 1,
        }
    }

    fn check_open(&self) -> Result<(), Error> {
        if self.state == FeedbackState::Closed {
            return Err(Error::rule(FEEDBACK_RULE, format!("feedback_item/{}", self.id), "the item is closed"));
        }
        Ok(())
    }

    /// Handed to `assignee` (who must be allowed to handle it: checked by the caller).
    pub fn assign(&mut self, assignee: UserId) -> Result<AuditAction, Error> {
        self.check_open()?;
        self.assignee = Some(assignee);
        self.state = FeedbackState::InProgress;
        self.version += 1;
        Ok(AuditAction::FeedbackAssigned)
    }

    /// Closed with what was done and, where it led to one, the correction draft.
    pub fn close(
        &mut self,
        resolution: String,
        correction: Option<DraftId>,
        now: DateTime<Utc>,
    ) -> Result<AuditAction, Error> {
        self.check_open()?;
        self.state = FeedbackState::Closed;
        self.resolution = resolution;
        self.correction_draft = correction;
        self.closed_at = Some(now);
        self.version += 1;
        Ok(AuditAction::FeedbackClosed)
    }
}
