//! `PlanService`: the content calendar (R3.1.1, R3.1.2).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use govmedia_domain::Error;
use govmedia_domain::audit::{AuditAction, AuditRecord, AuditResourceRef};
use govmedia_domain::ids::{DepartmentId, PlanId, PlatformAccountId, RequestId, UserId};
use govmedia_domain::page;
use govmedia_domain::permission::Permission;
use govmedia_domain::scope::Resource;
use govmedia_domain::validate::{MAX_NAME_CHARS, MAX_REASON_CHARS, Validator};
use govmedia_kit::access::Authorized;
use govmedia_kit::auth::Principal;
use govmedia_kit::mutation::Call;
use govmedia_kit::wire::{next_page_token, unpack};
use govmedia_proto::common::v1 as cpb;
use govmedia_proto::content::v1 as pb;
use govmedia_proto::content::v1::plan_service_server::{PlanService, PlanServiceServer};
use tonic::Request;

use super::{caller, check_etag, etag, from_ts, ts};
use crate::domain::plan::{Plan, PlanChanges, PlanReason, PlanState, Window};
use crate::store::plans::{self as store, PlanFilter};
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

/// A validated `CreatePlan`.
struct CreatePlan {
    request_id: RequestId,
    department: DepartmentId,
    topic: String,
    reason: PlanReason,
    reason_detail: String,
    targets: Vec<PlatformAccountId>,
    window: Window,
    /// `None`: the caller.
    owner: Option<UserId>,
}

impl TryFrom<&pb::CreatePlanRequest> for CreatePlan {
    type Error = Error;

    fn try_from(req: &pb::CreatePlanRequest) -> Result<Self, Error> {
        let mut v = Validator::new();
        let request_id = v.request_id(&req.request_id);
        let given = req.plan.clone().unwrap_or_default();
        let department = v.id("plan.department_id", &given.department_id);
        let topic = v.required_text("plan.topic", &given.topic, MAX_NAME_CHARS);
        let reason = reason_from(given.reason);
        if reason.is_none() {
            v.violation("plan.reason", "is required: why now (work priority, hot topic, calendar date, other)");
        }
        let reason_detail = v.optional_text("plan.reason_detail", &given.reason_detail, MAX_REASON_CHARS);
        let targets = targets(&mut v, "plan.target_platform_account_ids", &given.target_platform_account_ids);
        let window = window(&mut v, "plan.planned_window", given.planned_window.as_ref());
        let owner = v.optional_id("plan.owner_user_id", &given.owner_user_id);
        v.finish_with(|| {
            Some(CreatePlan {
                request_id: request_id?,
                department: department?,
                topic: topic?,
                reason: reason?,
                reason_detail: reason_detail?,
                targets,
                window,
                owner,
            })
        })
    }
}

/// A validated `UpdatePlan`.
struct UpdatePlan {
    request_id: RequestId,
    plan: PlanId,
    etag: String,
    changes: PlanChanges,
    paths: Vec<String>,
}

impl TryFrom<&pb::UpdatePlanRequest> for UpdatePlan {
    type Error = Error;

    fn try_from(req: &pb::UpdatePlanRequest) -> Result<Self, Error> {
        let mut v = Validator::new();
        let request_id = v.request_id(&req.request_id);
        let given = req.plan.clone().unwrap_or_default();
        let plan = v.id("plan.id", &given.id);
        let paths = req.update_mask.clone().map(|m| m.paths).unwrap_or_default();
        if paths.is_empty() {
            v.violation("update_mask", "names no field to change");
        }
        let mut changes = PlanChanges::default();
        for path in &paths {
            match path.as_str() {
                "topic" => changes.topic = v.required_text("plan.topic", &given.topic, MAX_NAME_CHARS),
                "reason" => {
                    changes.reason = reason_from(given.reason);
                    if changes.reason.is_none() {
                        v.violation("plan.reason", "is required");
                    }
                }
                "reason_detail" => {
                    changes.reason_detail =
                        v.optional_text("plan.reason_detail", &given.reason_detail, MAX_REASON_CHARS)
                }
                "target_platform_account_ids" => {
                    changes.targets =
                        Some(targets(&mut v, "plan.target_platform_account_ids", &given.target_platform_account_ids))
                }
                "planned_window" => {
                    changes.window = Some(window(&mut v, "plan.planned_window", given.planned_window.as_ref()))
                }
                "owner_user_id" => changes.owner = v.id("plan.owner_user_id", &given.owner_user_id),
                other => v.violation("update_mask", format!("{other:?} cannot be changed")),
            }
        }
        v.finish_with(|| Some(UpdatePlan { request_id: request_id?, plan: plan?, etag: given.etag, changes, paths }))
    }
}

/// A validated `CancelPlan`.
struct CancelPlan {
    request_id: RequestId,
    plan: PlanId,
    etag: String,
    reason: String,
}

impl TryFrom<&pb::CancelPlanRequest> for CancelPlan {
    type Error = Error;

    fn try_from(req: &pb::CancelPlanRequest) -> Result<Self, Error> {
        let mut v = Validator::new();
        let request_id = v.request_id(&req.request_id);
        let plan = v.id("plan_id", &req.plan_id);
        let reason = v.reason("reason", &req.reason);
        v.finish_with(|| {
            Some(CancelPlan { request_id: request_id?, plan: plan?, etag: req.etag.clone(), reason: reason? })
        })
    }
}

impl Plans {
    /// The authorisation for `permission` on `department`'s plans.
    async fn authorize(
        &self,
        caller: &Principal,
        permission: Permission,
        department: DepartmentId,
    ) -> Result<Authorized, Error> {
        self.core.permissions().authorize(caller, permission, &Resource::department(department)).await
    }

    /// A plan as it is now, read without a lock.
    async fn read(&self, id: PlanId) -> Result<Plan, Error> {
        let mut tx = self.core.db().begin_read().await?;
        store::get(&mut tx, id).await?.ok_or_else(|| Error::not_found("plan", id))
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

    fn record(&self, action: AuditAction, caller: &Principal, plan: &Plan, request_id: RequestId) -> AuditRecord {
        let mut resource = AuditResourceRef::new("plan", plan.id);
        resource.department = Some(plan.department);
        AuditRecord::new(action, caller.actor(), resource, PRODUCER, self.core.now())
            .rule("R3.1.1")
            .request(govmedia_kit::telemetry::current_trace_id(), Some(request_id.to_string()))
    }
}

/// The full gRPC path of a `PlanService` method (the idempotency key's method).
macro_rules! method {
    ($name:literal) => {
        concat!("/govmedia.content.v1.PlanService/", $name)
    };
}

#[govmedia_kit::handlers]
impl PlanService for Plans {
    async fn create_plan(&self, request: Request<pb::CreatePlanRequest>) -> Result<pb::CreatePlanResponse, Error> {
        let (caller, req) = unpack(request)?;
        let cmd = CreatePlan::try_from(&req)?;
        self.authorize(&caller, Permission::PlanWrite, cmd.department).await?;
        self.check_targets(&cmd.targets).await?;
        let call = Call::new(&caller, method!("CreatePlan"), cmd.request_id, &req);
        let answer = self.core.work().run(call, async |m| {
            let owner = cmd.owner.unwrap_or_else(|| UserId::from_uuid(caller.id.as_uuid()));
            let plan = Plan::new(
                cmd.department,
                cmd.topic,
                cmd.reason,
                cmd.reason_detail,
                cmd.targets,
                cmd.window,
                owner,
                m.now(),
            );
            store::insert(m.tx(), &plan).await?;
            m.audit(self.record(AuditAction::PlanCreated, &caller, &plan, cmd.request_id).attr("topic", &plan.topic));
            Ok(pb::CreatePlanResponse { plan: Some(to_proto(&plan)) })
        });
        answer.await
    }

    async fn get_plan(&self, request: Request<pb::GetPlanRequest>) -> Result<pb::GetPlanResponse, Error> {
        let caller = caller(&request)?;
        let mut v = Validator::new();
        let id = v.id("plan_id", &request.get_ref().plan_id);
        let plan = self.read(v.finish_with(|| id)?).await?;
        self.authorize(&caller, Permission::PlanRead, plan.department).await?;
        Ok(pb::GetPlanResponse { plan: Some(to_proto(&plan)) })
    }

    async fn list_plans(&self, request: Request<pb::ListPlansRequest>) -> Result<pb::ListPlansResponse, Error> {
        let (caller, req) = unpack(request)?;
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
        self.core.permissions().require(&caller, Permission::PlanRead, &scope).await?;
        let mut tx = self.core.db().begin_read().await?;
        let plans = store::list(&mut tx, &PlanFilter { department, state, from, to }, after, limit).await?;
        let next_page_token = next_page_token(&plans, limit, |last| {
            (last.window_start.unwrap_or(DateTime::<Utc>::UNIX_EPOCH), last.id.to_string())
        });
        Ok(pb::ListPlansResponse { plans: plans.iter().map(to_proto).collect(), next_page_token })
    }

    async fn update_plan(&self, request: Request<pb::UpdatePlanRequest>) -> Result<pb::UpdatePlanResponse, Error> {
        let (caller, req) = unpack(request)?;
        let cmd = UpdatePlan::try_from(&req)?;
        if let Some(t) = &cmd.changes.targets {
            self.check_targets(t).await?;
        }
        let grant = self.authorize(&caller, Permission::PlanWrite, self.read(cmd.plan).await?.department).await?;
        let call = Call::new(&caller, method!("UpdatePlan"), cmd.request_id, &req);
        let answer = self.core.work().run(call, async |m| {
            let mut plan = store::lock(m.tx(), cmd.plan, &grant).await?;
            check_etag("plan.etag", &cmd.etag, plan.version, true)?;
            let action = plan.update(cmd.changes, m.now())?;
            store::save(m.tx(), &plan).await?;
            m.audit(self.record(action, &caller, &plan, cmd.request_id).attr("fields", cmd.paths.join(",")));
            Ok(pb::UpdatePlanResponse { plan: Some(to_proto(&plan)) })
        });
        answer.await
    }

    async fn cancel_plan(&self, request: Request<pb::CancelPlanRequest>) -> Result<pb::CancelPlanResponse, Error> {
        let (caller, req) = unpack(request)?;
        let cmd = CancelPlan::try_from(&req)?;
        let grant = self.authorize(&caller, Permission::PlanWrite, self.read(cmd.plan).await?.department).await?;
        let call = Call::new(&caller, method!("CancelPlan"), cmd.request_id, &req);
        let answer = self.core.work().run(call, async |m| {
            let mut plan = store::lock(m.tx(), cmd.plan, &grant).await?;
            check_etag("etag", &cmd.etag, plan.version, false)?;
            let action = plan.cancel(&cmd.reason, m.now())?;
            store::save(m.tx(), &plan).await?;
            m.audit(self.record(action, &caller, &plan, cmd.request_id).reason(cmd.reason.clone()));
            Ok(pb::CancelPlanResponse { plan: Some(to_proto(&plan)) })
        });
        answer.await
    }
}
