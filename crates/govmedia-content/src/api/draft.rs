//! `DraftService`: drafts and their versions, submission with screening and format
//! checks, the three-stage review and proofreading (R3.2.1–R3.2.3, R3.3.2, R7.1.1).

use std::sync::Arc;

use govmedia_domain::Error;
use govmedia_domain::audit::{AuditAction, AuditRecord, AuditResourceRef};
use govmedia_domain::error::FieldViolation;
use govmedia_domain::ids::{
    DepartmentId, DraftId, PlanId, PlatformAccountId, PublicationId, RequestId, ReviewDecisionId, UserId,
};
use govmedia_domain::page;
use govmedia_domain::permission::Permission;
use govmedia_domain::scope::Resource;
use govmedia_domain::validate::{MAX_REASON_CHARS, Validator};
use govmedia_domain::workflow::{DraftState, ReviewStage};
use govmedia_kit::access::Authorized;
use govmedia_kit::auth::Principal;
use govmedia_kit::db::Tx;
use govmedia_kit::mutation::Call;
use govmedia_kit::wire::next_page_token;
use govmedia_kit::wire::unpack;
use govmedia_proto::content::v1 as pb;
use govmedia_proto::content::v1::draft_service_server::{DraftService, DraftServiceServer};
use tonic::Request;

use super::{caller, check_etag, etag, ts};
use crate::domain::draft::{Content, Draft, Media, MediaKind, PostFormat, Variant};
use crate::domain::format;
use crate::domain::review::{self, Criteria, Decision, Judgement, Outcome, PastDecision};
use crate::store::drafts::{self as store, SignOff, StoredDecision};
use crate::{Core, PRODUCER};

/// Longest body, in characters (platform limits are checked at submission).
const MAX_BODY: usize = 200_000;

/// The generated server around the handlers.
pub fn server(core: &Arc<Core>) -> DraftServiceServer<Drafts> {
    DraftServiceServer::new(Drafts { core: Arc::clone(core) })
}

/// The handlers.
#[derive(Debug, Clone)]
pub struct Drafts {
    core: Arc<Core>,
}

fn media_kind(v: &mut Validator, field: &str, k: i32) -> Option<MediaKind> {
    match pb::MediaKind::try_from(k) {
        Ok(pb::MediaKind::Image) => Some(MediaKind::Image),
        Ok(pb::MediaKind::Video) => Some(MediaKind::Video),
        Ok(pb::MediaKind::Audio) => Some(MediaKind::Audio),
        Ok(pb::MediaKind::Document) => Some(MediaKind::Document),
        Ok(pb::MediaKind::Unspecified) | Err(_) => {
            v.violation(field, "is required: image, video, audio or document");
            None
        }
    }
}

fn media_kind_to(k: MediaKind) -> pb::MediaKind {
    match k {
        MediaKind::Image => pb::MediaKind::Image,
        MediaKind::Video => pb::MediaKind::Video,
        MediaKind::Audio => pb::MediaKind::Audio,
        MediaKind::Document => pb::MediaKind::Document,
    }
}

fn media_from(v: &mut Validator, field: &str, m: &pb::MediaReference) -> Option<Media> {
    let kind = media_kind(v, &format!("{field}.kind"), m.kind);
    let uri = v.required_text(&format!("{field}.uri"), &m.uri, 1000);
    Some(Media { kind: kind?, uri: uri?, sha256: m.sha256.clone(), caption: m.caption.clone() })
}

fn media_to(m: &Media) -> pb::MediaReference {
    pb::MediaReference {
        kind: media_kind_to(m.kind) as i32,
        uri: m.uri.clone(),
        sha256: m.sha256.clone(),
        caption: m.caption.clone(),
    }
}

fn format_from(v: &mut Validator, field: &str, f: i32) -> PostFormat {
    match pb::PostFormat::try_from(f) {
        Ok(pb::PostFormat::Unspecified) => PostFormat::Unspecified,
        Ok(pb::PostFormat::Article) => PostFormat::Article,
        Ok(pb::PostFormat::ShortPost) => PostFormat::ShortPost,
        Ok(pb::PostFormat::Video) => PostFormat::Video,
        Ok(pb::PostFormat::ImageSet) => PostFormat::ImageSet,
        Err(_) => {
            v.violation(field, "is not a post format");
            PostFormat::Unspecified
        }
    }
}

fn format_to(f: PostFormat) -> pb::PostFormat {
    match f {
        PostFormat::Unspecified => pb::PostFormat::Unspecified,
        PostFormat::Article => pb::PostFormat::Article,
        PostFormat::ShortPost => pb::PostFormat::ShortPost,
        PostFormat::Video => pb::PostFormat::Video,
        PostFormat::ImageSet => pb::PostFormat::ImageSet,
    }
}

fn content_from(v: &mut Validator, field: &str, c: Option<&pb::DraftContent>) -> Option<Content> {
    let Some(c) = c else {
        v.violation(field, "is required");
        return None;
    };
    let title = v.optional_text(&format!("{field}.title"), &c.title, 200);
    let body = v.optional_text(&format!("{field}.body"), &c.body, MAX_BODY);
    if c.title.trim().is_empty() && c.body.trim().is_empty() && c.media.is_empty() {
        v.violation(format!("{field}.body"), "a draft needs a title, a body or media");
    }
    let summary = v.optional_text(&format!("{field}.summary"), &c.summary, 500);
    let cover = c.cover_image.as_ref().map(|m| media_from(v, &format!("{field}.cover_image"), m));
    let media: Vec<Option<Media>> =
        c.media.iter().enumerate().map(|(i, m)| media_from(v, &format!("{field}.media[{i}]"), m)).collect();
    let variants: Vec<Option<Variant>> = c
        .variants
        .iter()
        .enumerate()
        .map(|(i, x)| {
            let account: Option<PlatformAccountId> =
                v.id(&format!("{field}.variants[{i}].platform_account_id"), &x.platform_account_id);
            let format = format_from(v, &format!("{field}.variants[{i}].format"), x.format);
            Some(Variant {
                platform_account_id: account?.to_string(),
                format,
                title: x.title.clone(),
                body: x.body.clone(),
            })
        })
        .collect();
    let byline = v.optional_text(&format!("{field}.byline"), &c.byline, 100);
    let source = v.optional_text(&format!("{field}.source"), &c.source, 200);
    Some(Content {
        title: title?,
        body: body?,
        summary: summary?,
        cover: cover.map(|m| m.ok_or(())).transpose().ok()?,
        media: media.into_iter().collect::<Option<_>>()?,
        variants: variants.into_iter().collect::<Option<_>>()?,
        byline: byline?,
        source: source?,
    })
}

fn content_to(c: &Content) -> pb::DraftContent {
    pb::DraftContent {
        title: c.title.clone(),
        body: c.body.clone(),
        summary: c.summary.clone(),
        cover_image: c.cover.as_ref().map(media_to),
        media: c.media.iter().map(media_to).collect(),
        variants: c
            .variants
            .iter()
            .map(|x| pb::PlatformVariant {
                platform_account_id: x.platform_account_id.clone(),
                format: format_to(x.format) as i32,
                title: x.title.clone(),
                body: x.body.clone(),
            })
            .collect(),
        byline: c.byline.clone(),
        source: c.source.clone(),
    }
}

fn stage_to(s: ReviewStage) -> pb::ReviewStage {
    match s {
        ReviewStage::Department => pb::ReviewStage::Department,
        ReviewStage::SupervisingLeader => pb::ReviewStage::SupervisingLeader,
        ReviewStage::PrincipalLeader => pb::ReviewStage::PrincipalLeader,
    }
}

fn stage_from(s: i32) -> Option<ReviewStage> {
    match pb::ReviewStage::try_from(s).ok()? {
        pb::ReviewStage::Department => Some(ReviewStage::Department),
        pb::ReviewStage::SupervisingLeader => Some(ReviewStage::SupervisingLeader),
        pb::ReviewStage::PrincipalLeader => Some(ReviewStage::PrincipalLeader),
        pb::ReviewStage::Unspecified => None,
    }
}

fn state_to(s: DraftState) -> (pb::DraftState, pb::ReviewStage) {
    match s {
        DraftState::Drafting => (pb::DraftState::Drafting, pb::ReviewStage::Unspecified),
        DraftState::InReview(stage) => (pb::DraftState::InReview, stage_to(stage)),
        DraftState::ChangesRequested => (pb::DraftState::ChangesRequested, pb::ReviewStage::Unspecified),
        DraftState::Rejected => (pb::DraftState::Rejected, pb::ReviewStage::Unspecified),
        DraftState::Approved => (pb::DraftState::Approved, pb::ReviewStage::Unspecified),
        DraftState::Expired => (pb::DraftState::Expired, pb::ReviewStage::Unspecified),
        DraftState::Published => (pb::DraftState::Published, pb::ReviewStage::Unspecified),
        DraftState::Abandoned => (pb::DraftState::Abandoned, pb::ReviewStage::Unspecified),
    }
}

fn criteria_from(c: Option<&pb::ReviewCriteria>) -> Criteria {
    let j = |x: i32| match pb::CriterionResult::try_from(x).unwrap_or(pb::CriterionResult::Unspecified) {
        pb::CriterionResult::Met => Judgement::Met,
        pb::CriterionResult::NotMet => Judgement::NotMet,
        pb::CriterionResult::Unspecified => Judgement::Unassessed,
    };
    let c = c.cloned().unwrap_or_default();
    Criteria {
        legality: j(c.legality),
        truthfulness: j(c.truthfulness),
        objectivity: j(c.objectivity),
        accuracy: j(c.accuracy),
        standardisation: j(c.standardisation),
    }
}

fn criteria_to(c: &Criteria) -> pb::ReviewCriteria {
    let j = |x: Judgement| match x {
        Judgement::Met => pb::CriterionResult::Met,
        Judgement::NotMet => pb::CriterionResult::NotMet,
        Judgement::Unassessed => pb::CriterionResult::Unspecified,
    } as i32;
    pb::ReviewCriteria {
        legality: j(c.legality),
        truthfulness: j(c.truthfulness),
        objectivity: j(c.objectivity),
        accuracy: j(c.accuracy),
        standardisation: j(c.standardisation),
    }
}

/// Everything a draft's answer shows.
struct View {
    draft: Draft,
    content: Content,
    decisions: Vec<StoredDecision>,
    signoffs: Vec<SignOff>,
}

fn to_proto(v: &View, required_passes: usize) -> Result<pb::Draft, Error> {
    let (state, stage) = state_to(v.draft.state);
    Ok(pb::Draft {
        id: v.draft.id.to_string(),
        department_id: v.draft.department.to_string(),
        author_user_id: v.draft.author.to_string(),
        target_platform_account_ids: v.draft.targets.iter().map(ToString::to_string).collect(),
        plan_id: v.draft.plan.map(|p| p.to_string()).unwrap_or_default(),
        corrects_publication_id: v.draft.corrects.map(|p| p.to_string()).unwrap_or_default(),
        state: state as i32,
        review_stage: stage as i32,
        current_version: u32::try_from(v.draft.current_version).unwrap_or(0),
        content: Some(content_to(&v.content)),
        screening_findings: govmedia_kit::screening::decode_findings(&v.draft.screening_findings)?,
        screening_lexicon_version: u64::try_from(v.draft.screening_lexicon).unwrap_or(0),
        decisions: v
            .decisions
            .iter()
            .filter(|d| d.decision.version == v.draft.current_version)
            .map(|d| pb::ReviewDecision {
                id: d.id.to_string(),
                version: u32::try_from(d.decision.version).unwrap_or(0),
                stage: stage_to(d.decision.stage) as i32,
                reviewer_user_id: d.decision.reviewer.to_string(),
                outcome: match d.decision.outcome {
                    Outcome::Approved => pb::ReviewOutcome::Approved,
                    Outcome::Rejected => pb::ReviewOutcome::Rejected,
                    Outcome::ChangesRequested => pb::ReviewOutcome::ChangesRequested,
                } as i32,
                criteria: Some(criteria_to(&d.criteria)),
                comment: d.comment.clone(),
                create_time: Some(ts(d.created_at)),
            })
            .collect(),
        proofreading_sign_offs: v
            .signoffs
            .iter()
            .map(|s| pb::ProofreadingSignOff {
                version: u32::try_from(s.version).unwrap_or(0),
                proofreader_user_id: s.proofreader.to_string(),
                note: s.note.clone(),
                create_time: Some(ts(s.created_at)),
            })
            .collect(),
        required_proofreading_count: u32::try_from(required_passes).unwrap_or(3),
        submit_time: v.draft.submitted_at.map(ts),
        create_time: Some(ts(v.draft.created_at)),
        update_time: Some(ts(v.draft.updated_at)),
        etag: etag(v.draft.version),
    })
}

/// The full gRPC path of a `DraftService` method (the idempotency key's method).
macro_rules! method {
    ($name:literal) => {
        concat!("/govmedia.content.v1.DraftService/", $name)
    };
}

/// A validated `CreateDraft`.
struct CreateDraft {
    request_id: RequestId,
    department: DepartmentId,
    targets: Vec<PlatformAccountId>,
    plan: Option<PlanId>,
    corrects: Option<PublicationId>,
    content: Content,
}

impl TryFrom<&pb::CreateDraftRequest> for CreateDraft {
    type Error = Error;

    fn try_from(req: &pb::CreateDraftRequest) -> Result<Self, Error> {
        let mut v = Validator::new();
        let request_id = v.request_id(&req.request_id);
        let department = v.id("department_id", &req.department_id);
        if req.target_platform_account_ids.is_empty() {
            v.violation("target_platform_account_ids", "names no account");
        }
        let targets = targets(&mut v, &req.target_platform_account_ids);
        let plan = v.optional_id("plan_id", &req.plan_id);
        let corrects = v.optional_id("corrects_publication_id", &req.corrects_publication_id);
        let content = content_from(&mut v, "content", req.content.as_ref());
        v.finish_with(|| {
            Some(CreateDraft {
                request_id: request_id?,
                department: department?,
                targets,
                plan,
                corrects,
                content: content?,
            })
        })
    }
}

fn targets(v: &mut Validator, ids: &[String]) -> Vec<PlatformAccountId> {
    ids.iter().enumerate().filter_map(|(i, a)| v.id(&format!("target_platform_account_ids[{i}]"), a)).collect()
}

/// A validated `UpdateDraft`.
struct UpdateDraft {
    request_id: RequestId,
    draft: DraftId,
    etag: String,
    content: Content,
    note: String,
    targets: Vec<PlatformAccountId>,
}

impl TryFrom<&pb::UpdateDraftRequest> for UpdateDraft {
    type Error = Error;

    fn try_from(req: &pb::UpdateDraftRequest) -> Result<Self, Error> {
        let mut v = Validator::new();
        let request_id = v.request_id(&req.request_id);
        let draft = v.id("draft_id", &req.draft_id);
        let content = content_from(&mut v, "content", req.content.as_ref());
        let note = v.optional_text("change_note", &req.change_note, MAX_REASON_CHARS);
        let targets = targets(&mut v, &req.target_platform_account_ids);
        v.finish_with(|| {
            Some(UpdateDraft {
                request_id: request_id?,
                draft: draft?,
                etag: req.etag.clone(),
                content: content?,
                note: note?,
                targets,
            })
        })
    }
}

/// A validated request that names a draft and carries a request id (submit, withdraw).
struct DraftChange {
    request_id: RequestId,
    draft: DraftId,
    etag: String,
    reason: String,
}

impl DraftChange {
    fn parse(request_id: &str, draft_id: &str, etag: &str, reason: Option<&str>) -> Result<Self, Error> {
        let mut v = Validator::new();
        let rid = v.request_id(request_id);
        let draft = v.id("draft_id", draft_id);
        let reason = match reason {
            Some(r) => v.reason("reason", r),
            None => Some(String::new()),
        };
        v.finish_with(|| Some(DraftChange { request_id: rid?, draft: draft?, etag: etag.to_owned(), reason: reason? }))
    }
}

/// A validated review decision (approve, reject, request changes).
struct Decide {
    request_id: RequestId,
    draft: DraftId,
    version: i64,
    stage: ReviewStage,
    criteria: Criteria,
    comment: String,
}

impl Decide {
    fn parse(input: DecisionInput<'_>) -> Result<Self, Error> {
        let DecisionInput { request_id, draft_id, version, stage, criteria, comment } = input;
        let mut v = Validator::new();
        let rid = v.request_id(request_id);
        let draft = v.id("draft_id", draft_id);
        let stage = stage_from(stage);
        if stage.is_none() {
            v.violation("stage", "is required: the stage being decided");
        }
        if version == 0 {
            v.violation("version", "is required: the version that was read");
        }
        let comment = v.optional_text("comment", comment, MAX_REASON_CHARS);
        v.finish_with(|| {
            Some(Decide {
                request_id: rid?,
                draft: draft?,
                version: i64::from(version),
                stage: stage?,
                criteria: criteria_from(criteria),
                comment: comment?,
            })
        })
    }
}

/// A validated `SignOffProofreading`.
struct SignOffProofreading {
    request_id: RequestId,
    draft: DraftId,
    version: i64,
    note: String,
}

impl TryFrom<&pb::SignOffProofreadingRequest> for SignOffProofreading {
    type Error = Error;

    fn try_from(req: &pb::SignOffProofreadingRequest) -> Result<Self, Error> {
        let mut v = Validator::new();
        let request_id = v.request_id(&req.request_id);
        let draft = v.id("draft_id", &req.draft_id);
        if req.version == 0 {
            v.violation("version", "is required: the approved version proofread");
        }
        let note = v.optional_text("note", &req.note, MAX_REASON_CHARS);
        v.finish_with(|| {
            Some(SignOffProofreading {
                request_id: request_id?,
                draft: draft?,
                version: i64::from(req.version),
                note: note?,
            })
        })
    }
}

/// A draft id alone (reads).
fn draft_id(value: &str) -> Result<DraftId, Error> {
    let mut v = Validator::new();
    let id = v.id("draft_id", value);
    v.finish_with(|| id)
}

impl Drafts {
    /// The authorisation for `permission` on a draft of `department` aimed at `targets`:
    /// by the department, or by every target account (a reviewer acts only within the
    /// scope of their binding, R3.2.2).
    async fn authorize(
        &self,
        caller: &Principal,
        permission: Permission,
        department: DepartmentId,
        targets: &[PlatformAccountId],
    ) -> Result<Authorized, Error> {
        self.core.permissions().authorize_department_or_accounts(caller, permission, department, targets).await
    }

    /// Whether `caller` may read `draft` (GetDraft's check): refusals are `false`, an
    /// identity outage is an error.
    async fn may_read(&self, caller: &Principal, draft: &Draft) -> Result<bool, Error> {
        match self.authorize(caller, Permission::DraftRead, draft.department, &draft.targets).await {
            Ok(_) => Ok(true),
            Err(Error::PermissionDenied { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// A draft as it is now, read without a lock.
    async fn read(&self, id: DraftId) -> Result<Draft, Error> {
        let mut tx = self.core.db().begin_read().await?;
        store::get(&mut tx, id).await?.ok_or_else(|| Error::not_found("draft", id))
    }

    /// A draft and the caller's authorisation for `permission` on it, asked before any
    /// transaction begins.
    async fn read_authorized(
        &self,
        caller: &Principal,
        permission: Permission,
        id: DraftId,
    ) -> Result<(Draft, Authorized), Error> {
        let draft = self.read(id).await?;
        let grant = self.authorize(caller, permission, draft.department, &draft.targets).await?;
        Ok((draft, grant))
    }

    /// Refuses targets that are closed (R2.1.1).
    async fn check_targets(&self, targets: &[PlatformAccountId]) -> Result<(), Error> {
        for account in targets {
            if self.core.account(*account).await?.closed {
                return Err(Error::rule(
                    "R2.1.1",
                    format!("platform_account/{account}"),
                    "a closed account is not a target",
                ));
            }
        }
        Ok(())
    }

    /// A draft realises a plan of its own department (R3.1.1).
    async fn check_plan(&self, plan: Option<PlanId>, department: DepartmentId) -> Result<(), Error> {
        let Some(plan) = plan else { return Ok(()) };
        let mut tx = self.core.db().begin_read().await?;
        let found = crate::store::plans::get(&mut tx, plan).await?.ok_or_else(|| Error::not_found("plan", plan))?;
        if found.department == department {
            Ok(())
        } else {
            Err(Error::rule("R3.1.1", format!("plan/{plan}"), "the plan is another department's"))
        }
    }

    async fn view(&self, tx: &mut Tx, draft: Draft) -> Result<pb::Draft, Error> {
        let content = store::content(tx, draft.id, draft.current_version).await?;
        let decisions = store::decisions(tx, draft.id).await?;
        let signoffs = store::signoffs(tx, draft.id, draft.current_version).await?;
        to_proto(&View { draft, content, decisions, signoffs }, self.core.proofreading_passes())
    }

    fn record(
        &self,
        action: AuditAction,
        caller: &Principal,
        d: &Draft,
        rule: &str,
        request_id: RequestId,
    ) -> AuditRecord {
        let mut resource = AuditResourceRef::new("draft", d.id);
        resource.department = Some(d.department);
        resource.platform_account = d.targets.first().copied();
        AuditRecord::new(action, caller.actor(), resource, PRODUCER, self.core.now())
            .rule(rule)
            .request(govmedia_kit::telemetry::current_trace_id(), Some(request_id.to_string()))
            .attr("version", d.current_version)
    }

    /// The platform format rules of every target (R3.3.1): all violations at once.
    async fn check_formats(&self, draft: &Draft, content: &Content) -> Result<(), Error> {
        let mut violations: Vec<FieldViolation> = Vec::new();
        for (i, account) in draft.targets.iter().enumerate() {
            let facts = self.core.account(*account).await?;
            let (title, body) = content.for_account(*account);
            let shape = format::Shape {
                title_chars: title.chars().count(),
                body_chars: body.chars().count(),
                has_cover: content.cover.is_some(),
                images: content.count(MediaKind::Image),
                videos: content.count(MediaKind::Video),
            };
            violations.extend(format::check(
                facts.platform,
                &shape,
                &format!("content (target {i}, {}).", facts.platform.name()),
            ));
        }
        if violations.is_empty() { Ok(()) } else { Err(Error::InvalidArgument(violations)) }
    }

    /// Screens every text of the version (R7.1.1); a blocking finding refuses the
    /// submission, and the refusal is audited with what was found where.
    async fn screen(
        &self,
        caller: &Principal,
        draft: &Draft,
        content: &Content,
        request_id: RequestId,
    ) -> Result<govmedia_kit::screening::Screened, Error> {
        let mut texts = vec![
            ("title".to_owned(), content.title.clone()),
            ("body".to_owned(), content.body.clone()),
            ("summary".to_owned(), content.summary.clone()),
        ];
        for x in &content.variants {
            texts.push((format!("variant {} title", x.platform_account_id), x.title.clone()));
            texts.push((format!("variant {} body", x.platform_account_id), x.body.clone()));
        }
        let screened = self.core.screen(texts).await?;
        let blocking = screened.blocking();
        if blocking.is_empty() {
            return Ok(screened);
        }
        let detail: Vec<String> = blocking.iter().map(|f| format!("{} \"{}\"", f.text_key, f.excerpt)).collect();
        let record = self
            .record(AuditAction::DraftSubmissionBlocked, caller, draft, "R7.1.1", request_id)
            .outcome(govmedia_domain::audit::Outcome::Denied)
            .attr("findings", detail.join("; "));
        self.core
            .work()
            .run_unkeyed(async |m| {
                m.audit(record);
                Ok(())
            })
            .await?;
        Err(govmedia_kit::screening::refusal(&blocking))
    }

    /// A review decision: approve, reject or request changes.
    async fn decide<Q: DecisionRequest>(
        &self,
        request: Request<Q>,
        method: &'static str,
        outcome: Outcome,
    ) -> Result<pb::Draft, Error> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let cmd = Decide::parse(request.input())?;
        let (_, grant) = self.read_authorized(&caller, cmd.stage.permission(), cmd.draft).await?;
        let reviewer = UserId::from_uuid(caller.id.as_uuid());
        let decision = Decision {
            reviewer,
            version: cmd.version,
            stage: cmd.stage,
            outcome,
            criteria: cmd.criteria,
            comment: cmd.comment.clone(),
        };
        self.core
            .work()
            .run(Call::new(&caller, method, cmd.request_id, &request), async |m| {
                let mut draft = store::lock(m.tx(), cmd.draft, &grant).await?;
                let past = store::past(&store::decisions(m.tx(), cmd.draft).await?);
                let editors = store::editors(m.tx(), cmd.draft).await?;
                let (action, rule) = draft.decide(&decision, (&past, &editors), m.now())?;
                let stored = StoredDecision {
                    id: ReviewDecisionId::new(),
                    decision: PastDecision { version: cmd.version, stage: cmd.stage, reviewer, outcome },
                    criteria: decision.criteria,
                    comment: cmd.comment.clone(),
                    created_at: m.now(),
                };
                store::insert_decision(m.tx(), cmd.draft, &stored).await?;
                store::save(m.tx(), &draft).await?;
                let mut record =
                    self.record(action, &caller, &draft, rule, cmd.request_id).attr("stage", cmd.stage.as_str());
                if !cmd.comment.is_empty() {
                    record = record.reason(cmd.comment.clone());
                }
                m.audit(record);
                self.view(m.tx(), draft).await
            })
            .await
    }
}

#[govmedia_kit::handlers]
impl DraftService for Drafts {
    async fn create_draft(&self, request: Request<pb::CreateDraftRequest>) -> Result<pb::CreateDraftResponse, Error> {
        let (caller, req) = unpack(request)?;
        let cmd = CreateDraft::try_from(&req)?;
        let grant = self.authorize(&caller, Permission::DraftWrite, cmd.department, &cmd.targets).await?;
        cmd.content.refuse_personal_data()?;
        self.check_targets(&cmd.targets).await?;
        self.check_plan(cmd.plan, cmd.department).await?;
        let call = Call::new(&caller, method!("CreateDraft"), cmd.request_id, &req);
        let answer = self.core.work().run(call, async |m| {
            if let Some(plan) = cmd.plan {
                let mut p = crate::store::plans::lock(m.tx(), plan, &grant).await?;
                if p.link_draft(m.now())? {
                    crate::store::plans::save(m.tx(), &p).await?;
                }
            }
            let author = UserId::from_uuid(caller.id.as_uuid());
            let draft = Draft::new(cmd.department, author, cmd.targets, cmd.plan, cmd.corrects, m.now());
            store::insert(m.tx(), &draft).await?;
            let now = m.now();
            store::insert_version(m.tx(), draft.id, 1, &cmd.content, author, "first version", now).await?;
            m.audit(
                self.record(AuditAction::DraftCreated, &caller, &draft, "R3.1.1", cmd.request_id)
                    .attr("title", &cmd.content.title),
            );
            Ok(pb::CreateDraftResponse { draft: Some(self.view(m.tx(), draft).await?) })
        });
        answer.await
    }

    async fn get_draft(&self, request: Request<pb::GetDraftRequest>) -> Result<pb::GetDraftResponse, Error> {
        let caller = caller(&request)?;
        let (draft, _) =
            self.read_authorized(&caller, Permission::DraftRead, draft_id(&request.get_ref().draft_id)?).await?;
        let mut tx = self.core.db().begin_read().await?;
        Ok(pb::GetDraftResponse { draft: Some(self.view(&mut tx, draft).await?) })
    }

    async fn list_drafts(&self, request: Request<pb::ListDraftsRequest>) -> Result<pb::ListDraftsResponse, Error> {
        let (caller, req) = unpack(request)?;
        let mut v = Validator::new();
        let department: Option<DepartmentId> = v.optional_id("department_id", &req.department_id);
        let author: Option<UserId> = v.optional_id("author_user_id", &req.author_user_id);
        let plan: Option<PlanId> = v.optional_id("plan_id", &req.plan_id);
        let account: Option<PlatformAccountId> = v.optional_id("platform_account_id", &req.platform_account_id);
        let state = match pb::DraftState::try_from(req.state) {
            Ok(pb::DraftState::Unspecified) => None,
            Ok(pb::DraftState::Drafting) => Some(store::state_name(DraftState::Drafting)),
            Ok(pb::DraftState::InReview) => Some(store::state_name(DraftState::InReview(ReviewStage::Department))),
            Ok(pb::DraftState::ChangesRequested) => Some(store::state_name(DraftState::ChangesRequested)),
            Ok(pb::DraftState::Rejected) => Some(store::state_name(DraftState::Rejected)),
            Ok(pb::DraftState::Approved) => Some(store::state_name(DraftState::Approved)),
            Ok(pb::DraftState::Expired) => Some(store::state_name(DraftState::Expired)),
            Ok(pb::DraftState::Published) => Some(store::state_name(DraftState::Published)),
            Ok(pb::DraftState::Abandoned) => Some(store::state_name(DraftState::Abandoned)),
            Err(_) => {
                v.violation("state", "is not a draft state");
                None
            }
        };
        v.finish()?;
        let limit = page::page_size(req.page_size, 50, 500)?;
        let before: Option<DraftId> = page::decode_page_token(&req.page_token)?;
        let scope = match (department, account) {
            (Some(d), _) => Resource::department(d),
            (None, Some(a)) => Resource::platform_account(a, None),
            (None, None) => Resource::GLOBAL,
        };
        self.core.permissions().require(&caller, Permission::DraftRead, &scope).await?;
        let mut tx = self.core.db().begin_read().await?;
        let filter = store::DraftFilter { department, author, state, plan, account };
        let drafts = store::list(&mut tx, &filter, before, limit).await?;
        let next_page_token = next_page_token(&drafts, limit, |d| d.id);
        drop(tx);
        let mut readable = Vec::with_capacity(drafts.len());
        for d in drafts {
            // Listed by account (or bureau-wide), a draft may belong to a department the
            // caller cannot read: each one passes GetDraft's own check. Listed by
            // department, the check above covered every row.
            if department.is_some() || self.may_read(&caller, &d).await? {
                readable.push(d);
            }
        }
        let mut tx = self.core.db().begin_read().await?;
        let mut out = Vec::with_capacity(readable.len());
        for d in readable {
            out.push(self.view(&mut tx, d).await?);
        }
        Ok(pb::ListDraftsResponse { drafts: out, next_page_token })
    }

    async fn update_draft(&self, request: Request<pb::UpdateDraftRequest>) -> Result<pb::UpdateDraftResponse, Error> {
        let (caller, req) = unpack(request)?;
        let cmd = UpdateDraft::try_from(&req)?;
        let (current, grant) = self.read_authorized(&caller, Permission::DraftWrite, cmd.draft).await?;
        // New targets are checked as on creation: the caller may write for them, and
        // none is closed. (A lock still needs the grant on the draft as it is.)
        let added: Vec<PlatformAccountId> =
            cmd.targets.iter().filter(|t| !current.targets.contains(t)).copied().collect();
        if !added.is_empty() {
            self.authorize(&caller, Permission::DraftWrite, current.department, &cmd.targets).await?;
            self.check_targets(&added).await?;
        }
        cmd.content.refuse_personal_data()?;
        let call = Call::new(&caller, method!("UpdateDraft"), cmd.request_id, &req);
        let answer = self.core.work().run(call, async |m| {
            let mut draft = store::lock(m.tx(), cmd.draft, &grant).await?;
            check_etag("etag", &cmd.etag, draft.version, true)?;
            let action = draft.new_version(Some(cmd.targets), m.now())?;
            store::save(m.tx(), &draft).await?;
            let editor = UserId::from_uuid(caller.id.as_uuid());
            let now = m.now();
            store::insert_version(m.tx(), draft.id, draft.current_version, &cmd.content, editor, &cmd.note, now)
                .await?;
            m.audit(self.record(action, &caller, &draft, review::CHAIN_RULE, cmd.request_id));
            Ok(pb::UpdateDraftResponse { draft: Some(self.view(m.tx(), draft).await?) })
        });
        answer.await
    }

    async fn list_draft_versions(
        &self,
        request: Request<pb::ListDraftVersionsRequest>,
    ) -> Result<pb::ListDraftVersionsResponse, Error> {
        let (caller, req) = unpack(request)?;
        let id = draft_id(&req.draft_id)?;
        let limit = page::page_size(req.page_size, 20, 100)?;
        let before: Option<i64> = page::decode_page_token(&req.page_token)?;
        self.read_authorized(&caller, Permission::DraftRead, id).await?;
        let mut tx = self.core.db().begin_read().await?;
        let versions = store::versions(&mut tx, id, before, limit).await?;
        Ok(pb::ListDraftVersionsResponse {
            next_page_token: next_page_token(&versions, limit, |x| x.version),
            versions: versions
                .iter()
                .map(|x| pb::DraftVersion {
                    version: u32::try_from(x.version).unwrap_or(0),
                    content: Some(content_to(&x.content)),
                    editor_user_id: x.editor.to_string(),
                    change_note: x.note.clone(),
                    create_time: Some(ts(x.created_at)),
                })
                .collect(),
        })
    }

    async fn submit_draft(&self, request: Request<pb::SubmitDraftRequest>) -> Result<pb::SubmitDraftResponse, Error> {
        let (caller, req) = unpack(request)?;
        let cmd = DraftChange::parse(&req.request_id, &req.draft_id, &req.etag, None)?;
        // The automatic checks run before the transaction: format rules per target
        // platform, then screening (R3.2.1, R7.1.1).
        let (draft, grant) = self.read_authorized(&caller, Permission::DraftWrite, cmd.draft).await?;
        check_etag("etag", &cmd.etag, draft.version, true)?;
        review::submit(&draft.review_state(&[]))?;
        let content = store::content(&mut self.core.db().begin_read().await?, draft.id, draft.current_version).await?;
        self.check_formats(&draft, &content).await?;
        let screened = self.screen(&caller, &draft, &content, cmd.request_id).await?;
        let (findings, lexicon) = (screened.findings, i64::try_from(screened.lexicon_version).unwrap_or(0));
        let call = Call::new(&caller, method!("SubmitDraft"), cmd.request_id, &req);
        let answer = self.core.work().run(call, async |m| {
            let mut draft = store::lock(m.tx(), cmd.draft, &grant).await?;
            check_etag("etag", &cmd.etag, draft.version, true)?;
            let action = draft.submit(govmedia_kit::screening::encode_findings(&findings), lexicon, m.now())?;
            store::save(m.tx(), &draft).await?;
            m.audit(
                self.record(action, &caller, &draft, "R3.2.1", cmd.request_id)
                    .attr("review_findings", findings.len())
                    .attr("lexicon_version", lexicon),
            );
            Ok(pb::SubmitDraftResponse { draft: Some(self.view(m.tx(), draft).await?) })
        });
        answer.await
    }

    async fn withdraw_draft(
        &self,
        request: Request<pb::WithdrawDraftRequest>,
    ) -> Result<pb::WithdrawDraftResponse, Error> {
        let (caller, req) = unpack(request)?;
        let cmd = DraftChange::parse(&req.request_id, &req.draft_id, &req.etag, Some(&req.reason))?;
        let (_, grant) = self.read_authorized(&caller, Permission::DraftWrite, cmd.draft).await?;
        let call = Call::new(&caller, method!("WithdrawDraft"), cmd.request_id, &req);
        let answer = self.core.work().run(call, async |m| {
            let mut draft = store::lock(m.tx(), cmd.draft, &grant).await?;
            check_etag("etag", &cmd.etag, draft.version, false)?;
            let action = draft.withdraw(m.now())?;
            store::save(m.tx(), &draft).await?;
            m.audit(
                self.record(action, &caller, &draft, review::CHAIN_RULE, cmd.request_id).reason(cmd.reason.clone()),
            );
            Ok(pb::WithdrawDraftResponse { draft: Some(self.view(m.tx(), draft).await?) })
        });
        answer.await
    }

    async fn approve_draft(
        &self,
        request: Request<pb::ApproveDraftRequest>,
    ) -> Result<pb::ApproveDraftResponse, Error> {
        let draft = self.decide(request, method!("ApproveDraft"), Outcome::Approved).await?;
        Ok(pb::ApproveDraftResponse { draft: Some(draft) })
    }

    async fn reject_draft(&self, request: Request<pb::RejectDraftRequest>) -> Result<pb::RejectDraftResponse, Error> {
        let draft = self.decide(request, method!("RejectDraft"), Outcome::Rejected).await?;
        Ok(pb::RejectDraftResponse { draft: Some(draft) })
    }

    async fn request_draft_changes(
        &self,
        request: Request<pb::RequestDraftChangesRequest>,
    ) -> Result<pb::RequestDraftChangesResponse, Error> {
        let draft = self.decide(request, method!("RequestDraftChanges"), Outcome::ChangesRequested).await?;
        Ok(pb::RequestDraftChangesResponse { draft: Some(draft) })
    }

    async fn list_review_queue(
        &self,
        request: Request<pb::ListReviewQueueRequest>,
    ) -> Result<pb::ListReviewQueueResponse, Error> {
        let (caller, req) = unpack(request)?;
        let stage = if req.stage == 0 { None } else { stage_from(req.stage) };
        if req.stage != 0 && stage.is_none() {
            return Err(Error::invalid("stage", "is not a review stage"));
        }
        let limit = page::page_size(req.page_size, 50, 500)?;
        let reviewer = UserId::from_uuid(caller.id.as_uuid());
        let mut tx = self.core.db().begin_read().await?;
        let candidates = store::in_review(&mut tx, stage, 5_000).await?;
        let mut queue = Vec::new();
        for draft in candidates {
            let DraftState::InReview(at) = draft.state else { continue };
            if draft.author == reviewer {
                continue;
            }
            // Not the caller's to review: skipped. Identity unreachable: an error, not an
            // empty queue.
            match self.authorize(&caller, at.permission(), draft.department, &draft.targets).await {
                Ok(_) => {}
                Err(Error::PermissionDenied { .. }) => continue,
                Err(other) => return Err(other),
            }
            let decisions = store::decisions(&mut tx, draft.id).await?;
            if decisions.iter().any(|d| d.decision.version == draft.current_version && d.decision.reviewer == reviewer)
            {
                continue;
            }
            queue.push(self.view(&mut tx, draft).await?);
            if queue.len() >= usize::try_from(limit).unwrap_or(usize::MAX) {
                break;
            }
        }
        // The queue is recomputed on every call; it has no further pages to hand out.
        Ok(pb::ListReviewQueueResponse { drafts: queue, next_page_token: String::new() })
    }

    async fn sign_off_proofreading(
        &self,
        request: Request<pb::SignOffProofreadingRequest>,
    ) -> Result<pb::SignOffProofreadingResponse, Error> {
        let (caller, req) = unpack(request)?;
        let cmd = SignOffProofreading::try_from(&req)?;
        let (_, grant) = self.read_authorized(&caller, Permission::DraftProofread, cmd.draft).await?;
        let call = Call::new(&caller, method!("SignOffProofreading"), cmd.request_id, &req);
        let answer = self.core.work().run(call, async |m| {
            let draft = store::lock(m.tx(), cmd.draft, &grant).await?;
            let proofreader = UserId::from_uuid(caller.id.as_uuid());
            let signed: Vec<UserId> =
                store::signoffs(m.tx(), draft.id, draft.current_version).await?.iter().map(|s| s.proofreader).collect();
            review::check_proofreading(&draft.review_state(&[]), cmd.version, proofreader, &signed)?;
            let signoff =
                SignOff { version: draft.current_version, proofreader, note: cmd.note.clone(), created_at: m.now() };
            store::insert_signoff(m.tx(), draft.id, &signoff).await?;
            m.audit(
                self.record(AuditAction::DraftProofread, &caller, &draft, review::PROOFREADING_RULE, cmd.request_id)
                    .attr("pass", signed.len() + 1),
            );
            Ok(pb::SignOffProofreadingResponse { draft: Some(self.view(m.tx(), draft).await?) })
        });
        answer.await
    }
}

/// The fields every review decision request shares (approve, reject, request changes).
struct DecisionInput<'a> {
    request_id: &'a str,
    draft_id: &'a str,
    version: u32,
    stage: i32,
    criteria: Option<&'a pb::ReviewCriteria>,
    comment: &'a str,
}

/// The three review decisions' requests, which carry the same fields.
trait DecisionRequest: prost::Message + Send + 'static {
    fn input(&self) -> DecisionInput<'_>;
}

impl DecisionRequest for pb::ApproveDraftRequest {
    fn input(&self) -> DecisionInput<'_> {
        DecisionInput::new(
            &self.request_id,
            &self.draft_id,
            self.version,
            self.stage,
            self.criteria.as_ref(),
            &self.comment,
        )
    }
}

impl DecisionRequest for pb::RejectDraftRequest {
    fn input(&self) -> DecisionInput<'_> {
        DecisionInput::new(
            &self.request_id,
            &self.draft_id,
            self.version,
            self.stage,
            self.criteria.as_ref(),
            &self.reason,
        )
    }
}

impl DecisionRequest for pb::RequestDraftChangesRequest {
    fn input(&self) -> DecisionInput<'_> {
        DecisionInput::new(
            &self.request_id,
            &self.draft_id,
            self.version,
            self.stage,
            self.criteria.as_ref(),
            &self.comment,
        )
    }
}

impl<'a> DecisionInput<'a> {
    fn new(
        request_id: &'a str,
        draft_id: &'a str,
        version: u32,
        stage: i32,
        criteria: Option<&'a pb::ReviewCriteria>,
        comment: &'a str,
    ) -> Self {
        Self { request_id, draft_id, version, stage, criteria, comment }
    }
}
