//! The permission matrix, role x scope x permission, asked of the real service through
//! BatchCheckPermission and compared with the committed table
//! `tests/permission_matrix.txt`: any changed cell fails the test (R2.2.1, R6.1.1).
//! After an intended change, refresh the table with
//! `GOVMEDIA_BLESS=1 cargo test -p govmedia-identity --test permission_matrix`.

mod common;

use common::{Identity, authed, rid};
use govmedia_domain::permission::{Permission, Role};
use govmedia_domain::scope::ScopeKind;
use govmedia_proto::common::v1 as cpb;
use govmedia_proto::identity::v1 as pb;
use govmedia_proto::identity::v1::platform_account_service_client::PlatformAccountServiceClient;
use govmedia_testkit::TestDatabase;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_permission_matrix_is_as_committed_r2_2_1() {
    let id = Identity::start(TestDatabase::sqlite()).await;
    let admin = id.admin_token().await;

    let department = |name: &str, code: &str| pb::CreateDepartmentRequest {
        request_id: rid(),
        department: Some(pb::Department { name: name.into(), code: code.into(), ..Default::default() }),
    };
    let d1 = id
        .directory()
        .create_department(authed(department("One", "D1"), &admin))
        .await
        .expect("d1")
        .into_inner()
        .department
        .expect("d")
        .id;
    let d2 = id
        .directory()
        .create_department(authed(department("Two", "D2"), &admin))
        .await
        .expect("d2")
        .into_inner()
        .department
        .expect("d")
        .id;
    let admin_id = id
        .auth()
        .get_current_principal(authed(pb::GetCurrentPrincipalRequest {}, &admin))
        .await
        .expect("me")
        .into_inner()
        .principal
        .expect("p")
        .id;
    let account = |handle: &str, department: &str| pb::CreatePlatformAccountRequest {
        request_id: rid(),
        platform_account: Some(pb::PlatformAccount {
            platform: cpb::Platform::Weibo as i32,
            handle: handle.into(),
            profile: Some(pb::PlatformAccountProfile { display_name: handle.into(), ..Default::default() }),
            department_id: department.into(),
            responsible_user_id: admin_id.clone(),
            ..Default::default()
        }),
    };
    let mut accounts = PlatformAccountServiceClient::new(id.server.channel());
    let a1 = accounts
        .create_platform_account(authed(account("a1", &d1), &admin))
        .await
        .expect("a1")
        .into_inner()
        .platform_account
        .expect("a")
        .id;
    let a2 = accounts
        .create_platform_account(authed(account("a2", &d2), &admin))
        .await
        .expect("a2")
        .into_inner()
        .platform_account
        .expect("a")
        .id;

    // Resources: the whole bureau, department 1 and 2, account 1 (of department 1), account 2.
    let resources = [
        ("global", pb::Resource::default()),
        ("d1", pb::Resource { department_id: d1.clone(), platform_account_id: String::new() }),
        ("d2", pb::Resource { department_id: d2.clone(), platform_account_id: String::new() }),
        ("a1", pb::Resource { department_id: String::new(), platform_account_id: a1.clone() }),
        ("a2", pb::Resource { department_id: String::new(), platform_account_id: a2.clone() }),
    ];

    let mut lines = Vec::new();
    for role in Role::ALL {
        for kind in role.allowed_scope_kinds() {
            let (scope_kind, scope_id, scope_name) = match kind {
                ScopeKind::Global => (cpb::ScopeKind::Global, String::new(), "global"),
                ScopeKind::Department => (cpb::ScopeKind::Department, d1.clone(), "department:d1"),
                ScopeKind::PlatformAccount => (cpb::ScopeKind::PlatformAccount, a1.clone(), "account:a1"),
            };
            // Service principals hold the bindings: no password to change first.
            let client_id = format!("{}-{}", role.as_str().replace('_', "-"), scope_name.replace(':', "-"));
            let principal = if *role == Role::GovmediaService {
                // No role grant gives it: the installation provisions its services.
                id.core
                    .provision_service_principal(&client_id, "a-provisioned-secret-of-32-characters")
                    .await
                    .expect("provisioned");
                id.directory()
                    .list_service_principals(authed(
                        pb::ListServicePrincipalsRequest { page_size: 500, ..Default::default() },
                        &admin,
                    ))
                    .await
                    .expect("listed")
                    .into_inner()
                    .service_principals
                    .into_iter()
                    .find(|p| p.client_id == client_id)
                    .expect("the provisioned principal")
                    .id
            } else {
                let principal = id
                    .directory()
                    .create_service_principal(authed(
                        pb::CreateServicePrincipalRequest {
                            request_id: rid(),
                            service_principal: Some(pb::ServicePrincipal {
                                client_id: client_id.clone(),
                                display_name: client_id.clone(),
                                ..Default::default()
                            }),
                        },
                        &admin,
                    ))
                    .await
                    .expect("principal")
                    .into_inner()
                    .service_principal
                    .expect("p")
                    .id;
                id.access()
                    .create_role_binding(authed(
                        pb::CreateRoleBindingRequest {
                            request_id: rid(),
                            role_binding: Some(pb::RoleBinding {
                                principal_id: principal.clone(),
                                role: role.as_str().into(),
                                scope: Some(cpb::Scope { kind: scope_kind as i32, id: scope_id }),
                                reason: "permission matrix".into(),
                                ..Default::default()
                            }),
                        },
                        &admin,
                    ))
                    .await
                    .expect("granted");
                principal
            };

            let checks: Vec<_> = Permission::ALL
                .iter()
                .flat_map(|p| {
                    resources.iter().map(|(_, r)| pb::PermissionCheck {
                        principal_id: principal.clone(),
                        permission: p.as_str().into(),
                        resource: Some(r.clone()),
                        session_id: String::new(),
                    })
                })
                .collect();
            let mut decisions = Vec::new();
            for chunk in checks.chunks(100) {
                decisions.extend(
                    id.access()
                        .batch_check_permission(authed(
                            pb::BatchCheckPermissionRequest { checks: chunk.to_vec() },
                            &admin,
                        ))
                        .await
                        .expect("batch")
                        .into_inner()
                        .decisions,
                );
            }
            for (i, permission) in Permission::ALL.iter().enumerate() {
                let cells: Vec<String> = resources
                    .iter()
                    .enumerate()
                    .map(|(j, (name, _))| {
                        format!("{name}={}", if decisions[i * resources.len() + j].allowed { "x" } else { "-" })
                    })
                    .collect();
                if cells.iter().any(|c| c.ends_with('x')) {
                    lines.push(format!("{}@{} {} {}", role.as_str(), scope_name, permission.as_str(), cells.join(" ")));
                }
            }
        }
    }
    let actual = lines.join("\n") + "\n";
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/permission_matrix.txt");
    if std::env::var_os("GOVMEDIA_BLESS").is_some() {
        std::fs::write(path, &actual).expect("write the matrix");
    }
    let expected = std::fs::read_to_string(path).unwrap_or_default();
    if actual != expected {
        let changed: Vec<_> = actual
            .lines()
            .filter(|l| !expected.lines().any(|e| e == *l))
            .map(|l| format!("+ {l}"))
            .chain(expected.lines().filter(|e| !actual.lines().any(|l| l == *e)).map(|l| format!("- {l}")))
            .collect();
        panic!(
            "the permission matrix changed:\n{}\nIf intended, run GOVMEDIA_BLESS=1 cargo test -p govmedia-identity --test permission_matrix",
            changed.join("\n")
        );
    }
}
