//! `EscalationService`: the department head's queue of missed reply deadlines (R4.1.1,
//! R4.2.1, R4.2.2). The deadline watch ([`crate::deadline_watch`]) raises and resolves
//! escalations; people read them and acknowledge them here.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use govmedia_domain::Error;
use govmedia_domain::audit::AuditRecord;
use govmedia_domain::ids::{DepartmentId, EscalationId, PlatformAccountId, UserId};
use govmedia_domain::page;
use govmedia_domain::permission::Permission;
use govmedia_domain::scope::Resource;
use govmedia_domain::validate::Validator;
use govmedia_kit::mutation::Call;
use govmedia_kit::wire::{caller, check_etag, etag, next_page_token, one_id, ts, unpack};
use govmedia_proto::interaction::v1 as pb;
use govmedia_proto::interaction::v1::escalation_service_server::{EscalationService, EscalationServiceServer};
use tonic::Request;

use super::method;
use crate::Core;
use crate::deadline_watch::resource;
use crate::domain::escalation::{EscalatedItem, Escalation, EscalationState, MAX_NOTE_CHARS};
use crate::store::escalations::{self as store, EscalationFilter};

/// The generated server around the handlers.
pub fn server(core: &Arc<Core>) -> EscalationServiceServer<Escalations> {
    EscalationServiceServer::new(Escalations { core: Arc::clone(core) })
}

/// The handlers.
#[derive(Debug, Clone)]
pub struct Escalations {
    core: Arc<Core>,
}

fn item_to(i: EscalatedItem) -> pb::EscalatedItemType {
    match i {
        EscalatedItem::Comment => pb::EscalatedItemType::Comment,
        EscalatedItem::Conversation => pb::EscalatedItemType::Conversation,
        EscalatedItem::Referral => pb::EscalatedItemType::Referral,
    }
}

fn state_to(s: EscalationState) -> pb::EscalationState {
    match s {
        EscalationState::Open => pb::EscalationState::Open,
        EscalationState::Acknowledged => pb::EscalationState::Acknowledged,
        EscalationState::Resolved => pb::EscalationState::Resolved,
    }
}

fn escalation_to(e: &Escalation) -> pb::Escalation {
    pb::Escalation {
        id: e.id.to_string(),
        item_type: item_to(e.item) as i32,
        item_id: e.item_id.clone(),
        platform_account_id: e.account.to_string(),
        department_id: e.department.map(|d| d.to_string()).unwrap_or_default(),
        due_time: Some(ts(e.due_at)),
        escalate_time: Some(ts(e.escalated_at)),
        state: state_to(e.state) as i32,
        acknowledged_by: e.acknowledged_by.map(|u| u.to_string()).unwrap_or_default(),
        acknowledge_time: e.acknowledged_at.map(ts),
        note: e.note.clone(),
        resolve_time: e.resolved_at.map(ts),
        rule_id: e.item.rule().to_owned(),
        etag: etag(e.version),
    }
}

/// The department's queue as a permission resource; the bureau's for an escalation of
/// an account that belongs to no department.
fn queue(department: Option<DepartmentId>) -> Resource {
    department.map_or(Resource::GLOBAL, Resource::department)
}

/// A validated ListEscalations.
struct ListQuery {
    filter: EscalationFilter,
    limit: u32,
    after: Option<(DateTime<Utc>, String)>,
}

impl TryFrom<&pb::ListEscalationsRequest> for ListQuery {
    type Error = Error;

    fn try_from(req: &pb::ListEscalationsRequest) -> Result<Self, Error> {
        let mut v = Validator::new();
        let department: Option<DepartmentId> = v.optional_id("department_id", &req.department_id);
        let account: Option<PlatformAccountId> = v.optional_id("platform_account_id", &req.platform_account_id);
        let state = match pb::EscalationState::try_from(req.state) {
            Ok(pb::EscalationState::Unspecified) => None,
            Ok(pb::EscalationState::Open) => Some(EscalationState::Open),
            Ok(pb::EscalationState::Acknowledged) => Some(EscalationState::Acknowledged),
            Ok(pb::EscalationState::Resolved) => Some(EscalationState::Resolved),
            Err(_) => {
                v.violation("state", "is not an escalation state");
                None
            }
        };
        let item = match pb::EscalatedItemType::try_from(req.item_type) {
            Ok(pb::EscalatedItemType::Unspecified) => None,
            Ok(pb::EscalatedItemType::Comment) => Some(EscalatedItem::Comment),
            Ok(pb::EscalatedItemType::Conversation) => Some(EscalatedItem::Conversation),
            Ok(pb::EscalatedItemType::Referral) => Some(EscalatedItem::Referral),
            Err(_) => {
                v.violation("item_type", "is not an escalated item type");
                None
            }
        };
        v.finish()?;
        Ok(Self {
            filter: EscalationFilter { department, state, item, account },
            limit: page::page_size(req.page_size, 50, 500)?,
            after: page::decode_page_token(&req.page_token)?,
        })
    }
}

impl Escalations {
    async fn read(&self, id: EscalationId) -> Result<Escalation, Error> {
        let mut tx = self.core.db().begin_read().await?;
        store::get(&mut tx, id).await?.ok_or_else(|| Error::not_found("escalation", id))
    }
}

#[govmedia_kit::handlers]
impl EscalationService for Escalations {
    async fn get_escalation(
        &self,
        request: Request<pb::GetEscalationRequest>,
    ) -> Result<pb::GetEscalationResponse, Error> {
        let caller = caller(&request)?;
        let id: EscalationId = one_id("escalation_id", &request.get_ref().escalation_id)?;
        let e = self.read(id).await?;
        self.core.permissions().require(&caller, Permission::EscalationRead, &queue(e.department)).await?;
        Ok(pb::GetEscalationResponse { escalation: Some(escalation_to(&e)) })
    }

    async fn list_escalations(
        &self,
        request: Request<pb::ListEscalationsRequest>,
    ) -> Result<pb::ListEscalationsResponse, Error> {
        let (caller, req) = unpack(request)?;
        let q = ListQuery::try_from(&req)?;
        // A department's head reads their department's queue; one account's escalations
        // are read through the account's department; everything needs the bureau.
        let resource = match (q.filter.department, q.filter.account) {
            (Some(d), _) => Resource::department(d),
            (None, Some(a)) => {
                let facts = self.core.account(a).await?;
                queue(facts.department)
            }
            (None, None) => Resource::GLOBAL,
        };
        self.core.permissions().require(&caller, Permission::EscalationRead, &resource).await?;
        let mut filter = q.filter;
        if filter.department.is_none() {
            // Scoped as checked: an account's escalations go to its department's queue.
            filter.department = resource.department;
        }
        let mut tx = self.core.db().begin_read().await?;
        let list = store::list(&mut tx, &filter, q.after, q.limit).await?;
        Ok(pb::ListEscalationsResponse {
            next_page_token: next_page_token(&list, q.limit, |e| (e.due_at, e.id.to_string())),
            escalations: list.iter().map(escalation_to).collect(),
        })
    }

    async fn acknowledge_escalation(
        &self,
        request: Request<pb::AcknowledgeEscalationRequest>,
    ) -> Result<pb::AcknowledgeEscalationResponse, Error> {
        let (caller, req) = unpack(request)?;
        let mut v = Validator::new();
        let request_id = v.request_id(&req.request_id);
        let id: Option<EscalationId> = v.id("escalation_id", &req.escalation_id);
        let note = v.optional_text("note", &req.note, MAX_NOTE_CHARS);
        let (request_id, id, note) = v.finish_with(|| Some((request_id?, id?, note?)))?;
        let found = self.read(id).await?;
        let grant =
            self.core.permissions().authorize(&caller, Permission::EscalationHandle, &queue(found.department)).await?;
        let call = Call::new(&caller, method!("EscalationService/AcknowledgeEscalation"), request_id, &req);
        let who = UserId::from_uuid(caller.id.as_uuid());
        self.core
            .work()
            .run(call, async |m| {
                let mut e = store::lock(m.tx(), id, &grant).await?;
                check_etag("etag", &req.etag, e.version, false)?;
                let action = e.acknowledge(who, note, m.now())?;
                store::save(m.tx(), &e, e.version - 1).await?;
                m.audit(
                    AuditRecord::new(action, caller.actor(), resource(&e), crate::PRODUCER, m.now())
                        .rule(e.item.rule())
                        .attr("item_type", e.item.as_str())
                        .attr("item_id", &e.item_id)
                        .attr("note", &e.note),
                );
                Ok(pb::AcknowledgeEscalationResponse { escalation: Some(escalation_to(&e)) })
            })
            .await
    }
}
