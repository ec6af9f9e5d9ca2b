//! The staff story over real gRPC, on PostgreSQL and on SQLite: the bootstrap
//! administrator is forced to change the one-time password, weak passwords are refused
//! naming the rule, departments and users are created and scoped roles granted, a
//! source trying a password is throttled (the owner elsewhere is not) and unlocked, and a replayed refresh token kills its
//! session family. Every step is audited.

mod common;

use chrono::Duration;
use common::{Identity, authed, rid};
use govmedia_proto::common::v1 as cpb;
use govmedia_proto::identity::v1 as pb;
use govmedia_testkit::{TestDatabase, storage_tests};
use tonic::Code;
use tonic_types::StatusExt;

use common::ADMIN_PASSWORD as STRONG;

async fn login(id: &Identity, username: &str, password: &str) -> Result<pb::LoginResponse, tonic::Status> {
    id.auth()
        .login(pb::LoginRequest { username: username.into(), password: password.into() })
        .await
        .map(tonic::Response::into_inner)
}

fn token(r: &pb::LoginResponse) -> String {
    r.tokens.as_ref().expect("tokens").access_token.clone()
}

fn rule_ids(status: &tonic::Status) -> Vec<String> {
    status
        .get_details_precondition_failure()
        .map(|p| p.violations.into_iter().map(|v| v.r#type).collect())
        .unwrap_or_default()
}

async fn bootstrap_admin_must_change_password_and_common_passwords_are_refused_r2_3_1(db: TestDatabase) {
    let id = Identity::start(db).await;
    let otp = id.bootstrap.one_time_password.clone().expect("a one-time password was generated");
    let first = login(&id, "admin", &otp).await.expect("admin logs in");
    assert!(first.password_change_required);

    // A restricted session can do nothing but change the password.
    let status = id
        .directory()
        .create_department(authed(
            pb::CreateDepartmentRequest {
                request_id: rid(),
                department: Some(pb::Department { name: "Publicity".into(), code: "PUB".into(), ..Default::default() }),
            },
            &token(&first),
        ))
        .await
        .expect_err("restricted");
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(rule_ids(&status), ["R2.3.1"]);

    // Weak passwords are bad arguments: one field violation per broken rule, each naming
    // R2.3.1 (AIP-193). Short, simple and built from the username:
    let refused = async |new_password: &str| {
        let status = id
            .auth()
            .change_password(authed(
                pb::ChangePasswordRequest { current_password: otp.clone(), new_password: new_password.into() },
                &token(&first),
            ))
            .await
            .expect_err(new_password);
        assert_eq!(status.code(), Code::InvalidArgument, "{new_password}: {status:?}");
        let violations = status.get_details_bad_request().expect("field violations").field_violations;
        assert!(violations.iter().all(|v| v.field == "new_password" && v.description.ends_with("(R2.3.1)")));
        violations.into_iter().map(|v| v.description).collect::<Vec<_>>()
    };
    let descriptions = refused("admin123").await;
    assert!(descriptions.iter().any(|d| d.contains("12 characters")), "{descriptions:?}");
    assert!(descriptions.iter().any(|d| d.contains("special")), "{descriptions:?}");
    assert!(descriptions.iter().any(|d| d.contains("built from")), "{descriptions:?}");
    // Common passwords, English and Chinese, although they meet the composition rules.
    for common in ["Password123!", "Woaini1314!!"] {
        let descriptions = refused(common).await;
        assert!(descriptions.iter().any(|d| d.contains("common or easily guessed")), "{common}: {descriptions:?}");
    }
    // The bureau's name in pinyin (GOVMEDIA_BUREAU_NAME is 海港市公安局 here).
    let descriptions = refused("HaigangshiGonganju#26").await;
    assert!(descriptions.iter().any(|d| d.contains("built from")), "{descriptions:?}");

    // The one-time password itself is in the history and cannot be reused.
    let status = id
        .auth()
        .change_password(authed(
            pb::ChangePasswordRequest { current_password: otp.clone(), new_password: otp.clone() },
            &token(&first),
        ))
        .await
        .expect_err("reuse");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("R2.3.1"), "{}", status.message());

    let status = login(&id, "admin", &otp).await;
    assert!(status.is_ok(), "the refusals changed nothing");

    let admin = id.admin_token().await;
    let me = id
        .auth()
        .get_current_principal(authed(pb::GetCurrentPrincipalRequest {}, &admin))
        .await
        .expect("whoami")
        .into_inner();
    assert!(!me.password_change_required);
    assert!(me.role_bindings.iter().any(|b| b.role == "administrator"));

    // Expiry: 90 days later the session is restricted again.
    id.clock.advance(Duration::days(91));
    let later = login(&id, "admin", STRONG).await.expect("logs in");
    assert!(later.password_change_required, "an expired password forces a change (R2.3.1)");

    let actions = id.audited_actions().await;
    for expected in ["administrator.bootstrapped", "user.login.succeeded", "user.password.changed"] {
        assert!(actions.iter().any(|a| a == expected), "{expected} not audited: {actions:?}");
    }
}

async fn departments_users_scoped_roles_and_the_three_officers_r2_2_1(db: TestDatabase) {
    let id = Identity::start(db).await;
    let admin = id.admin_token().await;
    let mut directory = id.directory();

    // Invalid input: every malformed field at once.
    let status = directory
        .create_user(authed(
            pb::CreateUserRequest {
                request_id: "not-a-uuid".into(),
                user: Some(pb::User {
                    username: "Li Wei".into(),
                    display_name: " ".into(),
                    email: "nope".into(),
                    ..Default::default()
                }),
            },
            &admin,
        ))
        .await
        .expect_err("invalid");
    assert_eq!(status.code(), Code::InvalidArgument);
    let fields: Vec<_> = status
        .get_details_bad_request()
        .expect("field violations")
        .field_violations
        .into_iter()
        .map(|f| f.field)
        .collect();
    assert_eq!(fields, ["request_id", "user.username", "user.display_name", "user.email"]);

    // Unauthenticated.
    let status = directory.list_users(pb::ListUsersRequest::default()).await.expect_err("no token");
    assert_eq!(status.code(), Code::Unauthenticated);

    let request_id = rid();
    let create = |request_id: String| pb::CreateDepartmentRequest {
        request_id,
        department: Some(pb::Department { name: "Publicity".into(), code: "PUB".into(), ..Default::default() }),
    };
    let publicity = directory
        .create_department(authed(create(request_id.clone()), &admin))
        .await
        .expect("created")
        .into_inner()
        .department
        .expect("department");
    let again = directory
        .create_department(authed(create(request_id), &admin))
        .await
        .expect("replayed")
        .into_inner()
        .department
        .expect("department");
    assert_eq!(publicity.id, again.id, "a repeated request_id returns the first answer");
    let status = directory.create_department(authed(create(rid()), &admin)).await.expect_err("duplicate name");
    assert_eq!(status.code(), Code::AlreadyExists);
    let finance = directory
        .create_department(authed(
            pb::CreateDepartmentRequest {
                request_id: rid(),
                department: Some(pb::Department { name: "Finance".into(), code: "FIN".into(), ..Default::default() }),
            },
            &admin,
        ))
        .await
        .expect("created")
        .into_inner()
        .department
        .expect("department");

    let new_user = |username: &str, department: &str| pb::CreateUserRequest {
        request_id: rid(),
        user: Some(pb::User {
            username: username.into(),
            display_name: username.into(),
            department_id: department.into(),
            ..Default::default()
        }),
    };
    let liwei =
        directory.create_user(authed(new_user("liwei", &publicity.id), &admin)).await.expect("user").into_inner();
    assert!(!liwei.one_time_password.is_empty());
    let liwei_id = liwei.user.expect("user").id;

    // The editor role in one department.
    let mut access = id.access();
    let grant = |principal: &str, role: &str, kind: cpb::ScopeKind, scope: &str| pb::CreateRoleBindingRequest {
        request_id: rid(),
        role_binding: Some(pb::RoleBinding {
            principal_id: principal.into(),
            role: role.into(),
            scope: Some(cpb::Scope { kind: kind as i32, id: scope.into() }),
            reason: "joins the publicity team".into(),
            ..Default::default()
        }),
    };
    access
        .create_role_binding(authed(grant(&liwei_id, "editor", cpb::ScopeKind::Department, &publicity.id), &admin))
        .await
        .expect("granted");

    // Nobody grants a role to themselves.
    let me = id
        .auth()
        .get_current_principal(authed(pb::GetCurrentPrincipalRequest {}, &admin))
        .await
        .expect("whoami")
        .into_inner();
    let admin_id = me.principal.expect("principal").id;
    let status = access
        .create_role_binding(authed(grant(&admin_id, "editor", cpb::ScopeKind::Global, ""), &admin))
        .await
        .expect_err("self grant");
    assert_eq!(rule_ids(&status), ["R2.2.1"]);
    // An auditor role is global only.
    let status = access
        .create_role_binding(authed(grant(&liwei_id, "auditor", cpb::ScopeKind::Department, &publicity.id), &admin))
        .await
        .expect_err("scope");
    assert_eq!(status.code(), Code::InvalidArgument);
    // So is the principal leader (主要领导): the third approval is the bureau's top.
    let status = access
        .create_role_binding(authed(
            grant(&liwei_id, "principal_leader", cpb::ScopeKind::Department, &publicity.id),
            &admin,
        ))
        .await
        .expect_err("scope");
    assert_eq!(status.code(), Code::InvalidArgument);
    // Administrator, security officer and auditor are three people (三员分立): the auditor
    // may not also be the security officer, nor an administrator.
    let auditor_id = directory
        .create_user(authed(
            pb::CreateUserRequest {
                request_id: rid(),
                user: Some(pb::User {
                    username: "zhangmin".into(),
                    display_name: "Zhang Min".into(),
                    ..Default::default()
                }),
            },
            &admin,
        ))
        .await
        .expect("user")
        .into_inner()
        .user
        .expect("user")
        .id;
    access
        .create_role_binding(authed(grant(&auditor_id, "auditor", cpb::ScopeKind::Global, ""), &admin))
        .await
        .expect("an auditor");
    for officer in ["security_officer", "administrator"] {
        let status = access
            .create_role_binding(authed(grant(&auditor_id, officer, cpb::ScopeKind::Global, ""), &admin))
            .await
            .expect_err("two officers in one person");
        assert_eq!(rule_ids(&status), ["R2.2.1"], "{officer}");
        assert!(status.message().contains("三员分立"), "{}", status.message());
    }

    // The permission authority answers with the granting binding or the reason.
    let check = |department: &str| pb::CheckPermissionRequest {
        check: Some(pb::PermissionCheck {
            principal_id: liwei_id.clone(),
            permission: "draft.write".into(),
            resource: Some(pb::Resource { department_id: department.into(), platform_account_id: String::new() }),
            session_id: String::new(),
        }),
    };
    let yes = access
        .check_permission(authed(check(&publicity.id), &admin))
        .await
        .expect("check")
        .into_inner()
        .decision
        .expect("decision");
    // The user must still change the one-time password, so even their own binding waits.
    assert!(!yes.allowed);
    assert_eq!(yes.denial_reason, pb::DenialReason::PasswordChangeRequired as i32);

    let first = login(&id, "liwei", &liwei.one_time_password).await.expect("liwei logs in");
    let changed = id
        .auth()
        .change_password(authed(
            pb::ChangePasswordRequest {
                current_password: liwei.one_time_password.clone(),
                new_password: "Spring#River2026".into(),
            },
            &token(&first),
        ))
        .await
        .expect("changed")
        .into_inner();
    let liwei_token = changed.tokens.expect("tokens").access_token;

    let yes = access
        .check_permission(authed(check(&publicity.id), &admin))
        .await
        .expect("check")
        .into_inner()
        .decision
        .expect("decision");
    assert!(yes.allowed, "{}", yes.explanation);
    assert_eq!(yes.granted_by.expect("binding").role, "editor");
    let no = access
        .check_permission(authed(check(&finance.id), &admin))
        .await
        .expect("check")
        .into_inner()
        .decision
        .expect("decision");
    assert!(!no.allowed);
    assert_eq!(no.denial_reason, pb::DenialReason::NoBinding as i32);
    assert!(no.explanation.contains("editor"), "{}", no.explanation);

    // A user may ask about themselves, but not about others without permission.check.
    access.check_permission(authed(check(&publicity.id), &liwei_token)).await.expect("self check");
    let other = pb::CheckPermissionRequest {
        check: Some(pb::PermissionCheck {
            principal_id: admin_id.clone(),
            permission: "user.manage".into(),
            resource: None,
            session_id: String::new(),
        }),
    };
    let status = access.check_permission(authed(other, &liwei_token)).await.expect_err("not a service");
    assert_eq!(status.code(), Code::PermissionDenied);

    // An editor manages no departments.
    let status = directory
        .create_department(authed(
            pb::CreateDepartmentRequest {
                request_id: rid(),
                department: Some(pb::Department { name: "Other".into(), code: "OTH".into(), ..Default::default() }),
            },
            &liwei_token,
        ))
        .await
        .expect_err("denied");
    assert_eq!(status.code(), Code::PermissionDenied);

    let actions = id.audited_actions().await;
    for expected in ["department.created", "user.created", "role_binding.created"] {
        assert!(actions.iter().any(|a| a == expected), "{expected} not audited: {actions:?}");
    }
    assert_eq!(actions.iter().filter(|a| *a == "department.created").count(), 2, "the replay was not audited twice");
}

async fn login_is_throttled_per_source_and_answers_tell_nothing_r2_3_1(db: TestDatabase) {
    let id = Identity::start(db).await;
    let admin = id.admin_token().await;
    id.clock.advance(Duration::minutes(1));

    // An attacker at 127.0.0.2 tries the administrator's password ten times. Every answer
    // is the same, byte for byte: unknown user, wrong password and throttled source alike.
    let attacker = id.auth_from([127, 0, 0, 2]);
    let try_as = |username: &str, password: &str| {
        let mut attacker = attacker.clone();
        let request = pb::LoginRequest { username: username.into(), password: password.into() };
        async move { attacker.login(request).await.expect_err("refused") }
    };
    // Everything but the HTTP date header.
    let answer = |s: &tonic::Status| {
        let mut headers = s.metadata().clone().into_headers();
        headers.remove("date");
        (s.code(), s.message().to_owned(), s.details().to_vec(), headers)
    };
    let unknown = answer(&try_as("nobody", "Wrong#Password1").await);
    assert_eq!(unknown.0, Code::Unauthenticated);
    for attempt in 1..=10 {
        let wrong = answer(&try_as("admin", "Wrong#Password1").await);
        assert_eq!(wrong, unknown, "attempt {attempt} answers like an unknown user");
    }
    // Throttled now: even the right password gets the same answer from there.
    let throttled = answer(&try_as("admin", STRONG).await);
    assert_eq!(throttled, unknown, "a throttled attempt answers like a wrong password");

    // The administrator at their usual place is not locked out by it, and is told.
    let owner = login(&id, "admin", STRONG).await.expect("the owner signs in from elsewhere");
    let history = owner.login_history.expect("login history");
    assert_eq!(history.failed_attempts, 11);
    assert_eq!(history.last_failed_attempt_client_address, "127.0.0.2");
    assert!(history.throttled_until.is_some(), "the owner learns that a source was throttled");
    let admin_id = owner.user_id.clone();
    let user = id
        .directory()
        .get_user(authed(pb::GetUserRequest { user_id: admin_id.clone() }, &admin))
        .await
        .expect("user")
        .into_inner()
        .user
        .expect("user");
    assert!(user.locked_until.is_some(), "the administrator's record shows the throttle");

    let events = id
        .auth()
        .list_security_events(authed(
            pb::ListSecurityEventsRequest { kind: pb::SecurityEventKind::LoginLocked as i32, ..Default::default() },
            &admin,
        ))
        .await
        .expect("events")
        .into_inner()
        .events;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].user_id, admin_id);
    assert_eq!(events[0].client_address, "127.0.0.2");

    id.directory()
        .unlock_user(authed(pb::UnlockUserRequest { request_id: rid(), user_id: admin_id.clone() }, &admin))
        .await
        .expect("unlocked");
    let mut from_there = id.auth_from([127, 0, 0, 2]);
    from_there
        .login(pb::LoginRequest { username: "admin".into(), password: STRONG.into() })
        .await
        .expect("the throttled address signs in after the unlock");

    // A failure burst across users from one address raises an event too.
    for i in 0..8 {
        let _ = login(&id, &format!("ghost{i}"), "Wrong#Password1").await;
    }
    let bursts = id
        .auth()
        .list_security_events(authed(
            pb::ListSecurityEventsRequest {
                kind: pb::SecurityEventKind::LoginFailureBurst as i32,
                ..Default::default()
            },
            &admin,
        ))
        .await
        .expect("events")
        .into_inner()
        .events;
    assert!(!bursts.is_empty(), "a burst of failures raises a security event");

    // A password typed in the username field never reaches the immutable log.
    let _ = login(&id, "Typed#InTheWrongField9", "Wrong#Password1").await;
    let records = id.audited().await;
    let kept = serde_json::to_string(&records).expect("json");
    assert!(!kept.contains("Typed#InTheWrongField9"), "an unknown username is kept as a digest only");
    let mut tx = id.db.begin().await.expect("begin");
    let throttled: Vec<String> =
        govmedia_kit::sql!(&mut tx, scalar_all, "SELECT username FROM login_throttles").expect("throttles");
    assert!(throttled.iter().all(|u| !u.contains("Typed#")), "nor in the throttle table: {throttled:?}");
    assert!(
        records.iter().any(|r| r["action"] == "user.login.failed" && r.to_string().contains("unknown:")),
        "the failure is still recorded"
    );

    let actions = id.audited_actions().await;
    for expected in ["user.login.failed", "user.login.locked", "user.unlocked", "security_event.raised"] {
        assert!(actions.iter().any(|a| a == expected), "{expected} not audited: {actions:?}");
    }
}

async fn a_session_ends_at_its_cap_however_often_it_is_refreshed_r2_3_3(db: TestDatabase) {
    use govmedia_domain::clock::Clock;
    let id = Identity::start(db).await;
    id.admin_token().await;
    let started = id.clock.now();
    let session = login(&id, "admin", STRONG).await.expect("login");
    let mut refresh = session.tokens.expect("tokens").refresh_token;
    // The default cap is 7 days; a refresh every 11 hours keeps each 12-hour token alive.
    let cap = (started + Duration::days(7)).timestamp();
    let mut refreshes = 0;
    let refused = loop {
        id.clock.advance(Duration::hours(11));
        match id.auth().refresh_session(pb::RefreshSessionRequest { refresh_token: refresh.clone() }).await {
            Ok(r) => {
                let tokens = r.into_inner().tokens.expect("tokens");
                let expires = tokens.refresh_token_expire_time.expect("expiry").seconds;
                assert!(expires <= cap, "refresh {refreshes} outlives the session's cap");
                refresh = tokens.refresh_token;
                refreshes += 1;
            }
            Err(status) => break status,
        }
        assert!(refreshes < 50, "the session never ended");
    };
    assert_eq!(refused.code(), Code::Unauthenticated);
    assert_eq!(refreshes, 15, "15 refreshes reach 165 hours; the 16th, at 176, is past the 168-hour cap");
}

async fn a_replayed_refresh_token_revokes_the_session_family_r2_3_3(db: TestDatabase) {
    let id = Identity::start(db).await;
    id.admin_token().await;
    let session = login(&id, "admin", STRONG).await.expect("login");
    let first_refresh = session.tokens.expect("tokens").refresh_token;
    let rotated = id
        .auth()
        .refresh_session(pb::RefreshSessionRequest { refresh_token: first_refresh.clone() })
        .await
        .expect("refreshes")
        .into_inner();
    let second_refresh = rotated.tokens.expect("tokens").refresh_token;
    assert_ne!(first_refresh, second_refresh);

    let replay = id
        .auth()
        .refresh_session(pb::RefreshSessionRequest { refresh_token: first_refresh })
        .await
        .expect_err("replay");
    assert_eq!(replay.code(), Code::Unauthenticated);
    let after = id
        .auth()
        .refresh_session(pb::RefreshSessionRequest { refresh_token: second_refresh })
        .await
        .expect_err("family revoked");
    assert_eq!(after.code(), Code::Unauthenticated, "the whole family died with the replay");

    let admin = token(&login(&id, "admin", STRONG).await.expect("login"));
    let events = id
        .auth()
        .list_security_events(authed(
            pb::ListSecurityEventsRequest {
                kind: pb::SecurityEventKind::RefreshTokenReused as i32,
                ..Default::default()
            },
            &admin,
        ))
        .await
        .expect("events")
        .into_inner()
        .events;
    assert_eq!(events.len(), 1);
}

async fn logins_outside_working_hours_raise_events_r2_3_3(db: TestDatabase) {
    let id = Identity::start(db).await;
    id.admin_token().await;
    // Saturday 23:00 in Shanghai.
    id.clock.advance(Duration::hours(37));
    let admin = token(&login(&id, "admin", STRONG).await.expect("login"));
    let events = id
        .auth()
        .list_security_events(authed(
            pb::ListSecurityEventsRequest {
                kind: pb::SecurityEventKind::LoginOutsideWorkingHours as i32,
                ..Default::default()
            },
            &admin,
        ))
        .await
        .expect("events")
        .into_inner()
        .events;
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(events[0].detail.contains("Sat"), "{}", events[0].detail);

    let acknowledged = id
        .auth()
        .acknowledge_security_event(authed(
            pb::AcknowledgeSecurityEventRequest {
                request_id: rid(),
                security_event_id: events[0].id.clone(),
                note: "the press officer on weekend duty".into(),
            },
            &admin,
        ))
        .await
        .expect("acknowledged")
        .into_inner()
        .event
        .expect("event");
    assert!(!acknowledged.acknowledged_by.is_empty());
}

async fn service_principals_exchange_credentials_for_tokens_r2_2_2(db: TestDatabase) {
    let id = Identity::start(db).await;
    let admin = id.admin_token().await;
    let created = id
        .directory()
        .create_service_principal(authed(
            pb::CreateServicePrincipalRequest {
                request_id: rid(),
                service_principal: Some(pb::ServicePrincipal {
                    client_id: "oa-system".into(),
                    display_name: "Bureau OA system".into(),
                    ..Default::default()
                }),
            },
            &admin,
        ))
        .await
        .expect("created")
        .into_inner();
    let exchanged = id
        .auth()
        .exchange_client_credentials(pb::ExchangeClientCredentialsRequest {
            client_id: "oa-system".into(),
            client_secret: created.client_secret.clone(),
        })
        .await
        .expect("token")
        .into_inner();
    let service_token = exchanged.tokens.expect("tokens").access_token;
    let me = id
        .auth()
        .get_current_principal(authed(pb::GetCurrentPrincipalRequest {}, &service_token))
        .await
        .expect("whoami")
        .into_inner();
    assert_eq!(me.principal.expect("principal").kind, cpb::PrincipalKind::Service as i32);

    let wrong = id
        .auth()
        .exchange_client_credentials(pb::ExchangeClientCredentialsRequest {
            client_id: "oa-system".into(),
            client_secret: "gms_guess".into(),
        })
        .await
        .expect_err("wrong secret");
    assert_eq!(wrong.code(), Code::Unauthenticated);

    let sp_id = created.service_principal.expect("principal").id;
    id.directory()
        .rotate_service_principal_secret(authed(
            pb::RotateServicePrincipalSecretRequest { request_id: rid(), service_principal_id: sp_id },
            &admin,
        ))
        .await
        .expect("rotated");
    let old = id
        .auth()
        .exchange_client_credentials(pb::ExchangeClientCredentialsRequest {
            client_id: "oa-system".into(),
            client_secret: created.client_secret,
        })
        .await
        .expect_err("old secret");
    assert_eq!(old.code(), Code::Unauthenticated);

    let keys = id.auth().list_signing_keys(pb::ListSigningKeysRequest {}).await.expect("keys").into_inner().keys;
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].public_key.len(), 32);
}

/// Over loopback every call comes from 127.0.0.1, so the new-address rule is proven on
/// the store the login handler uses.
async fn a_login_address_is_new_only_once_r2_3_3(db: TestDatabase) {
    let id = Identity::start(db).await;
    let user = govmedia_domain::ids::UserId::from_uuid(
        id.auth()
            .login(pb::LoginRequest {
                username: "admin".into(),
                password: id.bootstrap.one_time_password.clone().expect("otp"),
            })
            .await
            .expect("login")
            .into_inner()
            .user_id
            .parse()
            .expect("uuid"),
    );
    let mut tx = id.db.begin().await.expect("tx");
    let now = id.core.now();
    let (new, had) =
        govmedia_identity::store::security::remember_address(&mut tx, user, "10.1.2.3", now).await.expect("remember");
    assert!(new && had, "10.1.2.3 is new for a user who logged in before from 127.0.0.1");
    let (new, _) =
        govmedia_identity::store::security::remember_address(&mut tx, user, "10.1.2.3", now).await.expect("remember");
    assert!(!new, "the second time it is known");
}

async fn wrong_current_passwords_at_a_change_count_like_failed_logins_r2_3_1(db: TestDatabase) {
    let id = Identity::start(db).await;
    let admin = id.admin_token().await;
    // Someone holding the admin's access token, not the password, guesses it.
    let change = |current: &str| {
        let mut auth = id.auth();
        let (current, admin) = (current.to_owned(), admin.clone());
        async move {
            auth.change_password(authed(
                pb::ChangePasswordRequest { current_password: current, new_password: "Guessed#Harbour2027".into() },
                &admin,
            ))
            .await
        }
    };
    for n in 0..5 {
        let status = change(&format!("Guess#Number{n}2026")).await.expect_err("wrong");
        assert_eq!(status.code(), Code::InvalidArgument, "guess {n}");
    }
    let status = change(STRONG).await.expect_err("throttled: even the right one waits");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    let actions = id.audited_actions().await;
    assert_eq!(actions.iter().filter(|a| *a == "user.login.failed").count(), 5, "{actions:?}");
    assert!(actions.iter().any(|a| a == "user.login.locked"), "{actions:?}");
}

async fn a_restart_does_not_enable_a_disabled_installation_service_r2_2_2(db: TestDatabase) {
    let id = Identity::start(db).await;
    let admin = id.admin_token().await;
    let secret = "a-provisioned-secret-of-32-characters";
    assert!(id.core.provision_service_principal("govmedia-content", secret).await.expect("provisioned"));
    let exchange = || {
        let mut auth = id.auth();
        async move {
            auth.exchange_client_credentials(pb::ExchangeClientCredentialsRequest {
                client_id: "govmedia-content".into(),
                client_secret: secret.into(),
            })
            .await
        }
    };
    exchange().await.expect("the service signs in");
    let principal = id
        .directory()
        .list_service_principals(authed(pb::ListServicePrincipalsRequest::default(), &admin))
        .await
        .expect("listed")
        .into_inner()
        .service_principals
        .into_iter()
        .find(|p| p.client_id == "govmedia-content")
        .expect("provisioned principal")
        .id;
    id.directory()
        .disable_service_principal(authed(
            pb::DisableServicePrincipalRequest {
                request_id: rid(),
                service_principal_id: principal.clone(),
                reason: "its secret file was copied to a laptop".into(),
            },
            &admin,
        ))
        .await
        .expect("disabled");
    // The installation starts again with the same secret file: it stays disabled.
    assert!(!id.core.provision_service_principal("govmedia-content", secret).await.expect("start"));
    assert_eq!(exchange().await.expect_err("still disabled").code(), Code::Unauthenticated);
    let enable = || {
        let mut directory = id.directory();
        let (principal, admin) = (principal.clone(), admin.clone());
        async move {
            directory
                .enable_service_principal(authed(
                    pb::EnableServicePrincipalRequest {
                        request_id: rid(),
                        service_principal_id: principal,
                        reason: "secret rotated on every host".into(),
                    },
                    &admin,
                ))
                .await
        }
    };
    enable().await.expect("enabled by the administrator");
    exchange().await.expect("the service signs in again");
    assert_eq!(enable().await.expect_err("not disabled").code(), Code::FailedPrecondition);
    let actions = id.audited_actions().await;
    assert!(actions.iter().any(|a| a == "service_principal.enabled"), "{actions:?}");
}

storage_tests!(
    a_restart_does_not_enable_a_disabled_installation_service_r2_2_2,
    wrong_current_passwords_at_a_change_count_like_failed_logins_r2_3_1,
    a_login_address_is_new_only_once_r2_3_3,
    bootstrap_admin_must_change_password_and_common_passwords_are_refused_r2_3_1,
    departments_users_scoped_roles_and_the_three_officers_r2_2_1,
    login_is_throttled_per_source_and_answers_tell_nothing_r2_3_1,
    a_replayed_refresh_token_revokes_the_session_family_r2_3_3,
    a_session_ends_at_its_cap_however_often_it_is_refreshed_r2_3_3,
    logins_outside_working_hours_raise_events_r2_3_3,
    service_principals_exchange_credentials_for_tokens_r2_2_2,
);

#[test]
fn identity_migrations_have_the_same_numbering_on_both_backends() {
    govmedia_kit::db::check_migration_parity(&govmedia_identity::MIGRATIONS).expect("parity");
}

#[tokio::test]
async fn identity_tables_are_the_same_on_both_backends() {
    govmedia_testkit::assert_schema_parity(&govmedia_identity::MIGRATIONS).await;
}
