//! `ViolationService`: the violation catalogue, records and their decisions (R9.1,
//! R9.2). Detectors propose ([`crate::violation_watch`]); people decide here.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use govmedia_domain::Error;
use govmedia_domain::audit::AuditAction;
use govmedia_domain::ids::{DepartmentId, PlatformAccountId, RectificationId, UserId, ViolationId};
use govmedia_domain::page;
use govmedia_domain::permission::Permission;
use govmedia_domain::scope::Resource;
use govmedia_domain::validate::Validator;
use govmedia_kit::access::Authorized;
use govmedia_kit::auth::Principal;
use govmedia_kit::mutation::Call;
use govmedia_kit::wire::{check_etag, etag, next_page_token, one_id, ts, unpack};
use govmedia_proto::audit::v1 as pb;
use govmedia_proto::audit::v1::violation_service_server::{ViolationService, ViolationServiceServer};
use tonic::Request;

use crate::Core;
use crate::domain::violation::{CATALOGUE, Facts, MAX_EVIDENCE, Severity, State, Violation, violation_type};
use crate::store::violations::{self as store, ViolationFilter};
use crate::violation_watch::{self as watch, check_evidence};

/// Longest description and handling.
const MAX_TEXT: usize = 4000;

/// The generated server around the handlers.
pub fn server(core: &Arc<Core>) -> ViolationServiceServer<Violations> {
    ViolationServiceServer::new(Violations { core: Arc::clone(core) })
}

/// The handlers.
#[derive(Debug, Clone)]
pub struct Violations {
    core: Arc<Core>,
}

fn severity_to(s: Severity) -> pb::ViolationSeverity {
    match s {
        Severity::Minor => pb::ViolationSeverity::Minor,
        Severity::Serious => pb::ViolationSeverity::Serious,
        Severity::Grave => pb::ViolationSeverity::Grave,
    }
}

/// A severity field: `Ok(None)` when unspecified.
fn severity_from(v: &mut Validator, field: &str, s: i32) -> Option<Severity> {
    match pb::ViolationSeverity::try_from(s) {
        Ok(pb::ViolationSeverity::Unspecified) => None,
        Ok(pb::ViolationSeverity::Minor) => Some(Severity::Minor),
        Ok(pb::ViolationSeverity::Serious) => Some(Severity::Serious),
        Ok(pb::ViolationSeverity::Grave) => Some(Severity::Grave),
        Err(_) => {
            v.violation(field, "is not a severity");
            None
        }
    }
}

fn state_to(s: State) -> pb::ViolationState {
    match s {
        State::Proposed => pb::ViolationState::Proposed,
        State::Confirmed => pb::ViolationState::Confirmed,
        State::Dismissed => pb::ViolationState::Dismissed,
    }
}

fn violation_to(v: &Violation) -> pb::Violation {
    pb::Violation {
        id: v.id.to_string(),
        violation_type: v.facts.kind.code.to_owned(),
        rule_id: v.facts.kind.rule_id.to_owned(),
        responsible_user_id: v.facts.responsible.to_string(),
        department_id: v.facts.department.map(|d| d.to_string()).unwrap_or_default(),
        platform_account_id: v.facts.account.map(|a| a.to_string()).unwrap_or_default(),
        description: v.facts.description.clone(),
        evidence_event_ids: v.facts.evidence.clone(),
        severity: severity_to(v.severity) as i32,
        state: state_to(v.state) as i32,
        detector: v.detector.clone(),
        create_time: Some(ts(v.created_at)),
        handling: v.handling.clone(),
        decided_by: v.decided_by.map(|p| p.to_string()).unwrap_or_default(),
        decide_time: v.decided_at.map(ts),
        rectification_id: v.rectification.map(|r| r.to_string()).unwrap_or_default(),
        etag: etag(v.version),
    }
}

fn resource_of(department: Option<DepartmentId>, account: Option<PlatformAccountId>) -> Resource {
    match (department, account) {
        (Some(d), Some(a)) => Resource::platform_account(a, Some(d)),
        (Some(d), None) => Resource::department(d),
        (None, _) => Resource::GLOBAL,
    }
}

fn resource(v: &Violation) -> Resource {
    resource_of(v.facts.department, v.facts.account)
}

/// The answer every decision stores for replay.
#[derive(Clone, PartialEq, prost::Message)]
struct Wrapped {
    #[prost(message, optional, tag = "1")]
    violation: Option<pb::Violation>,
}

/// A validated RecordViolation.
struct NewRecord {
    facts: Facts,
    severity: Option<Severity>,
    handling: String,
    rectification: Option<RectificationId>,
}

fn parse_record(v: &mut Validator, req: &pb::RecordViolationRequest) -> Option<NewRecord> {
    let handling = v.required_text("handling", &req.handling, MAX_TEXT);
    let Some(r) = req.violation.as_ref() else {
        v.violation("violation", "is required");
        return None;
    };
    let kind = violation_type(&r.violation_type);
    if kind.is_none() {
        v.violation("violation.violation_type", "is not in the catalogue (ListViolationTypes)");
    }
    let responsible: Option<UserId> = v.id("violation.responsible_user_id", &r.responsible_user_id);
    let department: Option<DepartmentId> = v.id("violation.department_id", &r.department_id);
    let account: Option<PlatformAccountId> = v.optional_id("violation.platform_account_id", &r.platform_account_id);
    let description = v.required_text("violation.description", &r.description, MAX_TEXT);
    if r.evidence_event_ids.is_empty() || r.evidence_event_ids.len() > MAX_EVIDENCE {
        v.violation("violation.evidence_event_ids", format!("must name 1 to {MAX_EVIDENCE} audit events"));
    }
    let severity = severity_from(v, "violation.severity", r.severity);
    let rectification: Option<RectificationId> = v.optional_id("violation.rectification_id", &r.rectification_id);
    Some(NewRecord {
        facts: Facts {
            kind: kind?,
            responsible: responsible?,
            department: Some(department?),
            account,
            description: description?,
            evidence: r.evidence_event_ids.clone(),
        },
        severity,
        handling: handling?,
        rectification,
    })
}

impl Violations {
    async fn read(&self, id: ViolationId) -> Result<Violation, Error> {
        let mut tx = self.core.db().begin_read().await?;
        store::get(&mut tx, id).await?.ok_or_else(|| Error::not_found("violation", id))
    }

    /// NOT_FOUND unless the rectification order exists.
    async fn check_rectification(&self, r: Option<RectificationId>) -> Result<(), Error> {
        if let Some(r) = r {
            let mut tx = self.core.db().begin_read().await?;
            if crate::store::rectifications::get(&mut tx, r).await?.is_none() {
                return Err(Error::not_found("rectification", r));
            }
        }
        Ok(())
    }

    async fn decide<Req: prost::Message>(
        &self,
        call: Call<'_, Req>,
        caller: &Principal,
        id: ViolationId,
        grant: Authorized,
        given_etag: &str,
        decision: impl FnOnce(&mut Violation, DateTime<Utc>) -> Result<AuditAction, Error>,
    ) -> Result<pb::Violation, Error> {
        let answer = self
            .core
            .work()
            .run(call, async |m| {
                let mut v = store::lock(m.tx(), id, &grant).await?;
                check_etag("etag", given_etag, v.version, true)?;
                let previous = v.version;
                let action = decision(&mut v, m.now())?;
                store::save(m.tx(), &v, previous).await?;
                watch::record(m, action, &v, caller.actor());
                Ok(Wrapped { violation: Some(violation_to(&v)) })
            })
            .await?;
        answer.violation.ok_or_else(|| Error::internal("a decision on a violation answered nothing"))
    }
}

#[govmedia_kit::handlers]
impl ViolationService for Violations {
    async fn list_violation_types(
        &self,
        request: Request<pb::ListViolationTypesRequest>,
    ) -> Result<pb::ListViolationTypesResponse, Error> {
        let (caller, req) = unpack(request)?;
        let limit = page::page_size(req.page_size, 50, 500)?;
        let after: Option<usize> = page::decode_page_token(&req.page_token)?;
        self.core.permissions().require(&caller, Permission::ViolationRead, &Resource::GLOBAL).await?;
        let start = after.map_or(0, |i| i + 1);
        let page: Vec<(usize, pb::ViolationType)> = CATALOGUE
            .iter()
            .enumerate()
            .skip(start)
            .take(usize::try_from(limit).unwrap_or(usize::MAX))
            .map(|(i, t)| {
                (
                    i,
                    pb::ViolationType {
                        code: t.code.to_owned(),
                        title: t.title.to_owned(),
                        rule_id: t.rule_id.to_owned(),
                        default_severity: severity_to(t.default_severity) as i32,
                    },
                )
            })
            .collect();
        let next = page.last().map(|(i, _)| *i).filter(|i| i + 1 < CATALOGUE.len());
        Ok(pb::ListViolationTypesResponse {
            next_page_token: next.map(|i| page::encode_page_token(&i)).unwrap_or_default(),
            violation_types: page.into_iter().map(|(_, t)| t).collect(),
        })
    }

    async fn record_violation(
        &self,
        request: Request<pb::RecordViolationRequest>,
    ) -> Result<pb::RecordViolationResponse, Error> {
        let (caller, req) = unpack(request)?;
        let mut v = Validator::new();
        let request_id = v.request_id(&req.request_id);
        let record = parse_record(&mut v, &req);
        let (request_id, record) = v.finish_with(|| Some((request_id?, record?)))?;
        self.core
            .permissions()
            .require(&caller, Permission::ViolationManage, &resource_of(record.facts.department, record.facts.account))
            .await?;
        check_evidence(&self.core, &record.facts.evidence).await?;
        self.check_rectification(record.rectification).await?;
        let call = Call::new(&caller, "/govmedia.audit.v1.ViolationService/RecordViolation", request_id, &req);
        self.core
            .work()
            .run(call, async |m| {
                let violation = Violation::record(
                    caller.id,
                    record.facts,
                    record.severity,
                    record.handling,
                    record.rectification,
                    m.now(),
                )?;
                store::insert_new(m.tx(), &violation).await?;
                watch::record(m, AuditAction::ViolationRecorded, &violation, caller.actor());
                Ok(pb::RecordViolationResponse { violation: Some(violation_to(&violation)) })
            })
            .await
    }

    async fn get_violation(
        &self,
        request: Request<pb::GetViolationRequest>,
    ) -> Result<pb::GetViolationResponse, Error> {
        let (caller, req) = unpack(request)?;
        let id: ViolationId = one_id("violation_id", &req.violation_id)?;
        let found = self.read(id).await?;
        self.core.permissions().require(&caller, Permission::ViolationRead, &resource(&found)).await?;
        Ok(pb::GetViolationResponse { violation: Some(violation_to(&found)) })
    }

    async fn list_violations(
        &self,
        request: Request<pb::ListViolationsRequest>,
    ) -> Result<pb::ListViolationsResponse, Error> {
        let (caller, req) = unpack(request)?;
        let mut v = Validator::new();
        let department: Option<DepartmentId> = v.optional_id("department_id", &req.department_id);
        let responsible: Option<UserId> = v.optional_id("responsible_user_id", &req.responsible_user_id);
        let state = match pb::ViolationState::try_from(req.state) {
            Ok(pb::ViolationState::Unspecified) => None,
            Ok(pb::ViolationState::Proposed) => Some(State::Proposed),
            Ok(pb::ViolationState::Confirmed) => Some(State::Confirmed),
            Ok(pb::ViolationState::Dismissed) => Some(State::Dismissed),
            Err(_) => {
                v.violation("state", "is not a violation state");
                None
            }
        };
        let limit = page::page_size(req.page_size, 50, 500);
        let after: Result<Option<(DateTime<Utc>, String)>, Error> = page::decode_page_token(&req.page_token);
        v.finish()?;
        let (limit, after) = (limit?, after?);
        let scope = department.map_or(Resource::GLOBAL, Resource::department);
        self.core.permissions().require(&caller, Permission::ViolationRead, &scope).await?;
        let filter = ViolationFilter { department, state, responsible };
        let mut tx = self.core.db().begin_read().await?;
        let list = store::list(&mut tx, &filter, after, limit).await?;
        Ok(pb::ListViolationsResponse {
            next_page_token: next_page_token(&list, limit, |v| (v.created_at, v.id.to_string())),
            violations: list.iter().map(violation_to).collect(),
        })
    }

    async fn confirm_violation(
        &self,
        request: Request<pb::ConfirmViolationRequest>,
    ) -> Result<pb::ConfirmViolationResponse, Error> {
        let (caller, req) = unpack(request)?;
        let mut v = Validator::new();
        let request_id = v.request_id(&req.request_id);
        let id: Option<ViolationId> = v.id("violation_id", &req.violation_id);
        let handling = v.required_text("handling", &req.handling, MAX_TEXT);
        let severity = severity_from(&mut v, "severity", req.severity);
        let rectification: Option<RectificationId> = v.optional_id("rectification_id", &req.rectification_id);
        let (request_id, id, handling) = v.finish_with(|| Some((request_id?, id?, handling?)))?;
        let found = self.read(id).await?;
        let grant = self.core.permissions().authorize(&caller, Permission::ViolationManage, &resource(&found)).await?;
        self.check_rectification(rectification).await?;
        let call = Call::new(&caller, "/govmedia.audit.v1.ViolationService/ConfirmViolation", request_id, &req);
        let by = caller.id;
        let violation = self
            .decide(call, &caller, id, grant, &req.etag, |v, now| v.confirm(by, handling, severity, rectification, now))
            .await?;
        Ok(pb::ConfirmViolationResponse { violation: Some(violation) })
    }

    async fn dismiss_violation(
        &self,
        request: Request<pb::DismissViolationRequest>,
    ) -> Result<pb::DismissViolationResponse, Error> {
        let (caller, req) = unpack(request)?;
        let mut v = Validator::new();
        let request_id = v.request_id(&req.request_id);
        let id: Option<ViolationId> = v.id("violation_id", &req.violation_id);
        let reason = v.reason("reason", &req.reason);
        let (request_id, id, reason) = v.finish_with(|| Some((request_id?, id?, reason?)))?;
        let found = self.read(id).await?;
        let grant = self.core.permissions().authorize(&caller, Permission::ViolationManage, &resource(&found)).await?;
        let call = Call::new(&caller, "/govmedia.audit.v1.ViolationService/DismissViolation", request_id, &req);
        let by = caller.id;
        let violation = self.decide(call, &caller, id, grant, &req.etag, |v, now| v.dismiss(by, reason, now)).await?;
        Ok(pb::DismissViolationResponse { violation: Some(violation) })
    }

    async fn run_violation_detectors(
        &self,
        request: Request<pb::RunViolationDetectorsRequest>,
    ) -> Result<pb::RunViolationDetectorsResponse, Error> {
        let (caller, req) = unpack(request)?;
        let mut v = Validator::new();
        let request_id = v.request_id(&req.request_id);
        let request_id = v.finish_with(|| request_id)?;
        self.core.permissions().require(&caller, Permission::ViolationManage, &Resource::GLOBAL).await?;
        let found = watch::findings(&self.core, self.core.now()).await?;
        let call = Call::new(&caller, "/govmedia.audit.v1.ViolationService/RunViolationDetectors", request_id, &req);
        let actor = caller.actor();
        self.core
            .work()
            .run(call, async |m| {
                let proposed = watch::propose(m, found, &actor).await?;
                Ok(pb::RunViolationDetectorsResponse { proposed: u32::try_from(proposed).unwrap_or(u32::MAX) })
            })
            .await
    }
}
