//! `DirectoryService`: departments, staff users and service principals (R1.2, R2.2.2,
//! R6.1.1).

use std::fmt::Display;
use std::str::FromStr;
use std::sync::Arc;

use govmedia_domain::Error;
use govmedia_domain::audit::{AuditAction, AuditRecord, AuditResourceRef};
use govmedia_domain::ids::{DepartmentId, InvalidId, RequestId, ServicePrincipalId, UserId};
use govmedia_domain::permission::{Permission, Role};
use govmedia_domain::scope::Resource;
use govmedia_domain::validate::{MAX_NAME_CHARS, Validator};
use govmedia_kit::auth::Principal;
use govmedia_kit::mutation::{Call, Mutation};
use govmedia_kit::wire::{one_id, unpack};
use govmedia_proto::identity::v1 as pb;
use govmedia_proto::identity::v1::directory_service_server::{DirectoryService, DirectoryServiceServer};
use tonic::Request;

use super::{caller, check_etag, cursor, etag, method, next_token, opt_ts, page_size, ts};
use crate::Core;
use crate::domain::model::{Department, DepartmentChanges, Profile, ServicePrincipal, User, UserChanges, UserStatus};
use crate::domain::{password, tokens};
use crate::store::{directory as store, security, sessions};

/// The generated server around the handlers.
pub fn server(core: &Arc<Core>) -> DirectoryServiceServer<Directory> {
    DirectoryServiceServer::new(Directory { core: Arc::clone(core) })
}

/// The handlers.
#[derive(Debug, Clone)]
pub struct Directory {
    core: Arc<Core>,
}

pub(crate) fn department_to_proto(d: &Department) -> pb::Department {
    pb::Department {
        id: d.id.to_string(),
        name: d.name.clone(),
        code: d.code.clone(),
        create_time: Some(ts(d.created_at)),
        update_time: Some(ts(d.updated_at)),
        etag: etag(d.version),
    }
}

pub(crate) fn user_to_proto(u: &User) -> pb::User {
    pb::User {
        id: u.id.to_string(),
        username: u.username.clone(),
        display_name: u.display_name.clone(),
        department_id: u.department.map(|d| d.to_string()).unwrap_or_default(),
        email: u.email.clone(),
        phone: u.phone.clone(),
        status: match u.status {
            UserStatus::Active => pb::UserStatus::Active,
            UserStatus::Disabled => pb::UserStatus::Disabled,
        } as i32,
        locked_until: opt_ts(u.locked_until),
        password_expire_time: Some(ts(u.password_expires_at)),
        password_change_required: u.must_change_password,
        last_login_time: opt_ts(u.last_login_at),
        create_time: Some(ts(u.created_at)),
        update_time: Some(ts(u.updated_at)),
        etag: etag(u.version),
    }
}

fn principal_to_proto(p: &ServicePrincipal) -> pb::ServicePrincipal {
    pb::ServicePrincipal {
        id: p.id.to_string(),
        client_id: p.client_id.clone(),
        display_name: p.display_name.clone(),
        owner_user_id: p.owner.map(|o| o.to_string()).unwrap_or_default(),
        disabled: p.disabled,
        secret_rotate_time: Some(ts(p.secret_rotated_at)),
        create_time: Some(ts(p.created_at)),
        etag: etag(p.version),
    }
}

fn department_code(v: &mut Validator, field: &str, code: &str) -> Option<String> {
    let code = v.required_text(field, code, 20)?;
    if code.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '-') {
        Some(code)
    } else {
        v.violation(field, "must be upper-case letters, digits and '-'");
        None
    }
}

fn username(v: &mut Validator, field: &str, name: &str) -> Option<String> {
    let name = v.required_text(field, name, 64)?;
    let ok = name.len() >= 3
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'));
    if ok {
        Some(name)
    } else {
        v.violation(field, "must be 3 to 64 lower-case letters, digits, '.', '_' or '-'");
        None
    }
}

fn email(v: &mut Validator, field: &str, value: &str) -> Option<String> {
    let value = v.optional_text(field, value, 254)?;
    if value.is_empty() || (value.contains('@') && !value.starts_with('@') && !value.ends_with('@')) {
        Some(value)
    } else {
        v.violation(field, "is not an e-mail address");
        None
    }
}

fn phone(v: &mut Validator, field: &str, value: &str) -> Option<String> {
    let value = v.optional_text(field, value, 32)?;
    if value.chars().all(|c| c.is_ascii_digit() || matches!(c, '+' | '-' | ' ' | '(' | ')')) {
        Some(value)
    } else {
        v.violation(field, "may hold only digits, '+', '-', spaces and parentheses");
        None
    }
}

fn user_resource(department: Option<DepartmentId>) -> Resource {
    department.map_or(Resource::GLOBAL, Resource::department)
}

/// A new one-time password and its hash (argon2id, off the async threads).
async fn one_time_password() -> Result<(String, String), Error> {
    let password = password::generate_one_time();
    let hashed = password.clone();
    let hash = tokio::task::spawn_blocking(move || password::hash(&hashed)).await.map_err(Error::internal)??;
    Ok((password, hash))
}

/// The fields named by an update mask, refused when it names none.
fn mask_paths(v: &mut Validator, mask: Option<&prost_types::FieldMask>) -> Vec<String> {
    let paths = mask.map(|m| m.paths.clone()).unwrap_or_default();
    if paths.is_empty() {
        v.violation("update_mask", "names no field to change");
    }
    paths
}

/// A validated `CreateDepartment`.
struct CreateDepartment {
    request_id: RequestId,
    name: String,
    code: String,
}

impl TryFrom<&pb::CreateDepartmentRequest> for CreateDepartment {
    type Error = Error;

    fn try_from(req: &pb::CreateDepartmentRequest) -> Result<Self, Error> {
        let mut v = Validator::new();
        let request_id = v.request_id(&req.request_id);
        let given = req.department.clone().unwrap_or_default();
        let name = v.required_text("department.name", &given.name, 100);
        let code = department_code(&mut v, "department.code", &given.code);
        v.finish_with(|| Some(CreateDepartment { request_id: request_id?, name: name?, code: code? }))
    }
}

/// A validated `UpdateDepartment`.
struct UpdateDepartment {
    request_id: RequestId,
    department: DepartmentId,
    etag: String,
    changes: DepartmentChanges,
    paths: Vec<String>,
}

impl TryFrom<&pb::UpdateDepartmentRequest> for UpdateDepartment {
    type Error = Error;

    fn try_from(req: &pb::UpdateDepartmentRequest) -> Result<Self, Error> {
        let mut v = Validator::new();
        let request_id = v.request_id(&req.request_id);
        let given = req.department.clone().unwrap_or_default();
        let department = v.id("department.id", &given.id);
        let paths = mask_paths(&mut v, req.update_mask.as_ref());
        let mut changes = DepartmentChanges::default();
        for path in &paths {
            match path.as_str() {
                "name" => changes.name = v.required_text("department.name", &given.name, 100),
                "code" => changes.code = department_code(&mut v, "department.code", &given.code),
                other => v.violation("update_mask", format!("{other:?} cannot be changed (name, code)")),
            }
        }
        v.finish_with(|| {
            Some(UpdateDepartment {
                request_id: request_id?,
                department: department?,
                etag: given.etag,
                changes,
                paths,
            })
        })
    }
}

/// A validated `CreateUser`.
struct CreateUser {
    request_id: RequestId,
    profile: Profile,
}

impl TryFrom<&pb::CreateUserRequest> for CreateUser {
    type Error = Error;

    fn try_from(req: &pb::CreateUserRequest) -> Result<Self, Error> {
        let mut v = Validator::new();
        let request_id = v.request_id(&req.request_id);
        let given = req.user.clone().unwrap_or_default();
        let username = username(&mut v, "user.username", &given.username);
        let display_name = v.required_text("user.display_name", &given.display_name, MAX_NAME_CHARS);
        let department = v.optional_id("user.department_id", &given.department_id);
        let email = email(&mut v, "user.email", &given.email);
        let phone = phone(&mut v, "user.phone", &given.phone);
        v.finish_with(|| {
            let profile =
                Profile { username: username?, display_name: display_name?, department, email: email?, phone: phone? };
            Some(CreateUser { request_id: request_id?, profile })
        })
    }
}

/// A validated `UpdateUser`.
struct UpdateUser {
    request_id: RequestId,
    user: UserId,
    etag: String,
    changes: UserChanges,
    paths: Vec<String>,
}

impl TryFrom<&pb::UpdateUserRequest> for UpdateUser {
    type Error = Error;

    fn try_from(req: &pb::UpdateUserRequest) -> Result<Self, Error> {
        let mut v = Validator::new();
        let request_id = v.request_id(&req.request_id);
        let given = req.user.clone().unwrap_or_default();
        let user = v.id("user.id", &given.id);
        let paths = mask_paths(&mut v, req.update_mask.as_ref());
        let mut changes = UserChanges::default();
        for path in &paths {
            match path.as_str() {
                "display_name" => {
                    changes.display_name = v.required_text("user.display_name", &given.display_name, MAX_NAME_CHARS)
                }
                "department_id" => changes.department = Some(v.optional_id("user.department_id", &given.department_id)),
                "email" => changes.email = email(&mut v, "user.email", &given.email),
                "phone" => changes.phone = phone(&mut v, "user.phone", &given.phone),
                other => v.violation(
                    "update_mask",
                    format!("{other:?} cannot be changed (display_name, department_id, email, phone)"),
                ),
            }
        }
        v.finish_with(|| Some(UpdateUser { request_id: request_id?, user: user?, etag: given.etag, changes, paths }))
    }
}

/// A validated `ListUsers`.
struct UserQuery {
    department: Option<DepartmentId>,
    status: Option<UserStatus>,
    limit: u32,
    after: Option<String>,
}

impl TryFrom<&pb::ListUsersRequest> for UserQuery {
    type Error = Error;

    fn try_from(req: &pb::ListUsersRequest) -> Result<Self, Error> {
        let mut v = Validator::new();
        let department = v.optional_id("department_id", &req.department_id);
        let status = match pb::UserStatus::try_from(req.status) {
            Ok(pb::UserStatus::Unspecified) => None,
            Ok(pb::UserStatus::Active) => Some(UserStatus::Active),
            Ok(pb::UserStatus::Disabled) => Some(UserStatus::Disabled),
            Err(_) => {
                v.violation("status", "is not a user status");
                None
            }
        };
        v.finish()?;
        Ok(UserQuery { department, status, limit: page_size(req.page_size)?, after: cursor(&req.page_token)? })
    }
}

/// A request that acts on one user or service principal, with a reason where the call
/// asks for one.
trait OneTarget {
    /// The request id, the target's id and its field name, and the reason (`None`: the
    /// call has no reason field).
    fn parts(&self) -> (&str, &str, &'static str, Option<&str>);
}

macro_rules! one_target {
    ($request:ty => $field:ident) => {
        impl OneTarget for $request {
            fn parts(&self) -> (&str, &str, &'static str, Option<&str>) {
                (&self.request_id, &self.$field, stringify!($field), None)
            }
        }
    };
    ($request:ty => $field:ident, reason) => {
        impl OneTarget for $request {
            fn parts(&self) -> (&str, &str, &'static str, Option<&str>) {
                (&self.request_id, &self.$field, stringify!($field), Some(&self.reason))
            }
        }
    };
}

one_target!(pb::DisableUserRequest => user_id, reason);
one_target!(pb::EnableUserRequest => user_id);
one_target!(pb::ResetUserPasswordRequest => user_id, reason);
one_target!(pb::UnlockUserRequest => user_id);
one_target!(pb::RevokeUserSessionsRequest => user_id, reason);
one_target!(pb::RotateServicePrincipalSecretRequest => service_principal_id);
one_target!(pb::DisableServicePrincipalRequest => service_principal_id, reason);
one_target!(pb::EnableServicePrincipalRequest => service_principal_id, reason);

/// A validated call on one user or service principal.
struct Target<Id> {
    request_id: RequestId,
    id: Id,
    /// Empty when the call has no reason.
    reason: String,
}

impl<Id: FromStr<Err = InvalidId>> Target<Id> {
    fn parse(req: &impl OneTarget) -> Result<Self, Error> {
        let (request_id, id, field, reason) = req.parts();
        let mut v = Validator::new();
        let request_id = v.request_id(request_id);
        let id = v.id(field, id);
        let reason = reason.map_or(Some(String::new()), |r| v.reason("reason", r));
        v.finish_with(|| Some(Target { request_id: request_id?, id: id?, reason: reason? }))
    }
}

/// A validated `CreateServicePrincipal`.
struct CreateServicePrincipal {
    request_id: RequestId,
    client_id: String,
    display_name: String,
    owner: Option<UserId>,
}

/// Client ids the installation keeps for its own services.
const BUILT_IN_PREFIX: &str = "govmedia-";

impl TryFrom<&pb::CreateServicePrincipalRequest> for CreateServicePrincipal {
    type Error = Error;

    fn try_from(req: &pb::CreateServicePrincipalRequest) -> Result<Self, Error> {
        let mut v = Validator::new();
        let request_id = v.request_id(&req.request_id);
        let given = req.service_principal.clone().unwrap_or_default();
        let client_id = username(&mut v, "service_principal.client_id", &given.client_id);
        if given.client_id.starts_with(BUILT_IN_PREFIX) {
            // The audit log lets govmedia-<producer> write <producer>'s events: the
            // names belong to the installation, which provisions them (issue 18).
            v.violation(
                "service_principal.client_id",
                format!("client ids starting with {BUILT_IN_PREFIX:?} belong to the installation's own services"),
            );
        }
        let display_name = v.required_text("service_principal.display_name", &given.display_name, MAX_NAME_CHARS);
        let owner = v.optional_id("service_principal.owner_user_id", &given.owner_user_id);
        v.finish_with(|| {
            Some(CreateServicePrincipal {
                request_id: request_id?,
                client_id: client_id?,
                display_name: display_name?,
                owner,
            })
        })
    }
}

impl Directory {
    /// A user, locked for a change by a caller allowed to manage the user's department.
    async fn managed_user(&self, caller: &Principal, m: &mut Mutation, user: UserId) -> Result<User, Error> {
        let found = store::lock_user(m.tx(), user).await?.ok_or_else(|| Error::not_found("user", user))?;
        self.core.require(m.tx(), caller, Permission::UserManage, &user_resource(found.department)).await?;
        Ok(found)
    }

    /// A service principal, locked for a change by a caller allowed to manage them.
    async fn managed_principal(
        &self,
        caller: &Principal,
        m: &mut Mutation,
        id: ServicePrincipalId,
    ) -> Result<ServicePrincipal, Error> {
        self.core.require(m.tx(), caller, Permission::ServicePrincipalManage, &Resource::GLOBAL).await?;
        store::get_service_principal(m.tx(), id).await?.ok_or_else(|| Error::not_found("service_principal", id))
    }

    /// A department that must exist.
    async fn existing_department(&self, m: &mut Mutation, department: Option<DepartmentId>) -> Result<(), Error> {
        if let Some(d) = department {
            store::get_department(m.tx(), d).await?.ok_or_else(|| Error::not_found("department", d))?;
        }
        Ok(())
    }

    /// A user that must exist (a service principal's owner).
    async fn existing_user(&self, m: &mut Mutation, user: Option<UserId>) -> Result<(), Error> {
        if let Some(u) = user {
            store::get_user(m.tx(), u).await?.ok_or_else(|| Error::not_found("user", u))?;
        }
        Ok(())
    }

    /// The audit record of `action` by `caller` on a directory entry.
    fn record(&self, action: AuditAction, caller: &Principal, kind: &'static str, id: impl Display) -> AuditRecord {
        self.core.record(action, caller.actor(), AuditResourceRef::new(kind, id))
    }

    /// The audit record of `action` by `caller` on `user`, filed under the user's
    /// department.
    fn user_record(&self, action: AuditAction, caller: &Principal, user: &User) -> AuditRecord {
        let mut resource = AuditResourceRef::new("user", user.id);
        resource.department = user.department;
        self.core.record(action, caller.actor(), resource)
    }
}

#[govmedia_kit::handlers]
impl DirectoryService for Directory {
    async fn create_department(
        &self,
        request: Request<pb::CreateDepartmentRequest>,
    ) -> Result<pb::CreateDepartmentResponse, Error> {
        let (caller, req) = unpack(request)?;
        let cmd = CreateDepartment::try_from(&req)?;
        let call = Call::new(&caller, method!("DirectoryService", "CreateDepartment"), cmd.request_id, &req);
        let answer = self.core.work().run(call, async |m| {
            self.core.require(m.tx(), &caller, Permission::DepartmentManage, &Resource::GLOBAL).await?;
            let department = Department::new(cmd.name, cmd.code, m.now());
            store::insert_department(m.tx(), &department).await?;
            let record = self.record(AuditAction::DepartmentCreated, &caller, "department", department.id);
            m.audit(record.attr("name", &department.name).attr("code", &department.code));
            Ok(pb::CreateDepartmentResponse { department: Some(department_to_proto(&department)) })
        });
        answer.await
    }

    async fn get_department(
        &self,
        request: Request<pb::GetDepartmentRequest>,
    ) -> Result<pb::GetDepartmentResponse, Error> {
        let caller = caller(&request)?;
        let id: DepartmentId = one_id("department_id", &request.get_ref().department_id)?;
        let mut tx = self.core.db().begin_read().await?;
        self.core.require(&mut tx, &caller, Permission::DirectoryRead, &Resource::department(id)).await?;
        let department = store::get_department(&mut tx, id).await?.ok_or_else(|| Error::not_found("department", id))?;
        Ok(pb::GetDepartmentResponse { department: Some(department_to_proto(&department)) })
    }

    async fn list_departments(
        &self,
        request: Request<pb::ListDepartmentsRequest>,
    ) -> Result<pb::ListDepartmentsResponse, Error> {
        let (caller, req) = unpack(request)?;
        let limit = page_size(req.page_size)?;
        let after: Option<String> = cursor(&req.page_token)?;
        let mut tx = self.core.db().begin_read().await?;
        self.core.require(&mut tx, &caller, Permission::DirectoryRead, &Resource::GLOBAL).await?;
        let departments = store::list_departments(&mut tx, after.as_deref(), limit).await?;
        Ok(pb::ListDepartmentsResponse {
            next_page_token: next_token(&departments, limit, |d| d.name.clone()),
            departments: departments.iter().map(department_to_proto).collect(),
        })
    }

    async fn update_department(
        &self,
        request: Request<pb::UpdateDepartmentRequest>,
    ) -> Result<pb::UpdateDepartmentResponse, Error> {
        let (caller, req) = unpack(request)?;
        let cmd = UpdateDepartment::try_from(&req)?;
        let call = Call::new(&caller, method!("DirectoryService", "UpdateDepartment"), cmd.request_id, &req);
        let answer = self.core.work().run(call, async |m| {
            self.core.require(m.tx(), &caller, Permission::DepartmentManage, &Resource::GLOBAL).await?;
            let mut department = store::get_department(m.tx(), cmd.department)
                .await?
                .ok_or_else(|| Error::not_found("department", cmd.department))?;
            check_etag("department.etag", &cmd.etag, department.version, true)?;
            let action = department.update(cmd.changes, m.now());
            store::save_department(m.tx(), &department).await?;
            m.audit(self.record(action, &caller, "department", department.id).attr("fields", cmd.paths.join(",")));
            Ok(pb::UpdateDepartmentResponse { department: Some(department_to_proto(&department)) })
        });
        answer.await
    }

    async fn create_user(&self, request: Request<pb::CreateUserRequest>) -> Result<pb::CreateUserResponse, Error> {
        let (caller, req) = unpack(request)?;
        let cmd = CreateUser::try_from(&req)?;
        let (one_time, hash) = one_time_password().await?;
        let call =
            Call::new(&caller, method!("DirectoryService", "CreateUser"), cmd.request_id, &req).answer_holds_secret();
        let answer = self.core.work().run(call, async |m| {
            self.core.require(m.tx(), &caller, Permission::UserManage, &user_resource(cmd.profile.department)).await?;
            self.existing_department(m, cmd.profile.department).await?;
            let user = User::new(cmd.profile, hash, m.now() + self.core.policy().one_time_password_lifetime, m.now());
            store::insert_user(m.tx(), &user).await?;
            let by = (caller.id.to_string(), caller.display_name.clone());
            store::push_password_history_by(
                m.tx(),
                user.id,
                &user.password_hash,
                user.created_at,
                Some((&by.0, &by.1)),
            )
            .await?;
            let record = self.user_record(AuditAction::UserCreated, &caller, &user).rule("R2.2.2");
            m.audit(record.attr("username", &user.username));
            Ok(pb::CreateUserResponse { user: Some(user_to_proto(&user)), one_time_password: one_time })
        });
        answer.await
    }

    async fn get_user(&self, request: Request<pb::GetUserRequest>) -> Result<pb::GetUserResponse, Error> {
        let caller = caller(&request)?;
        let id: UserId = one_id("user_id", &request.get_ref().user_id)?;
        let mut tx = self.core.db().begin_read().await?;
        let user = store::get_user(&mut tx, id).await?.ok_or_else(|| Error::not_found("user", id))?;
        if caller.id != id.into() {
            self.core.require(&mut tx, &caller, Permission::DirectoryRead, &user_resource(user.department)).await?;
        }
        Ok(pb::GetUserResponse { user: Some(user_to_proto(&user)) })
    }

    async fn list_users(&self, request: Request<pb::ListUsersRequest>) -> Result<pb::ListUsersResponse, Error> {
        let (caller, req) = unpack(request)?;
        let q = UserQuery::try_from(&req)?;
        let mut tx = self.core.db().begin_read().await?;
        self.core.require(&mut tx, &caller, Permission::DirectoryRead, &user_resource(q.department)).await?;
        let users = store::list_users(&mut tx, q.department, q.status, q.after.as_deref(), q.limit).await?;
        Ok(pb::ListUsersResponse {
            next_page_token: next_token(&users, q.limit, |u| u.username.clone()),
            users: users.iter().map(user_to_proto).collect(),
        })
    }

    async fn update_user(&self, request: Request<pb::UpdateUserRequest>) -> Result<pb::UpdateUserResponse, Error> {
        let (caller, req) = unpack(request)?;
        let cmd = UpdateUser::try_from(&req)?;
        let call = Call::new(&caller, method!("DirectoryService", "UpdateUser"), cmd.request_id, &req);
        let answer = self.core.work().run(call, async |m| {
            let mut user = self.managed_user(&caller, m, cmd.user).await?;
            check_etag("user.etag", &cmd.etag, user.version, true)?;
            if let Some(moved_to) = cmd.changes.department {
                self.existing_department(m, moved_to).await?;
                self.core.require(m.tx(), &caller, Permission::UserManage, &user_resource(moved_to)).await?;
            }
            let action = user.update(cmd.changes, m.now());
            store::save_user(m.tx(), &user).await?;
            m.audit(self.user_record(action, &caller, &user).attr("fields", cmd.paths.join(",")));
            Ok(pb::UpdateUserResponse { user: Some(user_to_proto(&user)) })
        });
        answer.await
    }

    async fn disable_user(&self, request: Request<pb::DisableUserRequest>) -> Result<pb::DisableUserResponse, Error> {
        let (caller, req) = unpack(request)?;
        let cmd = Target::<UserId>::parse(&req)?;
        let call = Call::new(&caller, method!("DirectoryService", "DisableUser"), cmd.request_id, &req);
        let answer = self.core.work().run(call, async |m| {
            let mut user = self.managed_user(&caller, m, cmd.id).await?;
            let responsible_for = crate::store::accounts::responsible_for(m.tx(), cmd.id).await?;
            let action = user.disable(caller.id, &responsible_for, m.now())?;
            store::save_user(m.tx(), &user).await?;
            let revoked = sessions::revoke_sessions_of(m.tx(), cmd.id.into(), "user disabled", user.updated_at).await?;
            let record = self.user_record(action, &caller, &user).rule("R2.2.2").reason(cmd.reason.clone());
            m.audit(record.attr("sessions_revoked", revoked));
            Ok(pb::DisableUserResponse { user: Some(user_to_proto(&user)) })
        });
        answer.await
    }

    async fn enable_user(&self, request: Request<pb::EnableUserRequest>) -> Result<pb::EnableUserResponse, Error> {
        let (caller, req) = unpack(request)?;
        let cmd = Target::<UserId>::parse(&req)?;
        let call = Call::new(&caller, method!("DirectoryService", "EnableUser"), cmd.request_id, &req);
        let answer = self.core.work().run(call, async |m| {
            let mut user = self.managed_user(&caller, m, cmd.id).await?;
            let action = user.enable(m.now());
            store::save_user(m.tx(), &user).await?;
            m.audit(self.user_record(action, &caller, &user));
            Ok(pb::EnableUserResponse { user: Some(user_to_proto(&user)) })
        });
        answer.await
    }

    async fn reset_user_password(
        &self,
        request: Request<pb::ResetUserPasswordRequest>,
    ) -> Result<pb::ResetUserPasswordResponse, Error> {
        let (caller, req) = unpack(request)?;
        let cmd = Target::<UserId>::parse(&req)?;
        let (one_time, hash) = one_time_password().await?;
        let call = Call::new(&caller, method!("DirectoryService", "ResetUserPassword"), cmd.request_id, &req)
            .answer_holds_secret();
        let answer = self.core.work().run(call, async |m| {
            let mut user = self.managed_user(&caller, m, cmd.id).await?;
            let action = user.reset_password(hash, m.now() + self.core.policy().one_time_password_lifetime, m.now());
            let by = (caller.id.to_string(), caller.display_name.clone());
            let revoked = store::save_new_password(m.tx(), &user, "password reset", Some((&by.0, &by.1))).await?;
            let record = self.user_record(action, &caller, &user).rule("R2.3.1").reason(cmd.reason.clone());
            m.audit(record.attr("sessions_revoked", revoked));
            Ok(pb::ResetUserPasswordResponse { one_time_password: one_time })
        });
        answer.await
    }

    async fn unlock_user(&self, request: Request<pb::UnlockUserRequest>) -> Result<pb::UnlockUserResponse, Error> {
        let (caller, req) = unpack(request)?;
        let cmd = Target::<UserId>::parse(&req)?;
        let call = Call::new(&caller, method!("DirectoryService", "UnlockUser"), cmd.request_id, &req);
        let answer = self.core.work().run(call, async |m| {
            let mut user = self.managed_user(&caller, m, cmd.id).await?;
            let action = user.unlock(m.now());
            store::save_user(m.tx(), &user).await?;
            security::clear_throttles(m.tx(), &user.username, None).await?;
            m.audit(self.user_record(action, &caller, &user).rule("R2.3.1"));
            Ok(pb::UnlockUserResponse { user: Some(user_to_proto(&user)) })
        });
        answer.await
    }

    async fn revoke_user_sessions(
        &self,
        request: Request<pb::RevokeUserSessionsRequest>,
    ) -> Result<pb::RevokeUserSessionsResponse, Error> {
        let (caller, req) = unpack(request)?;
        let cmd = Target::<UserId>::parse(&req)?;
        let call = Call::new(&caller, method!("DirectoryService", "RevokeUserSessions"), cmd.request_id, &req);
        let answer = self.core.work().run(call, async |m| {
            let user = self.managed_user(&caller, m, cmd.id).await?;
            let now = m.now();
            let revoked = sessions::revoke_sessions_of(m.tx(), cmd.id.into(), &cmd.reason, now).await?;
            let record = self.user_record(AuditAction::SessionRevoked, &caller, &user).rule("R2.3.3");
            m.audit(record.reason(cmd.reason.clone()).attr("sessions_revoked", revoked));
            Ok(pb::RevokeUserSessionsResponse { revoked_session_count: u32::try_from(revoked).unwrap_or(u32::MAX) })
        });
        answer.await
    }

    async fn create_service_principal(
        &self,
        request: Request<pb::CreateServicePrincipalRequest>,
    ) -> Result<pb::CreateServicePrincipalResponse, Error> {
        let (caller, req) = unpack(request)?;
        let cmd = CreateServicePrincipal::try_from(&req)?;
        let call = Call::new(&caller, method!("DirectoryService", "CreateServicePrincipal"), cmd.request_id, &req)
            .answer_holds_secret();
        let answer = self.core.work().run(call, async |m| {
            self.core.require(m.tx(), &caller, Permission::ServicePrincipalManage, &Resource::GLOBAL).await?;
            self.existing_user(m, cmd.owner).await?;
            let (secret, hash) = tokens::new_client_secret_hashed();
            let principal = ServicePrincipal::new(cmd.client_id, cmd.display_name, cmd.owner, hash, m.now());
            store::insert_service_principal(m.tx(), &principal).await?;
            let record = self.record(AuditAction::ServicePrincipalCreated, &caller, "service_principal", principal.id);
            m.audit(record.rule("R2.2.2").attr("client_id", &principal.client_id));
            let service_principal = Some(principal_to_proto(&principal));
            Ok(pb::CreateServicePrincipalResponse { service_principal, client_secret: secret })
        });
        answer.await
    }

    async fn get_service_principal(
        &self,
        request: Request<pb::GetServicePrincipalRequest>,
    ) -> Result<pb::GetServicePrincipalResponse, Error> {
        let caller = caller(&request)?;
        let id: ServicePrincipalId = one_id("service_principal_id", &request.get_ref().service_principal_id)?;
        let mut tx = self.core.db().begin_read().await?;
        if caller.id != id.into() {
            self.core.require(&mut tx, &caller, Permission::DirectoryRead, &Resource::GLOBAL).await?;
        }
        let principal = store::get_service_principal(&mut tx, id)
            .await?
            .ok_or_else(|| Error::not_found("service_principal", id))?;
        Ok(pb::GetServicePrincipalResponse { service_principal: Some(principal_to_proto(&principal)) })
    }

    async fn list_service_principals(
        &self,
        request: Request<pb::ListServicePrincipalsRequest>,
    ) -> Result<pb::ListServicePrincipalsResponse, Error> {
        let (caller, req) = unpack(request)?;
        let limit = page_size(req.page_size)?;
        let after: Option<String> = cursor(&req.page_token)?;
        let mut tx = self.core.db().begin_read().await?;
        self.core.require(&mut tx, &caller, Permission::DirectoryRead, &Resource::GLOBAL).await?;
        let principals = store::list_service_principals(&mut tx, after.as_deref(), limit).await?;
        Ok(pb::ListServicePrincipalsResponse {
            next_page_token: next_token(&principals, limit, |p| p.client_id.clone()),
            service_principals: principals.iter().map(principal_to_proto).collect(),
        })
    }

    async fn rotate_service_principal_secret(
        &self,
        request: Request<pb::RotateServicePrincipalSecretRequest>,
    ) -> Result<pb::RotateServicePrincipalSecretResponse, Error> {
        let (caller, req) = unpack(request)?;
        let cmd = Target::<ServicePrincipalId>::parse(&req)?;
        let method = method!("DirectoryService", "RotateServicePrincipalSecret");
        let answer =
            self.core.work().run(Call::new(&caller, method, cmd.request_id, &req).answer_holds_secret(), async |m| {
                let mut principal = self.managed_principal(&caller, m, cmd.id).await?;
                let bindings = crate::store::access::bindings_of(m.tx(), principal.id.into()).await?;
                if bindings.iter().any(|b| b.role == Role::GovmediaService) {
                    // Its secret in a reply would let an administrator act as the service,
                    // and write the service's audit events (issue 18).
                    return Err(Error::rule(
                        "R2.2.2",
                        format!("service_principal/{}", principal.client_id),
                        "the installation's own services keep their secrets in the installation's secret files \
                     (govmedia up's secrets folder, GOVMEDIA_IDENTITY_SERVICES): change the file and restart",
                    ));
                }
                let (secret, hash) = tokens::new_client_secret_hashed();
                let action = principal.rotate_secret(hash, false, m.now());
                store::save_service_principal(m.tx(), &principal).await?;
                m.audit(self.record(action, &caller, "service_principal", cmd.id).rule("R2.3.1"));
                let service_principal = Some(principal_to_proto(&principal));
                Ok(pb::RotateServicePrincipalSecretResponse { service_principal, client_secret: secret })
            });
        answer.await
    }

    async fn disable_service_principal(
        &self,
        request: Request<pb::DisableServicePrincipalRequest>,
    ) -> Result<pb::DisableServicePrincipalResponse, Error> {
        let (caller, req) = unpack(request)?;
        let cmd = Target::<ServicePrincipalId>::parse(&req)?;
        let call = Call::new(&caller, method!("DirectoryService", "DisableServicePrincipal"), cmd.request_id, &req);
        let answer = self.core.work().run(call, async |m| {
            let mut principal = self.managed_principal(&caller, m, cmd.id).await?;
            let action = principal.disable(m.now());
            store::save_service_principal(m.tx(), &principal).await?;
            m.audit(
                self.record(action, &caller, "service_principal", cmd.id).rule("R2.2.2").reason(cmd.reason.clone()),
            );
            Ok(pb::DisableServicePrincipalResponse { service_principal: Some(principal_to_proto(&principal)) })
        });
        answer.await
    }

    async fn enable_service_principal(
        &self,
        request: Request<pb::EnableServicePrincipalRequest>,
    ) -> Result<pb::EnableServicePrincipalResponse, Error> {
        let (caller, req) = unpack(request)?;
        let cmd = Target::<ServicePrincipalId>::parse(&req)?;
        let call = Call::new(&caller, method!("DirectoryService", "EnableServicePrincipal"), cmd.request_id, &req);
        let answer = self.core.work().run(call, async |m| {
            let mut principal = self.managed_principal(&caller, m, cmd.id).await?;
            let action = principal.enable(m.now())?;
            store::save_service_principal(m.tx(), &principal).await?;
            m.audit(
                self.record(action, &caller, "service_principal", cmd.id).rule("R2.2.2").reason(cmd.reason.clone()),
            );
            Ok(pb::EnableServicePrincipalResponse { service_principal: Some(principal_to_proto(&principal)) })
        });
        answer.await
    }
}
