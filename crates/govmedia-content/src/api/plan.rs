//! `PlanService`: the content calendar (R3.1.1, R3.1.2).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use govmedia_domain::Error;
use govmedia_domain::audit::{AuditAction, AuditRecord, AuditResourceRef};
use govmedia_domain::ids::{DepartmentId, PlanId, PlatformAccountId, UserId};
use govmedia_domain::page;
use govmedia_domain::permission::Permission;
use govmedia_domain::scope::Resource;
use govmedia_domain::validate::{MAX_NAME_CHARS, MAX_REASON_CHARS, Validator};
use govmedia_kit::auth::Principal;
use govmedia_kit::mutation::{Begin, Mutation};
use govmedia_proto::common::v1 as cpb;
use govmedia_proto::content::v1 as pb;
use govmedia_proto::content::v1::plan_service_server::{PlanService, PlanServiceServer};
use tonic::{Request, Response, Status};

use super::{caller, check_etag, etag, from_ts, ts};
use crate::domain::plan::{PlanReason, PlanState, check_open};
use crate::store::plans::{self as store, Plan, PlanFilter};
use crate::{Core, PRODUCER};

/// Most target accounts of one plan.
const MAX_TARGETS: usize = 50;

/// The generated server around the handlers.
pub fn server(core: &Arc<Core>) -> PlanServiceServer<Plans> {
    PlanServiceServer::new(Plans { core: Arc::clone(core) })
}

/// The handlers.
#[derive(Debug, Clone)]
pub struct Plans {
    core: Arc<Core>,
}

fn reason_from(r: i32) -> Option<PlanReason> {
    match pb::PlanReason::try_from(r).ok()? {
        pb::PlanReason::WorkPriority => Some(PlanReason::WorkPriority),
        pb::PlanReason::HotTopic => Some(PlanReason::HotTopic),
        pb::PlanReason::CalendarDate => Some(PlanReason::CalendarDate),
        pb::PlanReason::Other => Some(PlanReason::Other),
        pb::PlanReason::Unspecified => None,
    }
}

fn state_to(s: PlanState) -> pb::PlanState {
    match s {
        PlanState::Planned => pb::PlanState::Planned,
        PlanState::Drafted => pb::PlanState::Drafted,
        PlanState::Published => pb::PlanState::Published,
        PlanState::Cancelled => pb::PlanState::Cancelled,
    }
}

fn to_proto(p: &Plan) -> pb::Plan {
    pb::Plan {
        id: p.id.to_string(),
        department_id: p.department.to_string(),
        topic: p.topic.clone(),
        reason: match p.reason {
            PlanReason::WorkPriority => pb::PlanReason::WorkPriority,
            PlanReason::HotTopic => pb::PlanReason::HotTopic,
            PlanReason::CalendarDate => pb::PlanReason::CalendarDate,
            PlanReason::Other => pb::PlanReason::Other,
        } as i32,
        reason_detail: p.reason_detail.clone(),
        target_platform_account_ids: p.targets.iter().map(ToString::to_string).collect(),
        planned_window: Some(cpb::TimeRange { start_time: p.window_start.map(ts), end_time: p.window_end.map(ts) }),
        owner_user_id: p.owner.to_string(),
        state: state_to(p.state) as i32,
        cancel_reason: p.cancel_reason.clone(),
        create_time: Some(ts(p.created_at)),
        update_time: Some(ts(p.updated_at)),
        etag: etag(p.version),
    }
}

type Window = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);

fn window(v: &mut Validator, field: &str, range: Option<&cpb::TimeRange>) -> Window {
    let Some(range) = range else { return (None, None) };
    let start = range.start_time.as_ref().and_then(|t| {
        from_ts(&format!("{field}.start_time"), t)
            .map_err(|_| v.violation(format!("{field}.start_time"), "is not a valid timestamp"))
            .ok()
    });
    let end = range.end_time.as_ref().and_then(|t| {
        from_ts(&format!("{field}.end_time"), t)
            .map_err(|_| v.violation(format!("{field}.end_time"), "is not a valid timestamp"))
            .ok()
    });
    if let (Some(s), Some(e)) = (start, end)
        && e <= s
    {
        v.violation(format!("{field}.end_time"), "must be after the start");
    }
    (start, end)
}

fn targets(v: &mut Validator, field: &str, ids: &[String]) -> Vec<PlatformAccountId> {
    if ids.len() > MAX_TARGETS {
        v.violation(field, format!("must name at most {MAX_TARGETS} accounts"));
    }
    let mut out = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        if let Some(a) = v.id::<PlatformAccountId>(&format!("{field}[{i}]"), id)
            && !out.contains(&a)
        {
            out.push(a);
        }
    }
    out
}

impl Plans {
    async fn require(&self, caller: &Principal, permission: Permission, department: DepartmentId) -> Result<(), Error> {
        self.core.permissions().require(caller.id, permission, &Resource::department(department)).await
    }

    /// Every target must be a registered account that is not closed.
    async fn check_targets(&self, targets: &[PlatformAccountId]) -> Result<(), Error> {
        for account in targets {
            let facts = self.core.account(*account).await?;
            if facts.closed {
                return Err(Error::rule(
                    "R2.1.1",
                    format!("platform_account/{account}"),
                    "a closed account is not a target",
                ));
            }
        }
        Ok(())
    }

    fn record(&self, action: AuditAction, caller: &Principal, plan: &Plan, request_id: &str) -> AuditRecord {
        let mut resource = AuditResourceRef::new("plan", plan.id);
        resource.department = Some(plan.department);
        AuditRecord::new(action, caller.actor(), resource, PRODUCER, self.core.now())
            .rule("R3.1.1")
            .request(govmedia_kit::telemetry::current_trace_id(), Some(request_id.to_owned()))
    }
}

macro_rules! begin {
    ($self:ident, $caller:ident, $method:literal, $request_id:expr, $request:expr) => {
        match Mutation::begin(
            $self.core.db(),
            $caller.id,
            concat!("/govmedia.content.v1.PlanService/", $method),
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

#[tonic::async_trait]
impl PlanService for Plans {
    async fn create_plan(
        &self,
        request: Request<pb::CreatePlanRequest>,
    ) -> Result<Response<pb::CreatePlanResponse>, Status> {
        let caller = caller(&request)?;
        let req = request.into_inner();
        let mut v = Validator::new();
        let request_id = v.request_id(&req.request_id);
        let given = req.plan.clone().unwrap_or_default();
        let department: Option<DepartmentId> = v.id("plan.department_id", &given.department_id);
        let topic = v.required_text("plan.topic", &given.topic, MAX_NAME_CHARS);
        let reason = reason_from(given.reason);
        if reason.is_none() {
            v.violation("plan.reason", "is required: why now (work priority, hot topic, calendar date, other)");
        }
        let reason_detail = v.optional_text("plan.reason_detail", &given.reason_detail, MAX_REASON_CHARS);
        let targets = targets(&mut v, "plan.target_platform_account_ids", &given.target_platform_account_ids);
        let (start, end) = window(&mut v, "plan.planned_window", given.planned_window.as_ref());
        let owner: Option<UserId> = if given.owner_user_id.is_empty() {
            Some(UserId::from_uuid(caller.id.as_uuid()))
        } else {
            v.id("plan.owner_user_id", &given.owner_user_id)
        };
        v.finish()?;
        let (Some(request_id), Some(department), Some(topic), Some(reason), Some(reason_detail), Some(owner)) =
            (request_id, department, topic, reason, reason_detail, owner)
        else {
            return Err(Error::internal("validated").into());
        };
        self.require(&caller, Permission::PlanWrite, department).await?;
        self.check_targets(&targets).await?;
        let mut m = begin!(self, caller, "CreatePlan", request_id, &req);
        let now = m.now();
        let plan = Plan {
            id: PlanId::new(),
            department,
            topic,
            reason,
            reason_detail,
            targets,
            window_start: start,
            window_end: end,
            owner,
            state: PlanState::Planned,
            cancel_reason: String::new(),
            created_at: now,
            updated_at: now,
            version: 1,
        };
        store::insert(m.tx(), &plan).await?;
        m.audit(
            self.record(AuditAction::PlanCreated, &caller, &plan, &request_id.to_string()).attr("topic", &plan.topic),
        );
        let answer = pb::CreatePlanResponse { plan: Some(to_proto(&plan)) };
        m.commit(&answer, Some(self.core.relay())).await?;
        Ok(Response::new(answer))
    }

    async fn get_plan(&self, request: Request<pb::GetPlanRequest>) -> Result<Response<pb::GetPlanResponse>, Status> {
        let caller = caller(&request)?;
        let mut v = Validator::new();
        let id: Option<PlanId> = v.id("plan_id", &request.get_ref().plan_id);
        v.finish()?;
        let Some(id) = id else { return Err(Error::internal("validated").into()) };
        let mut tx = self.core.db().begin_read().await?;
        let plan = store::get(&mut tx, id).await?.ok_or_else(|| Error::not_found("plan", id))?;
        drop(tx);
        self.require(&caller, Permission::PlanRead, plan.department).await?;
        Ok(Response::new(pb::GetPlanResponse { plan: Some(to_proto(&plan)) }))
    }

    async fn list_plans(
        &self,
        request: Request<pb::ListPlansRequest>,
    ) -> Result<Response<pb::ListPlansResponse>, Status> {
        let caller = caller(&request)?;
        let req = request.into_inner();
        let mut v = Validator::new();
        let department: Option<DepartmentId> = v.optional_id("department_id", &req.department_id);
        let (from, to) = window(&mut v, "period", req.period.as_ref());
        let state = match pb::PlanState::try_from(req.state) {
            Ok(pb::PlanState::Unspecified) => None,
            Ok(pb::PlanState::Planned) => Some(PlanState::Planned),
            Ok(pb::PlanState::Drafted) => Some(PlanState::Drafted),
            Ok(pb::PlanState::Published) => Some(PlanState::Published),
            Ok(pb::PlanState::Cancelled) => Some(PlanState::Cancelled),
            Err(_) => {
                v.violation("state", "is not a plan state");
                None
            }
        };
        v.finish()?;
        let limit = page::page_size(req.page_size, 50, 500)?;
        let after: Option<(DateTime<Utc>, String)> = page::decode_page_token(&req.page_token)?;
        let scope = department.map_or(Resource::GLOBAL, Resource::department);
        self.core.permissions().require(caller.id, Permission::PlanRead, &scope).await?;
        let mut tx = self.core.db().begin_read().await?;
        let plans = store::list(&mut tx, &PlanFilter { department, state, from, to }, after, limit).await?;
        let next_page_token = match plans.last() {
            Some(last) if plans.len() >= usize::try_from(limit).unwrap_or(usize::MAX) => page::encode_page_token(&(
                last.window_start.unwrap_or(DateTime::<Utc>::UNIX_EPOCH),
                last.id.to_string(),
            )),
            _ => String::new(),
        };
        Ok(Response::new(pb::ListPlansResponse { plans: plans.iter().map(to_proto).collect(), next_page_token }))
    }

    async fn update_plan(
        &self,
        request: Request<pb::UpdatePlanRequest>,
    ) -> Result<Response<pb::UpdatePlanResponse>, Status> {
        let caller = caller(&request)?;
        let req = request.into_inner();
        let mut v = Validator::new();
        let request_id = v.request_id(&req.request_id);
        let given = req.plan.clone().unwrap_or_default();
        let id: Option<PlanId> = v.id("plan.id", &given.id);
        let paths = req.update_mask.clone().map(|m| m.paths).unwrap_or_default();
        if paths.is_empty() {
            v.violation("update_mask", "names no field to change");
        }
        let (mut topic, mut reason, mut detail, mut new_targets, mut new_window, mut owner) =
            (None, None, None, None, None, None);
        for path in &paths {
            match path.as_str() {
                "topic" => topic = v.required_text("plan.topic", &given.topic, MAX_NAME_CHARS),
                "reason" => {
                    reason = reason_from(given.reason);
                    if reason.is_none() {
                        v.violation("plan.reason", "is required");
                    }
                }
                "reason_detail" => {
                    detail = v.optional_text("plan.reason_detail", &given.reason_detail, MAX_REASON_CHARS)
                }
                "target_platform_account_ids" => {
                    new_targets =
                        Some(targets(&mut v, "plan.target_platform_account_ids", &given.target_platform_account_ids))
                }
                "planned_window" => {
                    new_window = Some(window(&mut v, "plan.planned_window", given.planned_window.as_ref()))
                }
                "owner_user_id" => owner = v.id::<UserId>("plan.owner_user_id", &given.owner_user_id),
                other => v.violation("update_mask", format!("{other:?} cannot be changed")),
            }
        }
        v.finish()?;
        let (Some(request_id), Some(id)) = (request_id, id) else { return Err(Error::internal("validated").into()) };
        if let Some(t) = &new_targets {
            self.check_targets(t).await?;
        }
        let mut m = begin!(self, caller, "UpdatePlan", request_id, &req);
        let mut plan = store::lock(m.tx(), id).await?.ok_or_else(|| Error::not_found("plan", id))?;
        self.require(&caller, Permission::PlanWrite, plan.department).await?;
        check_etag("plan.etag", &given.etag, plan.version, true)?;
        check_open(&id.to_string(), plan.state, "changed")?;
        let previous = plan.version;
        if let Some(x) = topic {
            plan.topic = x;
        }
        if let Some(x) = reason {
            plan.reason = x;
        }
        if let Some(x) = detail {
            plan.reason_detail = x;
        }
        if let Some(x) = new_targets {
            plan.targets = x;
        }
        if let Some((s, e)) = new_window {
            plan.window_start = s;
            plan.window_end = e;
        }
        if let Some(x) = owner {
            plan.owner = x;
        }
        plan.updated_at = m.now();
        plan.version += 1;
        store::save(m.tx(), &plan, previous).await?;
        m.audit(
            self.record(AuditAction::PlanUpdated, &caller, &plan, &request_id.to_string())
                .attr("fields", paths.join(",")),
        );
        let answer = pb::UpdatePlanResponse { plan: Some(to_proto(&plan)) };
        m.commit(&answer, Some(self.core.relay())).await?;
        Ok(Response::new(answer))
    }

    async fn cancel_plan(
        &self,
        request: Request<pb::CancelPlanRequest>,
    ) -> Result<Response<pb::CancelPlanResponse>, Status> {
        let caller = caller(&request)?;
        let req = request.into_inner();
        let mut v = Validator::new();
        let request_id = v.request_id(&req.request_id);
        let id: Option<PlanId> = v.id("plan_id", &req.plan_id);
        let reason = v.reason("reason", &req.reason);
        v.finish()?;
        let (Some(request_id), Some(id), Some(reason)) = (request_id, id, reason) else {
            return Err(Error::internal("validated").into());
        };
        let mut m = begin!(self, caller, "CancelPlan", request_id, &req);
        let mut plan = store::lock(m.tx(), id).await?.ok_or_else(|| Error::not_found("plan", id))?;
        self.require(&caller, Permission::PlanWrite, plan.department).await?;
        check_etag("etag", &req.etag, plan.version, false)?;
        check_open(&id.to_string(), plan.state, "cancelled")?;
        let previous = plan.version;
        plan.state = PlanState::Cancelled;
        plan.cancel_reason = reason.clone();
        plan.updated_at = m.now();
        plan.version += 1;
        store::save(m.tx(), &plan, previous).await?;
        m.audit(self.record(AuditAction::PlanCancelled, &caller, &plan, &request_id.to_string()).reason(reason));
        let answer = pb::CancelPlanResponse { plan: Some(to_proto(&plan)) };
        m.commit(&answer, Some(self.core.relay())).await?;
        Ok(Response::new(answer))
    }
}
