//! `DraftService`: drafts and their versions, submission with screening and format
//! checks, the three-stage review and proofreading (R3.2.1–R3.2.3, R3.3.2, R7.1.1).

use std::sync::Arc;

use govmedia_domain::Error;
use govmedia_domain::audit::{AuditAction, AuditRecord, AuditResourceRef};
use govmedia_domain::error::FieldViolation;
use govmedia_domain::ids::{DepartmentId, DraftId, PlanId, PlatformAccountId, PublicationId, ReviewDecisionId, UserId};
use govmedia_domain::page;
use govmedia_domain::permission::Permission;
use govmedia_domain::scope::Resource;
use govmedia_domain::validate::{MAX_REASON_CHARS, Validator};
use govmedia_domain::workflow::{DraftState, ReviewStage};
use govmedia_kit::auth::Principal;
use govmedia_kit::mutation::{Begin, Mutation};
use govmedia_proto::content::v1 as pb;
use govmedia_proto::content::v1::draft_service_server::{DraftService, DraftServiceServer};
use tonic::{Request, Response, Status};

use super::{caller, check_etag, etag, ts};
use crate::domain::format;
use crate::domain::review::{self, Criteria, Decision, Judgement, Outcome, PastDecision};
use crate::store::drafts::{self as store, Content, Draft, Media, SignOff, StoredDecision, Variant};
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

fn media_kind(k: i32) -> &'static str {
    match pb::MediaKind::try_from(k).unwrap_or(pb::MediaKind::Unspecified) {
        pb::MediaKind::Image => "image",
        pb::MediaKind::Video => "video",
        pb::MediaKind::Audio => "audio",
        pb::MediaKind::Document => "document",
        pb::MediaKind::Unspecified => "",
    }
}

fn media_kind_to(k: &str) -> pb::MediaKind {
    match k {
        "image" => pb::MediaKind::Image,
        "video" => pb::MediaKind::Video,
        "audio" => pb::MediaKind::Audio,
        "document" => pb::MediaKind::Document,
        _ => pb::MediaKind::Unspecified,
    }
}

fn media_from(v: &mut Validator, field: &str, m: &pb::MediaReference) -> Media {
    let kind = media_kind(m.kind);
    if kind.is_empty() {
        v.violation(format!("{field}.kind"), "is required: image, video, audio or document");
    }
    let uri = v.required_text(&format!("{field}.uri"), &m.uri, 1000).unwrap_or_default();
    Media { kind: kind.to_owned(), uri, sha256: m.sha256.clone(), caption: m.caption.clone() }
}

fn media_to(m: &Media) -> pb::MediaReference {
    pb::MediaReference {
        kind: media_kind_to(&m.kind) as i32,
        uri: m.uri.clone(),
        sha256: m.sha256.clone(),
        caption: m.caption.clone(),
    }
}

fn format_name(f: i32) -> &'static str {
    match pb::PostFormat::try_from(f).unwrap_or(pb::PostFormat::Unspecified) {
        pb::PostFormat::Article => "article",
        pb::PostFormat::ShortPost => "short_post",
        pb::PostFormat::Video => "video",
        pb::PostFormat::ImageSet => "image_set",
        pb::PostFormat::Unspecified => "",
    }
}

fn format_to(f: &str) -> pb::PostFormat {
    match f {
        "article" => pb::PostFormat::Article,
        "short_post" => pb::PostFormat::ShortPost,
        "video" => pb::PostFormat::Video,
        "image_set" => pb::PostFormat::ImageSet,
        _ => pb::PostFormat::Unspecified,
    }
}

fn content_from(v: &mut Validator, field: &str, c: Option<&pb::DraftContent>) -> Content {
    let Some(c) = c else {
        v.violation(field, "is required");
        return Content::default();
    };
    let title = v.optional_text(&format!("{field}.title"), &c.title, 200).unwrap_or_default();
    let body = v.optional_text(&format!("{field}.body"), &c.body, MAX_BODY).unwrap_or_default();
    if title.is_empty() && body.is_empty() && c.media.is_empty() {
        v.violation(format!("{field}.body"), "a draft needs a title, a body or media");
    }
    Content {
        title,
        body,
        summary: v.optional_text(&format!("{field}.summary"), &c.summary, 500).unwrap_or_default(),
        cover: c.cover_image.as_ref().map(|m| media_from(v, &format!("{field}.cover_image"), m)),
        media: c.media.iter().enumerate().map(|(i, m)| media_from(v, &format!("{field}.media[{i}]"), m)).collect(),
        variants: c
            .variants
            .iter()
            .enumerate()
            .map(|(i, x)| {
                if x.platform_account_id.parse::<PlatformAccountId>().is_err() {
                    v.violation(format!("{field}.variants[{i}].platform_account_id"), "is not an account id");
                }
                Variant {
                    platform_account_id: x.platform_account_id.clone(),
                    format: format_name(x.format).to_owned(),
                    title: x.title.clone(),
                    body: x.body.clone(),
                }
            })
            .collect(),
        byline: v.optional_text(&format!("{field}.byline"), &c.byline, 100).unwrap_or_default(),
        source: v.optional_text(&format!("{field}.source"), &c.source, 200).unwrap_or_default(),
    }
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
                format: format_to(&x.format) as i32,
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

fn to_proto(v: &View, required_passes: usize) -> pb::Draft {
    let (state, stage) = state_to(v.draft.state);
    pb::Draft {
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
        screening_findings: govmedia_kit::screening::decode_findings(&v.draft.screening_findings),
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
    }
}

macro_rules! begin {
    ($self:ident, $caller:ident, $method:literal, $request_id:expr, $request:expr) => {
        match Mutation::begin(
            $self.core.db(),
            $caller.id,
            concat!("/govmedia.content.v1.DraftService/", $method),
            $request_id,
            $request,
            $self.core.now(),
        )
        .await?
        {
            Begin::Replayed(answer) => return Ok(Response::new(answer)),
            Begin::Fresh(m) => m,
        }
    };
}

impl Drafts {
    /// Allowed when the permission covers the draft's department, or every target
    /// account (a reviewer acts only within the scope of their binding, R3.2.2).
    async fn require(
        &self,
        caller: &Principal,
        permission: Permission,
        department: DepartmentId,
        targets: &[PlatformAccountId],
    ) -> Result<(), Error> {
        let checker = self.core.permissions();
        let by_department = checker.check(caller.id, permission, &Resource::department(department)).await?;
        if by_department.allowed {
            return Ok(());
        }
        if !targets.is_empty() {
            let mut all = true;
            for account in targets {
                if !checker
                    .check(caller.id, permission, &Resource::platform_account(*account, Some(department)))
                    .await?
                    .allowed
                {
                    all = false;
                    break;
                }
            }
            if all {
                return Ok(());
            }
        }
        Err(Error::denied(permission, by_department.explanation.clone()))
    }

    async fn view(&self, tx: &mut govmedia_kit::db::Tx, draft: Draft) -> Result<View, Error> {
        let content = store::content(tx, draft.id, draft.current_version).await?;
        let decisions = store::decisions(tx, draft.id).await?;
        let signoffs = store::signoffs(tx, draft.id, draft.current_version).await?;
        Ok(View { draft, content, decisions, signoffs })
    }

    fn record(&self, action: AuditAction, caller: &Principal, d: &Draft, rule: &str, request_id: &str) -> AuditRecord {
        let mut resource = AuditResourceRef::new("draft", d.id);
        resource.department = Some(d.department);
        resource.platform_account = d.targets.first().copied();
        AuditRecord::new(action, caller.actor(), resource, PRODUCER, self.core.now())
            .rule(rule)
            .request(govmedia_kit::telemetry::current_trace_id(), Some(request_id.to_owned()))
            .attr("version", d.current_version)
    }

    /// A review decision: approve, reject or request changes.
    async fn decide(
        &self,
        caller: Principal,
        method: &'static str,
        outcome: Outcome,
        input: DecisionInput<'_>,
        request: &impl prost::Message,
    ) -> Result<pb::Draft, Error> {
        let DecisionInput { request_id, draft_id, version, stage, criteria, comment } = input;
        let mut v = Validator::new();
        let rid = v.request_id(request_id);
        let id: Option<DraftId> = v.id("draft_id", draft_id);
        let stage = stage_from(stage);
        if stage.is_none() {
            v.violation("stage", "is required: the stage being decided");
        }
        if version == 0 {
            v.violation("version", "is required: the version that was read");
        }
        let comment = v.optional_text("comment", comment, MAX_REASON_CHARS).unwrap_or_default();
        v.finish()?;
        let (Some(rid), Some(id), Some(stage)) = (rid, id, stage) else { return Err(Error::internal("validated")) };
        let mut m = match Mutation::begin(self.core.db(), caller.id, method, rid, request, self.core.now()).await? {
            Begin::Replayed(answer) => return Ok(answer),
            Begin::Fresh(m) => m,
        };
        let mut draft = store::get(m.tx(), id, true).await?.ok_or_else(|| Error::not_found("draft", id))?;
        self.require(&caller, stage.permission(), draft.department, &draft.targets).await?;
        let decisions = store::decisions(m.tx(), id).await?;
        let reviewer = UserId::from_uuid(caller.id.as_uuid());
        let decision = Decision {
            reviewer,
            version: i64::from(version),
            stage,
            outcome,
            criteria: criteria_from(criteria),
            comment: comment.clone(),
        };
        let next = review::decide(&store::review_state(&draft, &decisions), &decision)?;
        let now = m.now();
        store::insert_decision(
            m.tx(),
            id,
            &StoredDecision {
                id: ReviewDecisionId::new(),
                decision: PastDecision { version: decision.version, stage, reviewer, outcome },
                criteria: decision.criteria,
                comment: comment.clone(),
                created_at: now,
            },
        )
        .await?;
        let previous = draft.version;
        draft.state = next;
        draft.updated_at = now;
        draft.version += 1;
        store::save(m.tx(), &draft, previous).await?;
        let (action, rule) = match outcome {
            Outcome::Approved => (AuditAction::DraftApproved, review::CHAIN_RULE),
            Outcome::Rejected => (AuditAction::DraftRejected, review::CRITERIA_RULE),
            Outcome::ChangesRequested => (AuditAction::DraftChangesRequested, review::CHAIN_RULE),
        };
        let mut record = self.record(action, &caller, &draft, rule, &rid.to_string()).attr("stage", stage.as_str());
        if !comment.is_empty() {
            record = record.reason(comment);
        }
        m.audit(record);
        let view = self.view(m.tx(), draft).await?;
        let answer = to_proto(&view, self.core.proofreading_passes());
        m.commit(&answer, Some(self.core.relay())).await?;
        Ok(answer)
    }
}

#[tonic::async_trait]
impl DraftService for Drafts {
    async fn create_draft(
        &self,
        request: Request<pb::CreateDraftRequest>,
    ) -> Result<Response<pb::CreateDraftResponse>, Status> {
        let caller = caller(&request)?;
        let req = request.into_inner();
        let mut v = Validator::new();
        let request_id = v.request_id(&req.request_id);
        let department: Option<DepartmentId> = v.id("department_id", &req.department_id);
        if req.target_platform_account_ids.is_empty() {
            v.violation("target_platform_account_ids", "names no account");
        }
        let targets: Vec<PlatformAccountId> = req
            .target_platform_account_ids
            .iter()
            .enumerate()
            .filter_map(|(i, a)| v.id(&format!("target_platform_account_ids[{i}]"), a))
            .collect();
        let plan: Option<PlanId> = v.optional_id("plan_id", &req.plan_id);
        let corrects: Option<PublicationId> = v.optional_id("corrects_publication_id", &req.corrects_publication_id);
        let content = content_from(&mut v, "content", req.content.as_ref());
        v.finish()?;
        let (Some(request_id), Some(department)) = (request_id, department) else {
            return Err(Error::internal("validated").into());
        };
        self.require(&caller, Permission::DraftWrite, department, &targets).await?;
        for account in &targets {
            let facts = self.core.account(*account).await?;
            if facts.closed {
                return Err(Error::rule(
                    "R2.1.1",
                    format!("platform_account/{account}"),
                    "a closed account is not a target",
                )
                .into());
            }
        }
        let mut m = begin!(self, caller, "CreateDraft", request_id, &req);
        if let Some(plan) = plan {
            let mut p = crate::store::plans::lock(m.tx(), plan).await?.ok_or_else(|| Error::not_found("plan", plan))?;
            crate::domain::plan::check_open(&plan.to_string(), p.state, "drafted")?;
            if p.state == crate::domain::plan::PlanState::Planned {
                let previous = p.version;
                p.state = crate::domain::plan::PlanState::Drafted;
                p.updated_at = m.now();
                p.version += 1;
                crate::store::plans::save(m.tx(), &p, previous).await?;
            }
        }
        let now = m.now();
        let author = UserId::from_uuid(caller.id.as_uuid());
        let draft = Draft {
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
        };
        store::insert(m.tx(), &draft).await?;
        store::insert_version(m.tx(), draft.id, 1, &content, author, "first version", now).await?;
        m.audit(
            self.record(AuditAction::DraftCreated, &caller, &draft, "R3.1.1", &request_id.to_string())
                .attr("title", &content.title),
        );
        let view = View { draft, content, decisions: vec![], signoffs: vec![] };
        let answer = pb::CreateDraftResponse { draft: Some(to_proto(&view, self.core.proofreading_passes())) };
        m.commit(&answer, Some(self.core.relay())).await?;
        Ok(Response::new(answer))
    }

    async fn get_draft(&self, request: Request<pb::GetDraftRequest>) -> Result<Response<pb::GetDraftResponse>, Status> {
        let caller = caller(&request)?;
        let mut v = Validator::new();
        let id: Option<DraftId> = v.id("draft_id", &request.get_ref().draft_id);
        v.finish()?;
        let Some(id) = id else { return Err(Error::internal("validated").into()) };
        let mut tx = self.core.db().begin_read().await?;
        let draft = store::get(&mut tx, id, false).await?.ok_or_else(|| Error::not_found("draft", id))?;
        self.require(&caller, Permission::DraftRead, draft.department, &draft.targets).await?;
        let view = self.view(&mut tx, draft).await?;
        Ok(Response::new(pb::GetDraftResponse { draft: Some(to_proto(&view, self.core.proofreading_passes())) }))
    }

    async fn list_drafts(
        &self,
        request: Request<pb::ListDraftsRequest>,
    ) -> Result<Response<pb::ListDraftsResponse>, Status> {
        let caller = caller(&request)?;
        let req = request.into_inner();
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
        self.core.permissions().require(caller.id, Permission::DraftRead, &scope).await?;
        let mut tx = self.core.db().begin_read().await?;
        let drafts =
            store::list(&mut tx, &store::DraftFilter { department, author, state, plan, account }, before, limit)
                .await?;
        let next_page_token = match drafts.last() {
            Some(last) if drafts.len() >= usize::try_from(limit).unwrap_or(usize::MAX) => {
                page::encode_page_token(&last.id)
            }
            _ => String::new(),
        };
        let mut out = Vec::with_capacity(drafts.len());
        for d in drafts {
            let view = self.view(&mut tx, d).await?;
            out.push(to_proto(&view, self.core.proofreading_passes()));
        }
        Ok(Response::new(pb::ListDraftsResponse { drafts: out, next_page_token }))
    }

    async fn update_draft(
        &self,
        request: Request<pb::UpdateDraftRequest>,
    ) -> Result<Response<pb::UpdateDraftResponse>, Status> {
        let caller = caller(&request)?;
        let req = request.into_inner();
        let mut v = Validator::new();
        let request_id = v.request_id(&req.request_id);
        let id: Option<DraftId> = v.id("draft_id", &req.draft_id);
        let content = content_from(&mut v, "content", req.content.as_ref());
        let note = v.optional_text("change_note", &req.change_note, MAX_REASON_CHARS).unwrap_or_default();
        let targets: Vec<PlatformAccountId> = req
            .target_platform_account_ids
            .iter()
            .enumerate()
            .filter_map(|(i, a)| v.id(&format!("target_platform_account_ids[{i}]"), a))
            .collect();
        v.finish()?;
        let (Some(request_id), Some(id)) = (request_id, id) else { return Err(Error::internal("validated").into()) };
        let mut m = begin!(self, caller, "UpdateDraft", request_id, &req);
        let mut draft = store::get(m.tx(), id, true).await?.ok_or_else(|| Error::not_found("draft", id))?;
        self.require(&caller, Permission::DraftWrite, draft.department, &draft.targets).await?;
        check_etag("etag", &req.etag, draft.version, true)?;
        if !draft.state.is_editable() {
            return Err(Error::rule(
                review::CHAIN_RULE,
                format!("draft/{id}"),
                "a draft in review, approved or published is not edited; withdraw it first",
            )
            .into());
        }
        let now = m.now();
        let previous = draft.version;
        draft.current_version += 1;
        if !targets.is_empty() {
            draft.targets = targets;
        }
        // A new version restarts the chain (R3.2.2): back to drafting, findings cleared.
        draft.state = DraftState::Drafting;
        draft.screening_findings = "[]".into();
        draft.updated_at = now;
        draft.version += 1;
        store::save(m.tx(), &draft, previous).await?;
        store::insert_version(
            m.tx(),
            id,
            draft.current_version,
            &content,
            UserId::from_uuid(caller.id.as_uuid()),
            &note,
            now,
        )
        .await?;
        m.audit(self.record(
            AuditAction::DraftVersionSaved,
            &caller,
            &draft,
            review::CHAIN_RULE,
            &request_id.to_string(),
        ));
        let view = self.view(m.tx(), draft).await?;
        let answer = pb::UpdateDraftResponse { draft: Some(to_proto(&view, self.core.proofreading_passes())) };
        m.commit(&answer, Some(self.core.relay())).await?;
        Ok(Response::new(answer))
    }

    async fn list_draft_versions(
        &self,
        request: Request<pb::ListDraftVersionsRequest>,
    ) -> Result<Response<pb::ListDraftVersionsResponse>, Status> {
        let caller = caller(&request)?;
        let req = request.into_inner();
        let mut v = Validator::new();
        let id: Option<DraftId> = v.id("draft_id", &req.draft_id);
        v.finish()?;
        let Some(id) = id else { return Err(Error::internal("validated").into()) };
        let limit = page::page_size(req.page_size, 20, 100)?;
        let before: Option<i64> = page::decode_page_token(&req.page_token)?;
        let mut tx = self.core.db().begin_read().await?;
        let draft = store::get(&mut tx, id, false).await?.ok_or_else(|| Error::not_found("draft", id))?;
        self.require(&caller, Permission::DraftRead, draft.department, &draft.targets).await?;
        let versions = store::versions(&mut tx, id, before, limit).await?;
        let next_page_token = match versions.last() {
            Some(last) if versions.len() >= usize::try_from(limit).unwrap_or(usize::MAX) => {
                page::encode_page_token(&last.version)
            }
            _ => String::new(),
        };
        Ok(Response::new(pb::ListDraftVersionsResponse {
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
            next_page_token,
        }))
    }

    async fn submit_draft(
        &self,
        request: Request<pb::SubmitDraftRequest>,
    ) -> Result<Response<pb::SubmitDraftResponse>, Status> {
        let caller = caller(&request)?;
        let req = request.into_inner();
        let mut v = Validator::new();
        let request_id = v.request_id(&req.request_id);
        let id: Option<DraftId> = v.id("draft_id", &req.draft_id);
        v.finish()?;
        let (Some(request_id), Some(id)) = (request_id, id) else { return Err(Error::internal("validated").into()) };

        // The automatic checks run before the transaction: format rules per target
        // platform, then screening (R3.2.1, R7.1.1).
        let mut read = self.core.db().begin_read().await?;
        let draft = store::get(&mut read, id, false).await?.ok_or_else(|| Error::not_found("draft", id))?;
        self.require(&caller, Permission::DraftWrite, draft.department, &draft.targets).await?;
        check_etag("etag", &req.etag, draft.version, true)?;
        review::submit(&store::review_state(&draft, &[]))?;
        let content = store::content(&mut read, id, draft.current_version).await?;
        drop(read);
        let mut format_violations: Vec<FieldViolation> = Vec::new();
        for (i, account) in draft.targets.iter().enumerate() {
            let facts = self.core.account(*account).await?;
            let variant = content.variants.iter().find(|x| x.platform_account_id == account.to_string());
            let title = variant.map_or(content.title.as_str(), |x| {
                if x.title.is_empty() { content.title.as_str() } else { x.title.as_str() }
            });
            let body = variant.map_or(content.body.as_str(), |x| {
                if x.body.is_empty() { content.body.as_str() } else { x.body.as_str() }
            });
            let shape = format::Shape {
                title_chars: title.chars().count(),
                body_chars: body.chars().count(),
                has_cover: content.cover.is_some(),
                images: content.media.iter().filter(|m| m.kind == "image").count(),
                videos: content.media.iter().filter(|m| m.kind == "video").count(),
            };
            format_violations.extend(format::check(
                facts.platform,
                &shape,
                &format!("content (target {i}, {}).", facts.platform.name()),
            ));
        }
        if !format_violations.is_empty() {
            return Err(Error::InvalidArgument(format_violations).into());
        }
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
        if !blocking.is_empty() {
            // Refused and audited: which text, where, and why.
            let mut m = Mutation::begin_without_key(self.core.db(), self.core.now()).await?;
            let detail: Vec<String> = blocking.iter().map(|f| format!("{} \"{}\"", f.text_key, f.excerpt)).collect();
            m.audit(
                self.record(AuditAction::DraftSubmissionBlocked, &caller, &draft, "R7.1.1", &request_id.to_string())
                    .outcome(govmedia_domain::audit::Outcome::Denied)
                    .attr("findings", detail.join("; ")),
            );
            m.commit(&pb::SubmitDraftResponse::default(), Some(self.core.relay())).await?;
            return Err(govmedia_kit::screening::refusal(&blocking).into());
        }
        let (findings, lexicon) = (screened.findings, screened.lexicon_version);
        let mut m = begin!(self, caller, "SubmitDraft", request_id, &req);
        let mut fresh = store::get(m.tx(), id, true).await?.ok_or_else(|| Error::not_found("draft", id))?;
        check_etag("etag", &req.etag, fresh.version, true)?;
        let next = review::submit(&store::review_state(&fresh, &[]))?;
        let now = m.now();
        let previous = fresh.version;
        fresh.state = next;
        fresh.screening_findings = govmedia_kit::screening::encode_findings(&findings);
        fresh.screening_lexicon = i64::try_from(lexicon).unwrap_or(0);
        fresh.submitted_at = Some(now);
        fresh.updated_at = now;
        fresh.version += 1;
        store::save(m.tx(), &fresh, previous).await?;
        m.audit(
            self.record(AuditAction::DraftSubmitted, &caller, &fresh, "R3.2.1", &request_id.to_string())
                .attr("review_findings", findings.len())
                .attr("lexicon_version", lexicon),
        );
        let view = self.view(m.tx(), fresh).await?;
        let answer = pb::SubmitDraftResponse { draft: Some(to_proto(&view, self.core.proofreading_passes())) };
        m.commit(&answer, Some(self.core.relay())).await?;
        Ok(Response::new(answer))
    }

    async fn withdraw_draft(
        &self,
        request: Request<pb::WithdrawDraftRequest>,
    ) -> Result<Response<pb::WithdrawDraftResponse>, Status> {
        let caller = caller(&request)?;
        let req = request.into_inner();
        let mut v = Validator::new();
        let request_id = v.request_id(&req.request_id);
        let id: Option<DraftId> = v.id("draft_id", &req.draft_id);
        let reason = v.reason("reason", &req.reason);
        v.finish()?;
        let (Some(request_id), Some(id), Some(reason)) = (request_id, id, reason) else {
            return Err(Error::internal("validated").into());
        };
        let mut m = begin!(self, caller, "WithdrawDraft", request_id, &req);
        let mut draft = store::get(m.tx(), id, true).await?.ok_or_else(|| Error::not_found("draft", id))?;
        self.require(&caller, Permission::DraftWrite, draft.department, &draft.targets).await?;
        check_etag("etag", &req.etag, draft.version, false)?;
        if !matches!(draft.state, DraftState::InReview(_) | DraftState::Approved) {
            return Err(Error::rule(
                review::CHAIN_RULE,
                format!("draft/{id}"),
                "only a draft in review or approved is withdrawn",
            )
            .into());
        }
        let previous = draft.version;
        draft.state = DraftState::Drafting;
        draft.updated_at = m.now();
        draft.version += 1;
        store::save(m.tx(), &draft, previous).await?;
        m.audit(
            self.record(AuditAction::DraftWithdrawn, &caller, &draft, review::CHAIN_RULE, &request_id.to_string())
                .reason(reason),
        );
        let view = self.view(m.tx(), draft).await?;
        let answer = pb::WithdrawDraftResponse { draft: Some(to_proto(&view, self.core.proofreading_passes())) };
        m.commit(&answer, Some(self.core.relay())).await?;
        Ok(Response::new(answer))
    }

    async fn approve_draft(
        &self,
        request: Request<pb::ApproveDraftRequest>,
    ) -> Result<Response<pb::ApproveDraftResponse>, Status> {
        let caller = caller(&request)?;
        let req = request.into_inner();
        let draft = self
            .decide(
                caller,
                "/govmedia.content.v1.DraftService/ApproveDraft",
                Outcome::Approved,
                DecisionInput {
                    request_id: &req.request_id,
                    draft_id: &req.draft_id,
                    version: req.version,
                    stage: req.stage,
                    criteria: req.criteria.as_ref(),
                    comment: &req.comment,
                },
                &req,
            )
            .await?;
        Ok(Response::new(pb::ApproveDraftResponse { draft: Some(draft) }))
    }

    async fn reject_draft(
        &self,
        request: Request<pb::RejectDraftRequest>,
    ) -> Result<Response<pb::RejectDraftResponse>, Status> {
        let caller = caller(&request)?;
        let req = request.into_inner();
        let draft = self
            .decide(
                caller,
                "/govmedia.content.v1.DraftService/RejectDraft",
                Outcome::Rejected,
                DecisionInput {
                    request_id: &req.request_id,
                    draft_id: &req.draft_id,
                    version: req.version,
                    stage: req.stage,
                    criteria: req.criteria.as_ref(),
                    comment: &req.reason,
                },
                &req,
            )
            .await?;
        Ok(Response::new(pb::RejectDraftResponse { draft: Some(draft) }))
    }

    async fn request_draft_changes(
        &self,
        request: Request<pb::RequestDraftChangesRequest>,
    ) -> Result<Response<pb::RequestDraftChangesResponse>, Status> {
        let caller = caller(&request)?;
        let req = request.into_inner();
        let draft = self
            .decide(
                caller,
                "/govmedia.content.v1.DraftService/RequestDraftChanges",
                Outcome::ChangesRequested,
                DecisionInput {
                    request_id: &req.request_id,
                    draft_id: &req.draft_id,
                    version: req.version,
                    stage: req.stage,
                    criteria: req.criteria.as_ref(),
                    comment: &req.comment,
                },
                &req,
            )
            .await?;
        Ok(Response::new(pb::RequestDraftChangesResponse { draft: Some(draft) }))
    }

    async fn list_review_queue(
        &self,
        request: Request<pb::ListReviewQueueRequest>,
    ) -> Result<Response<pb::ListReviewQueueResponse>, Status> {
        let caller = caller(&request)?;
        let req = request.into_inner();
        let stage = if req.stage == 0 { None } else { stage_from(req.stage) };
        if req.stage != 0 && stage.is_none() {
            return Err(Error::invalid("stage", "is not a review stage").into());
        }
        let limit = page::page_size(req.page_size, 50, 500)?;
        let reviewer = UserId::from_uuid(caller.id.as_uuid());
        let mut tx = self.core.db().begin_read().await?;
        let candidates = store::in_review(&mut tx, stage, 5_000).await?;
        let mut queue = Vec::new();
        for draft in candidates {
            let DraftState::InReview(at) = draft.state else { continue };
            if draft.author == reviewer
                || self.require(&caller, at.permission(), draft.department, &draft.targets).await.is_err()
            {
                continue;
            }
            let decisions = store::decisions(&mut tx, draft.id).await?;
            if decisions.iter().any(|d| d.decision.version == draft.current_version && d.decision.reviewer == reviewer)
            {
                continue;
            }
            let view = self.view(&mut tx, draft).await?;
            queue.push(to_proto(&view, self.core.proofreading_passes()));
            if queue.len() >= usize::try_from(limit).unwrap_or(usize::MAX) {
                break;
            }
        }
        // The queue is recomputed on every call; it has no further pages to hand out.
        Ok(Response::new(pb::ListReviewQueueResponse { drafts: queue, next_page_token: String::new() }))
    }

    async fn sign_off_proofreading(
        &self,
        request: Request<pb::SignOffProofreadingRequest>,
    ) -> Result<Response<pb::SignOffProofreadingResponse>, Status> {
        let caller = caller(&request)?;
        let req = request.into_inner();
        let mut v = Validator::new();
        let request_id = v.request_id(&req.request_id);
        let id: Option<DraftId> = v.id("draft_id", &req.draft_id);
        if req.version == 0 {
            v.violation("version", "is required: the approved version proofread");
        }
        let note = v.optional_text("note", &req.note, MAX_REASON_CHARS).unwrap_or_default();
        v.finish()?;
        let (Some(request_id), Some(id)) = (request_id, id) else { return Err(Error::internal("validated").into()) };
        let mut m = begin!(self, caller, "SignOffProofreading", request_id, &req);
        let draft = store::get(m.tx(), id, true).await?.ok_or_else(|| Error::not_found("draft", id))?;
        self.require(&caller, Permission::DraftProofread, draft.department, &draft.targets).await?;
        let proofreader = UserId::from_uuid(caller.id.as_uuid());
        let signed: Vec<UserId> =
            store::signoffs(m.tx(), id, draft.current_version).await?.iter().map(|s| s.proofreader).collect();
        review::check_proofreading(&store::review_state(&draft, &[]), i64::from(req.version), proofreader, &signed)?;
        let now = m.now();
        store::insert_signoff(
            m.tx(),
            id,
            &SignOff { version: draft.current_version, proofreader, note, created_at: now },
        )
        .await?;
        m.audit(
            self.record(
                AuditAction::DraftProofread,
                &caller,
                &draft,
                review::PROOFREADING_RULE,
                &request_id.to_string(),
            )
            .attr("pass", signed.len() + 1),
        );
        let view = self.view(m.tx(), draft).await?;
        let answer = pb::SignOffProofreadingResponse { draft: Some(to_proto(&view, self.core.proofreading_passes())) };
        m.commit(&answer, Some(self.core.relay())).await?;
        Ok(Response::new(answer))
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
