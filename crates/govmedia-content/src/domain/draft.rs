//! Drafts (R3.2): the entity, its versions' content, and its transitions. Each
//! transition checks what the state allows, changes the draft, bumps its version once
//! (the store saves it only if nobody else did meanwhile) and names its audit action.
//! The review chain's own rules (who may decide which stage) are in `review`.

use chrono::{DateTime, Utc};
use govmedia_domain::Error;
use govmedia_domain::audit::AuditAction;
use govmedia_domain::error::RuleViolation;
use govmedia_domain::ids::{DepartmentId, DraftId, PlanId, PlatformAccountId, PublicationId, UserId};
use govmedia_domain::personal::{self, PersonalDataKind};
use govmedia_domain::workflow::DraftState;
use serde::{Deserialize, Serialize};

use super::review::{self, CHAIN_RULE};

/// What a media file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaKind {
    /// A picture.
    Image,
    /// A video.
    Video,
    /// A sound recording.
    Audio,
    /// A document.
    Document,
}

/// The form a post takes on one account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum PostFormat {
    /// The platform's default.
    #[default]
    #[serde(rename = "")]
    Unspecified,
    /// A long article.
    Article,
    /// A short post.
    ShortPost,
    /// A video post.
    Video,
    /// A set of images.
    ImageSet,
}

/// A media file a draft uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Media {
    /// What it is.
    pub kind: MediaKind,
    /// Where it is.
    pub uri: String,
    /// SHA-256, hex.
    pub sha256: String,
    /// Caption.
    pub caption: String,
}

/// A per-account variant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Variant {
    /// The account.
    pub platform_account_id: String,
    /// The form.
    #[serde(default)]
    pub format: PostFormat,
    /// Title for this account.
    pub title: String,
    /// Body for this account.
    pub body: String,
}

/// The content of one version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Content {
    /// Title.
    pub title: String,
    /// Body.
    pub body: String,
    /// Summary.
    pub summary: String,
    /// Cover image.
    pub cover: Option<Media>,
    /// Media in order.
    pub media: Vec<Media>,
    /// Per-account variants.
    pub variants: Vec<Variant>,
    /// Byline.
    pub byline: String,
    /// Source of reposted content.
    pub source: String,
}

/// A draft: one piece of content on its way through the review to publication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Draft {
    /// Id.
    pub id: DraftId,
    /// Owning department.
    pub department: DepartmentId,
    /// Author.
    pub author: UserId,
    /// Target accounts.
    pub targets: Vec<PlatformAccountId>,
    /// The plan it realises.
    pub plan: Option<PlanId>,
    /// The publication it corrects.
    pub corrects: Option<PublicationId>,
    /// State.
    pub state: DraftState,
    /// Current version.
    pub current_version: i64,
    /// Review findings of the submitted version (JSON of the wire findings).
    pub screening_findings: String,
    /// Lexicon version used.
    pub screening_lexicon: i64,
    /// When submitted.
    pub submitted_at: Option<DateTime<Utc>>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Changed.
    pub updated_at: DateTime<Utc>,
    /// Row version (etag).
    pub version: i64,
}

impl Content {
    /// Refuses content holding a resident ID number or a bank card number (R7.1.1):
    /// nothing a post may carry, and a draft's versions are kept for ever, so the number
    /// is refused before it is stored, naming where it is (masked). A mobile number may
    /// be a published hotline: screening flags it for review instead.
    pub fn refuse_personal_data(&self) -> Result<(), Error> {
        let mut texts: Vec<(String, &str)> = vec![
            ("content.title".into(), &self.title),
            ("content.body".into(), &self.body),
            ("content.summary".into(), &self.summary),
            ("content.byline".into(), &self.byline),
            ("content.source".into(), &self.source),
        ];
        for (i, v) in self.variants.iter().enumerate() {
            texts.push((format!("content.variants[{i}].title"), &v.title));
            texts.push((format!("content.variants[{i}].body"), &v.body));
        }
        let mut violations = Vec::new();
        for (field, text) in texts {
            for found in personal::find(text) {
                if found.kind == PersonalDataKind::MobileNumber {
                    continue;
                }
                let value: String =
                    text.chars().skip(found.char_start).take(found.char_end - found.char_start).collect();
                violations.push(RuleViolation::new(
                    "R7.1.1",
                    format!("{field}[{}..{}]", found.char_start, found.char_end),
                    format!(
                        "a {} ({}) may not be stored in a draft; remove it",
                        found.kind.as_str().replace('_', " "),
                        found.kind.mask(&value)
                    ),
                ));
            }
        }
        if violations.is_empty() { Ok(()) } else { Err(Error::RuleViolated(violations)) }
    }

    /// How the content looks on `account`: the variant's title and body where it has
    /// them, the draft's otherwise.
    pub fn for_account(&self, account: PlatformAccountId) -> (&str, &str) {
        let id = account.to_string();
        let variant = self.variants.iter().find(|x| x.platform_account_id == id);
        fn pick<'a>(own: Option<&'a str>, base: &'a str) -> &'a str {
            own.filter(|x| !x.is_empty()).unwrap_or(base)
        }
        (pick(variant.map(|x| x.title.as_str()), &self.title), pick(variant.map(|x| x.body.as_str()), &self.body))
    }

    /// How many media files of `kind` it carries (the cover not counted).
    pub fn count(&self, kind: MediaKind) -> usize {
        self.media.iter().filter(|m| m.kind == kind).count()
    }
}

impl Draft {
    /// A new draft, at its first version, being written.
    pub fn new(
        department: DepartmentId,
        author: UserId,
        targets: Vec<PlatformAccountId>,
        plan: Option<PlanId>,
        corrects: Option<PublicationId>,
        now: DateTime<Utc>,
    ) -> Self {
        Draft {
            id: DraftId::new(),
            department,
            author,
            targets,
            plan,
            corrects,
            state: DraftState::Drafting,
            current_version: 1,
            screening_findings: "[]".into(),
            screening_lexicon: 0,
            submitted_at: None,
            created_at: now,
            updated_at: now,
            version: 1,
        }
    }

    fn touch(&mut self, now: DateTime<Utc>) {
        self.updated_at = now;
        self.version += 1;
    }

    /// A new version: allowed while the draft is being written or was sent back; it
    /// restarts the chain (R3.2.2): back to drafting, findings cleared.
    pub fn new_version(
        &mut self,
        targets: Option<Vec<PlatformAccountId>>,
        now: DateTime<Utc>,
    ) -> Result<AuditAction, Error> {
        if !self.state.is_editable() {
            return Err(Error::rule(
                CHAIN_RULE,
                format!("draft/{}", self.id),
                "a draft in review, approved or published is not edited; withdraw it first",
            ));
        }
        self.current_version += 1;
        if let Some(targets) = targets.filter(|t| !t.is_empty()) {
            self.targets = targets;
        }
        self.state = DraftState::Drafting;
        self.screening_findings = "[]".into();
        self.touch(now);
        Ok(AuditAction::DraftVersionSaved)
    }

    /// Submitted for review with the findings of its screening (R3.2.1, R7.1.1).
    pub fn submit(&mut self, findings: String, lexicon: i64, now: DateTime<Utc>) -> Result<AuditAction, Error> {
        self.state = review::submit(&self.review_state(&[]))?;
        self.screening_findings = findings;
        self.screening_lexicon = lexicon;
        self.submitted_at = Some(now);
        self.touch(now);
        Ok(AuditAction::DraftSubmitted)
    }

    /// Taken back from review or from approval to be worked on.
    pub fn withdraw(&mut self, now: DateTime<Utc>) -> Result<AuditAction, Error> {
        if !matches!(self.state, DraftState::InReview(_) | DraftState::Approved) {
            return Err(Error::rule(
                CHAIN_RULE,
                format!("draft/{}", self.id),
                "only a draft in review or approved is withdrawn",
            ));
        }
        self.state = DraftState::Drafting;
        self.touch(now);
        Ok(AuditAction::DraftWithdrawn)
    }

    /// A review decision (R3.2.2, R3.2.3), given the decisions already made; returns
    /// the action and the rule it records.
    pub fn decide(
        &mut self,
        decision: &review::Decision,
        (past, editors): (&[review::PastDecision], &[UserId]),
        now: DateTime<Utc>,
    ) -> Result<(AuditAction, &'static str), Error> {
        let state = review::ReviewState { editors: editors.to_vec(), ..self.review_state(past) };
        self.state = review::decide(&state, decision)?;
        self.touch(now);
        Ok(match decision.outcome {
            review::Outcome::Approved => (AuditAction::DraftApproved, review::CHAIN_RULE),
            review::Outcome::Rejected => (AuditAction::DraftRejected, review::CRITERIA_RULE),
            review::Outcome::ChangesRequested => (AuditAction::DraftChangesRequested, review::CHAIN_RULE),
        })
    }

    /// Something of it went out: published. Returns whether it changed.
    pub fn mark_published(&mut self, now: DateTime<Utc>) -> bool {
        if self.state == DraftState::Published {
            return false;
        }
        self.state = DraftState::Published;
        self.touch(now);
        true
    }

    /// The review state as the review rules take it, with the decisions made so far.
    pub fn review_state(&self, decisions: &[review::PastDecision]) -> review::ReviewState {
        review::ReviewState {
            draft: self.id.to_string(),
            author: self.author,
            editors: Vec::new(),
            state: self.state,
            version: self.current_version,
            decisions: decisions.to_vec(),
        }
    }
}
