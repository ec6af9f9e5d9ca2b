//! `PublicFeedbackService`: public supervision of the accounts (R8.2.1, R8.2.2). The
//! rules are in [`crate::domain::public_feedback`].

use std::sync::Arc;

use chrono::{DateTime, Utc};
use govmedia_domain::Error;
use govmedia_domain::audit::{AuditAction, AuditRecord, AuditResourceRef};
use govmedia_domain::ids::{DepartmentId, PlatformAccountId, PublicFeedbackId, RectificationId};
use govmedia_domain::page;
use govmedia_domain::permission::Permission;
use govmedia_domain::scope::Resource;
use govmedia_domain::validate::Validator;
use govmedia_kit::access::Authorized;
use govmedia_kit::auth::Principal;
use govmedia_kit::mutation::Call;
use govmedia_kit::wire::{check_etag, etag, from_ts, next_page_token, one_id, ts, unpack};
use govmedia_proto::audit::v1 as pb;
use govmedia_proto::audit::v1::public_feedback_service_server::{PublicFeedbackService, PublicFeedbackServiceServer};
use tonic::Request;

use crate::Core;
use crate::domain::public_feedback::{
    ADJUSTMENT_RULE, Adjustment, AdjustmentKind, Channel, DEFAULT_WORKING_DAYS, MAX_WORKING_DAYS, PublicFeedback, RULE,
    Received, State, mask_contact, mask_name, masked_text,
};
use crate::store::public_feedback::{self as store, FeedbackFilter};

const MAX_SUBJECT: usize = 200;
const MAX_TEXT: usize = 8000;
const MAX_CONTACT: usize = 200;
const MAX_ADJUSTMENTS: usize = 20;

/// The generated server around the handlers.
pub fn server(core: &Arc<Core>) -> PublicFeedbackServiceServer<Feedback> {
    PublicFeedbackServiceServer::new(Feedback { core: Arc::clone(core) })
}

/// The handlers.
#[derive(Debug, Clone)]
pub struct Feedback {
    core: Arc<Core>,
}

fn channel_to(c: Channel) -> pb::FeedbackChannel {
    match c {
        Channel::Hotline => pb::FeedbackChannel::Hotline,
        Channel::Letter => pb::FeedbackChannel::Letter,
        Channel::Email => pb::FeedbackChannel::Email,
        Channel::PlatformReport => pb::FeedbackChannel::PlatformReport,
        Channel::CommentComplaint => pb::FeedbackChannel::CommentComplaint,
        Channel::InPerson => pb::FeedbackChannel::InPerson,
    }
}

fn channel_from(c: i32) -> Option<Channel> {
    match pb::FeedbackChannel::try_from(c).ok()? {
        pb::FeedbackChannel::Hotline => Some(Channel::Hotline),
        pb::FeedbackChannel::Letter => Some(Channel::Letter),
        pb::FeedbackChannel::Email => Some(Channel::Email),
        pb::FeedbackChannel::PlatformReport => Some(Channel::PlatformReport),
        pb::FeedbackChannel::CommentComplaint => Some(Channel::CommentComplaint),
        pb::FeedbackChannel::InPerson => Some(Channel::InPerson),
        pb::FeedbackChannel::Unspecified => None,
    }
}

fn state_to(s: State) -> pb::PublicFeedbackState {
    match s {
        State::Received => pb::PublicFeedbackState::Received,
        State::Triaged => pb::PublicFeedbackState::Triaged,
        State::Answered => pb::PublicFeedbackState::Answered,
        State::Closed => pb::PublicFeedbackState::Closed,
    }
}

fn kind_to(k: AdjustmentKind) -> pb::AdjustmentKind {
    match k {
        AdjustmentKind::CorrectionDraft => pb::AdjustmentKind::CorrectionDraft,
        AdjustmentKind::Rectification => pb::AdjustmentKind::Rectification,
        AdjustmentKind::ModerationRule => pb::AdjustmentKind::ModerationRule,
    }
}

/// Feedback on the wire; the contact in full only when `contact_shown`, and personal
/// numbers in the text masked otherwise.
fn feedback_to(f: &PublicFeedback, now: DateTime<Utc>, contact_shown: bool) -> pb::PublicFeedback {
    let r = &f.received;
    let (name, contact, content) = if contact_shown {
        (r.contact_name.clone(), r.contact.clone(), r.content.clone())
    } else {
        (mask_name(&r.contact_name), mask_contact(&r.contact), masked_text(&r.content))
    };
    pb::PublicFeedback {
        id: f.id.to_string(),
        channel: channel_to(r.channel) as i32,
        receive_time: Some(ts(r.received_at)),
        platform_account_id: r.account.map(|a| a.to_string()).unwrap_or_default(),
        comment_id: r.comment_id.clone(),
        subject: r.subject.clone(),
        content,
        contact_name: name,
        contact,
        state: state_to(f.state) as i32,
        department_id: f.department.map(|d| d.to_string()).unwrap_or_default(),
        working_days: f.working_days,
        due_time: f.due_at.map(ts),
        overdue: f.is_overdue(now),
        answer: f.answer.clone(),
        answer_channel: f.answer_channel.clone(),
        answered_by: f.answered_by.map(|p| p.to_string()).unwrap_or_default(),
        answer_time: f.answered_at.map(ts),
        adjustments: f
            .adjustments
            .iter()
            .map(|a| pb::Adjustment { kind: kind_to(a.kind) as i32, id: a.id.clone(), note: a.note.clone() })
            .collect(),
        no_adjustment_reason: f.no_adjustment_reason.clone(),
        close_time: f.closed_at.map(ts),
        recorded_by: f.recorded_by.to_string(),
        etag: etag(f.version),
    }
}

/// Where feedback belongs: its department once triaged, else its account's or the bureau.
fn resource(f: &PublicFeedback) -> Resource {
    match (f.department, f.received.account) {
        (Some(d), Some(a)) => Resource::platform_account(a, Some(d)),
        (Some(d), None) => Resource::department(d),
        (None, _) => Resource::GLOBAL,
    }
}

/// The audit record of a change: the subject masked, never the contact.
fn audit(action: AuditAction, caller: &Principal, f: &PublicFeedback, now: DateTime<Utc>) -> AuditRecord {
    let mut resource = AuditResourceRef::new("public_feedback", f.id);
    resource.department = f.department;
    resource.platform_account = f.received.account;
    let rule = if action == AuditAction::PublicFeedbackClosed { ADJUSTMENT_RULE } else { RULE };
    AuditRecord::new(action, caller.actor(), resource, crate::PRODUCER, now)
        .rule(rule)
        .attr("channel", f.received.channel.as_str())
        .attr("subject", masked_text(&f.received.subject))
        .attr("state", f.state.as_str())
        .attr("due_date", f.due_date.map(|d| d.to_string()).unwrap_or_default())
        .attr(
            "adjustments",
            f.adjustments
                .iter()
                .map(|a| {
                    format!(
                        "{}:{}",
                        serde_json::to_value(a.kind)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_owned))
                            .unwrap_or_default(),
                        a.id
                    )
                })
                .collect::<Vec<_>>()
                .join(","),
        )
}

/// The answer every change of one item stores for replay.
#[derive(Clone, PartialEq, prost::Message)]
struct Wrapped {
    #[prost(message, optional, tag = "1")]
    public_feedback: Option<pb::PublicFeedback>,
}

fn received_from(v: &mut Validator, f: Option<&pb::PublicFeedback>, now: DateTime<Utc>) -> Option<Received> {
    let Some(f) = f else {
        v.violation("public_feedback", "is required");
        return None;
    };
    let field = |n: &str| format!("public_feedback.{n}");
    let channel = channel_from(f.channel);
    if channel.is_none() {
        v.violation(field("channel"), "is required: how the feedback arrived");
    }
    let received_at = match f.receive_time.as_ref() {
        None => Some(now),
        Some(t) => match from_ts(&field("receive_time"), t) {
            Ok(t) if t <= now => Some(t),
            Ok(_) => {
                v.violation(field("receive_time"), "must not be in the future");
                None
            }
            Err(_) => {
                v.violation(field("receive_time"), "is not a time");
                None
            }
        },
    };
    let account: Option<PlatformAccountId> = v.optional_id(&field("platform_account_id"), &f.platform_account_id);
    let comment_id = v.optional_text(&field("comment_id"), &f.comment_id, 100);
    if channel == Some(Channel::CommentComplaint) && f.comment_id.trim().is_empty() {
        v.violation(field("comment_id"), "is required for a comment marked as a complaint");
    }
    let subject = v.required_text(&field("subject"), &f.subject, MAX_SUBJECT);
    let content = v.required_text(&field("content"), &f.content, MAX_TEXT);
    let contact_name = v.optional_text(&field("contact_name"), &f.contact_name, 100);
    let contact = v.optional_text(&field("contact"), &f.contact, MAX_CONTACT);
    Some(Received {
        channel: channel?,
        received_at: received_at?,
        account,
        comment_id: comment_id?,
        subject: subject?,
        content: content?,
        contact_name: contact_name?,
        contact: contact?,
    })
}

impl Feedback {
    async fn read(&self, id: PublicFeedbackId) -> Result<PublicFeedback, Error> {
        let mut tx = self.core.db().begin_read().await?;
        store::get(&mut tx, id).await?.ok_or_else(|| Error::not_found("public feedback", id))
    }

    /// Whether `caller` answers this item's department: they see the contact.
    async fn answers(&self, caller: &Principal, f: &PublicFeedback) -> bool {
        f.department.is_some()
            && self.core.permissions().require(caller, Permission::PublicFeedbackHandle, &resource(f)).await.is_ok()
    }

    async fn change<Req: prost::Message>(
        &self,
        call: Call<'_, Req>,
        caller: &Principal,
        id: PublicFeedbackId,
        grant: Authorized,
        given_etag: &str,
        change: impl FnOnce(&mut PublicFeedback, DateTime<Utc>) -> Result<AuditAction, Error>,
    ) -> Result<pb::PublicFeedback, Error> {
        // Those who answer see the contact; the office triaging does not need it.
        let contact_shown = grant.permission() == Some(Permission::PublicFeedbackHandle);
        let answer = self
            .core
            .work()
            .run(call, async |m| {
                let mut f = store::lock(m.tx(), id, &grant).await?;
                check_etag("etag", given_etag, f.version, true)?;
                let previous = f.version;
                let action = change(&mut f, m.now())?;
                store::save(m.tx(), &f, previous).await?;
                m.audit(audit(action, caller, &f, m.now()));
                Ok(Wrapped { public_feedback: Some(feedback_to(&f, m.now(), contact_shown)) })
            })
            .await?;
        answer.public_feedback.ok_or_else(|| Error::internal("a change of public feedback answered nothing"))
    }
}

#[govmedia_kit::handlers]
impl PublicFeedbackService for Feedback {
    async fn record_public_feedback(
        &self,
        request: Request<pb::RecordPublicFeedbackRequest>,
    ) -> Result<pb::RecordPublicFeedbackResponse, Error> {
        let (caller, req) = unpack(request)?;
        let now = self.core.now();
        let mut v = Validator::new();
        let request_id = v.request_id(&req.request_id);
        let received = received_from(&mut v, req.public_feedback.as_ref(), now);
        let (request_id, received) = v.finish_with(|| Some((request_id?, received?)))?;
        let scope = match received.account {
            Some(a) => match self.core.register().account_department(a).await? {
                None => return Err(Error::not_found("platform_account", a)),
                Some(d) => Resource::platform_account(a, d),
            },
            None => Resource::GLOBAL,
        };
        self.core.permissions().require(&caller, Permission::PublicFeedbackManage, &scope).await?;
        let call =
            Call::new(&caller, "/govmedia.audit.v1.PublicFeedbackService/RecordPublicFeedback", request_id, &req);
        self.core
            .work()
            .run(call, async |m| {
                let f = PublicFeedback::record(received, caller.id);
                store::insert(m.tx(), &f).await?;
                m.audit(audit(AuditAction::PublicFeedbackRecorded, &caller, &f, m.now()));
                Ok(pb::RecordPublicFeedbackResponse { public_feedback: Some(feedback_to(&f, m.now(), false)) })
            })
            .await
    }

    async fn get_public_feedback(
        &self,
        request: Request<pb::GetPublicFeedbackRequest>,
    ) -> Result<pb::GetPublicFeedbackResponse, Error> {
        let (caller, req) = unpack(request)?;
        let id: PublicFeedbackId = one_id("public_feedback_id", &req.public_feedback_id)?;
        let f = self.read(id).await?;
        self.core.permissions().require(&caller, Permission::PublicFeedbackRead, &resource(&f)).await?;
        let shown = self.answers(&caller, &f).await;
        Ok(pb::GetPublicFeedbackResponse { public_feedback: Some(feedback_to(&f, self.core.now(), shown)) })
    }

    async fn list_public_feedback(
        &self,
        request: Request<pb::ListPublicFeedbackRequest>,
    ) -> Result<pb::ListPublicFeedbackResponse, Error> {
        let (caller, req) = unpack(request)?;
        let mut v = Validator::new();
        let department: Option<DepartmentId> = v.optional_id("department_id", &req.department_id);
        let state = match pb::PublicFeedbackState::try_from(req.state) {
            Ok(pb::PublicFeedbackState::Unspecified) => None,
            Ok(pb::PublicFeedbackState::Received) => Some(State::Received),
            Ok(pb::PublicFeedbackState::Triaged) => Some(State::Triaged),
            Ok(pb::PublicFeedbackState::Answered) => Some(State::Answered),
            Ok(pb::PublicFeedbackState::Closed) => Some(State::Closed),
            Err(_) => {
                v.violation("state", "is not a public feedback state");
                None
            }
        };
        let limit = page::page_size(req.page_size, 50, 500);
        let after: Result<Option<(DateTime<Utc>, String)>, Error> = page::decode_page_token(&req.page_token);
        v.finish()?;
        let (limit, after) = (limit?, after?);
        let scope = department.map_or(Resource::GLOBAL, Resource::department);
        self.core.permissions().require(&caller, Permission::PublicFeedbackRead, &scope).await?;
        let now = self.core.now();
        let filter = FeedbackFilter { department, state, overdue_at: req.overdue_only.then_some(now) };
        let mut tx = self.core.db().begin_read().await?;
        let list = store::list(&mut tx, &filter, after, limit).await?;
        Ok(pb::ListPublicFeedbackResponse {
            next_page_token: next_page_token(&list, limit, |f| (f.received.received_at, f.id.to_string())),
            public_feedback: list.iter().map(|f| feedback_to(f, now, false)).collect(),
        })
    }

    async fn triage_public_feedback(
        &self,
        request: Request<pb::TriagePublicFeedbackRequest>,
    ) -> Result<pb::TriagePublicFeedbackResponse, Error> {
        let (caller, req) = unpack(request)?;
        let mut v = Validator::new();
        let request_id = v.request_id(&req.request_id);
        let id: Option<PublicFeedbackId> = v.id("public_feedback_id", &req.public_feedback_id);
        let department: Option<DepartmentId> = v.id("department_id", &req.department_id);
        let days = if req.working_days == 0 { DEFAULT_WORKING_DAYS } else { req.working_days };
        if days > MAX_WORKING_DAYS {
            v.violation("working_days", format!("must be 1 to {MAX_WORKING_DAYS} working days"));
        }
        let (request_id, id, department) = v.finish_with(|| Some((request_id?, id?, department?)))?;
        // Triage moves feedback between departments: it is the bureau office's.
        let grant =
            self.core.permissions().authorize(&caller, Permission::PublicFeedbackManage, &Resource::GLOBAL).await?;
        let call =
            Call::new(&caller, "/govmedia.audit.v1.PublicFeedbackService/TriagePublicFeedback", request_id, &req);
        let (zone, calendar) = (self.core.time_zone(), self.core.calendar().clone());
        let f = self
            .change(call, &caller, id, grant, &req.etag, |f, now| f.triage(department, days, now, zone, &calendar))
            .await?;
        Ok(pb::TriagePublicFeedbackResponse { public_feedback: Some(f) })
    }

    async fn answer_public_feedback(
        &self,
        request: Request<pb::AnswerPublicFeedbackRequest>,
    ) -> Result<pb::AnswerPublicFeedbackResponse, Error> {
        let (caller, req) = unpack(request)?;
        let mut v = Validator::new();
        let request_id = v.request_id(&req.request_id);
        let id: Option<PublicFeedbackId> = v.id("public_feedback_id", &req.public_feedback_id);
        let answer = v.required_text("answer", &req.answer, MAX_TEXT);
        let channel = v.required_text("answer_channel", &req.answer_channel, 100);
        let (request_id, id, answer, channel) = v.finish_with(|| Some((request_id?, id?, answer?, channel?)))?;
        let found = self.read(id).await?;
        let grant =
            self.core.permissions().authorize(&caller, Permission::PublicFeedbackHandle, &resource(&found)).await?;
        let call =
            Call::new(&caller, "/govmedia.audit.v1.PublicFeedbackService/AnswerPublicFeedback", request_id, &req);
        let by = caller.id;
        let f = self.change(call, &caller, id, grant, &req.etag, |f, now| f.answer(by, answer, channel, now)).await?;
        Ok(pb::AnswerPublicFeedbackResponse { public_feedback: Some(f) })
    }

    async fn close_public_feedback(
        &self,
        request: Request<pb::ClosePublicFeedbackRequest>,
    ) -> Result<pb::ClosePublicFeedbackResponse, Error> {
        let (caller, req) = unpack(request)?;
        let mut v = Validator::new();
        let request_id = v.request_id(&req.request_id);
        let id: Option<PublicFeedbackId> = v.id("public_feedback_id", &req.public_feedback_id);
        if req.adjustments.len() > MAX_ADJUSTMENTS {
            v.violation("adjustments", format!("at most {MAX_ADJUSTMENTS}"));
        }
        let mut adjustments = Vec::new();
        let mut orders = Vec::new();
        for (i, a) in req.adjustments.iter().enumerate() {
            let kind = match pb::AdjustmentKind::try_from(a.kind) {
                Ok(pb::AdjustmentKind::CorrectionDraft) => Some(AdjustmentKind::CorrectionDraft),
                Ok(pb::AdjustmentKind::Rectification) => Some(AdjustmentKind::Rectification),
                Ok(pb::AdjustmentKind::ModerationRule) => Some(AdjustmentKind::ModerationRule),
                _ => {
                    v.violation(format!("adjustments[{i}].kind"), "is required: what the adjustment is");
                    None
                }
            };
            // Every linked object is named by its id (a UUID) in its own service.
            let linked = match uuid::Uuid::parse_str(a.id.trim()) {
                Ok(u) => Some(u),
                Err(_) => {
                    v.violation(format!("adjustments[{i}].id"), "must be the id of the linked draft, order or rule");
                    None
                }
            };
            let note = v.optional_text(&format!("adjustments[{i}].note"), &a.note, 1000);
            if let (Some(kind), Some(linked), Some(note)) = (kind, linked, note) {
                if kind == AdjustmentKind::Rectification {
                    orders.push((i, RectificationId::from_uuid(linked)));
                }
                adjustments.push(Adjustment { kind, id: linked.to_string(), note });
            }
        }
        let reason = v.optional_text("no_adjustment_reason", &req.no_adjustment_reason, 2000);
        let (request_id, id, reason) = v.finish_with(|| Some((request_id?, id?, reason?)))?;
        {
            let mut tx = self.core.db().begin_read().await?;
            for (i, order) in &orders {
                if crate::store::rectifications::get(&mut tx, *order).await?.is_none() {
                    return Err(Error::invalid(format!("adjustments[{i}].id"), "is not a rectification order"));
                }
            }
        }
        let found = self.read(id).await?;
        let grant =
            self.core.permissions().authorize(&caller, Permission::PublicFeedbackHandle, &resource(&found)).await?;
        let call = Call::new(&caller, "/govmedia.audit.v1.PublicFeedbackService/ClosePublicFeedback", request_id, &req);
        let f = self.change(call, &caller, id, grant, &req.etag, |f, now| f.close(adjustments, reason, now)).await?;
        Ok(pb::ClosePublicFeedbackResponse { public_feedback: Some(f) })
    }
}
