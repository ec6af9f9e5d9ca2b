//! `PublicationService`: scheduling approved drafts on accounts, cancelling and
//! rescheduling, manual publication records, retraction, and feedback tracked to
//! closure (R3.3.1, R3.3.3, R2.3.3). The scheduler (`crate::scheduler`) does the
//! publishing itself.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use govmedia_domain::Error;
use govmedia_domain::audit::{AuditAction, AuditRecord, AuditResourceRef};
use govmedia_domain::ids::{DraftId, FeedbackItemId, PlatformAccountId, PrincipalId, PublicationId, UserId};
use govmedia_domain::page;
use govmedia_domain::permission::Permission;
use govmedia_domain::scope::Resource;
use govmedia_domain::validate::{MAX_REASON_CHARS, Validator};
use govmedia_domain::workflow::DraftState;
use govmedia_kit::auth::Principal;
use govmedia_kit::db::Tx;
use govmedia_kit::mutation::{Begin, Mutation};
use govmedia_proto::common::v1 as cpb;
use govmedia_proto::content::v1 as pb;
use govmedia_proto::content::v1::publication_service_server::{PublicationService, PublicationServiceServer};
use serde::{Deserialize, Serialize};
use tonic::{Request, Response, Status};

use super::{caller, check_etag, etag, optional_time, ts};
use crate::connector::ConnectorError;
use crate::domain::publication::{Channel, DueVerdict, PublicationState, Readiness, on_due};
use crate::domain::review;
use crate::scheduler::{Connectors, mark_draft_published};
use crate::store::drafts;
use crate::store::feedback::{self, FeedbackFilter, FeedbackItem};
use crate::store::publications::{self as store, Publication, PublicationFilter};
use crate::{Core, PRODUCER};

const SCHEDULE_RULE: &str = "R3.3.1";
const FEEDBACK_RULE: &str = "R3.3.3";

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
    publication: Option<EvidenceJson>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    retraction: Option<EvidenceJson>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct EvidenceJson {
    uri: String,
    sha256: String,
    description: String,
}

fn evidence_from(v: &mut Validator, field: &str, e: &cpb::Evidence) -> EvidenceJson {
    let uri = v.required_text(&format!("{field}.uri"), &e.uri, 2000).unwrap_or_default();
    if !e.sha256.is_empty() && (e.sha256.len() != 64 || !e.sha256.chars().all(|c| c.is_ascii_hexdigit())) {
        v.violation(format!("{field}.sha256"), "must be 64 hex digits when given");
    }
    let description = v.optional_text(&format!("{field}.description"), &e.description, 500).unwrap_or_default();
    EvidenceJson { uri, sha256: e.sha256.to_lowercase(), description }
}

fn stored_evidence(p: &Publication) -> StoredEvidence {
    serde_json::from_str(&p.evidence).unwrap_or_default()
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

fn to_proto(p: &Publication, corrections: &[DraftId]) -> pb::Publication {
    let evidence = stored_evidence(p);
    pb::Publication {
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
        evidence: evidence.retraction.or(evidence.publication).map(|e| cpb::Evidence {
            uri: e.uri,
            sha256: e.sha256,
            description: e.description,
        }),
        withdrawal_reason: p.withdrawal_reason.clone(),
        withdrawn_by: p.withdrawn_by.clone(),
        withdraw_time: p.withdrawn_at.map(ts),
        correction_draft_ids: corrections.iter().map(ToString::to_string).collect(),
        create_time: Some(ts(p.created_at)),
        update_time: Some(ts(p.updated_at)),
        etag: etag(p.version),
    }
}

fn feedback_kind(v: &mut Validator, k: i32) -> &'static str {
    match pb::FeedbackKind::try_from(k) {
        Ok(pb::FeedbackKind::ErrorReport) => "error_report",
        Ok(pb::FeedbackKind::Complaint) => "complaint",
        Ok(pb::FeedbackKind::Question) => "question",
        Ok(pb::FeedbackKind::PublicOpinion) => "public_opinion",
        Ok(pb::FeedbackKind::Other) => "other",
        Ok(pb::FeedbackKind::Unspecified) | Err(_) => {
            v.violation(
                "feedback_item.kind",
                "is required: error report, complaint, question, public opinion or other",
            );
            ""
        }
    }
}

fn feedback_to(f: &FeedbackItem) -> pb::FeedbackItem {
    pb::FeedbackItem {
        id: f.id.to_string(),
        publication_id: f.publication.to_string(),
        platform_account_id: f.account.to_string(),
        kind: match f.kind.as_str() {
            "error_report" => pb::FeedbackKind::ErrorReport,
            "complaint" => pb::FeedbackKind::Complaint,
            "question" => pb::FeedbackKind::Question,
            "public_opinion" => pb::FeedbackKind::PublicOpinion,
            "other" => pb::FeedbackKind::Other,
            _ => pb::FeedbackKind::Unspecified,
        } as i32,
        description: f.description.clone(),
        source: f.source.clone(),
        state: match f.state.as_str() {
            "open" => pb::FeedbackState::Open,
            "in_progress" => pb::FeedbackState::InProgress,
            "closed" => pb::FeedbackState::Closed,
            _ => pb::FeedbackState::Unspecified,
        } as i32,
        assignee_user_id: f.assignee.clone(),
        resolution: f.resolution.clone(),
        correction_draft_id: f.correction_draft.clone(),
        created_by: f.created_by.clone(),
        create_time: Some(ts(f.created_at)),
        close_time: f.closed_at.map(ts),
        etag: etag(f.version),
    }
}

macro_rules! begin {
    ($self:ident, $caller:ident, $method:literal, $request_id:expr, $request:expr) => {
        match Mutation::begin(
            $self.core.db(),
            $caller.id,
            concat!("/govmedia.content.v1.PublicationService/", $method),
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

impl Publications {
    /// Requires `permission` on `account`, within its department.
    async fn require(
        &self,
        caller: &Principal,
        permission: Permission,
        account: PlatformAccountId,
    ) -> Result<(), Error> {
        let facts = self.core.account(account).await?;
        self.core
            .permissions()
            .require(caller.id, permission, &Resource::platform_account(account, facts.department))
            .await
    }

    /// Refuses when the account may not publish now (R2.3.3).
    async fn require_active(&self, account: PlatformAccountId) -> Result<(), Error> {
        if self.core.account(account).await?.active {
            Ok(())
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
        Ok(to_proto(p, &corrections))
    }

    fn record(
        &self,
        action: AuditAction,
        caller: &Principal,
        p: &Publication,
        rule: &str,
        request_id: &str,
    ) -> AuditRecord {
        let mut resource = AuditResourceRef::new("publication", p.id);
        resource.platform_account = Some(p.account);
        AuditRecord::new(action, caller.actor(), resource, PRODUCER, self.core.now())
            .rule(rule)
            .request(govmedia_kit::telemetry::current_trace_id(), Some(request_id.to_owned()))
            .attr("draft_id", p.draft)
            .attr("state", crate::domain::publication::StateName::name(p.state))
    }

    fn feedback_record(
        &self,
        action: AuditAction,
        caller: &Principal,
        f: &FeedbackItem,
        request_id: &str,
    ) -> AuditRecord {
        let mut resource = AuditResourceRef::new("feedback_item", f.id);
        resource.platform_account = Some(f.account);
        AuditRecord::new(action, caller.actor(), resource, PRODUCER, self.core.now())
            .rule(FEEDBACK_RULE)
            .request(govmedia_kit::telemetry::current_trace_id(), Some(request_id.to_owned()))
            .attr("publication_id", f.publication)
            .attr("state", &f.state)
    }

    /// A publication for a mutation, locked; not found if it does not exist.
    async fn locked(&self, tx: &mut Tx, id: PublicationId) -> Result<Publication, Error> {
        store::get(tx, id, true).await?.ok_or_else(|| Error::not_found("publication", id))
    }
}

#[tonic::async_trait]
impl PublicationService for Publications {
    async fn schedule_publication(
        &self,
        request: Request<pb::SchedulePublicationRequest>,
    ) -> Result<Response<pb::SchedulePublicationResponse>, Status> {
        let caller = caller(&request)?;
        let req = request.into_inner();
        let mut v = Validator::new();
        let request_id = v.request_id(&req.request_id);
        let draft_id: Option<DraftId> = v.id("draft_id", &req.draft_id);
        let account: Option<PlatformAccountId> = v.id("platform_account_id", &req.platform_account_id);
        let when = optional_time(&mut v, "scheduled_time", req.scheduled_time.as_ref());
        v.finish()?;
        let (Some(request_id), Some(draft_id), Some(account)) = (request_id, draft_id, account) else {
            return Err(Error::internal("validated").into());
        };
        self.require(&caller, Permission::PublicationSchedule, account).await?;
        self.require_active(account).await?;
        let mut m = begin!(self, caller, "SchedulePublication", request_id, &req);
        let draft = drafts::get(m.tx(), draft_id, true).await?.ok_or_else(|| Error::not_found("draft", draft_id))?;
        if !draft.targets.contains(&account) {
            return Err(Error::invalid("platform_account_id", "is not a target account of the draft").into());
        }
        if !matches!(draft.state, DraftState::InReview(_) | DraftState::Approved | DraftState::Published) {
            return Err(Error::rule(
                "R3.2.1",
                format!("draft/{draft_id}"),
                "only a submitted draft is scheduled; it goes out only once approved and proofread",
            )
            .into());
        }
        if let Some(open) = store::open_on(m.tx(), draft_id, account).await? {
            return Err(Error::rule(
                SCHEDULE_RULE,
                format!("publication/{}", open.id),
                "the draft is already scheduled on this account: reschedule or cancel that publication",
            )
            .into());
        }
        let now = m.now();
        let p = Publication {
            id: PublicationId::new(),
            draft: draft_id,
            draft_version: draft.current_version,
            account,
            state: PublicationState::Scheduled,
            scheduled_at: when.map_or(now, |t| t.max(now)),
            published_at: None,
            scheduled_by: UserId::from_uuid(caller.id.as_uuid()),
            channel: Channel::Connector,
            connector: self.connectors.for_account(account).name().to_owned(),
            platform_post_id: String::new(),
            url: String::new(),
            attempt_count: 0,
            next_attempt_at: None,
            lease_until: None,
            last_error: String::new(),
            approvers: vec![],
            proofreaders: vec![],
            evidence: String::new(),
            withdrawal_reason: String::new(),
            withdrawn_by: String::new(),
            withdrawn_at: None,
            created_at: now,
            updated_at: now,
            version: 1,
        };
        store::insert(m.tx(), &p).await?;
        m.audit(
            self.record(AuditAction::PublicationScheduled, &caller, &p, SCHEDULE_RULE, &request_id.to_string())
                .attr("scheduled_at", p.scheduled_at.to_rfc3339()),
        );
        let answer = pb::SchedulePublicationResponse { publication: Some(self.view(m.tx(), &p).await?) };
        m.commit(&answer, Some(self.core.relay())).await?;
        Ok(Response::new(answer))
    }

    async fn get_publication(
        &self,
        request: Request<pb::GetPublicationRequest>,
    ) -> Result<Response<pb::GetPublicationResponse>, Status> {
        let caller = caller(&request)?;
        let req = request.into_inner();
        let mut v = Validator::new();
        let id: Option<PublicationId> = v.id("publication_id", &req.publication_id);
        v.finish()?;
        let Some(id) = id else { return Err(Error::internal("validated").into()) };
        let mut tx = self.core.db().begin_read().await?;
        let p = store::get(&mut tx, id, false).await?.ok_or_else(|| Error::not_found("publication", id))?;
        self.require(&caller, Permission::PublicationRead, p.account).await?;
        let publication = self.view(&mut tx, &p).await?;
        tx.commit().await?;
        Ok(Response::new(pb::GetPublicationResponse { publication: Some(publication) }))
    }

    async fn list_publications(
        &self,
        request: Request<pb::ListPublicationsRequest>,
    ) -> Result<Response<pb::ListPublicationsResponse>, Status> {
        let caller = caller(&request)?;
        let req = request.into_inner();
        let mut v = Validator::new();
        let account: Option<PlatformAccountId> = v.optional_id("platform_account_id", &req.platform_account_id);
        let draft: Option<DraftId> = v.optional_id("draft_id", &req.draft_id);
        let state = state_from(&mut v, req.state);
        let range = req.time_range.unwrap_or_default();
        let from = optional_time(&mut v, "time_range.start_time", range.start_time.as_ref());
        let until = optional_time(&mut v, "time_range.end_time", range.end_time.as_ref());
        v.finish()?;
        let limit = page::page_size(req.page_size, 50, 500)?;
        let after: Option<(DateTime<Utc>, PublicationId)> = page::decode_page_token(&req.page_token)?;
        match account {
            Some(a) => self.require(&caller, Permission::PublicationRead, a).await?,
            None => self.core.permissions().require(caller.id, Permission::PublicationRead, &Resource::GLOBAL).await?,
        }
        let mut tx = self.core.db().begin_read().await?;
        let found =
            store::list(&mut tx, &PublicationFilter { account, draft, state, from, until }, after, limit).await?;
        let mut publications = Vec::with_capacity(found.len());
        for p in &found {
            publications.push(self.view(&mut tx, p).await?);
        }
        tx.commit().await?;
        let next_page_token = match found.last() {
            Some(last) if found.len() >= usize::try_from(limit).unwrap_or(usize::MAX) => {
                page::encode_page_token(&(last.scheduled_at, last.id))
            }
            _ => String::new(),
        };
        Ok(Response::new(pb::ListPublicationsResponse { publications, next_page_token }))
    }

    async fn cancel_publication(
        &self,
        request: Request<pb::CancelPublicationRequest>,
    ) -> Result<Response<pb::CancelPublicationResponse>, Status> {
        let caller = caller(&request)?;
        let req = request.into_inner();
        let mut v = Validator::new();
        let request_id = v.request_id(&req.request_id);
        let id: Option<PublicationId> = v.id("publication_id", &req.publication_id);
        let reason = v.reason("reason", &req.reason);
        v.finish()?;
        let (Some(request_id), Some(id), Some(reason)) = (request_id, id, reason) else {
            return Err(Error::internal("validated").into());
        };
        let mut m = begin!(self, caller, "CancelPublication", request_id, &req);
        let mut p = self.locked(m.tx(), id).await?;
        self.require(&caller, Permission::PublicationSchedule, p.account).await?;
        check_etag("etag", &req.etag, p.version, false)?;
        let now = m.now();
        let waiting = p.state == PublicationState::Scheduled
            || (p.state == PublicationState::Publishing && p.lease_until.is_none_or(|l| l <= now));
        if !waiting {
            return Err(Error::rule(
                SCHEDULE_RULE,
                format!("publication/{id}"),
                "only a publication that has not gone out and is not being sent right now is cancelled",
            )
            .into());
        }
        let previous = p.version;
        p.withdraw(PublicationState::Cancelled, caller.id.to_string(), &reason, now);
        store::save(m.tx(), &p, previous).await?;
        m.audit(
            self.record(AuditAction::PublicationCancelled, &caller, &p, SCHEDULE_RULE, &request_id.to_string())
                .reason(reason),
        );
        let answer = pb::CancelPublicationResponse { publication: Some(self.view(m.tx(), &p).await?) };
        m.commit(&answer, Some(self.core.relay())).await?;
        Ok(Response::new(answer))
    }

    async fn reschedule_publication(
        &self,
        request: Request<pb::ReschedulePublicationRequest>,
    ) -> Result<Response<pb::ReschedulePublicationResponse>, Status> {
        let caller = caller(&request)?;
        let req = request.into_inner();
        let mut v = Validator::new();
        let request_id = v.request_id(&req.request_id);
        let id: Option<PublicationId> = v.id("publication_id", &req.publication_id);
        let when = optional_time(&mut v, "scheduled_time", req.scheduled_time.as_ref());
        v.finish()?;
        let (Some(request_id), Some(id)) = (request_id, id) else { return Err(Error::internal("validated").into()) };
        let mut m = begin!(self, caller, "ReschedulePublication", request_id, &req);
        let mut p = self.locked(m.tx(), id).await?;
        self.require(&caller, Permission::PublicationSchedule, p.account).await?;
        check_etag("etag", &req.etag, p.version, false)?;
        if !matches!(p.state, PublicationState::Expired | PublicationState::Failed) {
            return Err(Error::rule(
                SCHEDULE_RULE,
                format!("publication/{id}"),
                "only an expired or failed publication is rescheduled",
            )
            .into());
        }
        self.require_active(p.account).await?;
        let now = m.now();
        let previous = p.version;
        p.state = PublicationState::Scheduled;
        p.scheduled_at = when.map_or(now, |t| t.max(now));
        p.next_attempt_at = None;
        p.lease_until = None;
        p.attempt_count = 0;
        p.last_error.clear();
        p.updated_at = now;
        p.version += 1;
        store::save(m.tx(), &p, previous).await?;
        m.audit(
            self.record(AuditAction::PublicationRescheduled, &caller, &p, SCHEDULE_RULE, &request_id.to_string())
                .attr("scheduled_at", p.scheduled_at.to_rfc3339()),
        );
        let answer = pb::ReschedulePublicationResponse { publication: Some(self.view(m.tx(), &p).await?) };
        m.commit(&answer, Some(self.core.relay())).await?;
        Ok(Response::new(answer))
    }

    async fn record_manual_publication(
        &self,
        request: Request<pb::RecordManualPublicationRequest>,
    ) -> Result<Response<pb::RecordManualPublicationResponse>, Status> {
        let caller = caller(&request)?;
        let req = request.into_inner();
        let now = self.core.now();
        let mut v = Validator::new();
        let request_id = v.request_id(&req.request_id);
        let draft_id: Option<DraftId> = v.id("draft_id", &req.draft_id);
        let account: Option<PlatformAccountId> = v.id("platform_account_id", &req.platform_account_id);
        let published_at = optional_time(&mut v, "publish_time", req.publish_time.as_ref());
        if req.publish_time.is_none() {
            v.violation("publish_time", "is required");
        }
        if published_at.is_some_and(|t| t > now + chrono::Duration::minutes(5)) {
            v.violation("publish_time", "is in the future");
        }
        let url = v.required_text("url", &req.url, 2000).unwrap_or_default();
        if !(url.is_empty() || url.starts_with("https://") || url.starts_with("http://")) {
            v.violation("url", "must be the post's http(s) address");
        }
        let evidence = match &req.evidence {
            Some(e) => Some(evidence_from(&mut v, "evidence", e)),
            None => {
                v.violation("evidence", "is required: a screenshot or the platform's receipt");
                None
            }
        };
        v.finish()?;
        let (Some(request_id), Some(draft_id), Some(account), Some(published_at), Some(evidence)) =
            (request_id, draft_id, account, published_at, evidence)
        else {
            return Err(Error::internal("validated").into());
        };
        self.require(&caller, Permission::PublicationSchedule, account).await?;
        let facts = self.core.account(account).await?;
        let mut m = begin!(self, caller, "RecordManualPublication", request_id, &req);
        let draft = drafts::get(m.tx(), draft_id, true).await?.ok_or_else(|| Error::not_found("draft", draft_id))?;
        if !draft.targets.contains(&account) {
            return Err(Error::invalid("platform_account_id", "is not a target account of the draft").into());
        }
        let signoffs = drafts::signoffs(m.tx(), draft_id, draft.current_version).await?;
        let verdict = on_due(&Readiness {
            draft: draft.state,
            signoffs: signoffs.len(),
            required_signoffs: self.core.proofreading_passes(),
            account_active: facts.active,
        });
        match verdict {
            DueVerdict::Publish => {}
            DueVerdict::Expire(why) | DueVerdict::Refuse(why) => {
                let (rule, text) = why.split_once(": ").unwrap_or((SCHEDULE_RULE, why.as_str()));
                return Err(Error::rule(rule, format!("draft/{draft_id}"), text).into());
            }
        }
        if let Some(open) = store::open_on(m.tx(), draft_id, account).await? {
            return Err(Error::rule(
                SCHEDULE_RULE,
                format!("publication/{}", open.id),
                "the draft is scheduled on this account: cancel that publication before recording a manual one",
            )
            .into());
        }
        let decisions = drafts::decisions(m.tx(), draft_id).await?;
        let state = drafts::review_state(&draft, &decisions);
        let p = Publication {
            id: PublicationId::new(),
            draft: draft_id,
            draft_version: draft.current_version,
            account,
            state: PublicationState::Published,
            scheduled_at: published_at,
            published_at: Some(published_at),
            scheduled_by: UserId::from_uuid(caller.id.as_uuid()),
            channel: Channel::Manual,
            connector: String::new(),
            platform_post_id: String::new(),
            url: url.clone(),
            attempt_count: 0,
            next_attempt_at: None,
            lease_until: None,
            last_error: String::new(),
            approvers: review::approvers(&state),
            proofreaders: signoffs.iter().map(|s| s.proofreader).collect(),
            evidence: serde_json::to_string(&StoredEvidence { publication: Some(evidence), retraction: None })
                .map_err(|e| Error::internal(e.to_string()))?,
            withdrawal_reason: String::new(),
            withdrawn_by: String::new(),
            withdrawn_at: None,
            created_at: now,
            updated_at: now,
            version: 1,
        };
        store::insert(m.tx(), &p).await?;
        mark_draft_published(m.tx(), &p, now).await?;
        m.audit(
            self.record(AuditAction::PublicationRecordedManually, &caller, &p, SCHEDULE_RULE, &request_id.to_string())
                .attr("url", &url),
        );
        let answer = pb::RecordManualPublicationResponse { publication: Some(self.view(m.tx(), &p).await?) };
        m.commit(&answer, Some(self.core.relay())).await?;
        Ok(Response::new(answer))
    }

    async fn retract_publication(
        &self,
        request: Request<pb::RetractPublicationRequest>,
    ) -> Result<Response<pb::RetractPublicationResponse>, Status> {
        let caller = caller(&request)?;
        let req = request.into_inner();
        let mut v = Validator::new();
        let request_id = v.request_id(&req.request_id);
        let id: Option<PublicationId> = v.id("publication_id", &req.publication_id);
        let reason = v.reason("reason", &req.reason);
        let manual = req.manual_evidence.as_ref().map(|e| evidence_from(&mut v, "manual_evidence", e));
        v.finish()?;
        let (Some(request_id), Some(id), Some(reason)) = (request_id, id, reason) else {
            return Err(Error::internal("validated").into());
        };
        // Read and check first: a connector call never runs inside a transaction.
        let current = {
            let mut tx = self.core.db().begin_read().await?;
            let p = store::get(&mut tx, id, false).await?.ok_or_else(|| Error::not_found("publication", id))?;
            tx.commit().await?;
            p
        };
        self.require(&caller, Permission::PublicationRetract, current.account).await?;
        check_etag("etag", &req.etag, current.version, false)?;
        let not_published =
            || Error::rule(FEEDBACK_RULE, format!("publication/{id}"), "only a published item is retracted");
        if current.state != PublicationState::Published {
            return Err(not_published().into());
        }
        if manual.is_none() {
            if current.channel == Channel::Manual {
                return Err(Error::rule(
                    FEEDBACK_RULE,
                    format!("publication/{id}"),
                    "published by hand: retract it by hand on the platform and give manual_evidence",
                )
                .into());
            }
            let connector = self.connectors.for_account(current.account);
            connector.retract(&id.to_string(), &current.account.to_string(), &reason).await.map_err(|e| match e {
                ConnectorError::Transient(_) => {
                    Error::Unavailable { dependency: "publishing connector", source: Box::new(e) }
                }
                ConnectorError::Permanent(why) => {
                    Error::rule(FEEDBACK_RULE, format!("publication/{id}"), format!("the platform refused: {why}"))
                }
            })?;
        }
        let mut m = begin!(self, caller, "RetractPublication", request_id, &req);
        let mut p = self.locked(m.tx(), id).await?;
        if p.state != PublicationState::Published {
            return Err(not_published().into());
        }
        let now = m.now();
        let previous = p.version;
        if let Some(e) = manual {
            let mut evidence = stored_evidence(&p);
            evidence.retraction = Some(e);
            p.evidence = serde_json::to_string(&evidence).map_err(|e| Error::internal(e.to_string()))?;
        }
        p.withdraw(PublicationState::Retracted, caller.id.to_string(), &reason, now);
        store::save(m.tx(), &p, previous).await?;
        m.audit(
            self.record(AuditAction::PublicationRetracted, &caller, &p, FEEDBACK_RULE, &request_id.to_string())
                .reason(reason),
        );
        let answer = pb::RetractPublicationResponse { publication: Some(self.view(m.tx(), &p).await?) };
        m.commit(&answer, Some(self.core.relay())).await?;
        Ok(Response::new(answer))
    }

    async fn create_feedback_item(
        &self,
        request: Request<pb::CreateFeedbackItemRequest>,
    ) -> Result<Response<pb::CreateFeedbackItemResponse>, Status> {
        let caller = caller(&request)?;
        let req = request.into_inner();
        let mut v = Validator::new();
        let request_id = v.request_id(&req.request_id);
        let item = req.feedback_item.clone().unwrap_or_default();
        if req.feedback_item.is_none() {
            v.violation("feedback_item", "is required");
        }
        let publication: Option<PublicationId> = v.id("feedback_item.publication_id", &item.publication_id);
        let kind = feedback_kind(&mut v, item.kind);
        let description = v.required_text("feedback_item.description", &item.description, 4000);
        let source = v.optional_text("feedback_item.source", &item.source, 500).unwrap_or_default();
        v.finish()?;
        let (Some(request_id), Some(publication), Some(description)) = (request_id, publication, description) else {
            return Err(Error::internal("validated").into());
        };
        let mut m = begin!(self, caller, "CreateFeedbackItem", request_id, &req);
        let p = store::get(m.tx(), publication, false)
            .await?
            .ok_or_else(|| Error::not_found("publication", publication))?;
        self.require(&caller, Permission::FeedbackManage, p.account).await?;
        if !matches!(p.state, PublicationState::Published | PublicationState::Retracted) {
            return Err(Error::rule(
                FEEDBACK_RULE,
                format!("publication/{publication}"),
                "feedback is recorded against a publication that went out",
            )
            .into());
        }
        let now = m.now();
        let f = FeedbackItem {
            id: FeedbackItemId::new(),
            publication,
            account: p.account,
            kind: kind.to_owned(),
            description,
            source,
            state: "open".into(),
            assignee: String::new(),
            resolution: String::new(),
            correction_draft: String::new(),
            created_by: caller.id.to_string(),
            created_at: now,
            closed_at: None,
            version: 1,
        };
        feedback::insert(m.tx(), &f).await?;
        m.audit(
            self.feedback_record(AuditAction::FeedbackCreated, &caller, &f, &request_id.to_string()).attr("kind", kind),
        );
        let answer = pb::CreateFeedbackItemResponse { feedback_item: Some(feedback_to(&f)) };
        m.commit(&answer, Some(self.core.relay())).await?;
        Ok(Response::new(answer))
    }

    async fn list_feedback_items(
        &self,
        request: Request<pb::ListFeedbackItemsRequest>,
    ) -> Result<Response<pb::ListFeedbackItemsResponse>, Status> {
        let caller = caller(&request)?;
        let req = request.into_inner();
        let mut v = Validator::new();
        let publication: Option<PublicationId> = v.optional_id("publication_id", &req.publication_id);
        let account: Option<PlatformAccountId> = v.optional_id("platform_account_id", &req.platform_account_id);
        let state = match pb::FeedbackState::try_from(req.state) {
            Ok(pb::FeedbackState::Unspecified) => None,
            Ok(pb::FeedbackState::Open) => Some("open"),
            Ok(pb::FeedbackState::InProgress) => Some("in_progress"),
            Ok(pb::FeedbackState::Closed) => Some("closed"),
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
                Some(store::get(&mut tx, p, false).await?.ok_or_else(|| Error::not_found("publication", p))?.account)
            }
            (None, None) => None,
        };
        match scope_account {
            Some(a) => self.require(&caller, Permission::PublicationRead, a).await?,
            None => self.core.permissions().require(caller.id, Permission::PublicationRead, &Resource::GLOBAL).await?,
        }
        let items = feedback::list(&mut tx, &FeedbackFilter { publication, account, state }, after, limit).await?;
        tx.commit().await?;
        let next_page_token = match items.last() {
            Some(last) if items.len() >= usize::try_from(limit).unwrap_or(usize::MAX) => {
                page::encode_page_token(&last.id)
            }
            _ => String::new(),
        };
        Ok(Response::new(pb::ListFeedbackItemsResponse {
            feedback_items: items.iter().map(feedback_to).collect(),
            next_page_token,
        }))
    }

    async fn assign_feedback_item(
        &self,
        request: Request<pb::AssignFeedbackItemRequest>,
    ) -> Result<Response<pb::AssignFeedbackItemResponse>, Status> {
        let caller = caller(&request)?;
        let req = request.into_inner();
        let mut v = Validator::new();
        let request_id = v.request_id(&req.request_id);
        let id: Option<FeedbackItemId> = v.id("feedback_item_id", &req.feedback_item_id);
        let assignee: Option<UserId> = v.id("assignee_user_id", &req.assignee_user_id);
        v.finish()?;
        let (Some(request_id), Some(id), Some(assignee)) = (request_id, id, assignee) else {
            return Err(Error::internal("validated").into());
        };
        let mut m = begin!(self, caller, "AssignFeedbackItem", request_id, &req);
        let mut f = feedback::get(m.tx(), id, true).await?.ok_or_else(|| Error::not_found("feedback_item", id))?;
        self.require(&caller, Permission::FeedbackManage, f.account).await?;
        check_etag("etag", &req.etag, f.version, false)?;
        if f.state == "closed" {
            return Err(Error::rule(FEEDBACK_RULE, format!("feedback_item/{id}"), "the item is closed").into());
        }
        // Only someone who may handle feedback on the account is given it.
        let department = self.core.account(f.account).await?.department;
        let may = self
            .core
            .permissions()
            .check(
                PrincipalId::from(assignee),
                Permission::FeedbackManage,
                &Resource::platform_account(f.account, department),
            )
            .await?;
        if !may.allowed {
            return Err(Error::rule(
                FEEDBACK_RULE,
                format!("user/{assignee}"),
                "the assignee may not handle feedback on this account (feedback.manage)",
            )
            .into());
        }
        let previous = f.version;
        f.assignee = assignee.to_string();
        f.state = "in_progress".into();
        f.version += 1;
        feedback::save(m.tx(), &f, previous).await?;
        m.audit(
            self.feedback_record(AuditAction::FeedbackAssigned, &caller, &f, &request_id.to_string())
                .attr("assignee_user_id", assignee),
        );
        let answer = pb::AssignFeedbackItemResponse { feedback_item: Some(feedback_to(&f)) };
        m.commit(&answer, Some(self.core.relay())).await?;
        Ok(Response::new(answer))
    }

    async fn close_feedback_item(
        &self,
        request: Request<pb::CloseFeedbackItemRequest>,
    ) -> Result<Response<pb::CloseFeedbackItemResponse>, Status> {
        let caller = caller(&request)?;
        let req = request.into_inner();
        let mut v = Validator::new();
        let request_id = v.request_id(&req.request_id);
        let id: Option<FeedbackItemId> = v.id("feedback_item_id", &req.feedback_item_id);
        let resolution = v.required_text("resolution", &req.resolution, MAX_REASON_CHARS);
        let correction: Option<DraftId> = v.optional_id("correction_draft_id", &req.correction_draft_id);
        v.finish()?;
        let (Some(request_id), Some(id), Some(resolution)) = (request_id, id, resolution) else {
            return Err(Error::internal("validated").into());
        };
        let mut m = begin!(self, caller, "CloseFeedbackItem", request_id, &req);
        let mut f = feedback::get(m.tx(), id, true).await?.ok_or_else(|| Error::not_found("feedback_item", id))?;
        self.require(&caller, Permission::FeedbackManage, f.account).await?;
        check_etag("etag", &req.etag, f.version, false)?;
        if f.state == "closed" {
            return Err(Error::rule(FEEDBACK_RULE, format!("feedback_item/{id}"), "the item is already closed").into());
        }
        if let Some(draft_id) = correction {
            let draft =
                drafts::get(m.tx(), draft_id, false).await?.ok_or_else(|| Error::not_found("draft", draft_id))?;
            if draft.corrects != Some(f.publication) {
                return Err(Error::rule(
                    FEEDBACK_RULE,
                    format!("draft/{draft_id}"),
                    "a correction is a draft created with corrects_publication_id set to this publication",
                )
                .into());
            }
        }
        let previous = f.version;
        f.state = "closed".into();
        f.resolution = resolution;
        f.correction_draft = correction.map(|d| d.to_string()).unwrap_or_default();
        f.closed_at = Some(m.now());
        f.version += 1;
        feedback::save(m.tx(), &f, previous).await?;
        m.audit(self.feedback_record(AuditAction::FeedbackClosed, &caller, &f, &request_id.to_string()));
        let answer = pb::CloseFeedbackItemResponse { feedback_item: Some(feedback_to(&f)) };
        m.commit(&answer, Some(self.core.relay())).await?;
        Ok(Response::new(answer))
    }
}
