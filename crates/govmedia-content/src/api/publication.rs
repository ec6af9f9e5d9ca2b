//! `PublicationService`: scheduling approved drafts on accounts, cancelling and
//! rescheduling, manual publication records, retraction, and feedback tracked to
//! closure (R3.3.1, R3.3.3, R2.3.3). The scheduler (`crate::scheduler`) does the
//! publishing itself.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use govmedia_domain::Error;
use govmedia_domain::audit::{AuditAction, AuditRecord, AuditResourceRef};
use govmedia_domain::ids::{DraftId, FeedbackItemId, PlatformAccountId, PrincipalId, PublicationId, RequestId, UserId};
use govmedia_domain::page;
use govmedia_domain::permission::Permission;
use govmedia_domain::scope::Resource;
use govmedia_domain::validate::{MAX_REASON_CHARS, Validator};
use govmedia_kit::access::{Authorized, Subject};
use govmedia_kit::auth::Principal;
use govmedia_kit::db::Tx;
use govmedia_kit::mutation::Call;
use govmedia_kit::wire::unpack;
use govmedia_kit::wire::{EvidenceRecord, next_page_token, time_range};
use govmedia_proto::common::v1 as cpb;
use govmedia_proto::content::v1 as pb;
use govmedia_proto::content::v1::publication_service_server::{PublicationService, PublicationServiceServer};
use serde::{Deserialize, Serialize};
use tonic::Request;

use super::{caller, check_etag, etag, optional_time, ts};
use crate::connector::ConnectorError;
use crate::domain::draft::Draft;
use crate::domain::feedback::{FEEDBACK_RULE, FeedbackItem, FeedbackKind, FeedbackState};
use crate::domain::publication::{
    Channel, DueVerdict, ManualOutcome, Publication, PublicationState, Readiness, SCHEDULE_RULE,
    check_published_after_review, not_published, on_due,
};
use crate::domain::review::{self, Outcome};
use crate::scheduler::{Connectors, mark_draft_published};
use crate::store::drafts;
use crate::store::feedback::{self, FeedbackFilter};
use crate::store::publications::{self as store, PublicationFilter};
use crate::{AccountFacts, Core, PRODUCER};

/// The generated server around the handlers.
pub fn server(core: &Arc<Core>, connectors: Connectors) -> PublicationServiceServer<Publications> {
    PublicationServiceServer::new(Publications { core: Arc::clone(core), connectors })
}

/// The handlers.
#[derive(Debug, Clone)]
pub struct Publications {
    core: Arc<Core>,
    connectors: Connectors,
}

/// Evidence as stored: of the manual publication, and of a manual retraction.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct StoredEvidence {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    publication: Option<EvidenceRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    retraction: Option<EvidenceRecord>,
}

impl StoredEvidence {
    /// The evidence kept with `p` (none when it has none); a stored value that does not
    /// decode is an error, not "no evidence".
    fn of(p: &Publication) -> Result<Self, Error> {
        if p.evidence.is_empty() {
            return Ok(Self::default());
        }
        serde_json::from_str(&p.evidence)
            .map_err(|e| Error::internal(format!("publication {} evidence does not decode: {e}", p.id)))
    }

    fn to_stored(&self) -> Result<String, Error> {
        serde_json::to_string(self).map_err(Error::internal)
    }
}

fn state_to(s: PublicationState) -> pb::PublicationState {
    match s {
        PublicationState::Scheduled => pb::PublicationState::Scheduled,
        PublicationState::Publishing => pb::PublicationState::Publishing,
        PublicationState::Published => pb::PublicationState::Published,
        PublicationState::Failed => pb::PublicationState::Failed,
        PublicationState::Expired => pb::PublicationState::Expired,
        PublicationState::Cancelled => pb::PublicationState::Cancelled,
        PublicationState::Retracted => pb::PublicationState::Retracted,
    }
}

fn state_from(v: &mut Validator, value: i32) -> Option<PublicationState> {
    match pb::PublicationState::try_from(value) {
        Ok(pb::PublicationState::Unspecified) => None,
        Ok(pb::PublicationState::Scheduled) => Some(PublicationState::Scheduled),
        Ok(pb::PublicationState::Publishing) => Some(PublicationState::Publishing),
        Ok(pb::PublicationState::Published) => Some(PublicationState::Published),
        Ok(pb::PublicationState::Failed) => Some(PublicationState::Failed),
        Ok(pb::PublicationState::Expired) => Some(PublicationState::Expired),
        Ok(pb::PublicationState::Cancelled) => Some(PublicationState::Cancelled),
        Ok(pb::PublicationState::Retracted) => Some(PublicationState::Retracted),
        Err(_) => {
            v.violation("state", "is not a publication state");
            None
        }
    }
}

fn to_proto(p: &Publication, corrections: &[DraftId]) -> Result<pb::Publication, Error> {
    let evidence = StoredEvidence::of(p)?;
    Ok(pb::Publication {
        id: p.id.to_string(),
        draft_id: p.draft.to_string(),
        draft_version: u32::try_from(p.draft_version).unwrap_or(0),
        platform_account_id: p.account.to_string(),
        state: state_to(p.state) as i32,
        scheduled_time: Some(ts(p.scheduled_at)),
        publish_time: p.published_at.map(ts),
        scheduled_by: p.scheduled_by.to_string(),
        channel: match p.channel {
            Channel::Connector => pb::PublicationChannel::Connector,
            Channel::Manual => pb::PublicationChannel::Manual,
        } as i32,
        connector: p.connector.clone(),
        platform_post_id: p.platform_post_id.clone(),
        url: p.url.clone(),
        attempt_count: u32::try_from(p.attempt_count).unwrap_or(0),
        next_attempt_time: p.next_attempt_at.map(ts),
        last_error: p.last_error.clone(),
        approver_user_ids: p.approvers.iter().map(ToString::to_string).collect(),
        proofreader_user_ids: p.proofreaders.iter().map(ToString::to_string).collect(),
        evidence: evidence.retraction.or(evidence.publication).map(|e| e.to_wire()),
        withdrawal_reason: p.withdrawal_reason.clone(),
        withdrawn_by: p.withdrawn_by.clone(),
        withdraw_time: p.withdrawn_at.map(ts),
        correction_draft_ids: corrections.iter().map(ToString::to_string).collect(),
        create_time: Some(ts(p.created_at)),
        update_time: Some(ts(p.updated_at)),
        etag: etag(p.version),
    })
}

fn feedback_kind(v: &mut Validator, k: i32) -> Option<FeedbackKind> {
    match pb::FeedbackKind::try_from(k) {
        Ok(pb::FeedbackKind::ErrorReport) => Some(FeedbackKind::ErrorReport),
        Ok(pb::FeedbackKind::Complaint) => Some(FeedbackKind::Complaint),
        Ok(pb::FeedbackKind::Question) => Some(FeedbackKind::Question),
        Ok(pb::FeedbackKind::PublicOpinion) => Some(FeedbackKind::PublicOpinion),
        Ok(pb::FeedbackKind::Other) => Some(FeedbackKind::Other),
        Ok(pb::FeedbackKind::Unspecified) | Err(_) => {
            v.violation(
                "feedback_item.kind",
                "is required: error report, complaint, question, public opinion or other",
            );
            None
        }
    }
}

fn feedback_to(f: &FeedbackItem) -> pb::FeedbackItem {
    pb::FeedbackItem {
        id: f.id.to_string(),
        publication_id: f.publication.to_string(),
        platform_account_id: f.account.to_string(),
        kind: match f.kind {
            FeedbackKind::ErrorReport => pb::FeedbackKind::ErrorReport,
            FeedbackKind::Complaint => pb::FeedbackKind::Complaint,
            FeedbackKind::Question => pb::FeedbackKind::Question,
            FeedbackKind::PublicOpinion => pb::FeedbackKind::PublicOpinion,
            FeedbackKind::Other => pb::FeedbackKind::Other,
        } as i32,
        description: f.description.clone(),
        source: f.source.clone(),
        state: match f.state {
            FeedbackState::Open => pb::FeedbackState::Open,
            FeedbackState::InProgress => pb::FeedbackState::InProgress,
            FeedbackState::Closed => pb::FeedbackState::Closed,
        } as i32,
        assignee_user_id: f.assignee.map(|a| a.to_string()).unwrap_or_default(),
        resolution: f.resolution.clone(),
        correction_draft_id: f.correction_draft.map(|d| d.to_string()).unwrap_or_default(),
        created_by: f.created_by.clone(),
        create_time: Some(ts(f.created_at)),
        close_time: f.closed_at.map(ts),
        etag: etag(f.version),
    }
}

/// The full gRPC path of a `PublicationService` method (the idempotency key's method).
macro_rules! method {
    ($name:literal) => {
        concat!("/govmedia.content.v1.PublicationService/", $name)
    };
}

/// A validated `SchedulePublication`.
struct Schedule {
    request_id: RequestId,
    draft: DraftId,
    account: PlatformAccountId,
    when: Option<DateTime<Utc>>,
}

impl TryFrom<&pb::SchedulePublicationRequest> for Schedule {
    type Error = Error;

    fn try_from(req: &pb::SchedulePublicationRequest) -> Result<Self, Error> {
        let mut v = Validator::new();
        let request_id = v.request_id(&req.request_id);
        let draft = v.id("draft_id", &req.draft_id);
        let account = v.id("platform_account_id", &req.platform_account_id);
        let when = optional_time(&mut v, "scheduled_time", req.scheduled_time.as_ref());
        v.finish_with(|| Some(Schedule { request_id: request_id?, draft: draft?, account: account?, when }))
    }
}

/// A validated change of one publication (cancel, reschedule, retract).
struct PublicationChange {
    request_id: RequestId,
    publication: PublicationId,
    etag: String,
    reason: String,
    when: Option<DateTime<Utc>>,
    manual: Option<EvidenceRecord>,
}

impl PublicationChange {
    fn parse(
        request_id: &str,
        publication: &str,
        etag: &str,
        reason: Option<&str>,
        when: Option<&prost_types::Timestamp>,
        manual: Option<&cpb::Evidence>,
    ) -> Result<Self, Error> {
        let mut v = Validator::new();
        let rid = v.request_id(request_id);
        let id = v.id("publication_id", publication);
        let reason = reason.map_or(Some(String::new()), |r| v.reason("reason", r));
        let when = optional_time(&mut v, "scheduled_time", when);
        let manual = manual.map(|e| EvidenceRecord::from_wire(&mut v, "manual_evidence", e));
        v.finish_with(|| {
            Some(PublicationChange {
                request_id: rid?,
                publication: id?,
                etag: etag.to_owned(),
                reason: reason?,
                when,
                manual,
            })
        })
    }
}

/// A validated `RecordManualPublication`.
struct RecordManual {
    request_id: RequestId,
    draft: DraftId,
    account: PlatformAccountId,
    published_at: DateTime<Utc>,
    url: String,
    evidence: EvidenceRecord,
}

impl RecordManual {
    fn parse(req: &pb::RecordManualPublicationRequest, now: DateTime<Utc>) -> Result<Self, Error> {
        let mut v = Validator::new();
        let request_id = v.request_id(&req.request_id);
        let draft = v.id("draft_id", &req.draft_id);
        let account = v.id("platform_account_id", &req.platform_account_id);
        let published_at = optional_time(&mut v, "publish_time", req.publish_time.as_ref());
        if req.publish_time.is_none() {
            v.violation("publish_time", "is required");
        }
        if published_at.is_some_and(|t| t > now + chrono::Duration::minutes(5)) {
            v.violation("publish_time", "is in the future");
        }
        let url = v.required_text("url", &req.url, 2000);
        if url.as_deref().is_some_and(|u| !(u.starts_with("https://") || u.starts_with("http://"))) {
            v.violation("url", "must be the post's http(s) address");
        }
        let evidence = req.evidence.as_ref().map(|e| EvidenceRecord::from_wire(&mut v, "evidence", e));
        if evidence.is_none() {
            v.violation("evidence", "is required: a screenshot or the platform's receipt");
        }
        v.finish_with(|| {
            Some(RecordManual {
                request_id: request_id?,
                draft: draft?,
                account: account?,
                published_at: published_at?,
                url: url?,
                evidence: evidence?,
            })
        })
    }
}

/// A validated `CreateFeedbackItem`.
struct CreateFeedback {
    request_id: RequestId,
    publication: PublicationId,
    kind: FeedbackKind,
    description: String,
    source: String,
}

impl TryFrom<&pb::CreateFeedbackItemRequest> for CreateFeedback {
    type Error = Error;

    fn try_from(req: &pb::CreateFeedbackItemRequest) -> Result<Self, Error> {
        let mut v = Validator::new();
        let request_id = v.request_id(&req.request_id);
        let item = req.feedback_item.clone().unwrap_or_default();
        if req.feedback_item.is_none() {
            v.violation("feedback_item", "is required");
        }
        let publication = v.id("feedback_item.publication_id", &item.publication_id);
        let kind = feedback_kind(&mut v, item.kind);
        let description = v.required_text("feedback_item.description", &item.description, 4000);
        let source = v.optional_text("feedback_item.source", &item.source, 500);
        v.finish_with(|| {
            Some(CreateFeedback {
                request_id: request_id?,
                publication: publication?,
                kind: kind?,
                description: description?,
                source: source?,
            })
        })
    }
}

/// A validated change of one feedback item (assign, close).
struct FeedbackChange {
    request_id: RequestId,
    item: FeedbackItemId,
    etag: String,
    assignee: Option<UserId>,
    resolution: String,
    correction: Option<DraftId>,
}

impl FeedbackChange {
    fn assign(req: &pb::AssignFeedbackItemRequest) -> Result<Self, Error> {
        let mut v = Validator::new();
        let request_id = v.request_id(&req.request_id);
        let item = v.id("feedback_item_id", &req.feedback_item_id);
        let assignee = v.id("assignee_user_id", &req.assignee_user_id);
        v.finish_with(|| {
            Some(FeedbackChange {
                request_id: request_id?,
                item: item?,
                etag: req.etag.clone(),
                assignee: Some(assignee?),
                resolution: String::new(),
                correction: None,
            })
        })
    }

    fn close(req: &pb::CloseFeedbackItemRequest) -> Result<Self, Error> {
        let mut v = Validator::new();
        let request_id = v.request_id(&req.request_id);
        let item = v.id("feedback_item_id", &req.feedback_item_id);
        let resolution = v.required_text("resolution", &req.resolution, MAX_REASON_CHARS);
        let correction = v.optional_id("correction_draft_id", &req.correction_draft_id);
        v.finish_with(|| {
            Some(FeedbackChange {
                request_id: request_id?,
                item: item?,
                etag: req.etag.clone(),
                assignee: None,
                resolution: resolution?,
                correction,
            })
        })
    }
}

impl Publications {
    /// The authorisation for `permission` on `account`, within its department.
    async fn authorize(
        &self,
        caller: &Principal,
        permission: Permission,
        account: PlatformAccountId,
    ) -> Result<Authorized, Error> {
        let facts = self.core.account(account).await?;
        let resource = Resource::platform_account(account, facts.department);
        self.core.permissions().authorize(caller, permission, &resource).await
    }

    /// A publication as it is now and the caller's authorisation for `permission` on
    /// its account, asked before any transaction begins.
    async fn read_authorized(
        &self,
        caller: &Principal,
        permission: Permission,
        id: PublicationId,
    ) -> Result<(Publication, Authorized), Error> {
        let mut tx = self.core.db().begin_read().await?;
        let p = store::get(&mut tx, id).await?.ok_or_else(|| Error::not_found("publication", id))?;
        drop(tx);
        let grant = self.authorize(caller, permission, p.account).await?;
        Ok((p, grant))
    }

    /// A feedback item and the caller's authorisation to manage it.
    async fn feedback_authorized(
        &self,
        caller: &Principal,
        id: FeedbackItemId,
    ) -> Result<(FeedbackItem, Authorized), Error> {
        let mut tx = self.core.db().begin_read().await?;
        let f = feedback::get(&mut tx, id).await?.ok_or_else(|| Error::not_found("feedback_item", id))?;
        drop(tx);
        let grant = self.authorize(caller, Permission::FeedbackManage, f.account).await?;
        Ok((f, grant))
    }

    /// Refuses when the account may not publish now (R2.3.3).
    async fn require_active(&self, account: PlatformAccountId) -> Result<AccountFacts, Error> {
        let facts = self.core.account(account).await?;
        if facts.active {
            Ok(facts)
        } else {
            Err(Error::rule(
                "R2.3.3",
                format!("platform_account/{account}"),
                "the account is frozen, closing or closed: nothing is published to it",
            ))
        }
    }

    async fn view(&self, tx: &mut Tx, p: &Publication) -> Result<pb::Publication, Error> {
        let corrections = store::corrections(tx, p.id).await?;
        to_proto(p, &corrections)
    }

    fn record(
        &self,
        action: AuditAction,
        caller: &Principal,
        p: &Publication,
        rule: &str,
        request_id: RequestId,
    ) -> AuditRecord {
        let mut resource = AuditResourceRef::new("publication", p.id);
        resource.platform_account = Some(p.account);
        AuditRecord::new(action, caller.actor(), resource, PRODUCER, self.core.now())
            .rule(rule)
            .request(govmedia_kit::telemetry::current_trace_id(), Some(request_id.to_string()))
            .attr("draft_id", p.draft)
            .attr("state", crate::domain::publication::StateName::name(p.state))
    }

    fn feedback_record(
        &self,
        action: AuditAction,
        caller: &Principal,
        f: &FeedbackItem,
        request_id: RequestId,
    ) -> AuditRecord {
        let mut resource = AuditResourceRef::new("feedback_item", f.id);
        resource.platform_account = Some(f.account);
        AuditRecord::new(action, caller.actor(), resource, PRODUCER, self.core.now())
            .rule(FEEDBACK_RULE)
            .request(govmedia_kit::telemetry::current_trace_id(), Some(request_id.to_string()))
            .attr("publication_id", f.publication)
            .attr("state", f.state.as_str())
    }

    /// Only someone who may handle feedback on the account is given it.
    async fn check_assignee(&self, assignee: UserId, account: PlatformAccountId) -> Result<(), Error> {
        let department = self.core.account(account).await?.department;
        let resource = Resource::platform_account(account, department);
        let may = self
            .core
            .permissions()
            .check(Subject::other(PrincipalId::from(assignee)), Permission::FeedbackManage, &resource)
            .await?;
        if may.allowed {
            return Ok(());
        }
        Err(Error::rule(
            FEEDBACK_RULE,
            format!("user/{assignee}"),
            "the assignee may not handle feedback on this account (feedback.manage)",
        ))
    }

    /// Takes a publication down on its platform through its connector (outside any
    /// transaction), unless it was published by hand.
    async fn retract_on_platform(&self, p: &Publication, reason: &str, manual: bool) -> Result<(), Error> {
        if manual {
            return Ok(());
        }
        if p.channel == Channel::Manual {
            return Err(Error::rule(
                FEEDBACK_RULE,
                format!("publication/{}", p.id),
                "published by hand: retract it by hand on the platform and give manual_evidence",
            ));
        }
        let connector = self.connectors.for_account(p.account);
        connector.retract(&p.id.to_string(), &p.account.to_string(), reason).await.map_err(|e| match e {
            ConnectorError::Transient(_) => {
                Error::Unavailable { dependency: "publishing connector", source: Box::new(e) }
            }
            ConnectorError::Permanent(why) => {
                Error::rule(FEEDBACK_RULE, format!("publication/{}", p.id), format!("the platform refused: {why}"))
            }
        })
    }
}

/// Refuses when the draft is already scheduled on the account.
async fn check_not_scheduled(tx: &mut Tx, draft: DraftId, account: PlatformAccountId, why: &str) -> Result<(), Error> {
    match store::open_on(tx, draft, account).await? {
        Some(open) => Err(Error::rule(SCHEDULE_RULE, format!("publication/{}", open.id), why)),
        None => Ok(()),
    }
}

#[govmedia_kit::handlers]
impl PublicationService for Publications {
    async fn schedule_publication(
        &self,
        request: Request<pb::SchedulePublicationRequest>,
    ) -> Result<pb::SchedulePublicationResponse, Error> {
        let (caller, req) = unpack(request)?;
        let cmd = Schedule::try_from(&req)?;
        self.authorize(&caller, Permission::PublicationSchedule, cmd.account).await?;
        self.require_active(cmd.account).await?;
        let call = Call::new(&caller, method!("SchedulePublication"), cmd.request_id, &req);
        let answer = self.core.work().run(call, async |m| {
            let draft = drafts::get(m.tx(), cmd.draft).await?.ok_or_else(|| Error::not_found("draft", cmd.draft))?;
            let connector = self.connectors.for_account(cmd.account).name();
            let p = Publication::schedule(
                &draft,
                cmd.account,
                cmd.when,
                UserId::from_uuid(caller.id.as_uuid()),
                connector,
                m.now(),
            )?;
            check_not_scheduled(
                m.tx(),
                cmd.draft,
                cmd.account,
                "the draft is already scheduled on this account: reschedule or cancel that publication",
            )
            .await?;
            store::insert(m.tx(), &p).await?;
            m.audit(
                self.record(AuditAction::PublicationScheduled, &caller, &p, SCHEDULE_RULE, cmd.request_id)
                    .attr("scheduled_at", p.scheduled_at.to_rfc3339()),
            );
            Ok(pb::SchedulePublicationResponse { publication: Some(self.view(m.tx(), &p).await?) })
        });
        answer.await
    }

    async fn get_publication(
        &self,
        request: Request<pb::GetPublicationRequest>,
    ) -> Result<pb::GetPublicationResponse, Error> {
        let caller = caller(&request)?;
        let mut v = Validator::new();
        let id = v.id("publication_id", &request.get_ref().publication_id);
        let id: PublicationId = v.finish_with(|| id)?;
        let (p, _) = self.read_authorized(&caller, Permission::PublicationRead, id).await?;
        let mut tx = self.core.db().begin_read().await?;
        Ok(pb::GetPublicationResponse { publication: Some(self.view(&mut tx, &p).await?) })
    }

    async fn list_publications(
        &self,
        request: Request<pb::ListPublicationsRequest>,
    ) -> Result<pb::ListPublicationsResponse, Error> {
        let (caller, req) = unpack(request)?;
        let mut v = Validator::new();
        let account: Option<PlatformAccountId> = v.optional_id("platform_account_id", &req.platform_account_id);
        let draft: Option<DraftId> = v.optional_id("draft_id", &req.draft_id);
        let state = state_from(&mut v, req.state);
        let (from, until) = time_range(&mut v, "time_range", req.time_range.as_ref());
        v.finish()?;
        let limit = page::page_size(req.page_size, 50, 500)?;
        let after: Option<(DateTime<Utc>, PublicationId)> = page::decode_page_token(&req.page_token)?;
        match account {
            Some(a) => drop(self.authorize(&caller, Permission::PublicationRead, a).await?),
            None => self.core.permissions().require(&caller, Permission::PublicationRead, &Resource::GLOBAL).await?,
        }
        let mut tx = self.core.db().begin_read().await?;
        let found =
            store::list(&mut tx, &PublicationFilter { account, draft, state, from, until }, after, limit).await?;
        let mut publications = Vec::with_capacity(found.len());
        for p in &found {
            publications.push(self.view(&mut tx, p).await?);
        }
        let next_page_token = next_page_token(&found, limit, |p| (p.scheduled_at, p.id));
        Ok(pb::ListPublicationsResponse { publications, next_page_token })
    }

    async fn cancel_publication(
        &self,
        request: Request<pb::CancelPublicationRequest>,
    ) -> Result<pb::CancelPublicationResponse, Error> {
        let (caller, req) = unpack(request)?;
        let cmd =
            PublicationChange::parse(&req.request_id, &req.publication_id, &req.etag, Some(&req.reason), None, None)?;
        let (_, grant) = self.read_authorized(&caller, Permission::PublicationSchedule, cmd.publication).await?;
        let call = Call::new(&caller, method!("CancelPublication"), cmd.request_id, &req);
        let answer = self.core.work().run(call, async |m| {
            let mut p = store::lock(m.tx(), cmd.publication, &grant).await?;
            check_etag("etag", &cmd.etag, p.version, false)?;
            let action = p.cancel(caller.id.to_string(), &cmd.reason, m.now())?;
            store::save(m.tx(), &p).await?;
            m.audit(self.record(action, &caller, &p, SCHEDULE_RULE, cmd.request_id).reason(cmd.reason.clone()));
            Ok(pb::CancelPublicationResponse { publication: Some(self.view(m.tx(), &p).await?) })
        });
        answer.await
    }

    async fn reschedule_publication(
        &self,
        request: Request<pb::ReschedulePublicationRequest>,
    ) -> Result<pb::ReschedulePublicationResponse, Error> {
        let (caller, req) = unpack(request)?;
        let cmd = PublicationChange::parse(
            &req.request_id,
            &req.publication_id,
            &req.etag,
            None,
            req.scheduled_time.as_ref(),
            None,
        )?;
        let (current, grant) = self.read_authorized(&caller, Permission::PublicationSchedule, cmd.publication).await?;
        self.require_active(current.account).await?;
        let call = Call::new(&caller, method!("ReschedulePublication"), cmd.request_id, &req);
        let answer = self.core.work().run(call, async |m| {
            let mut p = store::lock(m.tx(), cmd.publication, &grant).await?;
            check_etag("etag", &cmd.etag, p.version, false)?;
            let action = p.reschedule(cmd.when, m.now())?;
            store::save(m.tx(), &p).await?;
            m.audit(
                self.record(action, &caller, &p, SCHEDULE_RULE, cmd.request_id)
                    .attr("scheduled_at", p.scheduled_at.to_rfc3339()),
            );
            Ok(pb::ReschedulePublicationResponse { publication: Some(self.view(m.tx(), &p).await?) })
        });
        answer.await
    }

    async fn record_manual_publication(
        &self,
        request: Request<pb::RecordManualPublicationRequest>,
    ) -> Result<pb::RecordManualPublicationResponse, Error> {
        let (caller, req) = unpack(request)?;
        let cmd = RecordManual::parse(&req, self.core.now())?;
        let grant = self.authorize(&caller, Permission::PublicationSchedule, cmd.account).await?;
        let facts = self.core.account(cmd.account).await?;
        let call = Call::new(&caller, method!("RecordManualPublication"), cmd.request_id, &req);
        let answer = self.core.work().run(call, async |m| {
            let mut draft = drafts::lock_target(m.tx(), cmd.draft, cmd.account, &grant).await?;
            let signoffs = drafts::signoffs(m.tx(), cmd.draft, draft.current_version).await?;
            let decisions = drafts::decisions(m.tx(), cmd.draft).await?;
            let past = drafts::past(&decisions);
            check_ready(&draft, signoffs.len(), self.core.proofreading_passes(), facts.active)?;
            let approved_at = decisions
                .iter()
                .filter(|d| d.decision.version == draft.current_version && d.decision.outcome == Outcome::Approved)
                .map(|d| d.created_at)
                .max();
            let ready_at = approved_at.map(|a| signoffs.iter().map(|s| s.created_at).fold(a, DateTime::max));
            check_published_after_review(cmd.draft, cmd.published_at, ready_at)?;
            check_not_scheduled(
                m.tx(),
                cmd.draft,
                cmd.account,
                "the draft is scheduled on this account: cancel that publication before recording a manual one",
            )
            .await?;
            let by = UserId::from_uuid(caller.id.as_uuid());
            let evidence = StoredEvidence { publication: Some(cmd.evidence.clone()), retraction: None }.to_stored()?;
            let approvers = review::approvers(&draft.review_state(&past));
            let proofreaders = signoffs.iter().map(|s| s.proofreader).collect();
            let out = ManualOutcome {
                published_at: cmd.published_at,
                url: cmd.url.clone(),
                evidence,
                approvers,
                proofreaders,
            };
            let p = Publication::manual(&draft, cmd.account, out, by, m.now());
            store::insert(m.tx(), &p).await?;
            let now = m.now();
            mark_draft_published(m.tx(), &mut draft, now).await?;
            m.audit(
                self.record(AuditAction::PublicationRecordedManually, &caller, &p, SCHEDULE_RULE, cmd.request_id)
                    .attr("url", &cmd.url),
            );
            Ok(pb::RecordManualPublicationResponse { publication: Some(self.view(m.tx(), &p).await?) })
        });
        answer.await
    }

    async fn retract_publication(
        &self,
        request: Request<pb::RetractPublicationRequest>,
    ) -> Result<pb::RetractPublicationResponse, Error> {
        let (caller, req) = unpack(request)?;
        let cmd = PublicationChange::parse(
            &req.request_id,
            &req.publication_id,
            &req.etag,
            Some(&req.reason),
            None,
            req.manual_evidence.as_ref(),
        )?;
        // Read and check first: a connector call never runs inside a transaction.
        let (current, grant) = self.read_authorized(&caller, Permission::PublicationRetract, cmd.publication).await?;
        check_etag("etag", &cmd.etag, current.version, false)?;
        if current.state != PublicationState::Published {
            return Err(not_published(cmd.publication));
        }
        self.retract_on_platform(&current, &cmd.reason, cmd.manual.is_some()).await?;
        let call = Call::new(&caller, method!("RetractPublication"), cmd.request_id, &req);
        let answer = self.core.work().run(call, async |m| {
            let mut p = store::lock(m.tx(), cmd.publication, &grant).await?;
            let evidence = match &cmd.manual {
                Some(e) => Some(StoredEvidence { retraction: Some(e.clone()), ..StoredEvidence::of(&p)? }.to_stored()?),
                None => None,
            };
            let action = p.retract(caller.id.to_string(), &cmd.reason, evidence, m.now())?;
            store::save(m.tx(), &p).await?;
            m.audit(self.record(action, &caller, &p, FEEDBACK_RULE, cmd.request_id).reason(cmd.reason.clone()));
            Ok(pb::RetractPublicationResponse { publication: Some(self.view(m.tx(), &p).await?) })
        });
        answer.await
    }

    async fn create_feedback_item(
        &self,
        request: Request<pb::CreateFeedbackItemRequest>,
    ) -> Result<pb::CreateFeedbackItemResponse, Error> {
        let (caller, req) = unpack(request)?;
        let cmd = CreateFeedback::try_from(&req)?;
        let (p, _) = self.read_authorized(&caller, Permission::FeedbackManage, cmd.publication).await?;
        if !matches!(p.state, PublicationState::Published | PublicationState::Retracted) {
            let why = "feedback is recorded against a publication that went out";
            return Err(Error::rule(FEEDBACK_RULE, format!("publication/{}", p.id), why));
        }
        let call = Call::new(&caller, method!("CreateFeedbackItem"), cmd.request_id, &req);
        let answer = self.core.work().run(call, async |m| {
            let f = FeedbackItem::new(
                p.id,
                p.account,
                cmd.kind,
                cmd.description,
                cmd.source,
                caller.id.to_string(),
                m.now(),
            );
            feedback::insert(m.tx(), &f).await?;
            m.audit(
                self.feedback_record(AuditAction::FeedbackCreated, &caller, &f, cmd.request_id)
                    .attr("kind", cmd.kind.as_str()),
            );
            Ok(pb::CreateFeedbackItemResponse { feedback_item: Some(feedback_to(&f)) })
        });
        answer.await
    }

    async fn list_feedback_items(
        &self,
        request: Request<pb::ListFeedbackItemsRequest>,
    ) -> Result<pb::ListFeedbackItemsResponse, Error> {
        let (caller, req) = unpack(request)?;
        let mut v = Validator::new();
        let publication: Option<PublicationId> = v.optional_id("publication_id", &req.publication_id);
        let account: Option<PlatformAccountId> = v.optional_id("platform_account_id", &req.platform_account_id);
        let state = match pb::FeedbackState::try_from(req.state) {
            Ok(pb::FeedbackState::Unspecified) => None,
            Ok(pb::FeedbackState::Open) => Some(FeedbackState::Open),
            Ok(pb::FeedbackState::InProgress) => Some(FeedbackState::InProgress),
            Ok(pb::FeedbackState::Closed) => Some(FeedbackState::Closed),
            Err(_) => {
                v.violation("state", "is not a feedback state");
                None
            }
        };
        v.finish()?;
        let limit = page::page_size(req.page_size, 50, 500)?;
        let after: Option<FeedbackItemId> = page::decode_page_token(&req.page_token)?;
        let mut tx = self.core.db().begin_read().await?;
        let scope_account = match (account, publication) {
            (Some(a), _) => Some(a),
            (None, Some(p)) => {
                Some(store::get(&mut tx, p).await?.ok_or_else(|| Error::not_found("publication", p))?.account)
            }
            (None, None) => None,
        };
        match scope_account {
            Some(a) => drop(self.authorize(&caller, Permission::PublicationRead, a).await?),
            None => self.core.permissions().require(&caller, Permission::PublicationRead, &Resource::GLOBAL).await?,
        }
        let items = feedback::list(&mut tx, &FeedbackFilter { publication, account, state }, after, limit).await?;
        Ok(pb::ListFeedbackItemsResponse {
            next_page_token: next_page_token(&items, limit, |f| f.id),
            feedback_items: items.iter().map(feedback_to).collect(),
        })
    }

    async fn assign_feedback_item(
        &self,
        request: Request<pb::AssignFeedbackItemRequest>,
    ) -> Result<pb::AssignFeedbackItemResponse, Error> {
        let (caller, req) = unpack(request)?;
        let cmd = FeedbackChange::assign(&req)?;
        let (current, grant) = self.feedback_authorized(&caller, cmd.item).await?;
        let assignee = cmd.assignee.ok_or_else(|| Error::invalid("assignee_user_id", "is required"))?;
        self.check_assignee(assignee, current.account).await?;
        let call = Call::new(&caller, method!("AssignFeedbackItem"), cmd.request_id, &req);
        let answer = self.core.work().run(call, async |m| {
            let mut f = feedback::lock(m.tx(), cmd.item, &grant).await?;
            check_etag("etag", &cmd.etag, f.version, false)?;
            let action = f.assign(assignee)?;
            feedback::save(m.tx(), &f).await?;
            m.audit(self.feedback_record(action, &caller, &f, cmd.request_id).attr("assignee_user_id", assignee));
            Ok(pb::AssignFeedbackItemResponse { feedback_item: Some(feedback_to(&f)) })
        });
        answer.await
    }

    async fn close_feedback_item(
        &self,
        request: Request<pb::CloseFeedbackItemRequest>,
    ) -> Result<pb::CloseFeedbackItemResponse, Error> {
        let (caller, req) = unpack(request)?;
        let cmd = FeedbackChange::close(&req)?;
        let (_, grant) = self.feedback_authorized(&caller, cmd.item).await?;
        let call = Call::new(&caller, method!("CloseFeedbackItem"), cmd.request_id, &req);
        let answer = self.core.work().run(call, async |m| {
            let mut f = feedback::lock(m.tx(), cmd.item, &grant).await?;
            check_etag("etag", &cmd.etag, f.version, false)?;
            if let Some(draft) = cmd.correction {
                check_correction(m.tx(), draft, f.publication).await?;
            }
            let action = f.close(cmd.resolution.clone(), cmd.correction, m.now())?;
            feedback::save(m.tx(), &f).await?;
            m.audit(self.feedback_record(action, &caller, &f, cmd.request_id));
            Ok(pb::CloseFeedbackItemResponse { feedback_item: Some(feedback_to(&f)) })
        });
        answer.await
    }

    async fn rescreen_publications(
        &self,
        request: Request<pb::RescreenPublicationsRequest>,
    ) -> Result<pb::RescreenPublicationsResponse, Error> {
        let (caller, req) = unpack(request)?;
        let mut v = Validator::new();
        let request_id = v.request_id(&req.request_id);
        v.finish_with(|| request_id)?;
        self.core.permissions().require(&caller, Permission::LexiconManage, &Resource::GLOBAL).await?;
        let every = std::time::Duration::ZERO;
        let round = crate::published_screening::PublishedScreening::new(Arc::clone(&self.core), every).round().await?;
        Ok(pb::RescreenPublicationsResponse {
            lexicon_version: round.lexicon_version,
            screened: u32::try_from(round.screened).unwrap_or(u32::MAX),
            found: u32::try_from(round.found).unwrap_or(u32::MAX),
        })
    }
}

/// A correction is a draft created to correct this publication.
async fn check_correction(tx: &mut Tx, draft: DraftId, publication: PublicationId) -> Result<(), Error> {
    let found = drafts::get(tx, draft).await?.ok_or_else(|| Error::not_found("draft", draft))?;
    if found.corrects == Some(publication) {
        return Ok(());
    }
    Err(Error::rule(
        FEEDBACK_RULE,
        format!("draft/{draft}"),
        "a correction is a draft created with corrects_publication_id set to this publication",
    ))
}

/// The draft may go out now by hand: approved, proofread, on an active account (R3.3.1).
fn check_ready(draft: &Draft, signoffs: usize, required: usize, active: bool) -> Result<(), Error> {
    let verdict =
        on_due(&Readiness { draft: draft.state, signoffs, required_signoffs: required, account_active: active });
    match verdict {
        DueVerdict::Publish => Ok(()),
        DueVerdict::Expire(why) | DueVerdict::Refuse(why) => {
            let (rule, text) = why.split_once(": ").unwrap_or((SCHEDULE_RULE, why.as_str()));
            Err(Error::rule(rule, format!("draft/{}", draft.id), text))
        }
    }
}
