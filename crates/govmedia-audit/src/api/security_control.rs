//! `SecurityControlService`: the register of network security controls (R7.2.1). The
//! rules are in [`crate::domain::security_control`].

use std::sync::Arc;

use chrono::{DateTime, Utc};
use govmedia_domain::Error;
use govmedia_domain::audit::{AuditAction, AuditRecord, AuditResourceRef};
use govmedia_domain::ids::{DepartmentId, PlatformAccountId, SecurityControlId};
use govmedia_domain::page;
use govmedia_domain::permission::Permission;
use govmedia_domain::scope::Resource;
use govmedia_domain::validate::Validator;
use govmedia_kit::access::Authorized;
use govmedia_kit::auth::Principal;
use govmedia_kit::mutation::Call;
use govmedia_kit::wire::{check_etag, etag, next_page_token, one_id, ts, unpack};
use govmedia_proto::audit::v1 as pb;
use govmedia_proto::audit::v1::security_control_service_server::{
    SecurityControlService, SecurityControlServiceServer,
};
use tonic::Request;

use crate::Core;
use crate::domain::security_control::{AssetType, ControlType, MAX_INTERVAL_DAYS, RULE, SecurityControl, Status};
use crate::store::security_controls::{self as store, ControlFilter, Cursor};

/// The generated server around the handlers.
pub fn server(core: &Arc<Core>) -> SecurityControlServiceServer<Controls> {
    SecurityControlServiceServer::new(Controls { core: Arc::clone(core) })
}

/// The handlers.
#[derive(Debug, Clone)]
pub struct Controls {
    core: Arc<Core>,
}

fn asset_to(a: AssetType) -> pb::AssetType {
    match a {
        AssetType::PlatformAccount => pb::AssetType::PlatformAccount,
        AssetType::Server => pb::AssetType::Server,
        AssetType::WorkstationGroup => pb::AssetType::WorkstationGroup,
        AssetType::Network => pb::AssetType::Network,
    }
}

fn asset_from(a: i32) -> Option<AssetType> {
    match pb::AssetType::try_from(a).ok()? {
        pb::AssetType::PlatformAccount => Some(AssetType::PlatformAccount),
        pb::AssetType::Server => Some(AssetType::Server),
        pb::AssetType::WorkstationGroup => Some(AssetType::WorkstationGroup),
        pb::AssetType::Network => Some(AssetType::Network),
        pb::AssetType::Unspecified => None,
    }
}

fn control_to(c: ControlType) -> pb::ControlType {
    match c {
        ControlType::Firewall => pb::ControlType::Firewall,
        ControlType::Antivirus => pb::ControlType::Antivirus,
        ControlType::AccessControl => pb::ControlType::AccessControl,
        ControlType::Backup => pb::ControlType::Backup,
        ControlType::TwoFactorLogin => pb::ControlType::TwoFactorLogin,
        ControlType::Patching => pb::ControlType::Patching,
        ControlType::Logging => pb::ControlType::Logging,
        ControlType::Encryption => pb::ControlType::Encryption,
        ControlType::Other => pb::ControlType::Other,
    }
}

fn control_from(c: i32) -> Option<ControlType> {
    match pb::ControlType::try_from(c).ok()? {
        pb::ControlType::Firewall => Some(ControlType::Firewall),
        pb::ControlType::Antivirus => Some(ControlType::Antivirus),
        pb::ControlType::AccessControl => Some(ControlType::AccessControl),
        pb::ControlType::Backup => Some(ControlType::Backup),
        pb::ControlType::TwoFactorLogin => Some(ControlType::TwoFactorLogin),
        pb::ControlType::Patching => Some(ControlType::Patching),
        pb::ControlType::Logging => Some(ControlType::Logging),
        pb::ControlType::Encryption => Some(ControlType::Encryption),
        pb::ControlType::Other => Some(ControlType::Other),
        pb::ControlType::Unspecified => None,
    }
}

fn status_to(s: Status) -> pb::ControlStatus {
    match s {
        Status::InPlace => pb::ControlStatus::InPlace,
        Status::Partial => pb::ControlStatus::Partial,
        Status::Missing => pb::ControlStatus::Missing,
        Status::Retired => pb::ControlStatus::Retired,
    }
}

/// A status a person observes: in place, partial or missing.
fn observed(v: &mut Validator, field: &str, s: i32) -> Option<Status> {
    match pb::ControlStatus::try_from(s) {
        Ok(pb::ControlStatus::InPlace) => Some(Status::InPlace),
        Ok(pb::ControlStatus::Partial) => Some(Status::Partial),
        Ok(pb::ControlStatus::Missing) => Some(Status::Missing),
        _ => {
            v.violation(field, "is required: in place, partial or missing");
            None
        }
    }
}

fn control_to_wire(c: &SecurityControl, now: DateTime<Utc>) -> pb::SecurityControl {
    pb::SecurityControl {
        id: c.id.to_string(),
        asset_type: asset_to(c.asset_type) as i32,
        asset_id: c.asset_id.clone(),
        asset_name: c.asset_name.clone(),
        control_type: control_to(c.control_type) as i32,
        description: c.description.clone(),
        status: status_to(c.status) as i32,
        verify_interval_days: c.interval_days,
        last_verify_time: c.verified_at.map(ts),
        last_verified_by: c.verified_by.map(|p| p.to_string()).unwrap_or_default(),
        evidence: c.evidence.clone(),
        overdue: c.is_overdue(now),
        next_verify_time: (c.status != Status::Retired).then(|| ts(c.next_due())),
        department_id: c.department.map(|d| d.to_string()).unwrap_or_default(),
        create_time: Some(ts(c.created_at)),
        etag: etag(c.version),
    }
}

fn audited(c: &SecurityControl) -> AuditResourceRef {
    let mut resource = AuditResourceRef::new("security_control", c.id);
    resource.department = c.department;
    if c.asset_type == AssetType::PlatformAccount {
        resource.platform_account = c.asset_id.parse().ok();
    }
    resource
}

fn record(action: AuditAction, caller: &Principal, c: &SecurityControl, now: DateTime<Utc>) -> AuditRecord {
    AuditRecord::new(action, caller.actor(), audited(c), crate::PRODUCER, now)
        .rule(RULE)
        .attr("asset_type", c.asset_type.as_str())
        .attr("asset_id", &c.asset_id)
        .attr("control_type", c.control_type.as_str())
        .attr("status", c.status.as_str())
        .attr("evidence", govmedia_domain::personal::mask_all(&c.evidence))
}

/// The answer every change stores for replay.
#[derive(Clone, PartialEq, prost::Message)]
struct Wrapped {
    #[prost(message, optional, tag = "1")]
    security_control: Option<pb::SecurityControl>,
}

impl Controls {
    async fn change<Req: prost::Message>(
        &self,
        call: Call<'_, Req>,
        caller: &Principal,
        (id, given_etag): (SecurityControlId, &str),
        grant: Authorized,
        change: impl FnOnce(&mut SecurityControl, DateTime<Utc>) -> Result<AuditAction, Error>,
    ) -> Result<pb::SecurityControl, Error> {
        let answer = self
            .core
            .work()
            .run(call, async |m| {
                let mut c = store::lock(m.tx(), id, &grant).await?;
                check_etag("etag", given_etag, c.version, true)?;
                let previous = c.version;
                let action = change(&mut c, m.now())?;
                store::save(m.tx(), &c, previous).await?;
                m.audit(record(action, caller, &c, m.now()));
                Ok(Wrapped { security_control: Some(control_to_wire(&c, m.now())) })
            })
            .await?;
        answer.security_control.ok_or_else(|| Error::internal("a change of a security control answered nothing"))
    }
}

#[govmedia_kit::handlers]
impl SecurityControlService for Controls {
    async fn create_security_control(
        &self,
        request: Request<pb::CreateSecurityControlRequest>,
    ) -> Result<pb::CreateSecurityControlResponse, Error> {
        let (caller, req) = unpack(request)?;
        let mut v = Validator::new();
        let request_id = v.request_id(&req.request_id);
        let given = req.security_control.clone().unwrap_or_default();
        if req.security_control.is_none() {
            v.violation("security_control", "is required");
        }
        let asset_type = asset_from(given.asset_type);
        if asset_type.is_none() {
            v.violation("security_control.asset_type", "is required");
        }
        let asset_id = v.required_text("security_control.asset_id", &given.asset_id, 200);
        if asset_type == Some(AssetType::PlatformAccount) && given.asset_id.parse::<PlatformAccountId>().is_err() {
            v.violation("security_control.asset_id", "must be the platform account's id");
        }
        let asset_name = v.required_text("security_control.asset_name", &given.asset_name, 200);
        let control_type = control_from(given.control_type);
        if control_type.is_none() {
            v.violation("security_control.control_type", "is required");
        }
        let description = v.required_text("security_control.description", &given.description, 2000);
        let status = observed(&mut v, "security_control.status", given.status);
        if !(1..=MAX_INTERVAL_DAYS).contains(&given.verify_interval_days) {
            v.violation("security_control.verify_interval_days", format!("must be 1 to {MAX_INTERVAL_DAYS} days"));
        }
        let department: Option<DepartmentId> = v.optional_id("security_control.department_id", &given.department_id);
        let (request_id, asset_type, asset_id, asset_name, control_type, description, status) =
            v.finish_with(|| {
                Some((request_id?, asset_type?, asset_id?, asset_name?, control_type?, description?, status?))
            })?;
        self.core.permissions().require(&caller, Permission::SecurityControlManage, &Resource::GLOBAL).await?;
        let call =
            Call::new(&caller, "/govmedia.audit.v1.SecurityControlService/CreateSecurityControl", request_id, &req);
        self.core
            .work()
            .run(call, async |m| {
                let c = SecurityControl {
                    id: SecurityControlId::new(),
                    asset_type,
                    asset_id,
                    asset_name,
                    control_type,
                    description,
                    status,
                    interval_days: given.verify_interval_days,
                    verified_at: None,
                    verified_by: None,
                    evidence: String::new(),
                    department,
                    created_at: m.now(),
                    version: 1,
                };
                store::insert(m.tx(), &c).await?;
                m.audit(record(AuditAction::SecurityControlCreated, &caller, &c, m.now()));
                Ok(pb::CreateSecurityControlResponse { security_control: Some(control_to_wire(&c, m.now())) })
            })
            .await
    }

    async fn get_security_control(
        &self,
        request: Request<pb::GetSecurityControlRequest>,
    ) -> Result<pb::GetSecurityControlResponse, Error> {
        let (caller, req) = unpack(request)?;
        let id: SecurityControlId = one_id("security_control_id", &req.security_control_id)?;
        self.core.permissions().require(&caller, Permission::SecurityControlRead, &Resource::GLOBAL).await?;
        let mut tx = self.core.db().begin_read().await?;
        let c = store::get(&mut tx, id).await?.ok_or_else(|| Error::not_found("security control", id))?;
        Ok(pb::GetSecurityControlResponse { security_control: Some(control_to_wire(&c, self.core.now())) })
    }

    async fn list_security_controls(
        &self,
        request: Request<pb::ListSecurityControlsRequest>,
    ) -> Result<pb::ListSecurityControlsResponse, Error> {
        let (caller, req) = unpack(request)?;
        let mut v = Validator::new();
        let asset_type = match pb::AssetType::try_from(req.asset_type) {
            Ok(pb::AssetType::Unspecified) => None,
            Ok(_) => asset_from(req.asset_type),
            Err(_) => {
                v.violation("asset_type", "is not an asset type");
                None
            }
        };
        let asset_id = v.optional_text("asset_id", &req.asset_id, 200);
        let limit = page::page_size(req.page_size, 50, 500);
        let after: Result<Option<Cursor>, Error> = page::decode_page_token(&req.page_token);
        let asset_id = v.finish_with(|| asset_id)?;
        let (limit, after) = (limit?, after?);
        self.core.permissions().require(&caller, Permission::SecurityControlRead, &Resource::GLOBAL).await?;
        let now = self.core.now();
        let filter = ControlFilter {
            asset_type,
            asset_id: (!asset_id.is_empty()).then_some(asset_id),
            overdue_at: req.overdue_only.then_some(now),
        };
        let mut tx = self.core.db().begin_read().await?;
        let list = store::list(&mut tx, &filter, after, limit).await?;
        Ok(pb::ListSecurityControlsResponse {
            next_page_token: next_page_token(&list, limit, |c| {
                (
                    c.asset_type.as_str().to_owned(),
                    c.asset_id.clone(),
                    c.control_type.as_str().to_owned(),
                    c.id.to_string(),
                )
            }),
            security_controls: list.iter().map(|c| control_to_wire(c, now)).collect(),
        })
    }

    async fn verify_security_control(
        &self,
        request: Request<pb::VerifySecurityControlRequest>,
    ) -> Result<pb::VerifySecurityControlResponse, Error> {
        let (caller, req) = unpack(request)?;
        let mut v = Validator::new();
        let request_id = v.request_id(&req.request_id);
        let id: Option<SecurityControlId> = v.id("security_control_id", &req.security_control_id);
        let status = observed(&mut v, "status", req.status);
        let evidence = v.required_text("evidence", &req.evidence, 2000);
        let (request_id, id, status, evidence) = v.finish_with(|| Some((request_id?, id?, status?, evidence?)))?;
        let grant =
            self.core.permissions().authorize(&caller, Permission::SecurityControlManage, &Resource::GLOBAL).await?;
        let call =
            Call::new(&caller, "/govmedia.audit.v1.SecurityControlService/VerifySecurityControl", request_id, &req);
        let by = caller.id;
        let c =
            self.change(call, &caller, (id, &req.etag), grant, |c, now| c.verify(status, evidence, by, now)).await?;
        Ok(pb::VerifySecurityControlResponse { security_control: Some(c) })
    }

    async fn retire_security_control(
        &self,
        request: Request<pb::RetireSecurityControlRequest>,
    ) -> Result<pb::RetireSecurityControlResponse, Error> {
        let (caller, req) = unpack(request)?;
        let mut v = Validator::new();
        let request_id = v.request_id(&req.request_id);
        let id: Option<SecurityControlId> = v.id("security_control_id", &req.security_control_id);
        let reason = v.reason("reason", &req.reason);
        let (request_id, id, reason) = v.finish_with(|| Some((request_id?, id?, reason?)))?;
        let grant =
            self.core.permissions().authorize(&caller, Permission::SecurityControlManage, &Resource::GLOBAL).await?;
        let call =
            Call::new(&caller, "/govmedia.audit.v1.SecurityControlService/RetireSecurityControl", request_id, &req);
        let by = caller.id;
        let c = self.change(call, &caller, (id, &req.etag), grant, |c, now| c.retire(reason, by, now)).await?;
        Ok(pb::RetireSecurityControlResponse { security_control: Some(c) })
    }
}
