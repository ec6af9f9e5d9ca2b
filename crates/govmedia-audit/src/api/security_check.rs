//! `SecurityCheckService`: versioned checklists, schedules, checks and the hidden dangers
//! they find (R7.2.2). Handlers check the request, ask identity and the permission before
//! any transaction, and say what changes; the rules are in
//! [`crate::domain::security_check`].

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use govmedia_domain::Error;
use govmedia_domain::audit::{AuditAction, AuditRecord, AuditResourceRef};
use govmedia_domain::ids::{
    DepartmentId, HiddenDangerId, PlatformAccountId, SecurityCheckId, SecurityCheckScheduleId, SecurityChecklistId,
    UserId,
};
use govmedia_domain::page;
use govmedia_domain::permission::Permission;
use govmedia_domain::personal::mask_all;
use govmedia_domain::scope::Resource;
use govmedia_domain::validate::Validator;
use govmedia_kit::access::Authorized;
use govmedia_kit::auth::Principal;
use govmedia_kit::mutation::Call;
use govmedia_kit::wire::{check_etag, etag, next_page_token, one_id, ts, unpack};
use govmedia_proto::audit::v1 as pb;
use govmedia_proto::audit::v1::security_check_service_server::{SecurityCheckService, SecurityCheckServiceServer};
use tonic::Request;

use crate::Core;
use crate::domain::security_check::{
    Check, CheckItem, CheckState, Checklist, ChecklistItem, ChecklistVersion, DangerState, HazardSpec, HiddenDanger,
    ItemResult, MAX_INTERVAL_DAYS, MAX_ITEMS, MAX_WORKING_DAYS, RULE, Recorded, Schedule, ScheduleState, Severity,
    Target, is_item_code,
};
use crate::store::security_checks::{self as store, CheckFilter, DangerFilter};

const MAX_NAME: usize = 200;
const MAX_TEXT: usize = 2000;
const MAX_CONCLUSION: usize = 4000;

/// The generated server around the handlers.
pub fn server(core: &Arc<Core>) -> SecurityCheckServiceServer<SecurityChecks> {
    SecurityCheckServiceServer::new(SecurityChecks { core: Arc::clone(core) })
}

/// The handlers.
#[derive(Debug, Clone)]
pub struct SecurityChecks {
    core: Arc<Core>,
}

// ---- conversions

fn item_to(i: &ChecklistItem) -> pb::SecurityChecklistItem {
    pb::SecurityChecklistItem { code: i.code.clone(), text: i.text.clone(), guidance: i.guidance.clone() }
}

fn checklist_to(c: &Checklist, v: &ChecklistVersion) -> pb::SecurityChecklist {
    pb::SecurityChecklist {
        id: c.id.to_string(),
        name: c.name.clone(),
        description: c.description.clone(),
        version: v.version,
        current_version: c.current_version,
        items: v.items.iter().map(item_to).collect(),
        change_note: v.change_note.clone(),
        version_created_by: v.created_by.to_string(),
        version_create_time: Some(ts(v.created_at)),
        etag: etag(c.version),
    }
}

fn target_to(t: &Target) -> pb::SecurityCheckTarget {
    pb::SecurityCheckTarget {
        department_id: t.department.to_string(),
        platform_account_id: t.account.map(|a| a.to_string()).unwrap_or_default(),
    }
}

fn schedule_to(s: &Schedule, today: NaiveDate) -> pb::SecurityCheckSchedule {
    pb::SecurityCheckSchedule {
        id: s.id.to_string(),
        checklist_id: s.checklist.to_string(),
        target: Some(target_to(&s.target)),
        interval_days: s.interval_days,
        next_due_date: s.next_due.to_string(),
        due: s.is_due(today),
        state: match s.state {
            ScheduleState::Active => pb::SecurityCheckScheduleState::Active,
            ScheduleState::Cancelled => pb::SecurityCheckScheduleState::Cancelled,
        } as i32,
        last_check_id: s.last_check.map(|c| c.to_string()).unwrap_or_default(),
        created_by: s.created_by.to_string(),
        create_time: Some(ts(s.created_at)),
        cancel_reason: s.cancel_reason.clone(),
        etag: etag(s.version),
    }
}

fn result_to(r: Option<ItemResult>) -> pb::CheckItemResult {
    match r {
        None => pb::CheckItemResult::Unspecified,
        Some(ItemResult::Pass) => pb::CheckItemResult::Pass,
        Some(ItemResult::Fail) => pb::CheckItemResult::Fail,
        Some(ItemResult::NotApplicable) => pb::CheckItemResult::NotApplicable,
    }
}

fn severity_to(s: Severity) -> pb::HiddenDangerSeverity {
    match s {
        Severity::General => pb::HiddenDangerSeverity::General,
        Severity::Major => pb::HiddenDangerSeverity::Major,
    }
}

fn hazard_to(h: &HazardSpec) -> pb::HiddenDangerSpec {
    pb::HiddenDangerSpec {
        description: h.description.clone(),
        owner_user_id: h.owner.to_string(),
        severity: severity_to(h.severity) as i32,
        working_days: h.working_days,
    }
}

fn check_item_to(i: &CheckItem) -> pb::SecurityCheckItem {
    pb::SecurityCheckItem {
        item: Some(item_to(&i.item)),
        result: result_to(i.result) as i32,
        evidence: i.evidence.clone(),
        hidden_danger: i.hazard.as_ref().map(hazard_to),
        hidden_danger_id: i.hidden_danger.map(|d| d.to_string()).unwrap_or_default(),
        recorded_by: i.recorded_by.map(|p| p.to_string()).unwrap_or_default(),
        record_time: i.recorded_at.map(ts),
    }
}

fn check_to(c: &Check) -> pb::SecurityCheck {
    pb::SecurityCheck {
        id: c.id.to_string(),
        checklist_id: c.checklist.to_string(),
        checklist_name: c.checklist_name.clone(),
        checklist_version: c.checklist_version,
        schedule_id: c.schedule.map(|s| s.to_string()).unwrap_or_default(),
        target: Some(target_to(&c.target)),
        state: match c.state {
            CheckState::InProgress => pb::SecurityCheckState::InProgress,
            CheckState::Completed => pb::SecurityCheckState::Completed,
        } as i32,
        items: c.items.iter().map(check_item_to).collect(),
        failed_count: u32::try_from(c.failed()).unwrap_or(u32::MAX),
        conclusion: c.conclusion.clone(),
        started_by: c.started_by.to_string(),
        start_time: Some(ts(c.started_at)),
        completed_by: c.completed_by.map(|p| p.to_string()).unwrap_or_default(),
        complete_time: c.completed_at.map(ts),
        etag: etag(c.version),
    }
}

fn danger_state_to(s: DangerState) -> pb::HiddenDangerState {
    match s {
        DangerState::Open => pb::HiddenDangerState::Open,
        DangerState::FixSubmitted => pb::HiddenDangerState::FixSubmitted,
        DangerState::Closed => pb::HiddenDangerState::Closed,
    }
}

fn danger_to(d: &HiddenDanger, now: DateTime<Utc>) -> pb::HiddenDanger {
    pb::HiddenDanger {
        id: d.id.to_string(),
        check_id: d.check.to_string(),
        item_code: d.item_code.clone(),
        item_text: d.item_text.clone(),
        description: d.description.clone(),
        target: Some(target_to(&d.target)),
        owner_user_id: d.owner.to_string(),
        severity: severity_to(d.severity) as i32,
        working_days: d.working_days,
        due_date: d.due_date.to_string(),
        due_time: Some(ts(d.due_at)),
        state: danger_state_to(d.state) as i32,
        overdue: d.is_overdue(now),
        fix_evidence: d.fix_evidence.clone(),
        fix_submitted_by: d.fix_submitted_by.map(|p| p.to_string()).unwrap_or_default(),
        fix_submit_time: d.fix_submitted_at.map(ts),
        verified_by: d.verified_by.map(|p| p.to_string()).unwrap_or_default(),
        verify_time: d.verified_at.map(ts),
        verification_note: d.note.clone(),
        create_time: Some(ts(d.created_at)),
        etag: etag(d.version),
    }
}

fn audited(kind: &'static str, id: impl std::fmt::Display, target: Option<&Target>) -> AuditResourceRef {
    let mut resource = AuditResourceRef::new(kind, id);
    if let Some(t) = target {
        resource.department = Some(t.department);
        resource.platform_account = t.account;
    }
    resource
}

fn record(action: AuditAction, caller: &Principal, resource: AuditResourceRef, now: DateTime<Utc>) -> AuditRecord {
    AuditRecord::new(action, caller.actor(), resource, crate::PRODUCER, now).rule(RULE)
}

fn danger_record(action: AuditAction, caller: &Principal, d: &HiddenDanger, now: DateTime<Utc>) -> AuditRecord {
    record(action, caller, audited("hidden_danger", d.id, Some(&d.target)), now)
        .attr("check_id", d.check)
        .attr("item_code", &d.item_code)
        .attr("owner_user_id", d.owner)
        .attr("severity", d.severity.as_str())
        .attr("state", d.state.as_str())
        .attr("due_date", d.due_date)
        .attr("evidence", mask_all(&d.fix_evidence))
        .reason(mask_all(&d.note))
}

// ---- request validation

fn items_from(v: &mut Validator, field: &str, given: &[pb::SecurityChecklistItem]) -> Option<Vec<ChecklistItem>> {
    if given.is_empty() || given.len() > MAX_ITEMS {
        v.violation(field, format!("must hold 1 to {MAX_ITEMS} items"));
        return None;
    }
    let mut seen = HashSet::new();
    let mut items = Vec::with_capacity(given.len());
    let mut ok = true;
    for (n, i) in given.iter().enumerate() {
        let code = i.code.trim();
        if !is_item_code(code) {
            v.violation(format!("{field}[{n}].code"), "must be 1 to 40 letters, digits, '-', '_' or '.'");
            ok = false;
        } else if !seen.insert(code.to_ascii_uppercase()) {
            v.violation(format!("{field}[{n}].code"), format!("{code} appears twice"));
            ok = false;
        }
        let text = v.required_text(&format!("{field}[{n}].text"), &i.text, MAX_TEXT);
        let guidance = v.optional_text(&format!("{field}[{n}].guidance"), &i.guidance, MAX_TEXT);
        match (text, guidance) {
            (Some(text), Some(guidance)) => items.push(ChecklistItem { code: code.to_owned(), text, guidance }),
            _ => ok = false,
        }
    }
    ok.then_some(items)
}

fn results_from(v: &mut Validator, given: &[pb::SecurityCheckResult]) -> Option<Vec<Recorded>> {
    if given.is_empty() || given.len() > MAX_ITEMS {
        v.violation("results", format!("must hold 1 to {MAX_ITEMS} results"));
        return None;
    }
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(given.len());
    let mut ok = true;
    for (n, r) in given.iter().enumerate() {
        let f = |name: &str| format!("results[{n}].{name}");
        let code = r.item_code.trim().to_owned();
        if !seen.insert(code.clone()) {
            v.violation(f("item_code"), format!("{code} appears twice"));
            ok = false;
        }
        let result = match pb::CheckItemResult::try_from(r.result) {
            Ok(pb::CheckItemResult::Pass) => Some(ItemResult::Pass),
            Ok(pb::CheckItemResult::Fail) => Some(ItemResult::Fail),
            Ok(pb::CheckItemResult::NotApplicable) => Some(ItemResult::NotApplicable),
            _ => {
                v.violation(f("result"), "is required: pass, fail or not applicable");
                None
            }
        };
        let evidence = v.required_text(&f("evidence"), &r.evidence, MAX_TEXT);
        let hazard = match (result, r.hidden_danger.as_ref()) {
            (Some(ItemResult::Fail), Some(h)) => hazard_from(v, &f("hidden_danger"), h),
            (Some(ItemResult::Fail), None) => {
                v.violation(f("hidden_danger"), "is required for a failed item: who fixes it, how serious, by when");
                None
            }
            (_, Some(_)) => {
                v.violation(f("hidden_danger"), "only a failed item opens a hidden danger");
                None
            }
            (_, None) => None,
        };
        match (result, evidence) {
            (Some(result), Some(evidence)) if result != ItemResult::Fail || hazard.is_some() => {
                out.push(Recorded { code, result, evidence, hazard });
            }
            _ => ok = false,
        }
    }
    ok.then_some(out)
}

fn hazard_from(v: &mut Validator, field: &str, h: &pb::HiddenDangerSpec) -> Option<HazardSpec> {
    let description = v.required_text(&format!("{field}.description"), &h.description, MAX_TEXT);
    let owner: Option<UserId> = v.id(&format!("{field}.owner_user_id"), &h.owner_user_id);
    let severity = match pb::HiddenDangerSeverity::try_from(h.severity) {
        Ok(pb::HiddenDangerSeverity::General) => Some(Severity::General),
        Ok(pb::HiddenDangerSeverity::Major) => Some(Severity::Major),
        _ => {
            v.violation(format!("{field}.severity"), "is required: general or major");
            None
        }
    };
    if !(1..=MAX_WORKING_DAYS).contains(&h.working_days) {
        v.violation(format!("{field}.working_days"), format!("must be 1 to {MAX_WORKING_DAYS} working days"));
    }
    Some(HazardSpec { description: description?, owner: owner?, severity: severity?, working_days: h.working_days })
}

/// A target as given: a department, or an account (its department filled in by identity).
struct GivenTarget {
    department: Option<DepartmentId>,
    account: Option<PlatformAccountId>,
}

fn target_from(v: &mut Validator, field: &str, t: Option<&pb::SecurityCheckTarget>) -> Option<GivenTarget> {
    let Some(t) = t else {
        v.violation(field, "is required: a department or a platform account");
        return None;
    };
    let department: Option<DepartmentId> = v.optional_id(&format!("{field}.department_id"), &t.department_id);
    let account: Option<PlatformAccountId> =
        v.optional_id(&format!("{field}.platform_account_id"), &t.platform_account_id);
    if t.department_id.trim().is_empty() && t.platform_account_id.trim().is_empty() {
        v.violation(field, "names a department or a platform account");
        return None;
    }
    Some(GivenTarget { department, account })
}

fn date_from(v: &mut Validator, field: &str, s: &str) -> Option<Option<NaiveDate>> {
    let s = s.trim();
    if s.is_empty() {
        return Some(None);
    }
    match s.parse::<NaiveDate>() {
        Ok(d) => Some(Some(d)),
        Err(_) => {
            v.violation(field, "must be a date, YYYY-MM-DD");
            None
        }
    }
}

/// The answers changes store for replay.
#[derive(Clone, PartialEq, prost::Message)]
struct WrappedSchedule {
    #[prost(message, optional, tag = "1")]
    schedule: Option<pb::SecurityCheckSchedule>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct WrappedCheck {
    #[prost(message, optional, tag = "1")]
    check: Option<pb::SecurityCheck>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct WrappedDanger {
    #[prost(message, optional, tag = "1")]
    hidden_danger: Option<pb::HiddenDanger>,
}

impl SecurityChecks {
    fn today(&self) -> NaiveDate {
        self.core.now().with_timezone(&self.core.time_zone()).date_naive()
    }

    /// The target with its department: an account's is the one identity says runs it,
    /// and a department given beside it must be that one.
    async fn resolve(&self, given: GivenTarget) -> Result<Target, Error> {
        let Some(account) = given.account else {
            let department = given.department.ok_or_else(|| Error::invalid("target", "names a department"))?;
            return Ok(Target { department, account: None });
        };
        match self.core.register().account_department(account).await? {
            None => Err(Error::not_found("platform_account", account)),
            Some(None) => {
                Err(Error::rule(RULE, format!("platform account {account}"), "has no department to check it"))
            }
            Some(Some(d)) if given.department.is_some_and(|g| g != d) => Err(Error::invalid(
                "target.department_id",
                "is not the department that runs the account: leave it empty or give that one",
            )),
            Some(Some(d)) => Ok(Target { department: d, account: Some(account) }),
        }
    }

    /// Every hazard's owner must be an active user of the target's department.
    async fn check_owners(&self, target: &Target, results: &[Recorded]) -> Result<(), Error> {
        let owners: HashSet<UserId> = results.iter().filter_map(|r| r.hazard.as_ref().map(|h| h.owner)).collect();
        for owner in owners {
            let person = self.core.register().user(owner).await?;
            if !person.is_some_and(|p| p.active && p.department == Some(target.department)) {
                return Err(Error::rule(
                    RULE,
                    format!("user {owner}"),
                    "the owner of a hidden danger must be an active user of the department checked",
                ));
            }
        }
        Ok(())
    }

    async fn read_schedule(&self, id: SecurityCheckScheduleId) -> Result<Schedule, Error> {
        let mut tx = self.core.db().begin_read().await?;
        store::get_schedule(&mut tx, id).await?.ok_or_else(|| Error::not_found("security check schedule", id))
    }

    async fn read_check(&self, id: SecurityCheckId) -> Result<Check, Error> {
        let mut tx = self.core.db().begin_read().await?;
        store::get_check(&mut tx, id).await?.ok_or_else(|| Error::not_found("security check", id))
    }

    async fn read_danger(&self, id: HiddenDangerId) -> Result<HiddenDanger, Error> {
        let mut tx = self.core.db().begin_read().await?;
        store::get_danger(&mut tx, id).await?.ok_or_else(|| Error::not_found("hidden danger", id))
    }

    async fn change_check<Req: prost::Message>(
        &self,
        call: Call<'_, Req>,
        caller: &Principal,
        (id, given_etag): (SecurityCheckId, &str),
        grant: Authorized,
        change: impl FnOnce(&mut Check, DateTime<Utc>) -> Result<AuditAction, Error>,
    ) -> Result<pb::SecurityCheck, Error> {
        let answer = self
            .core
            .work()
            .run(call, async |m| {
                let mut c = store::lock_check(m.tx(), id, &grant).await?;
                check_etag("etag", given_etag, c.version, true)?;
                let previous = c.version;
                let action = change(&mut c, m.now())?;
                store::save_check(m.tx(), &c, previous).await?;
                m.audit(
                    record(action, caller, audited("security_check", c.id, Some(&c.target)), m.now())
                        .attr("checklist_id", c.checklist)
                        .attr("checklist_version", c.checklist_version)
                        .attr("failed", c.failed()),
                );
                Ok(WrappedCheck { check: Some(check_to(&c)) })
            })
            .await?;
        answer.check.ok_or_else(|| Error::internal("a change of a security check answered nothing"))
    }

    async fn change_danger<Req: prost::Message>(
        &self,
        call: Call<'_, Req>,
        caller: &Principal,
        (id, given_etag): (HiddenDangerId, &str),
        grant: Authorized,
        change: impl FnOnce(&mut HiddenDanger, DateTime<Utc>) -> Result<AuditAction, Error>,
    ) -> Result<pb::HiddenDanger, Error> {
        let answer = self
            .core
            .work()
            .run(call, async |m| {
                let mut d = store::lock_danger(m.tx(), id, &grant).await?;
                check_etag("etag", given_etag, d.version, true)?;
                let previous = d.version;
                let action = change(&mut d, m.now())?;
                store::save_danger(m.tx(), &d, previous).await?;
                m.audit(danger_record(action, caller, &d, m.now()));
                Ok(WrappedDanger { hidden_danger: Some(danger_to(&d, m.now())) })
            })
            .await?;
        answer.hidden_danger.ok_or_else(|| Error::internal("a change of a hidden danger answered nothing"))
    }
}

#[govmedia_kit::handlers]
impl SecurityCheckService for SecurityChecks {
    async fn create_security_checklist(
        &self,
        request: Request<pb::CreateSecurityChecklistRequest>,
    ) -> Result<pb::CreateSecurityChecklistResponse, Error> {
        let (caller, req) = unpack(request)?;
        let mut v = Validator::new();
        let request_id = v.request_id(&req.request_id);
        let given = req.checklist.clone().unwrap_or_default();
        if req.checklist.is_none() {
            v.violation("checklist", "is required");
        }
        let name = v.required_text("checklist.name", &given.name, MAX_NAME);
        let description = v.optional_text("checklist.description", &given.description, MAX_TEXT);
        let items = items_from(&mut v, "checklist.items", &given.items);
        let (request_id, name, description, items) =
            v.finish_with(|| Some((request_id?, name?, description?, items?)))?;
        self.core.permissions().require(&caller, Permission::SecurityCheckManage, &Resource::GLOBAL).await?;
        let call =
            Call::new(&caller, "/govmedia.audit.v1.SecurityCheckService/CreateSecurityChecklist", request_id, &req);
        self.core
            .work()
            .run(call, async |m| {
                let mut list =
                    Checklist { id: SecurityChecklistId::new(), name, description, current_version: 0, version: 0 };
                let first = list.revise(items, String::new(), caller.id, m.now());
                store::insert_checklist(m.tx(), &list).await?;
                store::insert_version(m.tx(), &first).await?;
                m.audit(
                    record(
                        AuditAction::SecurityChecklistCreated,
                        &caller,
                        audited("security_checklist", list.id, None),
                        m.now(),
                    )
                    .attr("name", &list.name)
                    .attr("version", first.version)
                    .attr("items", first.items.len()),
                );
                Ok(pb::CreateSecurityChecklistResponse { checklist: Some(checklist_to(&list, &first)) })
            })
            .await
    }

    async fn revise_security_checklist(
        &self,
        request: Request<pb::ReviseSecurityChecklistRequest>,
    ) -> Result<pb::ReviseSecurityChecklistResponse, Error> {
        let (caller, req) = unpack(request)?;
        let mut v = Validator::new();
        let request_id = v.request_id(&req.request_id);
        let id: Option<SecurityChecklistId> = v.id("checklist_id", &req.checklist_id);
        let items = items_from(&mut v, "items", &req.items);
        let note = v.required_text("change_note", &req.change_note, MAX_TEXT);
        let (request_id, id, items, note) = v.finish_with(|| Some((request_id?, id?, items?, note?)))?;
        let grant =
            self.core.permissions().authorize(&caller, Permission::SecurityCheckManage, &Resource::GLOBAL).await?;
        let call =
            Call::new(&caller, "/govmedia.audit.v1.SecurityCheckService/ReviseSecurityChecklist", request_id, &req);
        self.core
            .work()
            .run(call, async |m| {
                let mut list = store::lock_checklist(m.tx(), id, &grant).await?;
                check_etag("etag", &req.etag, list.version, true)?;
                let previous = list.version;
                let next = list.revise(items, note, caller.id, m.now());
                store::save_checklist(m.tx(), &list, previous).await?;
                store::insert_version(m.tx(), &next).await?;
                m.audit(
                    record(
                        AuditAction::SecurityChecklistRevised,
                        &caller,
                        audited("security_checklist", list.id, None),
                        m.now(),
                    )
                    .attr("version", next.version)
                    .attr("items", next.items.len())
                    .reason(next.change_note.clone()),
                );
                Ok(pb::ReviseSecurityChecklistResponse { checklist: Some(checklist_to(&list, &next)) })
            })
            .await
    }

    async fn get_security_checklist(
        &self,
        request: Request<pb::GetSecurityChecklistRequest>,
    ) -> Result<pb::GetSecurityChecklistResponse, Error> {
        let (caller, req) = unpack(request)?;
        let id: SecurityChecklistId = one_id("checklist_id", &req.checklist_id)?;
        self.core.permissions().require(&caller, Permission::SecurityCheckRead, &Resource::GLOBAL).await?;
        let mut tx = self.core.db().begin_read().await?;
        let list = store::get_checklist(&mut tx, id).await?.ok_or_else(|| Error::not_found("checklist", id))?;
        let version = if req.version == 0 { list.current_version } else { req.version };
        let shown = store::get_version(&mut tx, id, version)
            .await?
            .ok_or_else(|| Error::not_found("checklist version", format!("{id} v{version}")))?;
        Ok(pb::GetSecurityChecklistResponse { checklist: Some(checklist_to(&list, &shown)) })
    }

    async fn list_security_checklists(
        &self,
        request: Request<pb::ListSecurityChecklistsRequest>,
    ) -> Result<pb::ListSecurityChecklistsResponse, Error> {
        let (caller, req) = unpack(request)?;
        let limit = page::page_size(req.page_size, 50, 500)?;
        let after: Option<String> = page::decode_page_token(&req.page_token)?;
        self.core.permissions().require(&caller, Permission::SecurityCheckRead, &Resource::GLOBAL).await?;
        let mut tx = self.core.db().begin_read().await?;
        let lists = store::list_checklists(&mut tx, after, limit).await?;
        let mut checklists = Vec::with_capacity(lists.len());
        for list in &lists {
            let current = store::get_version(&mut tx, list.id, list.current_version).await?.ok_or_else(|| {
                Error::internal(format!("checklist {} has no version {}", list.id, list.current_version))
            })?;
            checklists.push(checklist_to(list, &current));
        }
        Ok(pb::ListSecurityChecklistsResponse {
            next_page_token: next_page_token(&lists, limit, |l| l.name.clone()),
            checklists,
        })
    }

    async fn create_security_check_schedule(
        &self,
        request: Request<pb::CreateSecurityCheckScheduleRequest>,
    ) -> Result<pb::CreateSecurityCheckScheduleResponse, Error> {
        let (caller, req) = unpack(request)?;
        let mut v = Validator::new();
        let request_id = v.request_id(&req.request_id);
        let given = req.schedule.clone().unwrap_or_default();
        if req.schedule.is_none() {
            v.violation("schedule", "is required");
        }
        let checklist: Option<SecurityChecklistId> = v.id("schedule.checklist_id", &given.checklist_id);
        let target = target_from(&mut v, "schedule.target", given.target.as_ref());
        if !(1..=MAX_INTERVAL_DAYS).contains(&given.interval_days) {
            v.violation("schedule.interval_days", format!("must be 1 to {MAX_INTERVAL_DAYS} days"));
        }
        let first = date_from(&mut v, "schedule.next_due_date", &given.next_due_date);
        let (request_id, checklist, target, first) =
            v.finish_with(|| Some((request_id?, checklist?, target?, first?)))?;
        let target = self.resolve(target).await?;
        self.core.permissions().require(&caller, Permission::SecurityCheckManage, &target.resource()).await?;
        let today = self.today();
        let call =
            Call::new(&caller, "/govmedia.audit.v1.SecurityCheckService/CreateSecurityCheckSchedule", request_id, &req);
        self.core
            .work()
            .run(call, async |m| {
                store::get_checklist(m.tx(), checklist)
                    .await?
                    .ok_or_else(|| Error::not_found("checklist", checklist))?;
                let s = Schedule {
                    id: SecurityCheckScheduleId::new(),
                    checklist,
                    target,
                    interval_days: given.interval_days,
                    next_due: first.unwrap_or(today),
                    state: ScheduleState::Active,
                    last_check: None,
                    created_by: caller.id,
                    created_at: m.now(),
                    cancel_reason: String::new(),
                    version: 1,
                };
                store::insert_schedule(m.tx(), &s).await?;
                m.audit(
                    record(
                        AuditAction::SecurityCheckScheduled,
                        &caller,
                        audited("security_check_schedule", s.id, Some(&s.target)),
                        m.now(),
                    )
                    .attr("checklist_id", s.checklist)
                    .attr("interval_days", s.interval_days)
                    .attr("next_due_date", s.next_due),
                );
                Ok(pb::CreateSecurityCheckScheduleResponse { schedule: Some(schedule_to(&s, today)) })
            })
            .await
    }

    async fn get_security_check_schedule(
        &self,
        request: Request<pb::GetSecurityCheckScheduleRequest>,
    ) -> Result<pb::GetSecurityCheckScheduleResponse, Error> {
        let (caller, req) = unpack(request)?;
        let id: SecurityCheckScheduleId = one_id("schedule_id", &req.schedule_id)?;
        let s = self.read_schedule(id).await?;
        self.core.permissions().require(&caller, Permission::SecurityCheckRead, &s.target.resource()).await?;
        Ok(pb::GetSecurityCheckScheduleResponse { schedule: Some(schedule_to(&s, self.today())) })
    }

    async fn list_security_check_schedules(
        &self,
        request: Request<pb::ListSecurityCheckSchedulesRequest>,
    ) -> Result<pb::ListSecurityCheckSchedulesResponse, Error> {
        let (caller, req) = unpack(request)?;
        let limit = page::page_size(req.page_size, 50, 500)?;
        let after: Option<(String, String)> = page::decode_page_token(&req.page_token)?;
        self.core.permissions().require(&caller, Permission::SecurityCheckRead, &Resource::GLOBAL).await?;
        let today = self.today();
        let mut tx = self.core.db().begin_read().await?;
        let list = store::list_schedules(&mut tx, req.due_only.then_some(today), after, limit).await?;
        Ok(pb::ListSecurityCheckSchedulesResponse {
            next_page_token: next_page_token(&list, limit, |s| (s.next_due.to_string(), s.id.to_string())),
            schedules: list.iter().map(|s| schedule_to(s, today)).collect(),
        })
    }

    async fn cancel_security_check_schedule(
        &self,
        request: Request<pb::CancelSecurityCheckScheduleRequest>,
    ) -> Result<pb::CancelSecurityCheckScheduleResponse, Error> {
        let (caller, req) = unpack(request)?;
        let mut v = Validator::new();
        let request_id = v.request_id(&req.request_id);
        let id: Option<SecurityCheckScheduleId> = v.id("schedule_id", &req.schedule_id);
        let reason = v.reason("reason", &req.reason);
        let (request_id, id, reason) = v.finish_with(|| Some((request_id?, id?, reason?)))?;
        let found = self.read_schedule(id).await?;
        let grant = self
            .core
            .permissions()
            .authorize(&caller, Permission::SecurityCheckManage, &found.target.resource())
            .await?;
        let today = self.today();
        let call =
            Call::new(&caller, "/govmedia.audit.v1.SecurityCheckService/CancelSecurityCheckSchedule", request_id, &req);
        let answer = self
            .core
            .work()
            .run(call, async |m| {
                let mut s = store::lock_schedule(m.tx(), id, &grant).await?;
                check_etag("etag", &req.etag, s.version, true)?;
                let previous = s.version;
                let action = s.cancel(reason)?;
                store::save_schedule(m.tx(), &s, previous).await?;
                m.audit(
                    record(action, &caller, audited("security_check_schedule", s.id, Some(&s.target)), m.now())
                        .reason(s.cancel_reason.clone()),
                );
                Ok(WrappedSchedule { schedule: Some(schedule_to(&s, today)) })
            })
            .await?;
        Ok(pb::CancelSecurityCheckScheduleResponse { schedule: answer.schedule })
    }

    async fn start_security_check(
        &self,
        request: Request<pb::StartSecurityCheckRequest>,
    ) -> Result<pb::StartSecurityCheckResponse, Error> {
        let (caller, req) = unpack(request)?;
        let mut v = Validator::new();
        let request_id = v.request_id(&req.request_id);
        let schedule: Option<SecurityCheckScheduleId> = v.optional_id("schedule_id", &req.schedule_id);
        let ad_hoc = if req.schedule_id.trim().is_empty() {
            let checklist: Option<SecurityChecklistId> = v.id("checklist_id", &req.checklist_id);
            let target = target_from(&mut v, "target", req.target.as_ref());
            Some((checklist, target))
        } else {
            if !req.checklist_id.is_empty() || req.target.is_some() {
                v.violation("schedule_id", "a scheduled check takes its checklist and target from the schedule");
            }
            None
        };
        let request_id = v.finish_with(|| request_id)?;
        let (checklist, target, schedule) = match (schedule, ad_hoc) {
            (Some(id), None) => {
                let s = self.read_schedule(id).await?;
                if s.state != ScheduleState::Active {
                    return Err(Error::rule(RULE, format!("security check schedule {id}"), "is cancelled"));
                }
                (s.checklist, s.target, Some(id))
            }
            (_, Some((Some(checklist), Some(target)))) => (checklist, self.resolve(target).await?, None),
            _ => return Err(Error::invalid("checklist_id", "is required for an ad hoc check")),
        };
        let grant =
            self.core.permissions().authorize(&caller, Permission::SecurityCheckManage, &target.resource()).await?;
        grant.ensure_covers(Some(target.department), target.account.as_slice())?;
        let call = Call::new(&caller, "/govmedia.audit.v1.SecurityCheckService/StartSecurityCheck", request_id, &req);
        self.core
            .work()
            .run(call, async |m| {
                let list = store::get_checklist(m.tx(), checklist)
                    .await?
                    .ok_or_else(|| Error::not_found("checklist", checklist))?;
                let current = store::get_version(m.tx(), checklist, list.current_version)
                    .await?
                    .ok_or_else(|| Error::internal(format!("checklist {checklist} has no current version")))?;
                let c = Check::start(&list, &current, schedule, target, caller.id, m.now());
                store::insert_check(m.tx(), &c).await?;
                m.audit(
                    record(
                        AuditAction::SecurityCheckStarted,
                        &caller,
                        audited("security_check", c.id, Some(&c.target)),
                        m.now(),
                    )
                    .attr("checklist_id", c.checklist)
                    .attr("checklist_version", c.checklist_version)
                    .attr("schedule_id", c.schedule.map(|s| s.to_string()).unwrap_or_default()),
                );
                Ok(pb::StartSecurityCheckResponse { check: Some(check_to(&c)) })
            })
            .await
    }

    async fn record_security_check_results(
        &self,
        request: Request<pb::RecordSecurityCheckResultsRequest>,
    ) -> Result<pb::RecordSecurityCheckResultsResponse, Error> {
        let (caller, req) = unpack(request)?;
        let mut v = Validator::new();
        let request_id = v.request_id(&req.request_id);
        let id: Option<SecurityCheckId> = v.id("check_id", &req.check_id);
        let results = results_from(&mut v, &req.results);
        let (request_id, id, results) = v.finish_with(|| Some((request_id?, id?, results?)))?;
        let found = self.read_check(id).await?;
        let grant = self
            .core
            .permissions()
            .authorize(&caller, Permission::SecurityCheckManage, &found.target.resource())
            .await?;
        self.check_owners(&found.target, &results).await?;
        let call =
            Call::new(&caller, "/govmedia.audit.v1.SecurityCheckService/RecordSecurityCheckResults", request_id, &req);
        let by = caller.id;
        let check =
            self.change_check(call, &caller, (id, &req.etag), grant, |c, now| c.record(results, by, now)).await?;
        Ok(pb::RecordSecurityCheckResultsResponse { check: Some(check) })
    }

    async fn complete_security_check(
        &self,
        request: Request<pb::CompleteSecurityCheckRequest>,
    ) -> Result<pb::CompleteSecurityCheckResponse, Error> {
        let (caller, req) = unpack(request)?;
        let mut v = Validator::new();
        let request_id = v.request_id(&req.request_id);
        let id: Option<SecurityCheckId> = v.id("check_id", &req.check_id);
        let conclusion = v.required_text("conclusion", &req.conclusion, MAX_CONCLUSION);
        let (request_id, id, conclusion) = v.finish_with(|| Some((request_id?, id?, conclusion?)))?;
        let found = self.read_check(id).await?;
        let grant = self
            .core
            .permissions()
            .authorize(&caller, Permission::SecurityCheckManage, &found.target.resource())
            .await?;
        let (zone, today) = (self.core.time_zone(), self.today());
        let call =
            Call::new(&caller, "/govmedia.audit.v1.SecurityCheckService/CompleteSecurityCheck", request_id, &req);
        self.core
            .work()
            .run(call, async |m| {
                let now = m.now();
                let mut c = store::lock_check(m.tx(), id, &grant).await?;
                check_etag("etag", &req.etag, c.version, true)?;
                let previous = c.version;
                let opened = c.complete(conclusion, caller.id, now, zone, self.core.calendar())?;
                store::save_check(m.tx(), &c, previous).await?;
                for d in &opened {
                    store::insert_danger(m.tx(), d).await?;
                    m.audit(danger_record(AuditAction::HiddenDangerOpened, &caller, d, now));
                }
                if let Some(schedule) = c.schedule {
                    let mut s = store::lock_schedule(m.tx(), schedule, &grant).await?;
                    let before = s.version;
                    s.checked(c.id, today);
                    store::save_schedule(m.tx(), &s, before).await?;
                }
                m.audit(
                    record(
                        AuditAction::SecurityCheckCompleted,
                        &caller,
                        audited("security_check", c.id, Some(&c.target)),
                        now,
                    )
                    .attr("checklist_id", c.checklist)
                    .attr("checklist_version", c.checklist_version)
                    .attr("failed", c.failed())
                    .attr("conclusion", mask_all(&c.conclusion)),
                );
                Ok(pb::CompleteSecurityCheckResponse {
                    check: Some(check_to(&c)),
                    hidden_dangers: opened.iter().map(|d| danger_to(d, now)).collect(),
                })
            })
            .await
    }

    async fn get_security_check(
        &self,
        request: Request<pb::GetSecurityCheckRequest>,
    ) -> Result<pb::GetSecurityCheckResponse, Error> {
        let (caller, req) = unpack(request)?;
        let id: SecurityCheckId = one_id("check_id", &req.check_id)?;
        let c = self.read_check(id).await?;
        self.core.permissions().require(&caller, Permission::SecurityCheckRead, &c.target.resource()).await?;
        Ok(pb::GetSecurityCheckResponse { check: Some(check_to(&c)) })
    }

    async fn list_security_checks(
        &self,
        request: Request<pb::ListSecurityChecksRequest>,
    ) -> Result<pb::ListSecurityChecksResponse, Error> {
        let (caller, req) = unpack(request)?;
        let mut v = Validator::new();
        let department: Option<DepartmentId> = v.optional_id("department_id", &req.department_id);
        let schedule: Option<SecurityCheckScheduleId> = v.optional_id("schedule_id", &req.schedule_id);
        let state = match pb::SecurityCheckState::try_from(req.state) {
            Ok(pb::SecurityCheckState::Unspecified) => None,
            Ok(pb::SecurityCheckState::InProgress) => Some(CheckState::InProgress),
            Ok(pb::SecurityCheckState::Completed) => Some(CheckState::Completed),
            Err(_) => {
                v.violation("state", "is not a check state");
                None
            }
        };
        let limit = page::page_size(req.page_size, 50, 500);
        let after: Result<Option<(DateTime<Utc>, String)>, Error> = page::decode_page_token(&req.page_token);
        v.finish()?;
        let (limit, after) = (limit?, after?);
        let scope = department.map_or(Resource::GLOBAL, Resource::department);
        self.core.permissions().require(&caller, Permission::SecurityCheckRead, &scope).await?;
        let mut tx = self.core.db().begin_read().await?;
        let list = store::list_checks(&mut tx, &CheckFilter { department, state, schedule }, after, limit).await?;
        Ok(pb::ListSecurityChecksResponse {
            next_page_token: next_page_token(&list, limit, |c| (c.started_at, c.id.to_string())),
            checks: list.iter().map(check_to).collect(),
        })
    }

    async fn get_hidden_danger(
        &self,
        request: Request<pb::GetHiddenDangerRequest>,
    ) -> Result<pb::GetHiddenDangerResponse, Error> {
        let (caller, req) = unpack(request)?;
        let id: HiddenDangerId = one_id("hidden_danger_id", &req.hidden_danger_id)?;
        let d = self.read_danger(id).await?;
        self.core.permissions().require(&caller, Permission::SecurityCheckRead, &d.target.resource()).await?;
        Ok(pb::GetHiddenDangerResponse { hidden_danger: Some(danger_to(&d, self.core.now())) })
    }

    async fn list_hidden_dangers(
        &self,
        request: Request<pb::ListHiddenDangersRequest>,
    ) -> Result<pb::ListHiddenDangersResponse, Error> {
        let (caller, req) = unpack(request)?;
        let mut v = Validator::new();
        let department: Option<DepartmentId> = v.optional_id("department_id", &req.department_id);
        let owner: Option<UserId> = v.optional_id("owner_user_id", &req.owner_user_id);
        let check: Option<SecurityCheckId> = v.optional_id("check_id", &req.check_id);
        let state = match pb::HiddenDangerState::try_from(req.state) {
            Ok(pb::HiddenDangerState::Unspecified) => None,
            Ok(pb::HiddenDangerState::Open) => Some(DangerState::Open),
            Ok(pb::HiddenDangerState::FixSubmitted) => Some(DangerState::FixSubmitted),
            Ok(pb::HiddenDangerState::Closed) => Some(DangerState::Closed),
            Err(_) => {
                v.violation("state", "is not a hidden danger state");
                None
            }
        };
        let limit = page::page_size(req.page_size, 50, 500);
        let after: Result<Option<(DateTime<Utc>, String)>, Error> = page::decode_page_token(&req.page_token);
        v.finish()?;
        let (limit, after) = (limit?, after?);
        let scope = department.map_or(Resource::GLOBAL, Resource::department);
        self.core.permissions().require(&caller, Permission::SecurityCheckRead, &scope).await?;
        let now = self.core.now();
        let filter = DangerFilter { department, state, overdue_at: req.overdue_only.then_some(now), owner, check };
        let mut tx = self.core.db().begin_read().await?;
        let list = store::list_dangers(&mut tx, &filter, after, limit).await?;
        Ok(pb::ListHiddenDangersResponse {
            next_page_token: next_page_token(&list, limit, |d| (d.due_at, d.id.to_string())),
            hidden_dangers: list.iter().map(|d| danger_to(d, now)).collect(),
        })
    }

    async fn submit_hidden_danger_fix(
        &self,
        request: Request<pb::SubmitHiddenDangerFixRequest>,
    ) -> Result<pb::SubmitHiddenDangerFixResponse, Error> {
        let (caller, req) = unpack(request)?;
        let mut v = Validator::new();
        let request_id = v.request_id(&req.request_id);
        let id: Option<HiddenDangerId> = v.id("hidden_danger_id", &req.hidden_danger_id);
        let evidence = v.required_text("evidence", &req.evidence, MAX_TEXT);
        let (request_id, id, evidence) = v.finish_with(|| Some((request_id?, id?, evidence?)))?;
        let found = self.read_danger(id).await?;
        let grant = self
            .core
            .permissions()
            .authorize(&caller, Permission::SecurityCheckRespond, &found.target.resource())
            .await?;
        let call =
            Call::new(&caller, "/govmedia.audit.v1.SecurityCheckService/SubmitHiddenDangerFix", request_id, &req);
        let by = caller.id;
        let d =
            self.change_danger(call, &caller, (id, &req.etag), grant, |d, now| d.submit_fix(evidence, by, now)).await?;
        Ok(pb::SubmitHiddenDangerFixResponse { hidden_danger: Some(d) })
    }

    async fn verify_hidden_danger_fix(
        &self,
        request: Request<pb::VerifyHiddenDangerFixRequest>,
    ) -> Result<pb::VerifyHiddenDangerFixResponse, Error> {
        let (caller, req) = unpack(request)?;
        let mut v = Validator::new();
        let request_id = v.request_id(&req.request_id);
        let id: Option<HiddenDangerId> = v.id("hidden_danger_id", &req.hidden_danger_id);
        let note = if req.accepted {
            v.optional_text("note", &req.note, MAX_TEXT)
        } else {
            v.required_text("note", &req.note, MAX_TEXT)
        };
        let (request_id, id, note) = v.finish_with(|| Some((request_id?, id?, note?)))?;
        let found = self.read_danger(id).await?;
        let grant = self
            .core
            .permissions()
            .authorize(&caller, Permission::SecurityCheckManage, &found.target.resource())
            .await?;
        let call =
            Call::new(&caller, "/govmedia.audit.v1.SecurityCheckService/VerifyHiddenDangerFix", request_id, &req);
        let (by, accepted) = (caller.id, req.accepted);
        let d = self
            .change_danger(call, &caller, (id, &req.etag), grant, |d, now| d.verify(accepted, note, by, now))
            .await?;
        Ok(pb::VerifyHiddenDangerFixResponse { hidden_danger: Some(d) })
    }
}
