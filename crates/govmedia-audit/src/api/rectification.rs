//! `RectificationService`: rectification orders tracked to the end (R8.1.2). Handlers
//! check the request, ask identity and the permission before any transaction, and say
//! what changes; the rules are in [`crate::domain::rectification`].

use std::sync::Arc;

use chrono::{DateTime, Utc};
use govmedia_domain::Error;
use govmedia_domain::audit::{AuditAction, AuditRecord, AuditResourceRef};
use govmedia_domain::ids::{DepartmentId, PlatformAccountId, RectificationId, UserId};
use govmedia_domain::page;
use govmedia_domain::permission::Permission;
use govmedia_domain::scope::Resource;
use govmedia_domain::validate::Validator;
use govmedia_kit::auth::Principal;
use govmedia_kit::mutation::Call;
use govmedia_kit::wire::{check_etag, etag, next_page_token, one_id, ts, unpack};
use govmedia_proto::audit::v1 as pb;
use govmedia_proto::audit::v1::rectification_service_server::{RectificationService, RectificationServiceServer};
use tonic::Request;

use crate::Core;
use crate::domain::rectification::{Evidence, MAX_WORKING_DAYS, NewRectification, RULE, Rectification, Source, State};
use crate::store::rectifications::{self as store, RectificationFilter};

/// Longest title, requirement, evidence description and link.
const MAX_TITLE: usize = 200;
const MAX_REQUIREMENT: usize = 4000;
const MAX_DESCRIPTION: usize = 4000;
const MAX_URI: usize = 1000;

/// The generated server around the handlers.
pub fn server(core: &Arc<Core>) -> RectificationServiceServer<Rectifications> {
    RectificationServiceServer::new(Rectifications { core: Arc::clone(core) })
}

/// The handlers.
#[derive(Debug, Clone)]
pub struct Rectifications {
    core: Arc<Core>,
}

fn source_to(s: Source) -> pb::FindingSource {
    match s {
        Source::SecurityCheck => pb::FindingSource::SecurityCheck,
        Source::Inspection => pb::FindingSource::Inspection,
        Source::Incident => pb::FindingSource::Incident,
        Source::PublicFeedback => pb::FindingSource::PublicFeedback,
        Source::Compliance => pb::FindingSource::Compliance,
        Source::Violation => pb::FindingSource::Violation,
        Source::Other => pb::FindingSource::Other,
    }
}

fn source_from(s: i32) -> Option<Source> {
    match pb::FindingSource::try_from(s).ok()? {
        pb::FindingSource::SecurityCheck => Some(Source::SecurityCheck),
        pb::FindingSource::Inspection => Some(Source::Inspection),
        pb::FindingSource::Incident => Some(Source::Incident),
        pb::FindingSource::PublicFeedback => Some(Source::PublicFeedback),
        pb::FindingSource::Compliance => Some(Source::Compliance),
        pb::FindingSource::Violation => Some(Source::Violation),
        pb::FindingSource::Other => Some(Source::Other),
        pb::FindingSource::Unspecified => None,
    }
}

fn state_to(s: State) -> pb::RectificationState {
    match s {
        State::InProgress => pb::RectificationState::InProgress,
        State::Submitted => pb::RectificationState::Submitted,
        State::Verified => pb::RectificationState::Verified,
        State::Cancelled => pb::RectificationState::Cancelled,
    }
}

fn rectification_to(r: &Rectification, now: DateTime<Utc>) -> pb::Rectification {
    let o = &r.order;
    pb::Rectification {
        id: r.id.to_string(),
        source: source_to(o.source) as i32,
        source_id: o.source_id.clone(),
        department_id: o.department.to_string(),
        responsible_user_id: o.responsible.to_string(),
        platform_account_id: o.account.map(|a| a.to_string()).unwrap_or_default(),
        title: o.title.clone(),
        requirement: o.requirement.clone(),
        rule_id: o.rule_id.clone(),
        working_days: o.working_days,
        due_date: r.due_date.to_string(),
        due_time: Some(ts(r.due_at)),
        state: state_to(r.state) as i32,
        overdue: r.is_overdue(now),
        issued_by: r.issued_by.to_string(),
        issue_time: Some(ts(r.issued_at)),
        evidence: r.evidence.as_ref().map(|e| pb::RectificationEvidence {
            description: e.description.clone(),
            uri: e.uri.clone(),
            sha256: e.sha256.clone(),
        }),
        submit_time: r.submitted_at.map(ts),
        verified_by: r.verified_by.map(|p| p.to_string()).unwrap_or_default(),
        verify_time: r.verified_at.map(ts),
        verification_note: r.note.clone(),
        return_count: r.return_count,
        etag: etag(r.version),
    }
}

/// The order as a permission resource: its account in its department, or its department.
fn resource_of(department: DepartmentId, account: Option<PlatformAccountId>) -> Resource {
    account.map_or(Resource::department(department), |a| Resource::platform_account(a, Some(department)))
}

fn resource(r: &Rectification) -> Resource {
    resource_of(r.order.department, r.order.account)
}

/// The order as the audit log names it.
fn audited(r: &Rectification) -> AuditResourceRef {
    let mut resource = AuditResourceRef::new("rectification", r.id);
    resource.department = Some(r.order.department);
    resource.platform_account = r.order.account;
    resource
}

fn is_rule_id(s: &str) -> bool {
    s.starts_with('R') && s.len() > 1 && s[1..].chars().all(|c| c.is_ascii_digit() || c == '.')
}

impl TryFrom<&pb::Rectification> for NewRectification {
    type Error = Error;

    fn try_from(r: &pb::Rectification) -> Result<Self, Error> {
        let f = |name: &str| format!("rectification.{name}");
        let mut v = Validator::new();
        let source = source_from(r.source);
        if source.is_none() {
            v.violation(f("source"), "is required: what found the problem");
        }
        let source_id = v.optional_text(&f("source_id"), &r.source_id, 100);
        let department: Option<DepartmentId> = v.id(&f("department_id"), &r.department_id);
        let responsible: Option<UserId> = v.id(&f("responsible_user_id"), &r.responsible_user_id);
        let account: Option<PlatformAccountId> = v.optional_id(&f("platform_account_id"), &r.platform_account_id);
        let title = v.required_text(&f("title"), &r.title, MAX_TITLE);
        let requirement = v.required_text(&f("requirement"), &r.requirement, MAX_REQUIREMENT);
        let rule_id = r.rule_id.trim();
        if !is_rule_id(rule_id) {
            v.violation(f("rule_id"), "must be a rule id of the regulation, such as R3.2.3");
        }
        if !(1..=MAX_WORKING_DAYS).contains(&r.working_days) {
            v.violation(f("working_days"), format!("must be 1 to {MAX_WORKING_DAYS} working days"));
        }
        v.finish_with(|| {
            Some(NewRectification {
                source: source?,
                source_id: source_id?,
                department: department?,
                responsible: responsible?,
                account,
                title: title?,
                requirement: requirement?,
                rule_id: rule_id.to_owned(),
                working_days: r.working_days,
            })
        })
    }
}

fn evidence_from(v: &mut Validator, e: Option<&pb::RectificationEvidence>) -> Option<Evidence> {
    let Some(e) = e else {
        v.violation("evidence", "is required: what was done, and where the evidence is");
        return None;
    };
    let description = v.required_text("evidence.description", &e.description, MAX_DESCRIPTION);
    let uri = v.optional_text("evidence.uri", &e.uri, MAX_URI);
    let sha256 = e.sha256.trim().to_ascii_lowercase();
    if !sha256.is_empty() && (sha256.len() != 64 || !sha256.chars().all(|c| c.is_ascii_hexdigit())) {
        v.violation("evidence.sha256", "must be 64 hexadecimal digits");
    }
    Some(Evidence { description: description?, uri: uri?, sha256 })
}

/// A validated ListRectifications.
struct ListQuery {
    filter: RectificationFilter,
    overdue_only: bool,
    limit: u32,
    after: Option<(DateTime<Utc>, String)>,
}

impl TryFrom<&pb::ListRectificationsRequest> for ListQuery {
    type Error = Error;

    fn try_from(req: &pb::ListRectificationsRequest) -> Result<Self, Error> {
        let mut v = Validator::new();
        let department: Option<DepartmentId> = v.optional_id("department_id", &req.department_id);
        let responsible: Option<UserId> = v.optional_id("responsible_user_id", &req.responsible_user_id);
        let account: Option<PlatformAccountId> = v.optional_id("platform_account_id", &req.platform_account_id);
        let state = match pb::RectificationState::try_from(req.state) {
            Ok(pb::RectificationState::Unspecified) => None,
            Ok(pb::RectificationState::InProgress) => Some(State::InProgress),
            Ok(pb::RectificationState::Submitted) => Some(State::Submitted),
            Ok(pb::RectificationState::Verified) => Some(State::Verified),
            Ok(pb::RectificationState::Cancelled) => Some(State::Cancelled),
            Err(_) => {
                v.violation("state", "is not a rectification state");
                None
            }
        };
        let limit = page::page_size(req.page_size, 50, 500);
        let after = page::decode_page_token(&req.page_token);
        v.finish()?;
        Ok(Self {
            filter: RectificationFilter { department, state, overdue_at: None, responsible, account },
            overdue_only: req.overdue_only,
            limit: limit?,
            after: after?,
        })
    }
}

impl Rectifications {
    async fn read(&self, id: RectificationId) -> Result<Rectification, Error> {
        let mut tx = self.core.db().begin_read().await?;
        store::get(&mut tx, id).await?.ok_or_else(|| Error::not_found("rectification", id))
    }

    /// Reads an order for a change by `caller` holding `permission` over it: the grant a
    /// lock needs, asked before any transaction begins.
    async fn authorize(
        &self,
        caller: &Principal,
        id: RectificationId,
        permission: Permission,
    ) -> Result<govmedia_kit::access::Authorized, Error> {
        let found = self.read(id).await?;
        self.core.permissions().authorize(caller, permission, &resource(&found)).await
    }

    /// Runs a change of one order and records it.
    async fn change<Req: prost::Message>(
        &self,
        call: Call<'_, Req>,
        caller: &Principal,
        id: RectificationId,
        grant: govmedia_kit::access::Authorized,
        given_etag: &str,
        change: impl FnOnce(&mut Rectification, DateTime<Utc>) -> Result<AuditAction, Error>,
    ) -> Result<pb::Rectification, Error> {
        let answer = self
            .core
            .work()
            .run(call, async |m| {
                let mut r = store::lock(m.tx(), id, &grant).await?;
                check_etag("etag", given_etag, r.version, true)?;
                let previous = r.version;
                let action = change(&mut r, m.now())?;
                store::save(m.tx(), &r, previous).await?;
                m.audit(
                    AuditRecord::new(action, caller.actor(), audited(&r), crate::PRODUCER, m.now())
                        .rule(RULE)
                        .reason(r.note.clone())
                        .attr("state", r.state.as_str())
                        .attr("responsible_user_id", r.order.responsible)
                        .attr("due_date", r.due_date)
                        .attr("return_count", r.return_count),
                );
                Ok(Wrapped { rectification: Some(rectification_to(&r, m.now())) })
            })
            .await?;
        answer.rectification.ok_or_else(|| Error::internal("a change of a rectification answered nothing"))
    }
}

/// The answer every change of one order stores for replay.
#[derive(Clone, PartialEq, prost::Message)]
struct Wrapped {
    #[prost(message, optional, tag = "1")]
    rectification: Option<pb::Rectification>,
}

#[govmedia_kit::handlers]
impl RectificationService for Rectifications {
    async fn issue_rectification(
        &self,
        request: Request<pb::IssueRectificationRequest>,
    ) -> Result<pb::IssueRectificationResponse, Error> {
        let (caller, req) = unpack(request)?;
        let mut v = Validator::new();
        let request_id = v.request_id(&req.request_id);
        let order = match req.rectification.as_ref() {
            Some(r) => match NewRectification::try_from(r) {
                Ok(o) => Some(o),
                Err(Error::InvalidArgument(found)) => {
                    for f in found {
                        v.violation(f.field, f.description);
                    }
                    None
                }
                Err(e) => return Err(e),
            },
            None => {
                v.violation("rectification", "is required");
                None
            }
        };
        let (request_id, order) = v.finish_with(|| Some((request_id?, order?)))?;
        self.core
            .permissions()
            .require(&caller, Permission::RectificationIssue, &resource_of(order.department, order.account))
            .await?;
        // Who and what the order names are checked with identity before anything is written.
        let person = self.core.register().user(order.responsible).await?;
        if !person.is_some_and(|p| p.active && p.department == Some(order.department)) {
            return Err(Error::rule(
                RULE,
                format!("user {}", order.responsible),
                "the person responsible must be an active user of the department that must rectify",
            ));
        }
        if let Some(account) = order.account {
            match self.core.register().account_department(account).await? {
                None => return Err(Error::not_found("platform_account", account)),
                Some(d) if d != Some(order.department) => {
                    return Err(Error::rule(
                        RULE,
                        format!("platform account {account}"),
                        "the account is run by another department: issue the order to that department",
                    ));
                }
                Some(_) => {}
            }
        }
        let call = Call::new(&caller, "/govmedia.audit.v1.RectificationService/IssueRectification", request_id, &req);
        let zone = self.core.time_zone();
        let calendar = self.core.calendar().clone();
        self.core
            .work()
            .run(call, async |m| {
                let r = Rectification::issue(order, caller.id, m.now(), zone, &calendar);
                store::insert(m.tx(), &r).await?;
                m.audit(
                    AuditRecord::new(
                        AuditAction::RectificationIssued,
                        caller.actor(),
                        audited(&r),
                        crate::PRODUCER,
                        m.now(),
                    )
                    .rule(RULE)
                    .reason(r.order.title.clone())
                    .attr("source", r.order.source.as_str())
                    .attr("source_id", &r.order.source_id)
                    .attr("responsible_user_id", r.order.responsible)
                    .attr("violated_rule_id", &r.order.rule_id)
                    .attr("working_days", r.order.working_days)
                    .attr("due_date", r.due_date),
                );
                Ok(pb::IssueRectificationResponse { rectification: Some(rectification_to(&r, m.now())) })
            })
            .await
    }

    async fn get_rectification(
        &self,
        request: Request<pb::GetRectificationRequest>,
    ) -> Result<pb::GetRectificationResponse, Error> {
        let (caller, req) = unpack(request)?;
        let id: RectificationId = one_id("rectification_id", &req.rectification_id)?;
        let r = self.read(id).await?;
        self.core.permissions().require(&caller, Permission::RectificationRead, &resource(&r)).await?;
        Ok(pb::GetRectificationResponse { rectification: Some(rectification_to(&r, self.core.now())) })
    }

    async fn list_rectifications(
        &self,
        request: Request<pb::ListRectificationsRequest>,
    ) -> Result<pb::ListRectificationsResponse, Error> {
        let (caller, req) = unpack(request)?;
        let mut q = ListQuery::try_from(&req)?;
        // A department reads its own orders; one account's through its department; all
        // of them needs the bureau.
        let scope = match (q.filter.department, q.filter.account) {
            (Some(d), a) => resource_of(d, a),
            (None, Some(a)) => match self.core.register().account_department(a).await? {
                Some(Some(d)) => resource_of(d, Some(a)),
                _ => Resource::GLOBAL,
            },
            (None, None) => Resource::GLOBAL,
        };
        self.core.permissions().require(&caller, Permission::RectificationRead, &scope).await?;
        if q.filter.department.is_none() {
            q.filter.department = scope.department;
        }
        let now = self.core.now();
        if q.overdue_only {
            q.filter.overdue_at = Some(now);
        }
        let mut tx = self.core.db().begin_read().await?;
        let list = store::list(&mut tx, &q.filter, q.after, q.limit).await?;
        Ok(pb::ListRectificationsResponse {
            next_page_token: next_page_token(&list, q.limit, |r| (r.due_at, r.id.to_string())),
            rectifications: list.iter().map(|r| rectification_to(r, now)).collect(),
        })
    }

    async fn submit_rectification_evidence(
        &self,
        request: Request<pb::SubmitRectificationEvidenceRequest>,
    ) -> Result<pb::SubmitRectificationEvidenceResponse, Error> {
        let (caller, req) = unpack(request)?;
        let mut v = Validator::new();
        let request_id = v.request_id(&req.request_id);
        let id: Option<RectificationId> = v.id("rectification_id", &req.rectification_id);
        let evidence = evidence_from(&mut v, req.evidence.as_ref());
        let (request_id, id, evidence) = v.finish_with(|| Some((request_id?, id?, evidence?)))?;
        let grant = self.authorize(&caller, id, Permission::RectificationRespond).await?;
        let call =
            Call::new(&caller, "/govmedia.audit.v1.RectificationService/SubmitRectificationEvidence", request_id, &req);
        let by = caller.id;
        let r = self.change(call, &caller, id, grant, &req.etag, |r, now| r.submit(by, evidence, now)).await?;
        Ok(pb::SubmitRectificationEvidenceResponse { rectification: Some(r) })
    }

    async fn verify_rectification(
        &self,
        request: Request<pb::VerifyRectificationRequest>,
    ) -> Result<pb::VerifyRectificationResponse, Error> {
        let (caller, req) = unpack(request)?;
        let mut v = Validator::new();
        let request_id = v.request_id(&req.request_id);
        let id: Option<RectificationId> = v.id("rectification_id", &req.rectification_id);
        let note = if req.accepted {
            v.optional_text("note", &req.note, MAX_DESCRIPTION)
        } else {
            v.reason("note", &req.note)
        };
        let (request_id, id, note) = v.finish_with(|| Some((request_id?, id?, note?)))?;
        let grant = self.authorize(&caller, id, Permission::RectificationIssue).await?;
        let call = Call::new(&caller, "/govmedia.audit.v1.RectificationService/VerifyRectification", request_id, &req);
        let (by, accepted) = (caller.id, req.accepted);
        let r = self.change(call, &caller, id, grant, &req.etag, |r, now| r.verify(by, accepted, note, now)).await?;
        Ok(pb::VerifyRectificationResponse { rectification: Some(r) })
    }

    async fn cancel_rectification(
        &self,
        request: Request<pb::CancelRectificationRequest>,
    ) -> Result<pb::CancelRectificationResponse, Error> {
        let (caller, req) = unpack(request)?;
        let mut v = Validator::new();
        let request_id = v.request_id(&req.request_id);
        let id: Option<RectificationId> = v.id("rectification_id", &req.rectification_id);
        let reason = v.reason("reason", &req.reason);
        let (request_id, id, reason) = v.finish_with(|| Some((request_id?, id?, reason?)))?;
        let grant = self.authorize(&caller, id, Permission::RectificationIssue).await?;
        let call = Call::new(&caller, "/govmedia.audit.v1.RectificationService/CancelRectification", request_id, &req);
        let by = caller.id;
        let r = self.change(call, &caller, id, grant, &req.etag, |r, now| r.cancel(by, reason, now)).await?;
        Ok(pb::CancelRectificationResponse { rectification: Some(r) })
    }
}
