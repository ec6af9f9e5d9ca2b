//! `AccessService`: built-in roles, scoped role bindings, and the permission checks every
//! other service asks (R2.2.1, R2.2.2, R6.1.1).

use std::sync::Arc;

use govmedia_domain::Error;
use govmedia_domain::audit::{AuditAction, AuditResourceRef};
use govmedia_domain::ids::{DepartmentId, PlatformAccountId, PrincipalId, RoleBindingId, SessionId};
use govmedia_domain::permission::{Permission, Role};
use govmedia_domain::scope::{Resource, Scope, ScopeKind};
use govmedia_domain::validate::Validator;
use govmedia_kit::auth::Principal;
use govmedia_kit::db::Tx;
use govmedia_kit::mutation::Call;
use govmedia_kit::wire::unpack;
use govmedia_proto::common::v1 as common;
use govmedia_proto::identity::v1 as pb;
use govmedia_proto::identity::v1::access_service_server::{AccessService, AccessServiceServer};
use tonic::Request;

use super::{caller, cursor, method, next_token, page_size, ts};
use crate::Core;
use crate::domain::access::{self, Binding, Decision, Denial};
use crate::store::{access as store, directory, sessions};

/// Most checks in one BatchCheckPermission.
pub const MAX_BATCH: usize = 100;

/// The generated server around the handlers.
pub fn server(core: &Arc<Core>) -> AccessServiceServer<Access> {
    AccessServiceServer::new(Access { core: Arc::clone(core) })
}

/// The handlers.
#[derive(Debug, Clone)]
pub struct Access {
    core: Arc<Core>,
}

fn scope_kind_to_proto(kind: ScopeKind) -> common::ScopeKind {
    match kind {
        ScopeKind::Global => common::ScopeKind::Global,
        ScopeKind::Department => common::ScopeKind::Department,
        ScopeKind::PlatformAccount => common::ScopeKind::PlatformAccount,
    }
}

fn scope_to_proto(scope: &Scope) -> common::Scope {
    let (kind, id) = match scope {
        Scope::Global => (ScopeKind::Global, String::new()),
        Scope::Department(d) => (ScopeKind::Department, d.to_string()),
        Scope::PlatformAccount(a) => (ScopeKind::PlatformAccount, a.to_string()),
    };
    common::Scope { kind: scope_kind_to_proto(kind) as i32, id }
}

pub(crate) fn binding_to_proto(b: &Binding) -> pb::RoleBinding {
    pb::RoleBinding {
        id: b.id.to_string(),
        principal_id: b.principal.to_string(),
        role: b.role.as_str().to_owned(),
        scope: Some(scope_to_proto(&b.scope)),
        granted_by: b.granted_by.to_string(),
        create_time: Some(ts(b.created_at)),
        reason: b.reason.clone(),
    }
}

fn parse_scope(v: &mut Validator, field: &str, scope: Option<&common::Scope>) -> Option<Scope> {
    let Some(scope) = scope else {
        v.violation(field, "is required");
        return None;
    };
    match common::ScopeKind::try_from(scope.kind) {
        Ok(common::ScopeKind::Global) => {
            if !scope.id.is_empty() {
                v.violation(format!("{field}.id"), "must be empty for a global scope");
            }
            Some(Scope::Global)
        }
        Ok(common::ScopeKind::Department) => {
            v.id::<DepartmentId>(&format!("{field}.id"), &scope.id).map(Scope::Department)
        }
        Ok(common::ScopeKind::PlatformAccount) => {
            v.id::<PlatformAccountId>(&format!("{field}.id"), &scope.id).map(Scope::PlatformAccount)
        }
        _ => {
            v.violation(format!("{field}.kind"), "must be global, department or platform account");
            None
        }
    }
}

fn parse_resource(v: &mut Validator, field: &str, resource: Option<&pb::Resource>) -> Resource {
    let Some(resource) = resource else { return Resource::GLOBAL };
    Resource {
        department: v.optional_id(&format!("{field}.department_id"), &resource.department_id),
        platform_account: v.optional_id(&format!("{field}.platform_account_id"), &resource.platform_account_id),
    }
}

fn denial_to_proto(d: Denial) -> pb::DenialReason {
    match d {
        Denial::NoBinding => pb::DenialReason::NoBinding,
        Denial::PrincipalDisabled => pb::DenialReason::PrincipalDisabled,
        Denial::PrincipalUnknown => pb::DenialReason::PrincipalUnknown,
        Denial::UnknownPermission => pb::DenialReason::UnknownPermission,
        Denial::PasswordChangeRequired => pb::DenialReason::PasswordChangeRequired,
        Denial::SessionEnded => pb::DenialReason::SessionEnded,
    }
}

fn decision_to_proto(d: Decision) -> pb::PermissionDecision {
    match d {
        Decision::Allowed(binding) => pb::PermissionDecision {
            allowed: true,
            explanation: format!("granted by role {} in scope {}", binding.role, binding.scope),
            granted_by: Some(binding_to_proto(&binding)),
            denial_reason: pb::DenialReason::Unspecified as i32,
        },
        Decision::Denied(reason, explanation) => pb::PermissionDecision {
            allowed: false,
            granted_by: None,
            denial_reason: denial_to_proto(reason) as i32,
            explanation,
        },
    }
}

struct ParsedCheck {
    principal: PrincipalId,
    session: Option<SessionId>,
    permission: String,
    resource: Resource,
}

fn parse_check(v: &mut Validator, field: &str, check: Option<&pb::PermissionCheck>) -> Option<ParsedCheck> {
    let Some(check) = check else {
        v.violation(field, "is required");
        return None;
    };
    let principal = v.id::<PrincipalId>(&format!("{field}.principal_id"), &check.principal_id);
    let session = v.optional_id::<SessionId>(&format!("{field}.session_id"), &check.session_id);
    if check.permission.trim().is_empty() {
        v.violation(format!("{field}.permission"), "is required");
    }
    let resource = parse_resource(v, &format!("{field}.resource"), check.resource.as_ref());
    Some(ParsedCheck { principal: principal?, session, permission: check.permission.trim().to_owned(), resource })
}

impl Access {
    /// Adds the owning department to an account resource, as the scope rules need it.
    async fn complete(&self, tx: &mut Tx, resource: Resource) -> Result<Resource, Error> {
        match (resource.platform_account, resource.department) {
            (Some(account), None) => Ok(Resource {
                department: store::account_department(tx, account).await?,
                platform_account: Some(account),
            }),
            _ => Ok(resource),
        }
    }

    async fn answer(
        &self,
        tx: &mut Tx,
        caller: &Principal,
        check: ParsedCheck,
    ) -> Result<pb::PermissionDecision, Error> {
        if check.principal != caller.id {
            // Services ask about their callers; access reviewers ask about anyone.
            let service =
                self.core.decide(tx, caller.id, Permission::PermissionCheck.as_str(), &Resource::GLOBAL).await?;
            if !service.is_allowed() {
                self.core.require(tx, caller, Permission::RoleBindingRead, &Resource::GLOBAL).await.map_err(|_| {
                    Error::denied(
                        Permission::PermissionCheck,
                        "asking about another principal needs permission.check (services) or role_binding.read",
                    )
                })?;
            }
        }
        if let Some(session) = check.session
            && !sessions::is_open(tx, check.principal, session).await?
        {
            // The token the question comes from was issued in a session that has ended.
            let ended = Decision::Denied(Denial::SessionEnded, "the session has ended; sign in again".into());
            return Ok(decision_to_proto(ended));
        }
        let resource = self.complete(tx, check.resource).await?;
        Ok(decision_to_proto(self.core.decide(tx, check.principal, &check.permission, &resource).await?))
    }
}

/// A validated `ListRoleBindings`.
struct BindingQuery {
    principal: Option<PrincipalId>,
    role: Option<Role>,
    scope: Option<Scope>,
    limit: u32,
    after: Option<RoleBindingId>,
}

impl TryFrom<&pb::ListRoleBindingsRequest> for BindingQuery {
    type Error = Error;

    fn try_from(req: &pb::ListRoleBindingsRequest) -> Result<Self, Error> {
        let mut v = Validator::new();
        let principal = v.optional_id("principal_id", &req.principal_id);
        let role = if req.role.is_empty() {
            None
        } else {
            req.role.parse::<Role>().map_err(|e| v.violation("role", e.to_string())).ok()
        };
        let scope = req.scope.as_ref().and_then(|s| parse_scope(&mut v, "scope", Some(s)));
        v.finish()?;
        Ok(BindingQuery { principal, role, scope, limit: page_size(req.page_size)?, after: cursor(&req.page_token)? })
    }
}

#[govmedia_kit::handlers]
impl AccessService for Access {
    async fn list_roles(&self, request: Request<pb::ListRolesRequest>) -> Result<pb::ListRolesResponse, Error> {
        caller(&request)?;
        let roles = Role::ALL
            .iter()
            .map(|r| pb::Role {
                name: r.as_str().to_owned(),
                title: r.title().to_owned(),
                description: r.description().to_owned(),
                permissions: r.permissions().iter().map(|p| p.as_str().to_owned()).collect(),
                allowed_scope_kinds: r.allowed_scope_kinds().iter().map(|k| scope_kind_to_proto(*k) as i32).collect(),
            })
            .collect();
        Ok(pb::ListRolesResponse { roles })
    }

    async fn create_role_binding(
        &self,
        request: Request<pb::CreateRoleBindingRequest>,
    ) -> Result<pb::CreateRoleBindingResponse, Error> {
        let (caller, req) = unpack(request)?;
        let mut v = Validator::new();
        let request_id = v.request_id(&req.request_id);
        let given = req.role_binding.clone().unwrap_or_default();
        let grantee: Option<PrincipalId> = v.id("role_binding.principal_id", &given.principal_id);
        let role = match given.role.parse::<Role>() {
            Ok(r) => Some(r),
            Err(e) => {
                v.violation("role_binding.role", e.to_string());
                None
            }
        };
        let scope = parse_scope(&mut v, "role_binding.scope", given.scope.as_ref());
        let reason = v.reason("role_binding.reason", &given.reason);
        let (request_id, grantee, role, scope, reason) =
            v.finish_with(|| Some((request_id?, grantee?, role?, scope?, reason?)))?;
        let call = Call::new(&caller, method!("AccessService", "CreateRoleBinding"), request_id, &req);
        let answer = self.core.work().run(call, async |m| {
            let now = m.now();
            match store::principal_state(m.tx(), grantee, now).await? {
                store::PrincipalState::Unknown => return Err(Error::not_found("principal", grantee)),
                store::PrincipalState::Disabled => {
                    return Err(Error::rule(
                        "R2.2.2",
                        format!("principal/{grantee}"),
                        "roles are not granted to disabled principals",
                    ));
                }
                store::PrincipalState::Active | store::PrincipalState::PasswordChangeRequired => {}
            }
            let account_department = match scope {
                Scope::Department(d) => {
                    directory::get_department(m.tx(), d).await?.ok_or_else(|| Error::not_found("department", d))?;
                    None
                }
                Scope::PlatformAccount(a) => Some(
                    store::account_department(m.tx(), a)
                        .await?
                        .ok_or_else(|| Error::not_found("platform_account", a))?,
                ),
                Scope::Global => None,
            };
            let granter_bindings = store::bindings_of(m.tx(), caller.id).await?;
            let grantee_bindings = store::bindings_of(m.tx(), grantee).await?;
            access::check_grant(
                caller.id,
                &granter_bindings,
                grantee,
                &grantee_bindings,
                role,
                &scope,
                &access::scope_as_resource(&scope, account_department),
            )?;
            let binding = Binding {
                id: RoleBindingId::new(),
                principal: grantee,
                role,
                scope,
                granted_by: caller.id,
                reason: reason.clone(),
                created_at: m.now(),
            };
            store::insert_binding(m.tx(), &binding).await?;
            let mut resource = AuditResourceRef::new("role_binding", binding.id);
            if let Scope::Department(d) = scope {
                resource.department = Some(d);
            }
            if let Scope::PlatformAccount(a) = scope {
                resource.platform_account = Some(a);
            }
            m.audit(
                self.core
                    .record(AuditAction::RoleBindingCreated, caller.actor(), resource)
                    .rule("R2.2.1")
                    .reason(reason)
                    .attr("principal_id", grantee)
                    .attr("role", role)
                    .attr("scope", scope),
            );
            Ok(pb::CreateRoleBindingResponse { role_binding: Some(binding_to_proto(&binding)) })
        });
        answer.await
    }

    async fn delete_role_binding(
        &self,
        request: Request<pb::DeleteRoleBindingRequest>,
    ) -> Result<pb::DeleteRoleBindingResponse, Error> {
        let (caller, req) = unpack(request)?;
        let mut v = Validator::new();
        let request_id = v.request_id(&req.request_id);
        let id: Option<RoleBindingId> = v.id("role_binding_id", &req.role_binding_id);
        let reason = v.reason("reason", &req.reason);
        let (request_id, id, reason) = v.finish_with(|| Some((request_id?, id?, reason?)))?;
        let call = Call::new(&caller, method!("AccessService", "DeleteRoleBinding"), request_id, &req);
        let answer = self.core.work().run(call, async |m| {
            let binding = store::get_binding(m.tx(), id).await?.ok_or_else(|| Error::not_found("role_binding", id))?;
            let account_department = match binding.scope {
                Scope::PlatformAccount(a) => store::account_department(m.tx(), a).await?,
                _ => None,
            };
            let scope_resource = access::scope_as_resource(&binding.scope, account_department);
            self.core.require(m.tx(), &caller, Permission::RoleBindingManage, &scope_resource).await?;
            if binding.role == Role::Administrator {
                let own = store::bindings_of(m.tx(), caller.id).await?;
                if !own.iter().any(|b| b.role == Role::Administrator && b.scope == Scope::Global) {
                    return Err(Error::rule(
                        "R2.2.1",
                        format!("role_binding/{id}"),
                        "only an administrator revokes the administrator role",
                    ));
                }
            }
            store::delete_binding(m.tx(), id).await?;
            m.audit(
                self.core
                    .record(AuditAction::RoleBindingDeleted, caller.actor(), AuditResourceRef::new("role_binding", id))
                    .rule("R2.2.2")
                    .reason(reason)
                    .attr("principal_id", binding.principal)
                    .attr("role", binding.role)
                    .attr("scope", binding.scope),
            );
            Ok(pb::DeleteRoleBindingResponse {})
        });
        answer.await
    }

    async fn list_role_bindings(
        &self,
        request: Request<pb::ListRoleBindingsRequest>,
    ) -> Result<pb::ListRoleBindingsResponse, Error> {
        let (caller, req) = unpack(request)?;
        let q = BindingQuery::try_from(&req)?;
        let mut tx = self.core.db().begin_read().await?;
        if q.principal != Some(caller.id) {
            self.core.require(&mut tx, &caller, Permission::RoleBindingRead, &Resource::GLOBAL).await?;
        }
        let bindings = store::list_bindings(&mut tx, q.principal, q.role, q.scope.as_ref(), q.after, q.limit).await?;
        Ok(pb::ListRoleBindingsResponse {
            next_page_token: next_token(&bindings, q.limit, |b| b.id),
            role_bindings: bindings.iter().map(binding_to_proto).collect(),
        })
    }

    async fn check_permission(
        &self,
        request: Request<pb::CheckPermissionRequest>,
    ) -> Result<pb::CheckPermissionResponse, Error> {
        let (caller, req) = unpack(request)?;
        let mut v = Validator::new();
        let check = parse_check(&mut v, "check", req.check.as_ref());
        let check = v.finish_with(|| check)?;
        let mut tx = self.core.db().begin_read().await?;
        let decision = self.answer(&mut tx, &caller, check).await?;
        Ok(pb::CheckPermissionResponse { decision: Some(decision) })
    }

    async fn batch_check_permission(
        &self,
        request: Request<pb::BatchCheckPermissionRequest>,
    ) -> Result<pb::BatchCheckPermissionResponse, Error> {
        let (caller, req) = unpack(request)?;
        let mut v = Validator::new();
        if req.checks.is_empty() || req.checks.len() > MAX_BATCH {
            v.violation("checks", format!("must hold 1 to {MAX_BATCH} checks (has {})", req.checks.len()));
        }
        let checks: Vec<_> =
            req.checks.iter().enumerate().map(|(i, c)| parse_check(&mut v, &format!("checks[{i}]"), Some(c))).collect();
        v.finish()?;
        let mut tx = self.core.db().begin_read().await?;
        let mut decisions = Vec::with_capacity(checks.len());
        for check in checks.into_iter().flatten() {
            decisions.push(self.answer(&mut tx, &caller, check).await?);
        }
        Ok(pb::BatchCheckPermissionResponse { decisions })
    }
}
