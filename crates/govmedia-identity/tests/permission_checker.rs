//! The kit's permission-check client against the real identity service: a service
//! principal authenticates with client credentials, asks CheckPermission for its callers,
//! and reuses answers for the cache's lifetime (R2.2.1).

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Identity, authed, rid};
use govmedia_domain::ids::{DepartmentId, PrincipalId};
use govmedia_domain::permission::Permission;
use govmedia_domain::scope::Resource;
use govmedia_kit::access::{PermissionChecker, Subject};
use govmedia_kit::client::{CallCredentials, ClientCredentials};
use govmedia_kit::config::Secret;
use govmedia_proto::common::v1 as cpb;
use govmedia_proto::identity::v1 as pb;
use govmedia_testkit::{TestDatabase, storage_tests};

async fn answers_are_cached_for_their_lifetime_r2_2_1(db: TestDatabase) {
    let id = Identity::start(db).await;
    let admin = id.admin_token().await;
    let grant = |principal: &str, role: &str, kind: cpb::ScopeKind, scope: &str| pb::CreateRoleBindingRequest {
        request_id: rid(),
        role_binding: Some(pb::RoleBinding {
            principal_id: principal.into(),
            role: role.into(),
            scope: Some(cpb::Scope { kind: kind as i32, id: scope.into() }),
            reason: "test".into(),
            ..Default::default()
        }),
    };
    // The content service's principal, provisioned as the installation does (no role
    // grant gives govmedia_service).
    let content_secret = "content-service-secret-of-at-least-32-chars";
    id.core.provision_service_principal("govmedia-content", content_secret).await.expect("provisioned");

    // An integration whose role will be revoked.
    let feeder = id
        .directory()
        .create_service_principal(authed(
            pb::CreateServicePrincipalRequest {
                request_id: rid(),
                service_principal: Some(pb::ServicePrincipal {
                    client_id: "weibo-feed".into(),
                    display_name: "feed".into(),
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
    let binding = id
        .access()
        .create_role_binding(authed(grant(&feeder, "platform_integration", cpb::ScopeKind::Global, ""), &admin))
        .await
        .expect("granted")
        .into_inner()
        .role_binding
        .expect("binding")
        .id;

    let credentials = CallCredentials::ClientCredentials(Arc::new(ClientCredentials::new(
        id.server.channel(),
        "govmedia-content".into(),
        Secret::new(content_secret.to_owned()),
    )));
    let cached = PermissionChecker::new(id.server.channel(), credentials.clone(), Duration::from_secs(3600));
    let uncached = PermissionChecker::new(id.server.channel(), credentials, Duration::ZERO);
    let feeder = Subject::other(feeder.parse::<PrincipalId>().expect("id"));

    cached.require(feeder, Permission::CommentIngest, &Resource::GLOBAL).await.expect("allowed");
    uncached.require(feeder, Permission::CommentIngest, &Resource::GLOBAL).await.expect("allowed");
    let denied = cached
        .require(feeder, Permission::DraftApprovePrincipal, &Resource::department(DepartmentId::new()))
        .await
        .expect_err("denied");
    assert!(
        matches!(denied, govmedia_domain::Error::PermissionDenied { ref permission, .. } if permission == "draft.approve.principal"),
        "{denied:?}"
    );

    id.access()
        .delete_role_binding(authed(
            pb::DeleteRoleBindingRequest {
                request_id: rid(),
                role_binding_id: binding,
                reason: "integration retired".into(),
            },
            &admin,
        ))
        .await
        .expect("revoked");
    cached
        .require(feeder, Permission::CommentIngest, &Resource::GLOBAL)
        .await
        .expect("the cached answer holds for its lifetime");
    uncached
        .require(feeder, Permission::CommentIngest, &Resource::GLOBAL)
        .await
        .expect_err("without a cache the revocation is seen at once");
}

storage_tests!(answers_are_cached_for_their_lifetime_r2_2_1);
