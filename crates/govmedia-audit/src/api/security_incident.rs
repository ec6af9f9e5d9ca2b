//! `SecurityIncidentService`: security incidents reported, contained through the
//! services that own what is contained, investigated and closed (R7.1.1, R7.2). The
//! rules are in [`crate::domain::security_incident`]; the calls to content and identity
//! in [`crate::containment`].

use std::sync::Arc;

use chrono::{DateTime, Utc};
use govmedia_domain::Error;
use govmedia_domain::audit::{AuditAction, AuditRecord, AuditResourceRef};
use govmedia_domain::ids::{DepartmentId, PlatformAccountId, SecurityIncidentId};
use govmedia_domain::page;
use govmedia_domain::permission::Permission;
use govmedia_domain::personal::mask_all;
use govmedia_domain::scope::Resource;
use govmedia_domain::validate::Validator;
use govmedia_kit::access::Authorized;
use govmedia_kit::auth::Principal;
use govmedia_kit::config::Secret;
use govmedia_kit::mutation::Call;
use govmedia_kit::wire::{check_etag, etag, next_page_token, one_id, ts, unpack};
use govmedia_proto::audit::v1 as pb;
use govmedia_proto::audit::v1::security_incident_service_server::{
    SecurityIncidentService, SecurityIncidentServiceServer,
};
use tonic::Request;

use crate::Core;
use crate::domain::security_incident::{Incident, Kind, RULE, Severity, State, Step, StepKind};
use crate::store::security_incidents::{self as store, IncidentFilter};

const MAX_TITLE: usize = 200;
const MAX_TEXT: usize = 4000;
const MAX_ACTIONS: usize = 50;

/// The generated server around the handlers.
pub fn server(core: &Arc<Core>) -> SecurityIncidentServiceServer<SecurityIncidents> {
    SecurityIncidentServiceServer::new(SecurityIncidents { core: Arc::clone(core) })
}

/// The handlers.
#[derive(Debug, Clone)]
pub struct SecurityIncidents {
    core: Arc<Core>,
}

fn kind_to(k: Kind) -> pb::SecurityIncidentKind {
    match k {
        Kind::ConfidentialInformationPublished => pb::SecurityIncidentKind::ConfidentialInformationPublished,
        Kind::SeriousWordingError => pb::SecurityIncidentKind::SeriousWordingError,
        Kind::FalseOrWrongPost => pb::SecurityIncidentKind::FalseOrWrongPost,
        Kind::DataLeak => pb::SecurityIncidentKind::DataLeak,
        Kind::AccountAnomaly => pb::SecurityIncidentKind::AccountAnomaly,
    }
}

fn kind_from(k: i32) -> Option<Kind> {
    match pb::SecurityIncidentKind::try_from(k).ok()? {
        pb::SecurityIncidentKind::ConfidentialInformationPublished => Some(Kind::ConfidentialInformationPublished),
        pb::SecurityIncidentKind::SeriousWordingError => Some(Kind::SeriousWordingError),
        pb::SecurityIncidentKind::FalseOrWrongPost => Some(Kind::FalseOrWrongPost),
        pb::SecurityIncidentKind::DataLeak => Some(Kind::DataLeak),
        pb::SecurityIncidentKind::AccountAnomaly => Some(Kind::AccountAnomaly),
        pb::SecurityIncidentKind::Unspecified => None,
    }
}

fn severity_to(s: Severity) -> pb::SecurityIncidentSeverity {
    match s {
        Severity::General => pb::SecurityIncidentSeverity::General,
        Severity::Serious => pb::SecurityIncidentSeverity::Serious,
        Severity::Major => pb::SecurityIncidentSeverity::Major,
    }
}

fn state_to(s: State) -> pb::SecurityIncidentState {
    match s {
        State::Reported => pb::SecurityIncidentState::Reported,
        State::Contained => pb::SecurityIncidentState::Contained,
        State::Investigating => pb::SecurityIncidentState::Investigating,
        State::Closed => pb::SecurityIncidentState::Closed,
    }
}

fn step_to(s: &Step) -> pb::IncidentStep {
    pb::IncidentStep {
        kind: match s.kind {
            StepKind::PublicationRetracted => pb::IncidentStepKind::PublicationRetracted,
            StepKind::AccountFrozen => pb::IncidentStepKind::AccountFrozen,
            StepKind::ContainmentNote => pb::IncidentStepKind::ContainmentNote,
            StepKind::Investigation => pb::IncidentStepKind::Investigation,
            StepKind::ReportedUpward => pb::IncidentStepKind::ReportedUpward,
        } as i32,
        detail: s.detail.clone(),
        actor_id: s.by.to_string(),
        create_time: Some(ts(s.at)),
    }
}

fn incident_to(i: &Incident) -> pb::SecurityIncident {
    pb::SecurityIncident {
        id: i.id.to_string(),
        kind: kind_to(i.kind) as i32,
        severity: severity_to(i.severity) as i32,
        title: i.title.clone(),
        description: i.description.clone(),
        department_id: i.department.to_string(),
        platform_account_id: i.account.map(|a| a.to_string()).unwrap_or_default(),
        publication_id: i.publication.clone().unwrap_or_default(),
        account_incident_id: i.account_incident.clone().unwrap_or_default(),
        state: state_to(i.state) as i32,
        steps: i.steps.iter().map(step_to).collect(),
        reported_upward: i.reported_upward(),
        reported_to: i.reported_to.clone(),
        root_cause: i.root_cause.clone(),
        corrective_actions: i.corrective_actions.clone(),
        reported_by: i.reported_by.to_string(),
        report_time: Some(ts(i.reported_at)),
        closed_by: i.closed_by.map(|p| p.to_string()).unwrap_or_default(),
        close_time: i.closed_at.map(ts),
        etag: etag(i.version),
    }
}

fn audited(i: &Incident) -> AuditResourceRef {
    let mut resource = AuditResourceRef::new("security_incident", i.id);
    resource.department = Some(i.department);
    resource.platform_account = i.account;
    resource
}

fn record(action: AuditAction, caller: &Principal, i: &Incident, now: DateTime<Utc>) -> AuditRecord {
    let rule = if action == AuditAction::SecurityIncidentReported || action == AuditAction::SecurityIncidentLinked {
        i.kind.rule()
    } else {
        RULE
    };
    AuditRecord::new(action, caller.actor(), audited(i), crate::PRODUCER, now)
        .rule(rule)
        .attr("kind", i.kind.as_str())
        .attr("severity", i.severity.as_str())
        .attr("state", i.state.as_str())
        .attr("publication_id", i.publication.clone().unwrap_or_default())
        .attr("account_incident_id", i.account_incident.clone().unwrap_or_default())
        .attr("reported_upward", i.reported_upward())
        .attr("last_step", i.steps.last().map(|s| mask_all(&s.detail)).unwrap_or_default())
}

/// The caller's own access token, to act as the caller at content and identity.
fn bearer<T>(request: &Request<T>) -> Result<Secret, Error> {
    request
        .metadata()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(|t| Secret::new(t.trim()))
        .ok_or_else(|| Error::Unauthenticated("containment acts with the caller's access token".into()))
}

/// What a report says it concerns.
struct Concern {
    department: Option<DepartmentId>,
    account: Option<PlatformAccountId>,
    publication: Option<String>,
    account_incident: Option<String>,
}

/// A validated report.
struct NewIncident {
    kind: Kind,
    severity: Severity,
    title: String,
    description: String,
    concern: Concern,
}

impl TryFrom<&pb::SecurityIncident> for NewIncident {
    type Error = Error;

    fn try_from(i: &pb::SecurityIncident) -> Result<Self, Error> {
        let f = |name: &str| format!("incident.{name}");
        let mut v = Validator::new();
        let kind = kind_from(i.kind);
        if kind.is_none() {
            v.violation(f("kind"), "is required");
        }
        let severity = match pb::SecurityIncidentSeverity::try_from(i.severity) {
            Ok(pb::SecurityIncidentSeverity::General) => Some(Severity::General),
            Ok(pb::SecurityIncidentSeverity::Serious) => Some(Severity::Serious),
            Ok(pb::SecurityIncidentSeverity::Major) => Some(Severity::Major),
            _ => {
                v.violation(f("severity"), "is required: general, serious or major");
                None
            }
        };
        let title = v.required_text(&f("title"), &i.title, MAX_TITLE);
        let description = v.required_text(&f("description"), &i.description, MAX_TEXT);
        let department: Option<DepartmentId> = v.optional_id(&f("department_id"), &i.department_id);
        let account: Option<PlatformAccountId> = v.optional_id(&f("platform_account_id"), &i.platform_account_id);
        let publication = i.publication_id.trim();
        let account_incident = i.account_incident_id.trim();
        if !publication.is_empty() && uuid::Uuid::parse_str(publication).is_err() {
            v.violation(f("publication_id"), "must be a publication's id");
        }
        if !account_incident.is_empty() && uuid::Uuid::parse_str(account_incident).is_err() {
            v.violation(f("account_incident_id"), "must be an account incident's id");
        }
        match kind {
            Some(k) if k.is_content() && publication.is_empty() => {
                v.violation(f("publication_id"), "is required: the publication the incident is about");
            }
            Some(k) if !k.is_content() && !publication.is_empty() => {
                v.violation(f("publication_id"), "only a content incident names a publication");
            }
            _ => {}
        }
        match kind {
            Some(Kind::AccountAnomaly) if account_incident.is_empty() => {
                v.violation(f("account_incident_id"), "is required: identity's incident this links");
            }
            Some(k) if k != Kind::AccountAnomaly && !account_incident.is_empty() => {
                v.violation(f("account_incident_id"), "only an account anomaly links identity's incident");
            }
            _ => {}
        }
        if i.department_id.trim().is_empty() && i.platform_account_id.trim().is_empty() && account_incident.is_empty() {
            v.violation(f("department_id"), "is required when no platform account is named");
        }
        v.finish_with(|| {
            Some(NewIncident {
                kind: kind?,
                severity: severity?,
                title: title?,
                description: description?,
                concern: Concern {
                    department,
                    account,
                    publication: (!publication.is_empty()).then(|| publication.to_owned()),
                    account_incident: (!account_incident.is_empty()).then(|| account_incident.to_owned()),
                },
            })
        })
    }
}

/// The answer every change of one incident stores for replay.
#[derive(Clone, PartialEq, prost::Message)]
struct Wrapped {
    #[prost(message, optional, tag = "1")]
    incident: Option<pb::SecurityIncident>,
}

impl SecurityIncidents {
    async fn read(&self, id: SecurityIncidentId) -> Result<Incident, Error> {
        let mut tx = self.core.db().begin_read().await?;
        store::get(&mut tx, id).await?.ok_or_else(|| Error::not_found("security incident", id))
    }

    /// The department and account a report concerns, from identity: an anomaly's account
    /// is its incident's, an account's department is the one that runs it.
    async fn resolve(&self, mut c: Concern) -> Result<(DepartmentId, Option<PlatformAccountId>, Concern), Error> {
        if let Some(linked) = &c.account_incident {
            let account = self
                .core
                .register()
                .account_incident(linked)
                .await?
                .ok_or_else(|| Error::not_found("account incident", linked))?;
            let account: PlatformAccountId =
                account.parse().map_err(|_| Error::internal("identity answered an account id that is not one"))?;
            if c.account.is_some_and(|given| given != account) {
                return Err(Error::invalid(
                    "incident.platform_account_id",
                    "is not the account of the linked incident",
                ));
            }
            c.account = Some(account);
        }
        let Some(account) = c.account else {
            let department = c.department.ok_or_else(|| Error::invalid("incident.department_id", "is required"))?;
            return Ok((department, None, c));
        };
        match self.core.register().account_department(account).await? {
            None => Err(Error::not_found("platform_account", account)),
            Some(None) => Err(Error::rule(RULE, format!("platform account {account}"), "has no department")),
            Some(Some(d)) if c.department.is_some_and(|g| g != d) => {
                Err(Error::invalid("incident.department_id", "is not the department that runs the account"))
            }
            Some(Some(d)) => Ok((d, Some(account), c)),
        }
    }

    async fn change<Req: prost::Message>(
        &self,
        call: Call<'_, Req>,
        caller: &Principal,
        (id, given_etag): (SecurityIncidentId, &str),
        grant: Authorized,
        change: impl FnOnce(&mut Incident, DateTime<Utc>) -> Result<AuditAction, Error>,
    ) -> Result<pb::SecurityIncident, Error> {
        let answer = self
            .core
            .work()
            .run(call, async |m| {
                let mut i = store::lock(m.tx(), id, &grant).await?;
                check_etag("etag", given_etag, i.version, true)?;
                let previous = i.version;
                let action = change(&mut i, m.now())?;
                store::save(m.tx(), &i, previous).await?;
                m.audit(record(action, caller, &i, m.now()));
                Ok(Wrapped { incident: Some(incident_to(&i)) })
            })
            .await?;
        answer.incident.ok_or_else(|| Error::internal("a change of a security incident answered nothing"))
    }
}

#[govmedia_kit::handlers]
impl SecurityIncidentService for SecurityIncidents {
    async fn report_security_incident(
        &self,
        request: Request<pb::ReportSecurityIncidentRequest>,
    ) -> Result<pb::ReportSecurityIncidentResponse, Error> {
        let (caller, req) = unpack(request)?;
        let mut v = Validator::new();
        let request_id = v.request_id(&req.request_id);
        let new = match req.incident.as_ref() {
            Some(i) => match NewIncident::try_from(i) {
                Ok(n) => Some(n),
                Err(Error::InvalidArgument(found)) => {
                    for f in found {
                        v.violation(f.field, f.description);
                    }
                    None
                }
                Err(e) => return Err(e),
            },
            None => {
                v.violation("incident", "is required");
                None
            }
        };
        let (request_id, new) = v.finish_with(|| Some((request_id?, new?)))?;
        let (department, account, concern) = self.resolve(new.concern).await?;
        let resource =
            account.map_or(Resource::department(department), |a| Resource::platform_account(a, Some(department)));
        self.core.permissions().require(&caller, Permission::SecurityIncidentReport, &resource).await?;
        let call =
            Call::new(&caller, "/govmedia.audit.v1.SecurityIncidentService/ReportSecurityIncident", request_id, &req);
        self.core
            .work()
            .run(call, async |m| {
                let i = Incident {
                    id: SecurityIncidentId::new(),
                    kind: new.kind,
                    severity: new.severity,
                    title: new.title,
                    description: new.description,
                    department,
                    account,
                    publication: concern.publication,
                    account_incident: concern.account_incident,
                    state: State::Reported,
                    steps: Vec::new(),
                    reported_to: String::new(),
                    root_cause: String::new(),
                    corrective_actions: Vec::new(),
                    reported_by: caller.id,
                    reported_at: m.now(),
                    closed_by: None,
                    closed_at: None,
                    version: 1,
                };
                store::insert(m.tx(), &i).await?;
                // An anomaly identity raised is counted once, as identity's report: the
                // link is recorded under its own action.
                let action = if i.account_incident.is_some() {
                    AuditAction::SecurityIncidentLinked
                } else {
                    AuditAction::SecurityIncidentReported
                };
                m.audit(record(action, &caller, &i, m.now()).reason(mask_all(&i.title)));
                Ok(pb::ReportSecurityIncidentResponse { incident: Some(incident_to(&i)) })
            })
            .await
    }

    async fn get_security_incident(
        &self,
        request: Request<pb::GetSecurityIncidentRequest>,
    ) -> Result<pb::GetSecurityIncidentResponse, Error> {
        let (caller, req) = unpack(request)?;
        let id: SecurityIncidentId = one_id("incident_id", &req.incident_id)?;
        let i = self.read(id).await?;
        self.core.permissions().require(&caller, Permission::SecurityIncidentRead, &i.resource()).await?;
        Ok(pb::GetSecurityIncidentResponse { incident: Some(incident_to(&i)) })
    }

    async fn list_security_incidents(
        &self,
        request: Request<pb::ListSecurityIncidentsRequest>,
    ) -> Result<pb::ListSecurityIncidentsResponse, Error> {
        let (caller, req) = unpack(request)?;
        let mut v = Validator::new();
        let department: Option<DepartmentId> = v.optional_id("department_id", &req.department_id);
        let account: Option<PlatformAccountId> = v.optional_id("platform_account_id", &req.platform_account_id);
        let state = match pb::SecurityIncidentState::try_from(req.state) {
            Ok(pb::SecurityIncidentState::Unspecified) => None,
            Ok(pb::SecurityIncidentState::Reported) => Some(State::Reported),
            Ok(pb::SecurityIncidentState::Contained) => Some(State::Contained),
            Ok(pb::SecurityIncidentState::Investigating) => Some(State::Investigating),
            Ok(pb::SecurityIncidentState::Closed) => Some(State::Closed),
            Err(_) => {
                v.violation("state", "is not an incident state");
                None
            }
        };
        let kind = kind_from(req.kind);
        if kind.is_none() && req.kind != 0 {
            v.violation("kind", "is not an incident kind");
        }
        let limit = page::page_size(req.page_size, 50, 500);
        let after: Result<Option<(DateTime<Utc>, String)>, Error> = page::decode_page_token(&req.page_token);
        v.finish()?;
        let (limit, after) = (limit?, after?);
        let scope = department.map_or(Resource::GLOBAL, Resource::department);
        self.core.permissions().require(&caller, Permission::SecurityIncidentRead, &scope).await?;
        let mut tx = self.core.db().begin_read().await?;
        let list = store::list(&mut tx, &IncidentFilter { department, state, kind, account }, after, limit).await?;
        Ok(pb::ListSecurityIncidentsResponse {
            next_page_token: next_page_token(&list, limit, |i| (i.reported_at, i.id.to_string())),
            incidents: list.iter().map(incident_to).collect(),
        })
    }

    async fn contain_security_incident(
        &self,
        request: Request<pb::ContainSecurityIncidentRequest>,
    ) -> Result<pb::ContainSecurityIncidentResponse, Error> {
        let token = bearer(&request)?;
        let (caller, req) = unpack(request)?;
        let mut v = Validator::new();
        let request_id = v.request_id(&req.request_id);
        let id: Option<SecurityIncidentId> = v.id("incident_id", &req.incident_id);
        let note = v.reason("note", &req.note);
        let (request_id, id, note) = v.finish_with(|| Some((request_id?, id?, note?)))?;
        let found = self.read(id).await?;
        let grant =
            self.core.permissions().authorize(&caller, Permission::SecurityIncidentManage, &found.resource()).await?;
        check_etag("etag", &req.etag, found.version, true)?;
        if found.state == State::Closed {
            return Err(Error::rule(RULE, format!("security incident {id}"), "is closed"));
        }
        let reason = format!("Security incident {id}: {note}");
        let key = request_id.to_string();
        let now = self.core.now();
        let mut steps = Vec::new();
        if req.retract_publication {
            let publication = found
                .publication
                .as_deref()
                .ok_or_else(|| Error::invalid("retract_publication", "the incident names no publication"))?;
            let detail = self.core.containment().retract(&token, publication, &reason, &key).await?;
            steps.push(Step { kind: StepKind::PublicationRetracted, detail, by: caller.id, at: now });
        }
        if req.freeze_account {
            let account = found
                .account
                .ok_or_else(|| Error::invalid("freeze_account", "the incident names no platform account"))?;
            let detail = self.core.containment().freeze(&token, account, &reason, &key).await?;
            steps.push(Step { kind: StepKind::AccountFrozen, detail, by: caller.id, at: now });
        }
        steps.push(Step { kind: StepKind::ContainmentNote, detail: note, by: caller.id, at: now });
        let call =
            Call::new(&caller, "/govmedia.audit.v1.SecurityIncidentService/ContainSecurityIncident", request_id, &req);
        let i = self.change(call, &caller, (id, &req.etag), grant, |i, _| i.contain(steps)).await?;
        Ok(pb::ContainSecurityIncidentResponse { incident: Some(i) })
    }

    async fn investigate_security_incident(
        &self,
        request: Request<pb::InvestigateSecurityIncidentRequest>,
    ) -> Result<pb::InvestigateSecurityIncidentResponse, Error> {
        let (caller, req) = unpack(request)?;
        let mut v = Validator::new();
        let request_id = v.request_id(&req.request_id);
        let id: Option<SecurityIncidentId> = v.id("incident_id", &req.incident_id);
        let findings = v.required_text("findings", &req.findings, MAX_TEXT);
        let (request_id, id, findings) = v.finish_with(|| Some((request_id?, id?, findings?)))?;
        let found = self.read(id).await?;
        let grant =
            self.core.permissions().authorize(&caller, Permission::SecurityIncidentManage, &found.resource()).await?;
        let call = Call::new(
            &caller,
            "/govmedia.audit.v1.SecurityIncidentService/InvestigateSecurityIncident",
            request_id,
            &req,
        );
        let by = caller.id;
        let i = self.change(call, &caller, (id, &req.etag), grant, |i, now| i.investigate(findings, by, now)).await?;
        Ok(pb::InvestigateSecurityIncidentResponse { incident: Some(i) })
    }

    async fn report_security_incident_upward(
        &self,
        request: Request<pb::ReportSecurityIncidentUpwardRequest>,
    ) -> Result<pb::ReportSecurityIncidentUpwardResponse, Error> {
        let (caller, req) = unpack(request)?;
        let mut v = Validator::new();
        let request_id = v.request_id(&req.request_id);
        let id: Option<SecurityIncidentId> = v.id("incident_id", &req.incident_id);
        let to = v.required_text("reported_to", &req.reported_to, MAX_TITLE);
        let note = v.optional_text("note", &req.note, MAX_TEXT);
        let (request_id, id, to, note) = v.finish_with(|| Some((request_id?, id?, to?, note?)))?;
        let found = self.read(id).await?;
        let grant =
            self.core.permissions().authorize(&caller, Permission::SecurityIncidentManage, &found.resource()).await?;
        let call = Call::new(
            &caller,
            "/govmedia.audit.v1.SecurityIncidentService/ReportSecurityIncidentUpward",
            request_id,
            &req,
        );
        let by = caller.id;
        let i = self.change(call, &caller, (id, &req.etag), grant, |i, now| i.report_upward(to, note, by, now)).await?;
        Ok(pb::ReportSecurityIncidentUpwardResponse { incident: Some(i) })
    }

    async fn close_security_incident(
        &self,
        request: Request<pb::CloseSecurityIncidentRequest>,
    ) -> Result<pb::CloseSecurityIncidentResponse, Error> {
        let (caller, req) = unpack(request)?;
        let mut v = Validator::new();
        let request_id = v.request_id(&req.request_id);
        let id: Option<SecurityIncidentId> = v.id("incident_id", &req.incident_id);
        let root_cause = v.required_text("root_cause", &req.root_cause, MAX_TEXT);
        if req.corrective_actions.is_empty() || req.corrective_actions.len() > MAX_ACTIONS {
            v.violation("corrective_actions", format!("must hold 1 to {MAX_ACTIONS} actions"));
        }
        let actions: Vec<Option<String>> = req
            .corrective_actions
            .iter()
            .enumerate()
            .map(|(n, a)| v.required_text(&format!("corrective_actions[{n}]"), a, MAX_TEXT))
            .collect();
        let (request_id, id, root_cause) = v.finish_with(|| Some((request_id?, id?, root_cause?)))?;
        let actions: Vec<String> = actions.into_iter().flatten().collect();
        let found = self.read(id).await?;
        let grant =
            self.core.permissions().authorize(&caller, Permission::SecurityIncidentManage, &found.resource()).await?;
        let call =
            Call::new(&caller, "/govmedia.audit.v1.SecurityIncidentService/CloseSecurityIncident", request_id, &req);
        let by = caller.id;
        let i =
            self.change(call, &caller, (id, &req.etag), grant, |i, now| i.close(root_cause, actions, by, now)).await?;
        Ok(pb::CloseSecurityIncidentResponse { incident: Some(i) })
    }
}
