//! Drafts, their versions, review decisions and proofreading sign-offs.

use chrono::{DateTime, Utc};
use govmedia_domain::Error;
use govmedia_domain::ids::{DepartmentId, DraftId, PlanId, PlatformAccountId, ReviewDecisionId, UserId};
use govmedia_domain::workflow::{DraftState, ReviewStage};
use govmedia_kit::access::Authorized;
use govmedia_kit::db::{Tx, db_error, get_by_id, is_unique_violation, lock_by_id, saved};
use govmedia_kit::sql;

use super::{id, join_ids, split_ids};
use crate::domain::draft::{Content, Draft};
use crate::domain::review::{Criteria, Judgement, Outcome, PastDecision};

fn state_text(s: DraftState) -> (&'static str, &'static str) {
    match s {
        DraftState::Drafting => ("drafting", ""),
        DraftState::InReview(stage) => ("in_review", stage.as_str()),
        DraftState::ChangesRequested => ("changes_requested", ""),
        DraftState::Rejected => ("rejected", ""),
        DraftState::Approved => ("approved", ""),
        DraftState::Expired => ("expired", ""),
        DraftState::Published => ("published", ""),
        DraftState::Abandoned => ("abandoned", ""),
    }
}

/// The review state of a draft with its decisions, as the review rules take it.
pub fn review_state(d: &Draft, decisions: &[StoredDecision]) -> crate::domain::review::ReviewState {
    d.review_state(&past(decisions))
}

/// The decisions as the review rules take them.
pub fn past(decisions: &[StoredDecision]) -> Vec<PastDecision> {
    decisions.iter().map(|s| s.decision.clone()).collect()
}

/// A stage from its stored name.
pub fn stage_from(s: &str) -> Option<ReviewStage> {
    ReviewStage::CHAIN.into_iter().find(|st| st.as_str() == s)
}

fn state_from(state: &str, stage: &str) -> Option<DraftState> {
    Some(match state {
        "drafting" => DraftState::Drafting,
        "in_review" => DraftState::InReview(stage_from(stage)?),
        "changes_requested" => DraftState::ChangesRequested,
        "rejected" => DraftState::Rejected,
        "approved" => DraftState::Approved,
        "expired" => DraftState::Expired,
        "published" => DraftState::Published,
        "abandoned" => DraftState::Abandoned,
        _ => return None,
    })
}

#[derive(sqlx::FromRow)]
struct DraftRow {
    id: String,
    department_id: String,
    author_user_id: String,
    target_accounts: String,
    plan_id: Option<String>,
    corrects_publication_id: Option<String>,
    state: String,
    review_stage: String,
    current_version: i64,
    screening_findings: String,
    screening_lexicon: i64,
    submitted_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    version: i64,
}

impl TryFrom<DraftRow> for Draft {
    type Error = Error;

    fn try_from(r: DraftRow) -> Result<Self, Error> {
        Ok(Draft {
            id: id("drafts.id", &r.id)?,
            department: id("drafts.department_id", &r.department_id)?,
            author: id("drafts.author_user_id", &r.author_user_id)?,
            targets: split_ids("drafts.target_accounts", &r.target_accounts)?,
            plan: r.plan_id.as_deref().map(|p| id("drafts.plan_id", p)).transpose()?,
            corrects: r
                .corrects_publication_id
                .as_deref()
                .map(|p| id("drafts.corrects_publication_id", p))
                .transpose()?,
            state: state_from(&r.state, &r.review_stage)
                .ok_or_else(|| Error::internal(format!("bad draft state {}", r.state)))?,
            current_version: r.current_version,
            screening_findings: r.screening_findings,
            screening_lexicon: r.screening_lexicon,
            submitted_at: r.submitted_at,
            created_at: r.created_at,
            updated_at: r.updated_at,
            version: r.version,
        })
    }
}

/// Inserts a draft.
pub async fn insert(tx: &mut Tx, d: &Draft) -> Result<(), Error> {
    let (state, stage) = state_text(d.state);
    sql!(
        tx,
        execute,
        "INSERT INTO drafts (id, department_id, author_user_id, target_accounts, plan_id, corrects_publication_id, \
         state, review_stage, current_version, screening_findings, screening_lexicon, submitted_at, created_at, \
         updated_at, version) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
        d.id.to_string(),
        d.department.to_string(),
        d.author.to_string(),
        join_ids(&d.targets),
        d.plan.map(|p| p.to_string()),
        d.corrects.map(|p| p.to_string()),
        state,
        stage,
        d.current_version,
        &d.screening_findings,
        d.screening_lexicon,
        d.submitted_at,
        d.created_at,
        d.updated_at,
        d.version
    )
    .map_err(db_error)?;
    Ok(())
}

/// Saves a draft changed by one transition (its version bumped once) if nobody else
/// changed it meanwhile; ABORTED otherwise.
pub async fn save(tx: &mut Tx, d: &Draft) -> Result<(), Error> {
    let (state, stage) = state_text(d.state);
    let affected = sql!(
        tx,
        execute,
        "UPDATE drafts SET target_accounts = $2, state = $3, review_stage = $4, current_version = $5, \
             screening_findings = $6, screening_lexicon = $7, submitted_at = $8, updated_at = $9, version = $10 \
             WHERE id = $1 AND version = $11",
        d.id.to_string(),
        join_ids(&d.targets),
        state,
        stage,
        d.current_version,
        &d.screening_findings,
        d.screening_lexicon,
        d.submitted_at,
        d.updated_at,
        d.version,
        d.version - 1
    )
    .map_err(db_error)?;
    saved(affected, "draft")
}

/// One draft, as it is now.
pub async fn get(tx: &mut Tx, draft: DraftId) -> Result<Option<Draft>, Error> {
    get_by_id::<DraftRow, _>(tx, "drafts", draft).await
}

/// One draft, locked for a change `grant` allows: the grant must cover the draft's
/// department and targets as they are now (else ABORTED: it moved since the check).
pub async fn lock(tx: &mut Tx, draft: DraftId, grant: &Authorized) -> Result<Draft, Error> {
    let draft: Draft = lock_by_id::<DraftRow, _>(tx, "drafts", "draft", draft, grant).await?;
    grant.ensure_covers(Some(draft.department), &draft.targets)?;
    Ok(draft)
}

/// One draft, locked for a change `grant` allows on one of its target accounts (a
/// publication to that account).
pub async fn lock_target(
    tx: &mut Tx,
    draft: DraftId,
    account: PlatformAccountId,
    grant: &Authorized,
) -> Result<Draft, Error> {
    let draft: Draft = lock_by_id::<DraftRow, _>(tx, "drafts", "draft", draft, grant).await?;
    crate::domain::publication::check_target(&draft, account)?;
    grant.ensure_covers_account(account)?;
    Ok(draft)
}

/// Filters of [`list`].
#[derive(Debug, Clone, Default)]
pub struct DraftFilter {
    /// Department.
    pub department: Option<DepartmentId>,
    /// Author.
    pub author: Option<UserId>,
    /// State name (`in_review`, ...).
    pub state: Option<&'static str>,
    /// Plan.
    pub plan: Option<PlanId>,
    /// Target account.
    pub account: Option<PlatformAccountId>,
}

/// Drafts, newest id first, before the cursor.
pub async fn list(tx: &mut Tx, f: &DraftFilter, before: Option<DraftId>, limit: u32) -> Result<Vec<Draft>, Error> {
    let rows: Vec<DraftRow> = sql!(
        tx,
        fetch_all,
        "SELECT * FROM drafts WHERE ($1 = '' OR department_id = $1) AND ($2 = '' OR author_user_id = $2) AND ($3 = \
         '' OR state = $3) AND ($4 = '' OR plan_id = $4) AND ($5 = '' OR (',' || target_accounts || ',') LIKE $6) \
         AND ($7 = '' OR id < $7) ORDER BY id DESC LIMIT $8",
        f.department.map(|d| d.to_string()).unwrap_or_default(),
        f.author.map(|a| a.to_string()).unwrap_or_default(),
        f.state.unwrap_or(""),
        f.plan.map(|p| p.to_string()).unwrap_or_default(),
        f.account.map(|a| a.to_string()).unwrap_or_default(),
        f.account.map(|a| format!("%,{a},%")).unwrap_or_default(),
        before.map(|b| b.to_string()).unwrap_or_default(),
        i64::from(limit)
    )
    .map_err(db_error)?;
    rows.into_iter().map(Draft::try_from).collect()
}

/// Stores a version's content.
pub async fn insert_version(
    tx: &mut Tx,
    draft: DraftId,
    version: i64,
    content: &Content,
    editor: UserId,
    note: &str,
    at: DateTime<Utc>,
) -> Result<(), Error> {
    let json = serde_json::to_string(content).map_err(Error::internal)?;
    sql!(
        tx,
        execute,
        "INSERT INTO draft_versions (draft_id, version, content, editor_user_id, change_note, created_at) VALUES \
         ($1, $2, $3, $4, $5, $6)",
        draft.to_string(),
        version,
        json,
        editor.to_string(),
        note,
        at
    )
    .map_err(db_error)?;
    Ok(())
}

/// A stored version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    /// Number.
    pub version: i64,
    /// Content.
    pub content: Content,
    /// Editor.
    pub editor: UserId,
    /// Note.
    pub note: String,
    /// When.
    pub created_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct VersionRow {
    version: i64,
    content: String,
    editor_user_id: String,
    change_note: String,
    created_at: DateTime<Utc>,
}

/// Versions of a draft, newest first, below `before`.
pub async fn versions(tx: &mut Tx, draft: DraftId, before: Option<i64>, limit: u32) -> Result<Vec<Version>, Error> {
    let rows: Vec<VersionRow> = sql!(
        tx,
        fetch_all,
        "SELECT version, content, editor_user_id, change_note, created_at FROM draft_versions \
             WHERE draft_id = $1 AND version < $2 ORDER BY version DESC LIMIT $3",
        draft.to_string(),
        before.unwrap_or(i64::MAX),
        i64::from(limit)
    )
    .map_err(db_error)?;
    rows.into_iter()
        .map(|r| {
            Ok(Version {
                version: r.version,
                content: serde_json::from_str(&r.content)
                    .map_err(|e| Error::internal(format!("stored draft content: {e}")))?,
                editor: id("draft_versions.editor_user_id", &r.editor_user_id)?,
                note: r.change_note,
                created_at: r.created_at,
            })
        })
        .collect()
}

/// Everyone who wrote a version of the draft.
pub async fn editors(tx: &mut Tx, draft: DraftId) -> Result<Vec<UserId>, Error> {
    let rows: Vec<String> = sql!(
        tx,
        scalar_all,
        "SELECT DISTINCT editor_user_id FROM draft_versions WHERE draft_id = $1",
        draft.to_string()
    )
    .map_err(db_error)?;
    rows.iter().map(|r| id("draft_versions.editor_user_id", r)).collect()
}

/// The content of one version.
pub async fn content(tx: &mut Tx, draft: DraftId, version: i64) -> Result<Content, Error> {
    versions(tx, draft, Some(version + 1), 1)
        .await?
        .into_iter()
        .find(|v| v.version == version)
        .map(|v| v.content)
        .ok_or_else(|| Error::internal(format!("draft {draft} has no version {version}")))
}

/// A stored decision with its details.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDecision {
    /// Id.
    pub id: ReviewDecisionId,
    /// The rule view.
    pub decision: PastDecision,
    /// Criteria.
    pub criteria: Criteria,
    /// Comment.
    pub comment: String,
    /// When.
    pub created_at: DateTime<Utc>,
}

fn judgement_text(j: Judgement) -> char {
    match j {
        Judgement::Unassessed => '?',
        Judgement::Met => 'y',
        Judgement::NotMet => 'n',
    }
}

fn judgement_from(c: char) -> Judgement {
    match c {
        'y' => Judgement::Met,
        'n' => Judgement::NotMet,
        _ => Judgement::Unassessed,
    }
}

fn outcome_text(o: Outcome) -> &'static str {
    match o {
        Outcome::Approved => "approved",
        Outcome::Rejected => "rejected",
        Outcome::ChangesRequested => "changes_requested",
    }
}

/// Records a decision. The second decision on the same stage of the same version is a
/// conflict (ABORTED): exactly one counts.
pub async fn insert_decision(tx: &mut Tx, draft: DraftId, d: &StoredDecision) -> Result<(), Error> {
    let c = &d.criteria;
    let criteria: String = [c.legality, c.truthfulness, c.objectivity, c.accuracy, c.standardisation]
        .into_iter()
        .map(judgement_text)
        .collect();
    let result = sql!(
        tx,
        execute,
        "INSERT INTO review_decisions (id, draft_id, draft_version, stage, reviewer_user_id, outcome, criteria, \
         comment, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        d.id.to_string(),
        draft.to_string(),
        d.decision.version,
        d.decision.stage.as_str(),
        d.decision.reviewer.to_string(),
        outcome_text(d.decision.outcome),
        criteria,
        &d.comment,
        d.created_at
    );
    match result {
        Ok(_) => Ok(()),
        Err(e) if is_unique_violation(&e) => Err(Error::Conflict("another reviewer decided this stage first".into())),
        Err(e) => Err(db_error(e)),
    }
}

#[derive(sqlx::FromRow)]
struct DecisionRow {
    id: String,
    draft_version: i64,
    stage: String,
    reviewer_user_id: String,
    outcome: String,
    criteria: String,
    comment: String,
    created_at: DateTime<Utc>,
}

/// Every decision on a draft, oldest first.
pub async fn decisions(tx: &mut Tx, draft: DraftId) -> Result<Vec<StoredDecision>, Error> {
    let rows: Vec<DecisionRow> = sql!(
        tx,
        fetch_all,
        "SELECT id, draft_version, stage, reviewer_user_id, outcome, criteria, comment, created_at FROM \
         review_decisions WHERE draft_id = $1 ORDER BY created_at, id",
        draft.to_string()
    )
    .map_err(db_error)?;
    rows.into_iter()
        .map(|r| {
            let j: Vec<Judgement> = r.criteria.chars().map(judgement_from).collect();
            let get = |i: usize| j.get(i).copied().unwrap_or(Judgement::Unassessed);
            Ok(StoredDecision {
                id: id("review_decisions.id", &r.id)?,
                decision: PastDecision {
                    version: r.draft_version,
                    stage: stage_from(&r.stage).ok_or_else(|| Error::internal(format!("bad stage {}", r.stage)))?,
                    reviewer: id("review_decisions.reviewer_user_id", &r.reviewer_user_id)?,
                    outcome: match r.outcome.as_str() {
                        "approved" => Outcome::Approved,
                        "rejected" => Outcome::Rejected,
                        _ => Outcome::ChangesRequested,
                    },
                },
                criteria: Criteria {
                    legality: get(0),
                    truthfulness: get(1),
                    objectivity: get(2),
                    accuracy: get(3),
                    standardisation: get(4),
                },
                comment: r.comment,
                created_at: r.created_at,
            })
        })
        .collect()
}

/// A proofreading pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignOff {
    /// The version.
    pub version: i64,
    /// Who.
    pub proofreader: UserId,
    /// Remarks.
    pub note: String,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// Records a proofreading pass.
pub async fn insert_signoff(tx: &mut Tx, draft: DraftId, s: &SignOff) -> Result<(), Error> {
    sql!(
        tx,
        execute,
        "INSERT INTO proofreading_signoffs (draft_id, draft_version, proofreader_user_id, note, created_at) VALUES \
         ($1, $2, $3, $4, $5)",
        draft.to_string(),
        s.version,
        s.proofreader.to_string(),
        &s.note,
        s.created_at
    )
    .map_err(|e| {
        if is_unique_violation(&e) {
            Error::Conflict("this proofreader already signed this version".into())
        } else {
            db_error(e)
        }
    })?;
    Ok(())
}

/// Proofreading passes of a version.
pub async fn signoffs(tx: &mut Tx, draft: DraftId, version: i64) -> Result<Vec<SignOff>, Error> {
    let rows: Vec<(i64, String, String, DateTime<Utc>)> = sql!(
        tx,
        fetch_all,
        "SELECT draft_version, proofreader_user_id, note, created_at FROM proofreading_signoffs \
             WHERE draft_id = $1 AND draft_version = $2 ORDER BY created_at",
        draft.to_string(),
        version
    )
    .map_err(db_error)?;
    rows.into_iter()
        .map(|(version, p, note, created_at)| {
            Ok(SignOff { version, proofreader: id("proofreading_signoffs.proofreader_user_id", &p)?, note, created_at })
        })
        .collect()
}

/// Drafts in review, oldest submission first (for review queues).
pub async fn in_review(tx: &mut Tx, stage: Option<ReviewStage>, limit: u32) -> Result<Vec<Draft>, Error> {
    let rows: Vec<DraftRow> = sql!(
        tx,
        fetch_all,
        "SELECT * FROM drafts WHERE state = 'in_review' AND ($1 = '' OR review_stage = $1) ORDER BY submitted_at, \
         id LIMIT $2",
        stage.map(ReviewStage::as_str).unwrap_or(""),
        i64::from(limit)
    )
    .map_err(db_error)?;
    rows.into_iter().map(Draft::try_from).collect()
}

/// The state name stored for a state, for filters.
pub fn state_name(s: DraftState) -> &'static str {
    state_text(s).0
}
