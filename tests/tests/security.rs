//! Findings of the security review (issue 18), each tried as an outside system would:
//! through the gateway only, against `govmedia up` started as a real process.
//!
//! - An access token is worth no more than its session: once the session ends (signing
//!   out, a password change, an administrator revoking it, the reuse of a spent refresh
//!   token) identity refuses the token at once, and the other services as soon as their
//!   cached permission answer for that session runs out (5 s by default), not when the
//!   token expires 15 minutes later.

use std::time::{Duration, Instant};

use govmedia_proto::common::v1 as cpb;
use govmedia_proto::content::v1 as pb;
use govmedia_proto::content::v1::draft_service_client::DraftServiceClient;
use govmedia_proto::identity::v1 as ipb;
use govmedia_proto::identity::v1::authentication_service_client::AuthenticationServiceClient;
use govmedia_proto::identity::v1::directory_service_client::DirectoryServiceClient;
use govmedia_testkit::with_token;
use govmedia_tests::Up;
use govmedia_world::staff_member;
use tonic::transport::Channel;

const FIRST: &str = "Harbour#Lights2026";
const ADMIN: &str = "Quiet#Forest2027!";
const STAFF: &str = "River#Stones2027?";
const STAFF_AGAIN: &str = "Amber#Valley2028?";

fn rid() -> String {
    uuid::Uuid::now_v7().to_string()
}

async fn gateway(up: &Up) -> Channel {
    tonic::transport::Endpoint::from_shared(up.gateway.clone()).expect("url").connect().await.expect("the gateway")
}

/// The administrator signed in with their own password: the access token.
async fn administrator(channel: &Channel) -> String {
    let mut auth = AuthenticationServiceClient::new(channel.clone());
    let first = auth
        .login(ipb::LoginRequest { username: "admin".into(), password: FIRST.into() })
        .await
        .expect("the first sign-in")
        .into_inner();
    auth.change_password(with_token(
        ipb::ChangePasswordRequest { current_password: FIRST.into(), new_password: ADMIN.into() },
        &first.tokens.expect("tokens").access_token,
    ))
    .await
    .expect("the administrator's own password")
    .into_inner()
    .tokens
    .expect("tokens")
    .access_token
}

async fn sign_in(channel: &Channel, username: &str, password: &str) -> ipb::SessionTokens {
    AuthenticationServiceClient::new(channel.clone())
        .login(ipb::LoginRequest { username: username.into(), password: password.into() })
        .await
        .expect("signs in")
        .into_inner()
        .tokens
        .expect("tokens")
}

/// What a token can do on identity (saying whose it is) and on another service (listing
/// the department's drafts): `Ok` or the gRPC code of the refusal, each.
async fn reach(channel: &Channel, token: &str, department: &str) -> (tonic::Code, tonic::Code) {
    let identity = AuthenticationServiceClient::new(channel.clone())
        .get_current_principal(with_token(ipb::GetCurrentPrincipalRequest::default(), token))
        .await;
    let content = DraftServiceClient::new(channel.clone())
        .list_drafts(with_token(
            pb::ListDraftsRequest { department_id: department.into(), ..Default::default() },
            token,
        ))
        .await;
    let code = |r: Result<_, tonic::Status>| r.map_or_else(|s| s.code(), |_| tonic::Code::Ok);
    (code(identity.map(|_| ())), code(content.map(|_| ())))
}

const BOTH: (tonic::Code, tonic::Code) = (tonic::Code::Ok, tonic::Code::Ok);

/// Identity refuses `token` at once; the content service within its permission cache's
/// lifetime (5 s by default; 10 s allowed here for a loaded machine).
async fn assert_refused(channel: &Channel, token: &str, department: &str, what: &str) {
    assert_eq!(reach(channel, token, department).await.0, tonic::Code::Unauthenticated, "{what}: identity");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let content = reach(channel, token, department).await.1;
        if content == tonic::Code::Unauthenticated {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: the content service still answers {content:?} after 10 s");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_access_token_stops_working_when_its_session_ends_r2_3_3() {
    let up = tokio::task::block_in_place(|| Up::start(None, FIRST));
    let channel = gateway(&up).await;
    let admin = administrator(&channel).await;
    let department = DirectoryServiceClient::new(channel.clone())
        .create_department(with_token(
            ipb::CreateDepartmentRequest {
                request_id: rid(),
                department: Some(ipb::Department {
                    name: "宣传处".into(), code: "PUB".into(), ..Default::default()
                }),
            },
            &admin,
        ))
        .await
        .expect("department")
        .into_inner()
        .department
        .expect("department")
        .id;
    let roles = [("department_reviewer", cpb::ScopeKind::Department, department.as_str())];
    let (editor_id, _) = staff_member(channel.clone(), &admin, "editor", &department, &roles, STAFF).await;
    let mut auth = AuthenticationServiceClient::new(channel.clone());

    // Signing out.
    let signed_out = sign_in(&channel, "editor", STAFF).await.access_token;
    assert_eq!(reach(&channel, &signed_out, &department).await, BOTH);
    auth.logout(with_token(ipb::LogoutRequest::default(), &signed_out)).await.expect("signs out");
    assert_refused(&channel, &signed_out, &department, "a signed-out token").await;

    // A password change ends every other session of the person.
    let other_desk = sign_in(&channel, "editor", STAFF).await.access_token;
    let here = sign_in(&channel, "editor", STAFF).await.access_token;
    let changed = auth
        .change_password(with_token(
            ipb::ChangePasswordRequest { current_password: STAFF.into(), new_password: STAFF_AGAIN.into() },
            &here,
        ))
        .await
        .expect("changes the password")
        .into_inner()
        .tokens
        .expect("tokens")
        .access_token;
    assert_refused(&channel, &other_desk, &department, "a token from before the password change").await;
    assert_refused(&channel, &here, &department, "the token the change was made with").await;
    assert_eq!(reach(&channel, &changed, &department).await, BOTH);

    // An administrator revoking the person's sessions.
    DirectoryServiceClient::new(channel.clone())
        .revoke_user_sessions(with_token(
            ipb::RevokeUserSessionsRequest { request_id: rid(), user_id: editor_id, reason: "laptop lost".into() },
            &admin,
        ))
        .await
        .expect("revoked");
    assert_refused(&channel, &changed, &department, "a revoked session").await;

    // A spent refresh token presented again ends the whole session family.
    let login = sign_in(&channel, "editor", STAFF_AGAIN).await;
    let rotated = auth
        .refresh_session(ipb::RefreshSessionRequest { refresh_token: login.refresh_token.clone() })
        .await
        .expect("refreshes")
        .into_inner()
        .tokens
        .expect("tokens");
    assert_eq!(reach(&channel, &rotated.access_token, &department).await, BOTH);
    auth.refresh_session(ipb::RefreshSessionRequest { refresh_token: login.refresh_token })
        .await
        .expect_err("a spent refresh token");
    assert_refused(&channel, &rotated.access_token, &department, "a token of a family ended by reuse").await;

    // The administrator's own session is untouched by all of it.
    assert_eq!(reach(&channel, &admin, &department).await.0, tonic::Code::Ok);
    up.stop();
}
