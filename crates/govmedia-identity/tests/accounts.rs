//! The account story over real gRPC, on PostgreSQL and on SQLite: register an account
//! with its responsible person, store a credential (strength-checked), reveal it with a
//! reason (audited), report an anomaly (frozen at once), and resolve the incident only
//! after the credential was rotated (R2.1, R2.3).

mod common;

use common::{Identity, authed, rid};
use govmedia_proto::common::v1 as cpb;
use govmedia_proto::identity::v1 as pb;
use govmedia_proto::identity::v1::credential_vault_service_client::CredentialVaultServiceClient;
use govmedia_proto::identity::v1::platform_account_service_client::PlatformAccountServiceClient;
use govmedia_testkit::{TestDatabase, storage_tests};
use tonic::Code;
use tonic::transport::Channel;
use tonic_types::StatusExt;

struct World {
    id: Identity,
    admin: String,
    department_id: String,
    officer_id: String,
    officer: String,
}

fn accounts(id: &Identity) -> PlatformAccountServiceClient<Channel> {
    PlatformAccountServiceClient::new(id.server.channel())
}

/// The account of [`new_account`], registered by the administrator.
async fn registered(w: &World) -> pb::PlatformAccount {
    accounts(&w.id)
        .create_platform_account(authed(new_account(w), &w.admin))
        .await
        .expect("registered")
        .into_inner()
        .platform_account
        .expect("account")
}

/// Makes the security officer a publisher of `account` (who may reveal its credential).
async fn grant_publisher(w: &World, account: &str) {
    w.id.access()
        .create_role_binding(authed(
            pb::CreateRoleBindingRequest {
                request_id: rid(),
                role_binding: Some(pb::RoleBinding {
                    principal_id: w.officer_id.clone(),
                    role: "publisher".into(),
                    scope: Some(cpb::Scope { kind: cpb::ScopeKind::PlatformAccount as i32, id: account.to_owned() }),
                    reason: "operates the news account".into(),
                    ..Default::default()
                }),
            },
            &w.admin,
        ))
        .await
        .expect("publisher on the account");
}

fn vault(id: &Identity) -> CredentialVaultServiceClient<Channel> {
    CredentialVaultServiceClient::new(id.server.channel())
}

async fn login(id: &Identity, username: &str, password: &str) -> pb::LoginResponse {
    id.auth()
        .login(pb::LoginRequest { username: username.into(), password: password.into() })
        .await
        .expect("login")
        .into_inner()
}

async fn world(db: TestDatabase) -> World {
    let id = Identity::start(db).await;
    let admin = id.admin_token().await;
    let department_id = id
        .directory()
        .create_department(authed(
            pb::CreateDepartmentRequest {
                request_id: rid(),
                department: Some(pb::Department { name: "Publicity".into(), code: "PUB".into(), ..Default::default() }),
            },
            &admin,
        ))
        .await
        .expect("department")
        .into_inner()
        .department
        .expect("department")
        .id;
    let created = id
        .directory()
        .create_user(authed(
            pb::CreateUserRequest {
                request_id: rid(),
                user: Some(pb::User {
                    username: "wangfang".into(),
                    display_name: "Wang Fang".into(),
                    department_id: department_id.clone(),
                    ..Default::default()
                }),
            },
            &admin,
        ))
        .await
        .expect("user")
        .into_inner();
    let officer_id = created.user.expect("user").id;
    id.access()
        .create_role_binding(authed(
            pb::CreateRoleBindingRequest {
                request_id: rid(),
                role_binding: Some(pb::RoleBinding {
                    principal_id: officer_id.clone(),
                    role: "security_officer".into(),
                    scope: Some(cpb::Scope { kind: cpb::ScopeKind::Global as i32, id: String::new() }),
                    reason: "bureau security officer".into(),
                    ..Default::default()
                }),
            },
            &admin,
        ))
        .await
        .expect("granted");
    let officer = id.activate("wangfang", &created.one_time_password, "Quiet#Forest2026").await;
    World { id, admin, department_id, officer_id, officer }
}

fn new_account(w: &World) -> pb::CreatePlatformAccountRequest {
    pb::CreatePlatformAccountRequest {
        request_id: rid(),
        platform_account: Some(pb::PlatformAccount {
            platform: cpb::Platform::WechatOfficialAccount as i32,
            handle: "gh_bureau_news".into(),
            profile: Some(pb::PlatformAccountProfile {
                display_name: "市局发布".into(),
                avatar_url: "https://static.example.gov.cn/avatar.png".into(),
                bio: "市局官方微信公众号".into(),
            }),
            department_id: w.department_id.clone(),
            responsible_user_id: w.officer_id.clone(),
            ..Default::default()
        }),
    }
}

async fn the_account_story_r2_3_3(db: TestDatabase) {
    let w = world(db).await;
    let id = &w.id;

    // Invalid input is refused field by field.
    let mut bad = new_account(&w);
    if let Some(a) = bad.platform_account.as_mut() {
        a.platform = 0;
        a.handle = String::new();
        a.responsible_user_id = "x".into();
    }
    let status = accounts(id).create_platform_account(authed(bad, &w.admin)).await.expect_err("invalid");
    assert_eq!(status.code(), Code::InvalidArgument);
    let fields: Vec<_> =
        status.get_details_bad_request().expect("violations").field_violations.into_iter().map(|f| f.field).collect();
    assert!(
        fields.contains(&"platform_account.platform".to_owned())
            && fields.contains(&"platform_account.handle".to_owned()),
        "{fields:?}"
    );

    // Only an account manager registers accounts.
    let status = accounts(id).create_platform_account(authed(new_account(&w), &w.officer)).await.expect_err("denied");
    assert_eq!(status.code(), Code::PermissionDenied);

    let account = registered(&w).await;
    assert_eq!(account.state, pb::PlatformAccountState::Active as i32);
    let status =
        accounts(id).create_platform_account(authed(new_account(&w), &w.admin)).await.expect_err("same handle");
    assert_eq!(status.code(), Code::AlreadyExists);

    // A weak platform password is refused by R2.3.1.
    let weak = pb::SetAccountCredentialRequest {
        request_id: rid(),
        platform_account_id: account.id.clone(),
        kind: pb::CredentialKind::Password as i32,
        login_name: "bureau_news".into(),
        secret: "12345678".into(),
        rotation_period_days: 0,
    };
    let status = vault(id).set_account_credential(authed(weak, &w.officer)).await.expect_err("weak");
    assert_eq!(status.code(), Code::InvalidArgument);
    let violation = &status.get_details_bad_request().expect("field violations").field_violations[0];
    assert_eq!(violation.field, "secret");
    assert!(violation.description.ends_with("(R2.3.1)"), "{violation:?}");

    let set = |secret: &str| pb::SetAccountCredentialRequest {
        request_id: rid(),
        platform_account_id: account.id.clone(),
        kind: pb::CredentialKind::Password as i32,
        login_name: "bureau_news".into(),
        secret: secret.into(),
        rotation_period_days: 0,
    };
    let stored = vault(id)
        .set_account_credential(authed(set("Wechat#Console2026"), &w.officer))
        .await
        .expect("stored")
        .into_inner()
        .credential
        .expect("credential");
    assert_eq!(stored.rotation_count, 0);

    // Revealing needs the reveal permission (a publisher's), and a reason.
    let status = vault(id)
        .reveal_account_credential(authed(
            pb::RevealAccountCredentialRequest {
                request_id: rid(),
                platform_account_id: account.id.clone(),
                reason: "curious".into(),
            },
            &w.officer,
        ))
        .await
        .expect_err("security officers store but do not read credentials");
    assert_eq!(status.code(), Code::PermissionDenied);
    grant_publisher(&w, &account.id).await;
    let status = vault(id)
        .reveal_account_credential(authed(
            pb::RevealAccountCredentialRequest {
                request_id: rid(),
                platform_account_id: account.id.clone(),
                reason: " ".into(),
            },
            &w.officer,
        ))
        .await
        .expect_err("no reason");
    assert_eq!(status.code(), Code::InvalidArgument);
    let revealed = vault(id)
        .reveal_account_credential(authed(
            pb::RevealAccountCredentialRequest {
                request_id: rid(),
                platform_account_id: account.id.clone(),
                reason: "publish the evening bulletin by hand".into(),
            },
            &w.officer,
        ))
        .await
        .expect("revealed")
        .into_inner();
    assert_eq!(revealed.secret, "Wechat#Console2026");

    // An anomaly freezes the account at once.
    let reported = accounts(id)
        .report_account_anomaly(authed(
            pb::ReportAccountAnomalyRequest {
                request_id: rid(),
                platform_account_id: account.id.clone(),
                description: "a post nobody here wrote appeared at 03:12".into(),
            },
            &w.officer,
        ))
        .await
        .expect("reported")
        .into_inner();
    assert_eq!(reported.platform_account.expect("account").state, pb::PlatformAccountState::Frozen as i32);
    let incident = reported.incident.expect("incident");

    // While the incident is open the credential is not revealed, and the refusal is kept.
    let status = vault(id)
        .reveal_account_credential(authed(
            pb::RevealAccountCredentialRequest {
                request_id: rid(),
                platform_account_id: account.id.clone(),
                reason: "publish the correction by hand".into(),
            },
            &w.officer,
        ))
        .await
        .expect_err("open incident");
    assert_eq!(status.get_details_precondition_failure().expect("rule").violations[0].r#type, "R2.3.3");

    // It cannot be unfrozen by hand while the incident is open.
    let status = accounts(id)
        .unfreeze_platform_account(authed(
            pb::UnfreezePlatformAccountRequest {
                request_id: rid(),
                platform_account_id: account.id.clone(),
                reason: "looks fine".into(),
                etag: String::new(),
            },
            &w.admin,
        ))
        .await
        .expect_err("open incident");
    assert_eq!(status.get_details_precondition_failure().expect("rule").violations[0].r#type, "R2.3.3");

    // Nor resolved before the credential is rotated.
    let resolve = || pb::ResolveAccountIncidentRequest {
        request_id: rid(),
        incident_id: incident.id.clone(),
        resolution: "password changed, post removed, platform confirmed".into(),
        etag: String::new(),
    };
    let status =
        accounts(id).resolve_account_incident(authed(resolve(), &w.officer)).await.expect_err("no rotation yet");
    assert_eq!(status.get_details_precondition_failure().expect("rule").violations[0].r#type, "R2.3.3");

    id.clock.advance(chrono::Duration::minutes(5));
    accounts(id)
        .record_incident_action(authed(
            pb::RecordIncidentActionRequest {
                request_id: rid(),
                incident_id: incident.id.clone(),
                action: Some(pb::IncidentAction {
                    kind: pb::IncidentActionKind::PlatformSupportContacted as i32,
                    note: "WeChat support ticket 2026112700042".into(),
                    ..Default::default()
                }),
            },
            &w.officer,
        ))
        .await
        .expect("action recorded");
    let rotated = vault(id)
        .set_account_credential(authed(set("Wechat#Rotated2026"), &w.officer))
        .await
        .expect("rotated")
        .into_inner()
        .credential
        .expect("credential");
    assert_eq!(rotated.rotation_count, 1);
    let resolved =
        accounts(id).resolve_account_incident(authed(resolve(), &w.officer)).await.expect("resolved").into_inner();
    assert_eq!(resolved.incident.expect("incident").actions.len(), 1);
    assert_eq!(resolved.platform_account.expect("account").state, pb::PlatformAccountState::Active as i32);

    let actions = id.audited_actions().await;
    for expected in [
        "platform_account.created",
        "credential.stored",
        "credential.revealed",
        "account_incident.reported",
        "credential.reveal_refused",
        "platform_account.frozen",
        "account_incident.action_recorded",
        "account_incident.resolved",
        "platform_account.unfrozen",
    ] {
        assert!(actions.iter().any(|a| a == expected), "{expected} not audited: {actions:?}");
    }
    assert_eq!(actions.iter().filter(|a| *a == "credential.revealed").count(), 1, "only the successful reveal");
}

async fn profiles_keep_their_history_and_rotations_come_due_r2_1_2(db: TestDatabase) {
    let w = world(db).await;
    let id = &w.id;
    let account = registered(&w).await;
    let mut changed = account.clone();
    if let Some(p) = changed.profile.as_mut() {
        p.bio = "市局官方微信公众号 · 政务公开".into();
    }
    let stale = pb::UpdatePlatformAccountRequest {
        request_id: rid(),
        platform_account: Some(pb::PlatformAccount { etag: "v99".into(), ..changed.clone() }),
        update_mask: Some(prost_types::FieldMask { paths: vec!["profile.bio".into()] }),
    };
    let status = accounts(id).update_platform_account(authed(stale, &w.admin)).await.expect_err("stale etag");
    assert_eq!(status.code(), Code::Aborted);
    let update = pb::UpdatePlatformAccountRequest {
        request_id: rid(),
        platform_account: Some(changed),
        update_mask: Some(prost_types::FieldMask { paths: vec!["profile.bio".into()] }),
    };
    accounts(id).update_platform_account(authed(update, &w.admin)).await.expect("updated");
    let history = accounts(id)
        .list_platform_account_revisions(authed(
            pb::ListPlatformAccountRevisionsRequest { platform_account_id: account.id.clone(), ..Default::default() },
            &w.admin,
        ))
        .await
        .expect("history")
        .into_inner()
        .revisions;
    assert_eq!(history.iter().map(|r| r.revision).collect::<Vec<_>>(), [2, 1]);
    assert_eq!(history[1].profile.as_ref().expect("profile").bio, "市局官方微信公众号");

    vault(id)
        .set_account_credential(authed(
            pb::SetAccountCredentialRequest {
                request_id: rid(),
                platform_account_id: account.id.clone(),
                kind: pb::CredentialKind::AppSecret as i32,
                login_name: "wx1234567890".into(),
                secret: "3f9a1c...app-secret".into(),
                rotation_period_days: 30,
            },
            &w.officer,
        ))
        .await
        .expect("stored");
    let due_now = vault(id)
        .list_credential_rotations_due(authed(pb::ListCredentialRotationsDueRequest::default(), &w.officer))
        .await
        .expect("due")
        .into_inner();
    assert!(due_now.credentials.is_empty());
    id.clock.advance(chrono::Duration::days(31));
    let officer = {
        let r = login(id, "wangfang", "Quiet#Forest2026").await;
        r.tokens.expect("tokens").access_token
    };
    let due_later = vault(id)
        .list_credential_rotations_due(authed(pb::ListCredentialRotationsDueRequest::default(), &officer))
        .await
        .expect("due")
        .into_inner();
    assert_eq!(due_later.credentials.len(), 1);

    let status = accounts(id)
        .get_platform_account(pb::GetPlatformAccountRequest { platform_account_id: account.id })
        .await
        .expect_err("no token");
    assert_eq!(status.code(), Code::Unauthenticated);
}

async fn a_responsible_person_is_not_disabled_while_answerable_r2_1_1(db: TestDatabase) {
    let w = world(db).await;
    let id = &w.id;
    let account = registered(&w).await;
    let disable =
        || pb::DisableUserRequest { request_id: rid(), user_id: w.officer_id.clone(), reason: "调离".into() };
    let status = id.directory().disable_user(authed(disable(), &w.admin)).await.expect_err("still responsible");
    assert_eq!(status.code(), Code::FailedPrecondition);
    let rule = &status.get_details_precondition_failure().expect("rule").violations[0];
    assert_eq!(rule.r#type, "R2.1.1");
    assert!(rule.description.contains("gh_bureau_news"), "{}", rule.description);

    // Once the account has another responsible person, the officer may go.
    let admin_id = id
        .auth()
        .get_current_principal(authed(pb::GetCurrentPrincipalRequest {}, &w.admin))
        .await
        .expect("whoami")
        .into_inner()
        .principal
        .expect("principal")
        .id;
    let handed_over = pb::UpdatePlatformAccountRequest {
        request_id: rid(),
        platform_account: Some(pb::PlatformAccount { responsible_user_id: admin_id, ..account }),
        update_mask: Some(prost_types::FieldMask { paths: vec!["responsible_user_id".into()] }),
    };
    accounts(id).update_platform_account(authed(handed_over, &w.admin)).await.expect("handed over");
    id.directory().disable_user(authed(disable(), &w.admin)).await.expect("disabled");
}

async fn refused_attempts_on_credentials_are_audited_and_a_flood_is_capped_r2_2_2(db: TestDatabase) {
    let w = world(db).await;
    let id = &w.id;
    let account = registered(&w).await;
    // The administrator holds no reveal permission: three tries, three records.
    let reveal = || pb::RevealAccountCredentialRequest {
        request_id: rid(),
        platform_account_id: account.id.clone(),
        reason: "想看看".into(),
    };
    for _ in 0..3 {
        let status = vault(id).reveal_account_credential(authed(reveal(), &w.admin)).await.expect_err("refused");
        assert_eq!(status.code(), Code::PermissionDenied);
    }
    let denied = |records: Vec<serde_json::Value>| -> Vec<serde_json::Value> {
        records.into_iter().filter(|r| r["action"] == "permission.denied").collect()
    };
    let records = denied(id.audited().await);
    assert_eq!(records.len(), 3, "{records:?}");
    let r = &records[0];
    assert_eq!(r["outcome"], "denied");
    assert_eq!(r["resource"]["type"], "platform_account");
    assert_eq!(r["resource"]["id"], account.id.as_str());
    assert_eq!(r["attributes"]["permission"], "account.credential.reveal");
    assert!(r["attributes"]["method"].as_str().is_some_and(|m| m.ends_with("/RevealAccountCredential")), "{r}");
    assert_eq!(r["actor"]["kind"], "user");

    // A flood is capped per caller: at most PER_MINUTE records a minute, and the next
    // one says how many were left out.
    for _ in 0..30 {
        vault(id).reveal_account_credential(authed(reveal(), &w.admin)).await.expect_err("refused");
    }
    let records = denied(id.audited().await);
    assert_eq!(records.len(), govmedia_kit::refusals::PER_MINUTE as usize, "capped");
}

/// Runs `sql` (binding `values` as $1, $2 when given) on either store: the test plays
/// someone with write access to the database but not to the sealing keys.
async fn tamper(db: &govmedia_kit::db::Database, sql: &str, values: Option<(Vec<u8>, String)>) {
    match (db, values) {
        (govmedia_kit::db::Database::Postgres(pool), None) => sqlx::query(sql).execute(pool).await.map(|_| ()),
        (govmedia_kit::db::Database::Postgres(pool), Some((a, b))) => {
            sqlx::query(sql).bind(a).bind(b).execute(pool).await.map(|_| ())
        }
        (govmedia_kit::db::Database::Sqlite(pool), None) => sqlx::query(sql).execute(pool).await.map(|_| ()),
        (govmedia_kit::db::Database::Sqlite(pool), Some((a, b))) => {
            sqlx::query(sql).bind(a).bind(b).execute(pool).await.map(|_| ())
        }
    }
    .expect("tampered");
}

/// Issue 18 (low): the vault's associated data bound a sealed secret to the account only,
/// though its comment said the login name too; renaming the login in the database then
/// revealed the secret under another name. Credentials sealed the old way are re-sealed
/// at start (audited), after which a renamed login does not open.
async fn a_sealed_credential_is_bound_to_its_login_name_r2_3_2(db: TestDatabase) {
    use govmedia_identity::domain::sealing::CredentialBinding;
    let w = world(db).await;
    let id = &w.id;
    let account = registered(&w).await;
    let secret = "Wechat#Console2026";
    vault(id)
        .set_account_credential(authed(
            pb::SetAccountCredentialRequest {
                request_id: rid(),
                platform_account_id: account.id.clone(),
                kind: pb::CredentialKind::Password as i32,
                login_name: "bureau_news".into(),
                secret: secret.into(),
                rotation_period_days: 0,
            },
            &w.officer,
        ))
        .await
        .expect("stored");
    grant_publisher(&w, &account.id).await;
    let reveal = || {
        let mut vault = vault(id);
        let request = authed(
            pb::RevealAccountCredentialRequest {
                request_id: rid(),
                platform_account_id: account.id.clone(),
                reason: "posting the evening bulletin".into(),
            },
            &w.officer,
        );
        async move { vault.reveal_account_credential(request).await }
    };
    assert_eq!(reveal().await.expect("revealed").into_inner().secret, secret);

    let rename = "UPDATE account_credentials SET login_name = 'attacker_alias'";
    tamper(&id.db, rename, None).await;
    let status = reveal().await.expect_err("a renamed login does not open");
    assert_eq!(status.code(), Code::Internal);
    assert!(!status.message().contains(secret), "{status:?}");

    // An installation from before the binding: the secret sealed to the account only.
    let legacy = CredentialBinding::AccountOnly.owner(&account.id, "bureau_news");
    let (key_id, sealed) = id.core.sealer().seal(secret.as_bytes(), &legacy).expect("sealed");
    let restore = "UPDATE account_credentials SET login_name = 'bureau_news', sealed_secret = $1, \
                   sealing_key_id = $2, sealing_binding = 1";
    tamper(&id.db, restore, Some((sealed, key_id))).await;
    let resealed = govmedia_identity::reseal_credentials_bound_to_the_account_only(id.core.work(), id.core.sealer())
        .await
        .expect("re-sealed");
    assert_eq!(resealed, 1);
    assert_eq!(
        govmedia_identity::reseal_credentials_bound_to_the_account_only(id.core.work(), id.core.sealer())
            .await
            .expect("nothing left"),
        0
    );
    assert!(id.audited_actions().await.iter().any(|a| a == "credential.resealed"));
    assert_eq!(reveal().await.expect("revealed after re-sealing").into_inner().secret, secret);
    tamper(&id.db, rename, None).await;
    assert_eq!(reveal().await.expect_err("and now bound to the login name").code(), Code::Internal);
}

storage_tests!(
    a_sealed_credential_is_bound_to_its_login_name_r2_3_2,
    refused_attempts_on_credentials_are_audited_and_a_flood_is_capped_r2_2_2,
    the_account_story_r2_3_3,
    profiles_keep_their_history_and_rotations_come_due_r2_1_2,
    a_responsible_person_is_not_disabled_while_answerable_r2_1_1
);
