//! `DirectoryService`: departments, staff users and service principals (R1.2, R2.2.2,
//! R6.1.1).

use std::sync::Arc;

use govmedia_domain::Error;
use govmedia_domain::audit::{AuditAction, AuditResourceRef};
use govmedia_domain::ids::{DepartmentId, ServicePrincipalId, UserId};
use govmedia_domain::permission::Permission;
use govmedia_domain::scope::Resource;
use govmedia_domain::validate::{MAX_NAME_CHARS, Validator};
use govmedia_kit::auth::Principal;
use govmedia_kit::mutation::{Call, Mutation};
use govmedia_proto::identity::v1 as pb;
use govmedia_proto::identity::v1::directory_service_server::{DirectoryService, DirectoryServiceServer};
use tonic::{Request, Response, Status};

use super::{caller, check_etag, cursor, etag, method, next_token, opt_ts, page_size, ts};
use crate::Core;
use crate::domain::model::{Department, ServicePrincipal, User, UserStatus};
use crate::domain::{password, tokens};
use crate::store::{directory as store, sessions};

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

async fn hash_blocking(password: String) -> Result<String, Error> {
    tokio::task::spawn_blocking(move || password::hash(&password)).await.map_err(Error::internal)?
}

impl Directory {
    async fn load_user(&self, m: &mut Mutation, user: UserId) -> Result<User, Error> {
        store::get_user(m.tx(), user).await?.ok_or_else(|| Error::not_found("user", user))
    }

    async fn user_mutation(&self, caller: &Principal, m: &mut Mutation, user: UserId) -> Result<User, Error> {
        let found = self.load_user(m, user).await?;
        self.core.require(m.tx(), caller, Permission::UserManage, &user_resource(found.department)).await?;
        Ok(found)
    }
}

#[tonic::async_trait]
impl DirectoryService for Directory {
    async fn create_department(
        &self,
        request: Request<pb::CreateDepartmentRequest>,
    ) -> Result<Response<pb::CreateDepartmentResponse>, Status> {
        let caller = caller(&request)?;
        let req = request.into_inner();
        let mut v = Validator::new();
        let request_id = v.request_id(&req.request_id);
        let given = req.department.clone().unwrap_or_default();
        let name = v.required_text("department.name", &given.name, 100);
        let code = department_code(&mut v, "department.code", &given.code);
        let (request_id, name, code) = v.finish_with(|| Some((request_id?, name?, code?)))?;
        let call = Call::new(&caller, method!("DirectoryService", "CreateDepartment"), request_id, &req);
        let answer = self.core.work().run(call, async |m| {
            self.core.require(m.tx(), &caller, Permission::DepartmentManage, &Resource::GLOBAL).await?;
            let now = m.now();
            let department =
                Department { id: DepartmentId::new(), name, code, created_at: now, updated_at: now, version: 1 };
            store::insert_department(m.tx(), &department).await?;
            m.audit(
                self.core
                    .record(
                        AuditAction::DepartmentCreated,
                        caller.actor(),
                        AuditResourceRef::new("department", department.id),
                    )
                    .request(govmedia_kit::telemetry::current_trace_id(), Some(request_id.to_string()))
                    .attr("name", &department.name)
                    .attr("code", &department.code),
            );
            let answer = pb::CreateDepartmentResponse { department: Some(department_to_proto(&department)) };
            Ok(answer)
        });
        Ok(Response::new(answer.await?))
    }

    async fn get_department(
        &self,
        request: Request<pb::GetDepartmentRequest>,
    ) -> Result<Response<pb::GetDepartmentResponse>, Status> {
        let caller = caller(&request)?;
        let mut v = Validator::new();
        let id: Option<DepartmentId> = v.id("department_id", &request.get_ref().department_id);
        let id = v.finish_with(|| id)?;
        let mut tx = self.core.db().begin_read().await?;
        self.core.require(&mut tx, &caller, Permission::DirectoryRead, &Resource::department(id)).await?;
        let department = store::get_department(&mut tx, id).await?.ok_or_else(|| Error::not_found("department", id))?;
        Ok(Response::new(pb::GetDepartmentResponse { department: Some(department_to_proto(&department)) }))
    }

    async fn list_departments(
        &self,
        request: Request<pb::ListDepartmentsRequest>,
    ) -> Result<Response<pb::ListDepartmentsResponse>, Status> {
        let caller = caller(&request)?;
        let req = request.into_inner();
        let limit = page_size(req.page_size)?;
        let after: Option<String> = cursor(&req.page_token)?;
        let mut tx = self.core.db().begin_read().await?;
        self.core.require(&mut tx, &caller, Permission::DirectoryRead, &Resource::GLOBAL).await?;
        let departments = store::list_departments(&mut tx, after.as_deref(), limit).await?;
        Ok(Response::new(pb::ListDepartmentsResponse {
            next_page_token: next_token(&departments, limit, |d| d.name.clone()),
            departments: departments.iter().map(department_to_proto).collect(),
        }))
    }

    async fn update_department(
        &self,
        request: Request<pb::UpdateDepartmentRequest>,
    ) -> Result<Response<pb::UpdateDepartmentResponse>, Status> {
        let caller = caller(&request)?;
        let req = request.into_inner();
        let mut v = Validator::new();
        let request_id = v.request_id(&req.request_id);
        let given = req.department.clone().unwrap_or_default();
        let id: Option<DepartmentId> = v.id("department.id", &given.id);
        let paths = req.update_mask.clone().map(|m| m.paths).unwrap_or_default();
        if paths.is_empty() {
            v.violation("update_mask", "names no field to change");
        }
        let mut name = None;
        let mut code = None;
        for path in &paths {
            match path.as_str() {
                "name" => name = v.required_text("department.name", &given.name, 100),
                "code" => code = department_code(&mut v, "department.code", &given.code),
                other => v.violation("update_mask", format!("{other:?} cannot be changed (name, code)")),
            }
        }
        let (request_id, id) = v.finish_with(|| Some((request_id?, id?)))?;
        let call = Call::new(&caller, method!("DirectoryService", "UpdateDepartment"), request_id, &req);
        let answer = self.core.work().run(call, async |m| {
            self.core.require(m.tx(), &caller, Permission::DepartmentManage, &Resource::GLOBAL).await?;
            let mut department =
                store::get_department(m.tx(), id).await?.ok_or_else(|| Error::not_found("department", id))?;
            check_etag("department.etag", &given.etag, department.version, true)?;
            let previous = department.version;
            if let Some(name) = name {
                department.name = name;
            }
            if let Some(code) = code {
                department.code = code;
            }
            department.updated_at = m.now();
            department.version += 1;
            store::update_department(m.tx(), &department, previous).await?;
            m.audit(
                self.core
                    .record(
                        AuditAction::DepartmentUpdated,
                        caller.actor(),
                        AuditResourceRef::new("department", department.id),
                    )
                    .request(govmedia_kit::telemetry::current_trace_id(), Some(request_id.to_string()))
                    .attr("fields", paths.join(",")),
            );
            let answer = pb::UpdateDepartmentResponse { department: Some(department_to_proto(&department)) };
            Ok(answer)
        });
        Ok(Response::new(answer.await?))
    }

    async fn create_user(
        &self,
        request: Request<pb::CreateUserRequest>,
    ) -> Result<Response<pb::CreateUserResponse>, Status> {
        let caller = caller(&request)?;
        let req = request.into_inner();
        let mut v = Validator::new();
        let request_id = v.request_id(&req.request_id);
        let given = req.user.clone().unwrap_or_default();
        let name = username(&mut v, "user.username", &given.username);
        let display_name = v.required_text("user.display_name", &given.display_name, MAX_NAME_CHARS);
        let department: Option<DepartmentId> = v.optional_id("user.department_id", &given.department_id);
        let mail = email(&mut v, "user.email", &given.email);
        let tel = phone(&mut v, "user.phone", &given.phone);
        let (request_id, name, display_name, mail, tel) =
            v.finish_with(|| Some((request_id?, name?, display_name?, mail?, tel?)))?;
        let one_time = password::generate_one_time();
        let hash = hash_blocking(one_time.clone()).await?;
        let call = Call::new(&caller, method!("DirectoryService", "CreateUser"), request_id, &req);
        let answer = self.core.work().run(call, async |m| {
            self.core.require(m.tx(), &caller, Permission::UserManage, &user_resource(department)).await?;
            if let Some(d) = department {
                store::get_department(m.tx(), d).await?.ok_or_else(|| Error::not_found("department", d))?;
            }
            let now = m.now();
            let user = User {
                id: UserId::new(),
                username: name,
                display_name,
                department,
                email: mail,
                phone: tel,
                status: UserStatus::Active,
                password_hash: hash.clone(),
                password_changed_at: now,
                password_expires_at: now,
                must_change_password: true,
                failed_attempts: 0,
                lockout_count: 0,
                locked_until: None,
                last_login_at: None,
                created_at: now,
                updated_at: now,
                version: 1,
            };
            store::insert_user(m.tx(), &user).await?;
            store::push_password_history(m.tx(), user.id, &hash, now).await?;
            let mut resource = AuditResourceRef::new("user", user.id);
            resource.department = department;
            m.audit(
                self.core
                    .record(AuditAction::UserCreated, caller.actor(), resource)
                    .rule("R2.2.2")
                    .request(govmedia_kit::telemetry::current_trace_id(), Some(request_id.to_string()))
                    .attr("username", &user.username),
            );
            let answer = pb::CreateUserResponse { user: Some(user_to_proto(&user)), one_time_password: one_time };
            Ok(answer)
        });
        Ok(Response::new(answer.await?))
    }

    async fn get_user(&self, request: Request<pb::GetUserRequest>) -> Result<Response<pb::GetUserResponse>, Status> {
        let caller = caller(&request)?;
        let mut v = Validator::new();
        let id: Option<UserId> = v.id("user_id", &request.get_ref().user_id);
        let id = v.finish_with(|| id)?;
        let mut tx = self.core.db().begin_read().await?;
        let user = store::get_user(&mut tx, id).await?.ok_or_else(|| Error::not_found("user", id))?;
        if caller.id != id.into() {
            self.core.require(&mut tx, &caller, Permission::DirectoryRead, &user_resource(user.department)).await?;
        }
        Ok(Response::new(pb::GetUserResponse { user: Some(user_to_proto(&user)) }))
    }

    async fn list_users(
        &self,
        request: Request<pb::ListUsersRequest>,
    ) -> Result<Response<pb::ListUsersResponse>, Status> {
        let caller = caller(&request)?;
        let req = request.into_inner();
        let mut v = Validator::new();
        let department: Option<DepartmentId> = v.optional_id("department_id", &req.department_id);
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
        let limit = page_size(req.page_size)?;
        let after: Option<String> = cursor(&req.page_token)?;
        let mut tx = self.core.db().begin_read().await?;
        self.core.require(&mut tx, &caller, Permission::DirectoryRead, &user_resource(department)).await?;
        let users = store::list_users(&mut tx, department, status, after.as_deref(), limit).await?;
        Ok(Response::new(pb::ListUsersResponse {
            next_page_token: next_token(&users, limit, |u| u.username.clone()),
            users: users.iter().map(user_to_proto).collect(),
        }))
    }

    async fn update_user(
        &self,
        request: Request<pb::UpdateUserRequest>,
    ) -> Result<Response<pb::UpdateUserResponse>, Status> {
        let caller = caller(&request)?;
        let req = request.into_inner();
        let mut v = Validator::new();
        let request_id = v.request_id(&req.request_id);
        let given = req.user.clone().unwrap_or_default();
        let id: Option<UserId> = v.id("user.id", &given.id);
        let paths = req.update_mask.clone().map(|m| m.paths).unwrap_or_default();
        if paths.is_empty() {
            v.violation("update_mask", "names no field to change");
        }
        let (mut display_name, mut department, mut mail, mut tel) = (None, None, None, None);
        for path in &paths {
            match path.as_str() {
                "display_name" => {
                    display_name = v.required_text("user.display_name", &given.display_name, MAX_NAME_CHARS)
                }
                "department_id" => {
                    department = Some(v.optional_id::<DepartmentId>("user.department_id", &given.department_id))
                }
                "email" => mail = email(&mut v, "user.email", &given.email),
                "phone" => tel = phone(&mut v, "user.phone", &given.phone),
                other => v.violation(
                    "update_mask",
                    format!("{other:?} cannot be changed (display_name, department_id, email, phone)"),
                ),
            }
        }
        let (request_id, id) = v.finish_with(|| Some((request_id?, id?)))?;
        let call = Call::new(&caller, method!("DirectoryService", "UpdateUser"), request_id, &req);
        let answer = self.core.work().run(call, async |m| {
            let mut user = self.user_mutation(&caller, m, id).await?;
            check_etag("user.etag", &given.etag, user.version, true)?;
            let previous = user.version;
            if let Some(new_department) = department {
                if let Some(d) = new_department {
                    store::get_department(m.tx(), d).await?.ok_or_else(|| Error::not_found("department", d))?;
                }
                self.core.require(m.tx(), &caller, Permission::UserManage, &user_resource(new_department)).await?;
                user.department = new_department;
            }
            if let Some(x) = display_name {
                user.display_name = x;
            }
            if let Some(x) = mail {
                user.email = x;
            }
            if let Some(x) = tel {
                user.phone = x;
            }
            user.updated_at = m.now();
            user.version += 1;
            store::save_user(m.tx(), &user, previous).await?;
            m.audit(
                self.core
                    .record(AuditAction::UserUpdated, caller.actor(), AuditResourceRef::new("user", user.id))
                    .request(govmedia_kit::telemetry::current_trace_id(), Some(request_id.to_string()))
                    .attr("fields", paths.join(",")),
            );
            let answer = pb::UpdateUserResponse { user: Some(user_to_proto(&user)) };
            Ok(answer)
        });
        Ok(Response::new(answer.await?))
    }

    async fn disable_user(
        &self,
        request: Request<pb::DisableUserRequest>,
    ) -> Result<Response<pb::DisableUserResponse>, Status> {
        let caller = caller(&request)?;
        let req = request.into_inner();
        let mut v = Validator::new();
        let request_id = v.request_id(&req.request_id);
        let id: Option<UserId> = v.id("user_id", &req.user_id);
        let reason = v.reason("reason", &req.reason);
        let (request_id, id, reason) = v.finish_with(|| Some((request_id?, id?, reason?)))?;
        if caller.id == id.into() {
            return Err(Error::rule("R2.2.1", format!("user/{id}"), "nobody disables their own login").into());
        }
        let call = Call::new(&caller, method!("DirectoryService", "DisableUser"), request_id, &req);
        let answer = self.core.work().run(call, async |m| {
            let mut user = self.user_mutation(&caller, m, id).await?;
            let previous = user.version;
            user.status = UserStatus::Disabled;
            user.updated_at = m.now();
            user.version += 1;
            store::save_user(m.tx(), &user, previous).await?;
            let now = m.now();
            let revoked = sessions::revoke_sessions_of(m.tx(), id.into(), "user disabled", now).await?;
            m.audit(
                self.core
                    .record(AuditAction::UserDisabled, caller.actor(), AuditResourceRef::new("user", id))
                    .rule("R2.2.2")
                    .reason(reason)
                    .request(govmedia_kit::telemetry::current_trace_id(), Some(request_id.to_string()))
                    .attr("sessions_revoked", revoked),
            );
            let answer = pb::DisableUserResponse { user: Some(user_to_proto(&user)) };
            Ok(answer)
        });
        Ok(Response::new(answer.await?))
    }

    async fn enable_user(
        &self,
        request: Request<pb::EnableUserRequest>,
    ) -> Result<Response<pb::EnableUserResponse>, Status> {
        let caller = caller(&request)?;
        let req = request.into_inner();
        let mut v = Validator::new();
        let request_id = v.request_id(&req.request_id);
        let id: Option<UserId> = v.id("user_id", &req.user_id);
        let (request_id, id) = v.finish_with(|| Some((request_id?, id?)))?;
        let call = Call::new(&caller, method!("DirectoryService", "EnableUser"), request_id, &req);
        let answer = self.core.work().run(call, async |m| {
            let mut user = self.user_mutation(&caller, m, id).await?;
            let previous = user.version;
            user.status = UserStatus::Active;
            user.updated_at = m.now();
            user.version += 1;
            store::save_user(m.tx(), &user, previous).await?;
            m.audit(
                self.core
                    .record(AuditAction::UserEnabled, caller.actor(), AuditResourceRef::new("user", id))
                    .request(govmedia_kit::telemetry::current_trace_id(), Some(request_id.to_string())),
            );
            let answer = pb::EnableUserResponse { user: Some(user_to_proto(&user)) };
            Ok(answer)
        });
        Ok(Response::new(answer.await?))
    }

    async fn reset_user_password(
        &self,
        request: Request<pb::ResetUserPasswordRequest>,
    ) -> Result<Response<pb::ResetUserPasswordResponse>, Status> {
        let caller = caller(&request)?;
        let req = request.into_inner();
        let mut v = Validator::new();
        let request_id = v.request_id(&req.request_id);
        let id: Option<UserId> = v.id("user_id", &req.user_id);
        let reason = v.reason("reason", &req.reason);
        let (request_id, id, reason) = v.finish_with(|| Some((request_id?, id?, reason?)))?;
        let one_time = password::generate_one_time();
        let hash = hash_blocking(one_time.clone()).await?;
        let call = Call::new(&caller, method!("DirectoryService", "ResetUserPassword"), request_id, &req);
        let answer = self.core.work().run(call, async |m| {
            let mut user = self.user_mutation(&caller, m, id).await?;
            let previous = user.version;
            let now = m.now();
            user.password_hash = hash.clone();
            user.password_changed_at = now;
            user.password_expires_at = now;
            user.must_change_password = true;
            user.updated_at = now;
            user.version += 1;
            store::save_user(m.tx(), &user, previous).await?;
            store::push_password_history(m.tx(), id, &hash, now).await?;
            let revoked = sessions::revoke_sessions_of(m.tx(), id.into(), "password reset", now).await?;
            m.audit(
                self.core
                    .record(AuditAction::UserPasswordReset, caller.actor(), AuditResourceRef::new("user", id))
                    .rule("R2.3.1")
                    .reason(reason)
                    .request(govmedia_kit::telemetry::current_trace_id(), Some(request_id.to_string()))
                    .attr("sessions_revoked", revoked),
            );
            let answer = pb::ResetUserPasswordResponse { one_time_password: one_time };
            Ok(answer)
        });
        Ok(Response::new(answer.await?))
    }

    async fn unlock_user(
        &self,
        request: Request<pb::UnlockUserRequest>,
    ) -> Result<Response<pb::UnlockUserResponse>, Status> {
        let caller = caller(&request)?;
        let req = request.into_inner();
        let mut v = Validator::new();
        let request_id = v.request_id(&req.request_id);
        let id: Option<UserId> = v.id("user_id", &req.user_id);
        let (request_id, id) = v.finish_with(|| Some((request_id?, id?)))?;
        let call = Call::new(&caller, method!("DirectoryService", "UnlockUser"), request_id, &req);
        let answer = self.core.work().run(call, async |m| {
            let mut user = self.user_mutation(&caller, m, id).await?;
            let previous = user.version;
            user.locked_until = None;
            user.failed_attempts = 0;
            user.updated_at = m.now();
            user.version += 1;
            store::save_user(m.tx(), &user, previous).await?;
            m.audit(
                self.core
                    .record(AuditAction::UserUnlocked, caller.actor(), AuditResourceRef::new("user", id))
                    .rule("R2.3.1")
                    .request(govmedia_kit::telemetry::current_trace_id(), Some(request_id.to_string())),
            );
            let answer = pb::UnlockUserResponse { user: Some(user_to_proto(&user)) };
            Ok(answer)
        });
        Ok(Response::new(answer.await?))
    }

    async fn revoke_user_sessions(
        &self,
        request: Request<pb::RevokeUserSessionsRequest>,
    ) -> Result<Response<pb::RevokeUserSessionsResponse>, Status> {
        let caller = caller(&request)?;
        let req = request.into_inner();
        let mut v = Validator::new();
        let request_id = v.request_id(&req.request_id);
        let id: Option<UserId> = v.id("user_id", &req.user_id);
        let reason = v.reason("reason", &req.reason);
        let (request_id, id, reason) = v.finish_with(|| Some((request_id?, id?, reason?)))?;
        let call = Call::new(&caller, method!("DirectoryService", "RevokeUserSessions"), request_id, &req);
        let answer = self.core.work().run(call, async |m| {
            self.user_mutation(&caller, m, id).await?;
            let now = m.now();
            let revoked = sessions::revoke_sessions_of(m.tx(), id.into(), &reason, now).await?;
            m.audit(
                self.core
                    .record(AuditAction::SessionRevoked, caller.actor(), AuditResourceRef::new("user", id))
                    .rule("R2.3.3")
                    .reason(reason)
                    .request(govmedia_kit::telemetry::current_trace_id(), Some(request_id.to_string()))
                    .attr("sessions_revoked", revoked),
            );
            let answer =
                pb::RevokeUserSessionsResponse { revoked_session_count: u32::try_from(revoked).unwrap_or(u32::MAX) };
            Ok(answer)
        });
        Ok(Response::new(answer.await?))
    }

    async fn create_service_principal(
        &self,
        request: Request<pb::CreateServicePrincipalRequest>,
    ) -> Result<Response<pb::CreateServicePrincipalResponse>, Status> {
        let caller = caller(&request)?;
        let req = request.into_inner();
        let mut v = Validator::new();
        let request_id = v.request_id(&req.request_id);
        let given = req.service_principal.clone().unwrap_or_default();
        let client_id = username(&mut v, "service_principal.client_id", &given.client_id);
        let display_name = v.required_text("service_principal.display_name", &given.display_name, MAX_NAME_CHARS);
        let owner: Option<UserId> = v.optional_id("service_principal.owner_user_id", &given.owner_user_id);
        let (request_id, client_id, display_name) = v.finish_with(|| Some((request_id?, client_id?, display_name?)))?;
        let call = Call::new(&caller, method!("DirectoryService", "CreateServicePrincipal"), request_id, &req);
        let answer = self.core.work().run(call, async |m| {
            self.core.require(m.tx(), &caller, Permission::ServicePrincipalManage, &Resource::GLOBAL).await?;
            if let Some(o) = owner {
                store::get_user(m.tx(), o).await?.ok_or_else(|| Error::not_found("user", o))?;
            }
            let secret = tokens::new_client_secret();
            let now = m.now();
            let principal = ServicePrincipal {
                id: ServicePrincipalId::new(),
                client_id,
                display_name,
                owner,
                secret_hash: tokens::token_hash(&secret),
                disabled: false,
                secret_rotated_at: now,
                created_at: now,
                updated_at: now,
                version: 1,
            };
            store::insert_service_principal(m.tx(), &principal).await?;
            m.audit(
                self.core
                    .record(
                        AuditAction::ServicePrincipalCreated,
                        caller.actor(),
                        AuditResourceRef::new("service_principal", principal.id),
                    )
                    .rule("R2.2.2")
                    .request(govmedia_kit::telemetry::current_trace_id(), Some(request_id.to_string()))
                    .attr("client_id", &principal.client_id),
            );
            let answer = pb::CreateServicePrincipalResponse {
                service_principal: Some(principal_to_proto(&principal)),
                client_secret: secret,
            };
            Ok(answer)
        });
        Ok(Response::new(answer.await?))
    }

    async fn get_service_principal(
        &self,
        request: Request<pb::GetServicePrincipalRequest>,
    ) -> Result<Response<pb::GetServicePrincipalResponse>, Status> {
        let caller = caller(&request)?;
        let mut v = Validator::new();
        let id: Option<ServicePrincipalId> = v.id("service_principal_id", &request.get_ref().service_principal_id);
        let id = v.finish_with(|| id)?;
        let mut tx = self.core.db().begin_read().await?;
        if caller.id != id.into() {
            self.core.require(&mut tx, &caller, Permission::DirectoryRead, &Resource::GLOBAL).await?;
        }
        let principal = store::get_service_principal(&mut tx, id)
            .await?
            .ok_or_else(|| Error::not_found("service_principal", id))?;
        Ok(Response::new(pb::GetServicePrincipalResponse { service_principal: Some(principal_to_proto(&principal)) }))
    }

    async fn list_service_principals(
        &self,
        request: Request<pb::ListServicePrincipalsRequest>,
    ) -> Result<Response<pb::ListServicePrincipalsResponse>, Status> {
        let caller = caller(&request)?;
        let req = request.into_inner();
        let limit = page_size(req.page_size)?;
        let after: Option<String> = cursor(&req.page_token)?;
        let mut tx = self.core.db().begin_read().await?;
        self.core.require(&mut tx, &caller, Permission::DirectoryRead, &Resource::GLOBAL).await?;
        let principals = store::list_service_principals(&mut tx, after.as_deref(), limit).await?;
        Ok(Response::new(pb::ListServicePrincipalsResponse {
            next_page_token: next_token(&principals, limit, |p| p.client_id.clone()),
            service_principals: principals.iter().map(principal_to_proto).collect(),
        }))
    }

    async fn rotate_service_principal_secret(
        &self,
        request: Request<pb::RotateServicePrincipalSecretRequest>,
    ) -> Result<Response<pb::RotateServicePrincipalSecretResponse>, Status> {
        let caller = caller(&request)?;
        let req = request.into_inner();
        let mut v = Validator::new();
        let request_id = v.request_id(&req.request_id);
        let id: Option<ServicePrincipalId> = v.id("service_principal_id", &req.service_principal_id);
        let (request_id, id) = v.finish_with(|| Some((request_id?, id?)))?;
        let call = Call::new(&caller, method!("DirectoryService", "RotateServicePrincipalSecret"), request_id, &req);
        let answer = self.core.work().run(call, async |m| {
            self.core.require(m.tx(), &caller, Permission::ServicePrincipalManage, &Resource::GLOBAL).await?;
            let mut principal = store::get_service_principal(m.tx(), id)
                .await?
                .ok_or_else(|| Error::not_found("service_principal", id))?;
            let previous = principal.version;
            let secret = tokens::new_client_secret();
            principal.secret_hash = tokens::token_hash(&secret);
            principal.secret_rotated_at = m.now();
            principal.updated_at = m.now();
            principal.version += 1;
            store::save_service_principal(m.tx(), &principal, previous).await?;
            m.audit(
                self.core
                    .record(
                        AuditAction::ServicePrincipalSecretRotated,
                        caller.actor(),
                        AuditResourceRef::new("service_principal", id),
                    )
                    .rule("R2.3.1")
                    .request(govmedia_kit::telemetry::current_trace_id(), Some(request_id.to_string())),
            );
            let answer = pb::RotateServicePrincipalSecretResponse {
                service_principal: Some(principal_to_proto(&principal)),
                client_secret: secret,
            };
            Ok(answer)
        });
        Ok(Response::new(answer.await?))
    }

    async fn disable_service_principal(
        &self,
        request: Request<pb::DisableServicePrincipalRequest>,
    ) -> Result<Response<pb::DisableServicePrincipalResponse>, Status> {
        let caller = caller(&request)?;
        let req = request.into_inner();
        let mut v = Validator::new();
        let request_id = v.request_id(&req.request_id);
        let id: Option<ServicePrincipalId> = v.id("service_principal_id", &req.service_principal_id);
        let reason = v.reason("reason", &req.reason);
        let (request_id, id, reason) = v.finish_with(|| Some((request_id?, id?, reason?)))?;
        let call = Call::new(&caller, method!("DirectoryService", "DisableServicePrincipal"), request_id, &req);
        let answer = self.core.work().run(call, async |m| {
            self.core.require(m.tx(), &caller, Permission::ServicePrincipalManage, &Resource::GLOBAL).await?;
            let mut principal = store::get_service_principal(m.tx(), id)
                .await?
                .ok_or_else(|| Error::not_found("service_principal", id))?;
            let previous = principal.version;
            principal.disabled = true;
            principal.updated_at = m.now();
            principal.version += 1;
            store::save_service_principal(m.tx(), &principal, previous).await?;
            m.audit(
                self.core
                    .record(
                        AuditAction::ServicePrincipalDisabled,
                        caller.actor(),
                        AuditResourceRef::new("service_principal", id),
                    )
                    .rule("R2.2.2")
                    .reason(reason)
                    .request(govmedia_kit::telemetry::current_trace_id(), Some(request_id.to_string())),
            );
            let answer =
                pb::DisableServicePrincipalResponse { service_principal: Some(principal_to_proto(&principal)) };
            Ok(answer)
        });
        Ok(Response::new(answer.await?))
    }
}
