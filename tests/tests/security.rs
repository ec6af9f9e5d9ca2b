//! Findings of the security review (issue 18), each tried as an outside system would:
//! through the gateway only, against `govmedia up` started as a real process.
//!
//! - An access token is worth no more than its session: once the session ends (signing
//!   out, a password change, an administrator revoking it, the reuse of a spent refresh
//!   token) identity refuses the token at once, and the other services as soon as their
//!   cached permission answer for that session runs out (5 s by default), not when the
//!   token expires 15 minutes later.
//! - A password guesser slows only themselves: through the gateway, the services see
//!   each caller's own address (a forged address header is replaced), so ten wrong
//!   passwords for `admin` from one address throttle that address, not the
//!   administrator signing in from another, and every refusal reads alike.
//! - Audit events cannot be forged: no administrator can make an appender (the
//!   `govmedia_service` role is given only by provisioning, the installation's service
//!   secrets are not rotated into a reply), a service appends only its own producer's
//!   events and only as they happen, and every event names the client that appended it.

use std::time::{Duration, Instant};

use govmedia_proto::audit::v1 as apb;
use govmedia_proto::audit::v1::audit_log_service_client::AuditLogServiceClient;
use govmedia_proto::common::v1 as cpb;
use govmedia_proto::content::v1 as pb;
use govmedia_proto::content::v1::draft_service_client::DraftServiceClient;
use govmedia_proto::identity::v1 as ipb;
use govmedia_proto::identity::v1::access_service_client::AccessServiceClient;
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

/// A channel to the gateway from another loopback address, as a second machine.
async fn gateway_from(up: &Up, source: [u8; 4]) -> Channel {
    tonic::transport::Endpoint::from_shared(up.gateway.clone())
        .expect("url")
        .local_address(Some(std::net::IpAddr::from(source)))
        .connect()
        .await
        .expect("the gateway")
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

/// A department made by the administrator; its id.
async fn department(channel: &Channel, admin: &str, name: &str, code: &str) -> String {
    DirectoryServiceClient::new(channel.clone())
        .create_department(with_token(
            ipb::CreateDepartmentRequest {
                request_id: rid(),
                department: Some(ipb::Department { name: name.into(), code: code.into(), ..Default::default() }),
            },
            admin,
        ))
        .await
        .expect("department")
        .into_inner()
        .department
        .expect("department")
        .id
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
    let department = department(&channel, &admin, "宣传处", "PUB").await;
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

/// An event as a service would append it, happening `ago` before now.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_guesser_behind_the_gateway_throttles_only_their_own_address_r2_3_1() {
    let up = tokio::task::block_in_place(|| Up::start(None, FIRST));
    let channel = gateway(&up).await;
    administrator(&channel).await;

    // The guesser at 127.0.0.2 claims to be at the administrator's address; the gateway
    // replaces the claim with what it sees.
    let mut guesser = AuthenticationServiceClient::new(gateway_from(&up, [127, 0, 0, 2]).await);
    let mut answers = Vec::new();
    for _ in 0..10 {
        let mut request =
            tonic::Request::new(ipb::LoginRequest { username: "admin".into(), password: "Wrong#Guess2026".into() });
        request.metadata_mut().insert("x-govmedia-client-address", "127.0.0.1".parse().expect("header"));
        let status = guesser.login(request).await.expect_err("wrong");
        answers.push((status.code(), status.message().to_owned(), status.details().to_vec()));
    }
    let throttled = guesser
        .login(ipb::LoginRequest { username: "admin".into(), password: ADMIN.into() })
        .await
        .expect_err("throttled even with the right password");
    answers.push((throttled.code(), throttled.message().to_owned(), throttled.details().to_vec()));
    let unknown = guesser
        .login(ipb::LoginRequest { username: "nobody".into(), password: "Wrong#Guess2026".into() })
        .await
        .expect_err("unknown");
    let unknown = (unknown.code(), unknown.message().to_owned(), unknown.details().to_vec());
    assert!(answers.iter().all(|a| *a == unknown), "wrong, throttled and unknown read alike: {answers:?}");

    // The administrator, from 127.0.0.1, signs in and is told.
    let signed_in = AuthenticationServiceClient::new(channel.clone())
        .login(ipb::LoginRequest { username: "admin".into(), password: ADMIN.into() })
        .await
        .expect("not locked out by the guesser")
        .into_inner();
    let history = signed_in.login_history.expect("history");
    assert_eq!(
        history.last_failed_attempt_client_address, "127.0.0.2",
        "the guesser's own address, not the forged one"
    );
    assert!(history.failed_attempts >= 11, "{history:?}");
    assert!(history.throttled_until.is_some());
}

fn event(producer: &str, ago: chrono::Duration) -> apb::AuditEvent {
    let at = chrono::Utc::now() - ago;
    apb::AuditEvent {
        id: rid(),
        occur_time: Some(prost_types::Timestamp { seconds: at.timestamp(), nanos: 0 }),
        action: "draft.approved".into(),
        actor: Some(cpb::PrincipalRef {
            kind: cpb::PrincipalKind::User as i32,
            id: uuid::Uuid::now_v7().to_string(),
            display_name: "李局长".into(),
        }),
        producer: producer.into(),
        resource: Some(apb::AuditResource { r#type: "draft".into(), id: rid(), ..Default::default() }),
        outcome: apb::AuditOutcome::Success as i32,
        rule_id: "R3.2.2".into(),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_events_cannot_be_forged() {
    let up = tokio::task::block_in_place(|| Up::start(None, FIRST));
    let channel = gateway(&up).await;
    let admin = administrator(&channel).await;
    let mut directory = DirectoryServiceClient::new(channel.clone());

    // An administrator cannot make an appender: a new principal is never given
    // govmedia_service, and a built-in service's secret is never handed out.
    let forger = directory
        .create_service_principal(with_token(
            ipb::CreateServicePrincipalRequest {
                request_id: rid(),
                service_principal: Some(ipb::ServicePrincipal {
                    client_id: "integration-x".into(),
                    display_name: "integration".into(),
                    ..Default::default()
                }),
            },
            &admin,
        ))
        .await
        .expect("a service principal")
        .into_inner()
        .service_principal
        .expect("principal");
    let refused = AccessServiceClient::new(channel.clone())
        .create_role_binding(with_token(
            ipb::CreateRoleBindingRequest {
                request_id: rid(),
                role_binding: Some(ipb::RoleBinding {
                    principal_id: forger.id,
                    role: "govmedia_service".into(),
                    scope: Some(cpb::Scope { kind: cpb::ScopeKind::Global as i32, id: String::new() }),
                    reason: "let it write the audit log".into(),
                    ..Default::default()
                }),
            },
            &admin,
        ))
        .await
        .expect_err("govmedia_service is not granted");
    assert_eq!(refused.code(), tonic::Code::FailedPrecondition, "{refused:?}");
    assert!(refused.message().contains("R2.2.2"), "{refused:?}");
    let builtin = directory
        .list_service_principals(with_token(ipb::ListServicePrincipalsRequest::default(), &admin))
        .await
        .expect("service principals")
        .into_inner()
        .service_principals
        .into_iter()
        .find(|p| p.client_id == "govmedia-content")
        .expect("the content service's principal");
    let refused = directory
        .rotate_service_principal_secret(with_token(
            ipb::RotateServicePrincipalSecretRequest { request_id: rid(), service_principal_id: builtin.id },
            &admin,
        ))
        .await
        .expect_err("a built-in service's secret is not rotated into a reply");
    assert_eq!(refused.code(), tonic::Code::FailedPrecondition, "{refused:?}");

    // The content service itself (its secret from the installation's secrets folder).
    let secret = std::fs::read_to_string(up.data.path().join("secrets").join("govmedia-content")).expect("secret");
    let content = AuthenticationServiceClient::new(channel.clone())
        .exchange_client_credentials(ipb::ExchangeClientCredentialsRequest {
            client_id: "govmedia-content".into(),
            client_secret: secret.trim().into(),
        })
        .await
        .expect("the content service signs in")
        .into_inner()
        .tokens
        .expect("tokens")
        .access_token;
    let mut log = AuditLogServiceClient::new(channel.clone());
    let append = |e: apb::AuditEvent| with_token(apb::AppendEventsRequest { events: vec![e] }, &content);
    let refused =
        log.append_events(append(event("identity", chrono::Duration::zero()))).await.expect_err("another producer");
    assert_eq!(refused.code(), tonic::Code::PermissionDenied, "{refused:?}");
    let refused =
        log.append_events(append(event("content", chrono::Duration::days(30)))).await.expect_err("back-dated");
    assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{refused:?}");
    let refused = log.append_events(append(event("content", -chrono::Duration::hours(2)))).await.expect_err("ahead");
    assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{refused:?}");
    let genuine = event("content", chrono::Duration::seconds(1));
    let id = genuine.id.clone();
    log.append_events(append(genuine)).await.expect("the service's own event, as it happens");

    // The log names who appended it, whatever the event says.
    let department = department(&channel, &admin, "办公室", "OFF").await;
    let roles = [("auditor", cpb::ScopeKind::Global, "")];
    let (_, auditor) = staff_member(channel.clone(), &admin, "auditor", &department, &roles, STAFF).await;
    let stored = log
        .get_event(with_token(apb::GetEventRequest { event_id: id }, &auditor))
        .await
        .expect("the event")
        .into_inner()
        .event
        .expect("event");
    assert_eq!(stored.appended_by, "govmedia-content");
    let verified =
        log.verify_log(with_token(apb::VerifyLogRequest::default(), &auditor)).await.expect("verified").into_inner();
    assert!(verified.intact, "{verified:?}");
    up.stop();
}
