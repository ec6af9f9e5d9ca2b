//! Staff users, departments, and role bindings (R2.2, R6.1.1): what an administrator does
//! to set up an office.

use clap::{Args, Subcommand};
use govmedia_proto::common::v1 as cpb;
use govmedia_proto::identity::v1 as ipb;
use govmedia_proto::identity::v1::access_service_client::AccessServiceClient;
use govmedia_proto::identity::v1::directory_service_client::DirectoryServiceClient;

use super::BoxError;
use super::output::{Table, label, print_record, time};
use super::session::{Client, authorized, request_id};

/// Staff users.
#[derive(Debug, Subcommand)]
pub enum Users {
    /// List users.
    List {
        /// Only this department's.
        #[arg(long)]
        department: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 200)]
        limit: usize,
    },
    /// Create a user; prints the one-time password to hand over (changed at first login).
    Create {
        /// The login name.
        #[arg(long)]
        username: String,
        /// The name shown to others.
        #[arg(long)]
        display_name: String,
        /// The department.
        #[arg(long)]
        department: Option<String>,
        /// E-mail address.
        #[arg(long)]
        email: Option<String>,
        /// Phone number.
        #[arg(long)]
        phone: Option<String>,
    },
    /// Disable a user: no more sign-ins, sessions ended.
    Disable(UserChange),
    /// Enable a disabled user again.
    Enable {
        /// The user's id.
        user_id: String,
    },
    /// Issue a new one-time password (R2.3.1); prints it.
    ResetPassword(UserChange),
}

/// A change to one user, with its reason.
#[derive(Debug, Args)]
pub struct UserChange {
    /// The user's id.
    user_id: String,
    /// Why (kept in the audit log).
    #[arg(long)]
    reason: String,
}

impl Users {
    pub(super) async fn run(self, client: &mut Client, json: bool) -> Result<(), BoxError> {
        match self {
            Users::List { department, limit } => {
                let department = department.unwrap_or_default();
                let users =
                    client
                        .list(
                            limit,
                            |channel, token, page_token, page_size| {
                                let request = ipb::ListUsersRequest {
                                    page_size,
                                    page_token,
                                    department_id: department.clone(),
                                    ..Default::default()
                                };
                                async move {
                                    DirectoryServiceClient::new(channel).list_users(authorized(request, &token)).await
                                }
                            },
                            |r: ipb::ListUsersResponse| (r.users, r.next_page_token),
                        )
                        .await?;
                let mut table =
                    Table::new(&["id", "username", "display_name", "department_id", "status", "last_login"]);
                for u in users {
                    table.row(vec![
                        u.id.clone(),
                        u.username.clone(),
                        u.display_name.clone(),
                        u.department_id.clone(),
                        label(u.status().as_str_name().into(), "USER_STATUS_"),
                        time(u.last_login_time.as_ref()),
                    ]);
                }
                table.print(json)
            }
            Users::Create { username, display_name, department, email, phone } => {
                let request = ipb::CreateUserRequest {
                    request_id: request_id(),
                    user: Some(ipb::User {
                        username,
                        display_name,
                        department_id: department.unwrap_or_default(),
                        email: email.unwrap_or_default(),
                        phone: phone.unwrap_or_default(),
                        ..Default::default()
                    }),
                };
                let created =
                    client
                        .call(|channel, token| {
                            let request = request.clone();
                            async move {
                                DirectoryServiceClient::new(channel).create_user(authorized(request, &token)).await
                            }
                        })
                        .await?;
                let user = created.user.unwrap_or_default();
                print_record(
                    &[("id", user.id), ("username", user.username), ("one_time_password", created.one_time_password)],
                    json,
                )?;
                if !json {
                    eprintln!("hand the one-time password over in person; it must be changed at first sign-in");
                }
                Ok(())
            }
            Users::Disable(UserChange { user_id, reason }) => {
                let request = ipb::DisableUserRequest { request_id: request_id(), user_id, reason };
                let user =
                    client
                        .call(|channel, token| {
                            let request = request.clone();
                            async move {
                                DirectoryServiceClient::new(channel).disable_user(authorized(request, &token)).await
                            }
                        })
                        .await?
                        .user
                        .unwrap_or_default();
                print_user(&user, json)
            }
            Users::Enable { user_id } => {
                let request = ipb::EnableUserRequest { request_id: request_id(), user_id };
                let user =
                    client
                        .call(|channel, token| {
                            let request = request.clone();
                            async move {
                                DirectoryServiceClient::new(channel).enable_user(authorized(request, &token)).await
                            }
                        })
                        .await?
                        .user
                        .unwrap_or_default();
                print_user(&user, json)
            }
            Users::ResetPassword(UserChange { user_id, reason }) => {
                let request =
                    ipb::ResetUserPasswordRequest { request_id: request_id(), user_id: user_id.clone(), reason };
                let reset = client
                    .call(|channel, token| {
                        let request = request.clone();
                        async move {
                            DirectoryServiceClient::new(channel).reset_user_password(authorized(request, &token)).await
                        }
                    })
                    .await?;
                print_record(&[("id", user_id), ("one_time_password", reset.one_time_password)], json)
            }
        }
    }
}

fn print_user(user: &ipb::User, json: bool) -> Result<(), BoxError> {
    print_record(
        &[
            ("id", user.id.clone()),
            ("username", user.username.clone()),
            ("status", label(user.status().as_str_name().into(), "USER_STATUS_")),
        ],
        json,
    )
}

/// Departments.
#[derive(Debug, Subcommand)]
pub enum Departments {
    /// List departments.
    List {
        /// At most this many.
        #[arg(long, default_value_t = 200)]
        limit: usize,
    },
    /// Create a department.
    Create {
        /// Its name.
        #[arg(long)]
        name: String,
        /// Its short code, unique.
        #[arg(long)]
        code: String,
    },
}

impl Departments {
    pub(super) async fn run(self, client: &mut Client, json: bool) -> Result<(), BoxError> {
        let departments = match self {
            Departments::List { limit } => {
                client
                    .list(
                        limit,
                        |channel, token, page_token, page_size| {
                            let request = ipb::ListDepartmentsRequest { page_size, page_token };
                            async move {
                                DirectoryServiceClient::new(channel).list_departments(authorized(request, &token)).await
                            }
                        },
                        |r: ipb::ListDepartmentsResponse| (r.departments, r.next_page_token),
                    )
                    .await?
            }
            Departments::Create { name, code } => {
                let request = ipb::CreateDepartmentRequest {
                    request_id: request_id(),
                    department: Some(ipb::Department { name, code, ..Default::default() }),
                };
                let created = client
                    .call(|channel, token| {
                        let request = request.clone();
                        async move {
                            DirectoryServiceClient::new(channel).create_department(authorized(request, &token)).await
                        }
                    })
                    .await?;
                created.department.into_iter().collect()
            }
        };
        let mut table = Table::new(&["id", "code", "name"]);
        for d in departments {
            table.row(vec![d.id, d.code, d.name]);
        }
        table.print(json)
    }
}

/// Roles and role bindings.
#[derive(Debug, Subcommand)]
pub enum Roles {
    /// The built-in roles and what each may do.
    Catalogue,
    /// Role bindings: who holds which role where.
    List {
        /// Only this principal's.
        #[arg(long)]
        principal: Option<String>,
        /// Only this role's.
        #[arg(long)]
        role: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 500)]
        limit: usize,
    },
    /// Grant a role: globally, in one department, or on one platform account.
    Grant {
        /// The user or service principal.
        #[arg(long)]
        principal: String,
        /// The role (see `govmedia roles catalogue`).
        #[arg(long)]
        role: String,
        /// Only within this department.
        #[arg(long, conflicts_with = "account")]
        department: Option<String>,
        /// Only on this platform account.
        #[arg(long)]
        account: Option<String>,
        /// Why (kept with the binding and in the audit log).
        #[arg(long)]
        reason: String,
    },
    /// Revoke a role binding.
    Revoke {
        /// The binding's id.
        binding_id: String,
        /// Why.
        #[arg(long)]
        reason: String,
    },
}

/// A scope as (kind, id) words.
pub(super) fn scope_text(scope: Option<&cpb::Scope>) -> (String, String) {
    let scope = scope.cloned().unwrap_or_default();
    (label(Some(scope.kind().as_str_name()), "SCOPE_KIND_"), scope.id)
}

impl Roles {
    pub(super) async fn run(self, client: &mut Client, json: bool) -> Result<(), BoxError> {
        let bindings = match self {
            Roles::Catalogue => {
                let roles = client
                    .call(|channel, token| async move {
                        AccessServiceClient::new(channel).list_roles(authorized(ipb::ListRolesRequest {}, &token)).await
                    })
                    .await?
                    .roles;
                let mut table = Table::new(&["role", "title", "scopes", "permissions"]);
                for r in roles {
                    let scopes = r
                        .allowed_scope_kinds()
                        .map(|k| label(Some(k.as_str_name()), "SCOPE_KIND_"))
                        .collect::<Vec<_>>()
                        .join(", ");
                    table.row(vec![r.name, r.title, scopes, r.permissions.join(" ")]);
                }
                return table.print(json);
            }
            Roles::List { principal, role, limit } => {
                let (principal, role) = (principal.unwrap_or_default(), role.unwrap_or_default());
                client
                    .list(
                        limit,
                        |channel, token, page_token, page_size| {
                            let request = ipb::ListRoleBindingsRequest {
                                page_size,
                                page_token,
                                principal_id: principal.clone(),
                                role: role.clone(),
                                scope: None,
                            };
                            async move {
                                AccessServiceClient::new(channel).list_role_bindings(authorized(request, &token)).await
                            }
                        },
                        |r: ipb::ListRoleBindingsResponse| (r.role_bindings, r.next_page_token),
                    )
                    .await?
            }
            Roles::Grant { principal, role, department, account, reason } => {
                let scope = match (department, account) {
                    (Some(id), _) => cpb::Scope { kind: cpb::ScopeKind::Department as i32, id },
                    (None, Some(id)) => cpb::Scope { kind: cpb::ScopeKind::PlatformAccount as i32, id },
                    (None, None) => cpb::Scope { kind: cpb::ScopeKind::Global as i32, id: String::new() },
                };
                let request = ipb::CreateRoleBindingRequest {
                    request_id: request_id(),
                    role_binding: Some(ipb::RoleBinding {
                        principal_id: principal,
                        role,
                        scope: Some(scope),
                        reason,
                        ..Default::default()
                    }),
                };
                let created = client
                    .call(|channel, token| {
                        let request = request.clone();
                        async move {
                            AccessServiceClient::new(channel).create_role_binding(authorized(request, &token)).await
                        }
                    })
                    .await?;
                created.role_binding.into_iter().collect()
            }
            Roles::Revoke { binding_id, reason } => {
                let request = ipb::DeleteRoleBindingRequest {
                    request_id: request_id(),
                    role_binding_id: binding_id.clone(),
                    reason,
                };
                client
                    .call(|channel, token| {
                        let request = request.clone();
                        async move {
                            AccessServiceClient::new(channel).delete_role_binding(authorized(request, &token)).await
                        }
                    })
                    .await?;
                eprintln!("role binding {binding_id} revoked");
                return Ok(());
            }
        };
        let mut table = Table::new(&["id", "principal_id", "role", "scope", "scope_id", "granted_by", "granted"]);
        for b in bindings {
            let (kind, id) = scope_text(b.scope.as_ref());
            table.row(vec![b.id, b.principal_id, b.role, kind, id, b.granted_by, time(b.create_time.as_ref())]);
        }
        table.print(json)
    }
}
