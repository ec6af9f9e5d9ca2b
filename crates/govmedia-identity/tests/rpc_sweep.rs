//! Every RPC of `govmedia.identity.v1`, found in the descriptor set and called over
//! real gRPC: without a token each non-public method answers UNAUTHENTICATED; with an
//! empty request from a principal holding no role, each answers a clear refusal
//! (INVALID_ARGUMENT, PERMISSION_DENIED, NOT_FOUND, FAILED_PRECONDITION) or succeeds,
//! and none answers UNIMPLEMENTED, INTERNAL or UNKNOWN. Bytes that are not a protobuf
//! message are refused by tonic's decoder before any handler runs.

mod common;

use common::Identity;
use govmedia_domain::ids::PrincipalId;
use govmedia_testkit::raw::{call, is_clear_answer, is_clear_refusal, methods_of};

/// What any signed-in principal may call, each answering about the caller alone or
/// about nothing secret; everything else must refuse a principal holding no role.
const OPEN_TO_EVERY_PRINCIPAL: &[&str] = &[
    // The role catalogue: names, permissions and descriptions, the same for everyone.
    "/govmedia.identity.v1.AccessService/ListRoles",
    // Who the caller is, with their own bindings.
    "/govmedia.identity.v1.AuthenticationService/GetCurrentPrincipal",
];
use govmedia_testkit::{TestAuth, TestDatabase};
use tonic::Code;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_identity_rpc_refuses_clearly_and_never_fails_internally() {
    let id = Identity::start(TestDatabase::sqlite()).await;
    let methods = methods_of("govmedia.identity.v1");
    assert!(methods.len() >= 40, "only {} identity methods found", methods.len());

    // A token the service accepts (its own key) for a principal that holds no role.
    let nobody: PrincipalId = uuid::Uuid::now_v7().to_string().parse().expect("id");
    let (token, _) = id
        .core
        .issue_access_token(nobody, govmedia_kit::auth::PrincipalKind::User, "Nobody", None, None, false)
        .await
        .expect("token");
    let foreign = TestAuth::new().user_token(nobody, "Nobody", None);

    for method in &methods {
        if !govmedia_identity::PUBLIC_METHODS.contains(&method.path.as_str()) {
            assert_eq!(
                call(id.server.channel(), method, Vec::new(), None).await,
                Code::Unauthenticated,
                "{} without a token",
                method.path
            );
            assert_eq!(
                call(id.server.channel(), method, Vec::new(), Some(&foreign)).await,
                Code::Unauthenticated,
                "{} with a foreign token",
                method.path
            );
        }
        let code = call(id.server.channel(), method, Vec::new(), Some(&token)).await;
        let path = method.path.as_str();
        if OPEN_TO_EVERY_PRINCIPAL.contains(&path) || govmedia_identity::PUBLIC_METHODS.contains(&path) {
            assert!(is_clear_answer(code), "{} with an empty request answered {code:?}", method.path);
        } else {
            assert!(is_clear_refusal(code), "{} answered {code:?} to a principal holding no role", method.path);
        }
        let code = call(id.server.channel(), method, vec![0xff, 0xff, 0xff, 0x0f], Some(&token)).await;
        assert!(
            !matches!(code, Code::Unimplemented | Code::Unknown | Code::Ok),
            "{} with garbage answered {code:?}",
            method.path
        );
    }
}
