//! `InspectionService`: inspections and random spot checks by the bureau office
//! (R8.1.1). The draw and the verdict rules are in [`crate::domain::inspection`].

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, Days, NaiveDate, Utc};
use govmedia_domain::Error;
use govmedia_domain::audit::{AuditAction, AuditRecord, AuditResourceRef};
use govmedia_domain::ids::{DepartmentId, InspectionId};
use govmedia_domain::page;
use govmedia_domain::permission::Permission;
use govmedia_domain::scope::Resource;
use govmedia_domain::validate::Validator;
use govmedia_kit::access::Authorized;
use govmedia_kit::mutation::Call;
use govmedia_kit::wire::{check_etag, etag, next_page_token, one_id, ts, unpack};
use govmedia_proto::audit::v1 as pb;
use govmedia_proto::audit::v1::inspection_service_server::{InspectionService, InspectionServiceServer};
use tonic::Request;

use crate::Core;
use crate::domain::compliance::start_of;
use crate::domain::inspection::{Inspection, Item, ItemType, Kind, MAX_SAMPLE, RULE, State, Verdict, draw};
use crate::store::inspections as store;

/// The longest period one inspection covers, in days.
const MAX_PERIOD_DAYS: i64 = 366;

/// The generated server around the handlers.
pub fn server(core: &Arc<Core>) -> InspectionServiceServer<Inspections> {
    InspectionServiceServer::new(Inspections { core: Arc::clone(core) })
}

/// The handlers.
#[derive(Debug, Clone)]
pub struct Inspections {
    core: Arc<Core>,
}

fn item_type_to(t: ItemType) -> pb::SampledItemType {
    match t {
        ItemType::Publication => pb::SampledItemType::Publication,
        ItemType::Reply => pb::SampledItemType::Reply,
        ItemType::Conversation => pb::SampledItemType::Conversation,
    }
}

fn item_to(i: &Item) -> pb::InspectionItem {
    pb::InspectionItem {
        item_type: item_type_to(i.item_type) as i32,
        item_id: i.item_id.clone(),
        platform_account_id: i.account.clone(),
        event_id: i.event_id.clone(),
        criteria: i.item_type.criteria().join(","),
        verdict: match i.verdict {
            Verdict::Pending => pb::Verdict::Unspecified,
            Verdict::Pass => pb::Verdict::Pass,
            Verdict::Problem => pb::Verdict::Problem,
        } as i32,
        failed_rule_id: i.failed_rule_id.clone(),
        note: i.note.clone(),
        judged_by: i.judged_by.clone(),
        judge_time: i.judged_at.map(ts),
    }
}

fn inspection_to(i: &Inspection, with_items: bool) -> pb::Inspection {
    pb::Inspection {
        id: i.id.to_string(),
        kind: match i.kind {
            Kind::Periodic => pb::InspectionKind::Periodic,
            Kind::SpotCheck => pb::InspectionKind::SpotCheck,
        } as i32,
        title: i.title.clone(),
        department_id: i.department.map(|d| d.to_string()).unwrap_or_default(),
        start_date: i.start_date.to_string(),
        end_date: i.end_date.to_string(),
        seed: i.seed.to_string(),
        sample_size: i.sample_size,
        items: if with_items { i.items.iter().map(item_to).collect() } else { Vec::new() },
        state: match i.state {
            State::Open => pb::InspectionState::Open,
            State::Completed => pb::InspectionState::Completed,
        } as i32,
        problems: u32::try_from(i.problems()).unwrap_or(u32::MAX),
        created_by: i.created_by.to_string(),
        create_time: Some(ts(i.created_at)),
        complete_time: i.completed_at.map(ts),
        etag: etag(i.version),
    }
}

fn audited(i: &Inspection) -> AuditResourceRef {
    let mut resource = AuditResourceRef::new("inspection", i.id);
    resource.department = i.department;
    resource
}

fn date(v: &mut Validator, field: &str, value: &str) -> Option<NaiveDate> {
    match NaiveDate::parse_from_str(value, "%Y-%m-%d") {
        Ok(d) => Some(d),
        Err(_) => {
            v.violation(field, "is required: a date as YYYY-MM-DD");
            None
        }
    }
}

/// The answer every change stores for replay.
#[derive(Clone, PartialEq, prost::Message)]
struct Wrapped {
    #[prost(message, optional, tag = "1")]
    inspection: Option<pb::Inspection>,
}

/// A validated CreateInspection.
struct NewInspection {
    kind: Kind,
    title: String,
    department: Option<DepartmentId>,
    start: NaiveDate,
    end: NaiveDate,
    seed: u64,
    sample_size: u32,
}

fn parse_new(v: &mut Validator, i: Option<&pb::Inspection>) -> Option<NewInspection> {
    let Some(i) = i else {
        v.violation("inspection", "is required");
        return None;
    };
    let kind = match pb::InspectionKind::try_from(i.kind) {
        Ok(pb::InspectionKind::Periodic) => Some(Kind::Periodic),
        Ok(pb::InspectionKind::SpotCheck) => Some(Kind::SpotCheck),
        _ => {
            v.violation("inspection.kind", "is required: periodic or spot check");
            None
        }
    };
    let title = v.required_text("inspection.title", &i.title, 200);
    let department: Option<DepartmentId> = v.optional_id("inspection.department_id", &i.department_id);
    let start = date(v, "inspection.start_date", &i.start_date);
    let end = date(v, "inspection.end_date", &i.end_date);
    if let (Some(s), Some(e)) = (start, end)
        && (e < s || (e - s).num_days() >= MAX_PERIOD_DAYS)
    {
        v.violation("inspection.end_date", format!("must be on or after start_date, within {MAX_PERIOD_DAYS} days"));
    }
    let seed = if i.seed.trim().is_empty() {
        // A seed nobody chose: recorded, so the draw can be repeated.
        Some(uuid::Uuid::new_v4().as_u64_pair().0)
    } else {
        match i.seed.trim().parse::<u64>() {
            Ok(s) => Some(s),
            Err(_) => {
                v.violation("inspection.seed", "must be a whole number from 0 to 18446744073709551615");
                None
            }
        }
    };
    if !(1..=MAX_SAMPLE).contains(&i.sample_size) {
        v.violation("inspection.sample_size", format!("must be 1 to {MAX_SAMPLE} items per item type"));
    }
    Some(NewInspection {
        kind: kind?,
        title: title?,
        department,
        start: start?,
        end: end?,
        seed: seed?,
        sample_size: i.sample_size,
    })
}

impl Inspections {
    async fn read(&self, id: InspectionId) -> Result<Inspection, Error> {
        let mut tx = self.core.db().begin_read().await?;
        store::get(&mut tx, id).await?.ok_or_else(|| Error::not_found("inspection", id))
    }

    async fn change<Req: prost::Message>(
        &self,
        call: Call<'_, Req>,
        (id, given_etag): (InspectionId, &str),
        grant: Authorized,
        change: impl FnOnce(&mut Inspection, DateTime<Utc>) -> Result<AuditRecord, Error>,
    ) -> Result<pb::Inspection, Error> {
        let answer = self
            .core
            .work()
            .run(call, async |m| {
                let mut i = store::lock(m.tx(), id, &grant).await?;
                check_etag("etag", given_etag, i.version, true)?;
                let previous = i.version;
                let record = change(&mut i, m.now())?;
                store::save(m.tx(), &i, previous).await?;
                m.audit(record);
                Ok(Wrapped { inspection: Some(inspection_to(&i, true)) })
            })
            .await?;
        answer.inspection.ok_or_else(|| Error::internal("a change of an inspection answered nothing"))
    }
}

#[govmedia_kit::handlers]
impl InspectionService for Inspections {
    async fn create_inspection(
        &self,
        request: Request<pb::CreateInspectionRequest>,
    ) -> Result<pb::CreateInspectionResponse, Error> {
        let (caller, req) = unpack(request)?;
        let mut v = Validator::new();
        let request_id = v.request_id(&req.request_id);
        let new = parse_new(&mut v, req.inspection.as_ref());
        let (request_id, new) = v.finish_with(|| Some((request_id?, new?)))?;
        self.core.permissions().require(&caller, Permission::InspectionManage, &Resource::GLOBAL).await?;
        // The candidates: what the log says went out or was answered in the period, in
        // the scope's accounts; read before the unit of work begins.
        let zone = self.core.time_zone();
        let (start, end) = (start_of(new.start, zone), start_of(new.end + Days::new(1), zone));
        let mut candidates = {
            let mut tx = self.core.db().begin_read().await?;
            store::candidates(&mut tx, start, end).await?
        };
        if let Some(department) = new.department {
            let accounts: HashSet<String> = self
                .core
                .register()
                .accounts()
                .await?
                .into_iter()
                .filter(|a| a.department == Some(department))
                .map(|a| a.id.to_string())
                .collect();
            candidates.retain(|c| accounts.contains(&c.account));
        }
        let items = draw(new.seed, candidates, new.sample_size);
        let call = Call::new(&caller, "/govmedia.audit.v1.InspectionService/CreateInspection", request_id, &req);
        self.core
            .work()
            .run(call, async |m| {
                let i = Inspection {
                    id: InspectionId::new(),
                    kind: new.kind,
                    title: new.title,
                    department: new.department,
                    start_date: new.start,
                    end_date: new.end,
                    seed: new.seed,
                    sample_size: new.sample_size,
                    items,
                    state: State::Open,
                    created_by: caller.id,
                    created_at: m.now(),
                    completed_at: None,
                    version: 1,
                };
                store::insert(m.tx(), &i).await?;
                let count = |t: ItemType| i.items.iter().filter(|x| x.item_type == t).count();
                m.audit(
                    AuditRecord::new(
                        AuditAction::InspectionCreated,
                        caller.actor(),
                        audited(&i),
                        crate::PRODUCER,
                        m.now(),
                    )
                    .rule(RULE)
                    .reason(i.title.clone())
                    .attr("kind", i.kind.as_str())
                    .attr("seed", i.seed)
                    .attr("period", format!("{}..{}", i.start_date, i.end_date))
                    .attr("publications", count(ItemType::Publication))
                    .attr("replies", count(ItemType::Reply))
                    .attr("conversations", count(ItemType::Conversation)),
                );
                Ok(pb::CreateInspectionResponse { inspection: Some(inspection_to(&i, true)) })
            })
            .await
    }

    async fn get_inspection(
        &self,
        request: Request<pb::GetInspectionRequest>,
    ) -> Result<pb::GetInspectionResponse, Error> {
        let (caller, req) = unpack(request)?;
        let id: InspectionId = one_id("inspection_id", &req.inspection_id)?;
        self.core.permissions().require(&caller, Permission::InspectionRead, &Resource::GLOBAL).await?;
        let i = self.read(id).await?;
        Ok(pb::GetInspectionResponse { inspection: Some(inspection_to(&i, true)) })
    }

    async fn list_inspections(
        &self,
        request: Request<pb::ListInspectionsRequest>,
    ) -> Result<pb::ListInspectionsResponse, Error> {
        let (caller, req) = unpack(request)?;
        let limit = page::page_size(req.page_size, 50, 500)?;
        let after: Option<(DateTime<Utc>, String)> = page::decode_page_token(&req.page_token)?;
        self.core.permissions().require(&caller, Permission::InspectionRead, &Resource::GLOBAL).await?;
        let mut tx = self.core.db().begin_read().await?;
        let list = store::list(&mut tx, after, limit).await?;
        Ok(pb::ListInspectionsResponse {
            next_page_token: next_page_token(&list, limit, |i| (i.created_at, i.id.to_string())),
            inspections: list.iter().map(|i| inspection_to(i, false)).collect(),
        })
    }

    async fn record_inspection_verdict(
        &self,
        request: Request<pb::RecordInspectionVerdictRequest>,
    ) -> Result<pb::RecordInspectionVerdictResponse, Error> {
        let (caller, req) = unpack(request)?;
        let mut v = Validator::new();
        let request_id = v.request_id(&req.request_id);
        let id: Option<InspectionId> = v.id("inspection_id", &req.inspection_id);
        let item_type = match pb::SampledItemType::try_from(req.item_type) {
            Ok(pb::SampledItemType::Publication) => Some(ItemType::Publication),
            Ok(pb::SampledItemType::Reply) => Some(ItemType::Reply),
            Ok(pb::SampledItemType::Conversation) => Some(ItemType::Conversation),
            _ => {
                v.violation("item_type", "is required: the sampled item's type");
                None
            }
        };
        let item_id = v.required_text("item_id", &req.item_id, 100);
        let verdict = match pb::Verdict::try_from(req.verdict) {
            Ok(pb::Verdict::Pass) => Some(Verdict::Pass),
            Ok(pb::Verdict::Problem) => Some(Verdict::Problem),
            _ => {
                v.violation("verdict", "is required: pass or problem");
                None
            }
        };
        let note = if verdict == Some(Verdict::Problem) {
            v.reason("note", &req.note)
        } else {
            v.optional_text("note", &req.note, 2000)
        };
        let (request_id, id, item_type, item_id, verdict, note) =
            v.finish_with(|| Some((request_id?, id?, item_type?, item_id?, verdict?, note?)))?;
        let grant = self.core.permissions().authorize(&caller, Permission::InspectionManage, &Resource::GLOBAL).await?;
        let call = Call::new(&caller, "/govmedia.audit.v1.InspectionService/RecordInspectionVerdict", request_id, &req);
        let (by, failed) = (caller.id, req.failed_rule_id.trim().to_owned());
        let inspection = self
            .change(call, (id, &req.etag), grant, |i, now| {
                let action = i.judge(item_type, &item_id, verdict, failed.clone(), note, by, now)?;
                Ok(AuditRecord::new(action, caller.actor(), audited(i), crate::PRODUCER, now)
                    .rule(RULE)
                    .attr("item_type", item_type.as_str())
                    .attr("item_id", &item_id)
                    .attr("verdict", if verdict == Verdict::Problem { "problem" } else { "pass" })
                    .attr("failed_rule_id", failed))
            })
            .await?;
        Ok(pb::RecordInspectionVerdictResponse { inspection: Some(inspection) })
    }

    async fn complete_inspection(
        &self,
        request: Request<pb::CompleteInspectionRequest>,
    ) -> Result<pb::CompleteInspectionResponse, Error> {
        let (caller, req) = unpack(request)?;
        let mut v = Validator::new();
        let request_id = v.request_id(&req.request_id);
        let id: Option<InspectionId> = v.id("inspection_id", &req.inspection_id);
        let (request_id, id) = v.finish_with(|| Some((request_id?, id?)))?;
        let grant = self.core.permissions().authorize(&caller, Permission::InspectionManage, &Resource::GLOBAL).await?;
        let call = Call::new(&caller, "/govmedia.audit.v1.InspectionService/CompleteInspection", request_id, &req);
        let inspection = self
            .change(call, (id, &req.etag), grant, |i, now| {
                let action = i.complete(now)?;
                Ok(AuditRecord::new(action, caller.actor(), audited(i), crate::PRODUCER, now)
                    .rule(RULE)
                    .attr("items", i.items.len())
                    .attr("problems", i.problems()))
            })
            .await?;
        Ok(pb::CompleteInspectionResponse { inspection: Some(inspection) })
    }
}
