//! Security checks over real gRPC with a real identity service, on PostgreSQL and SQLite
//! (R7.2.2): a versioned checklist (a check keeps the version it started with), a
//! schedule of checks of a department, an ad hoc check of an account, results with
//! evidence, a failed item opening a hidden danger with owner, severity and deadline,
//! and its fix closed only when someone other than the owner verifies it.

mod common;

use common::World;
use govmedia_proto::audit::v1 as pb;
use govmedia_proto::audit::v1::security_check_service_client::SecurityCheckServiceClient;
use govmedia_proto::common::v1 as cpb;
use govmedia_testkit::{TestDatabase, storage_tests, with_token};
use tonic::Code;
use tonic::transport::Channel;
use tonic_types::StatusExt;

fn rid() -> String {
    uuid::Uuid::now_v7().to_string()
}

fn client(w: &World) -> SecurityCheckServiceClient<Channel> {
    SecurityCheckServiceClient::new(w.audit.channel())
}

fn item(code: &str, text: &str) -> pb::SecurityChecklistItem {
    pb::SecurityChecklistItem { code: code.into(), text: text.into(), guidance: String::new() }
}

fn pass(code: &str) -> pb::SecurityCheckResult {
    pb::SecurityCheckResult {
        item_code: code.into(),
        result: pb::CheckItemResult::Pass as i32,
        evidence: format!("{code}: seen in place"),
        hidden_danger: None,
    }
}

async fn start(w: &World, token: &str, req: pb::StartSecurityCheckRequest) -> Result<pb::SecurityCheck, tonic::Status> {
    client(w)
        .start_security_check(with_token(pb::StartSecurityCheckRequest { request_id: rid(), ..req }, token))
        .await
        .map(|r| r.into_inner().check.expect("check"))
}

async fn record(
    w: &World,
    check: &pb::SecurityCheck,
    results: Vec<pb::SecurityCheckResult>,
) -> Result<pb::SecurityCheck, tonic::Status> {
    client(w)
        .record_security_check_results(with_token(
            pb::RecordSecurityCheckResultsRequest {
                request_id: rid(),
                check_id: check.id.clone(),
                results,
                etag: check.etag.clone(),
            },
            &w.officer_token,
        ))
        .await
        .map(|r| r.into_inner().check.expect("check"))
}

async fn checks_open_hidden_dangers_that_only_someone_else_closes_r7_2_2(db: TestDatabase) {
    let w = World::start(db).await;
    let department = w.department("Information Centre", "INFO").await;
    let other = w.department("Tax Policy", "TAX").await;
    let dept = cpb::ScopeKind::Department;
    let (owner, owner_token) = w.staff("info-editor", &department, &[("editor", dept, &department)]).await;
    let (_, colleague_token) = w.staff("info-colleague", &department, &[("editor", dept, &department)]).await;
    let (_, outsider_token) = w.staff("tax-editor", &other, &[("editor", dept, &other)]).await;
    let (stranger, _) = w.staff("tax-reviewer", &other, &[]).await;
    let account = w.platform_account(cpb::Platform::Weibo, "info-weibo", &department, &owner).await;

    // Checklists: the security officer's; a bad one is refused with every violation.
    let create = |token: &str, items: Vec<pb::SecurityChecklistItem>| {
        let mut c = client(&w);
        let token = token.to_owned();
        async move {
            c.create_security_checklist(with_token(
                pb::CreateSecurityChecklistRequest {
                    request_id: rid(),
                    checklist: Some(pb::SecurityChecklist {
                        name: "Account security (账号安全)".into(),
                        description: "Quarterly check of an account's login security".into(),
                        items,
                        ..Default::default()
                    }),
                },
                &token,
            ))
            .await
            .map(|r| r.into_inner().checklist.expect("checklist"))
        }
    };
    let v1_items = vec![
        item("ACC-2FA", "The platform's two-factor login is on"),
        item("ACC-PWD", "The password was rotated within 90 days"),
        item("ACC-DEVICES", "Only the office's devices are logged in"),
    ];
    assert_eq!(
        create(&w.auditor_token, v1_items.clone()).await.expect_err("officer only").code(),
        Code::PermissionDenied
    );
    let bad = create(&w.officer_token, vec![item("ACC 2FA", "x"), item("B", "")]).await.expect_err("invalid");
    assert_eq!(bad.code(), Code::InvalidArgument);
    let fields: Vec<String> =
        bad.get_details_bad_request().expect("details").field_violations.into_iter().map(|f| f.field).collect();
    assert!(
        fields.contains(&"checklist.items[0].code".to_owned())
            && fields.contains(&"checklist.items[1].text".to_owned()),
        "{fields:?}"
    );
    let list = create(&w.officer_token, v1_items).await.expect("created");
    assert_eq!((list.version, list.current_version, list.items.len()), (1, 1, 3));

    // An ad hoc check of the account: its department comes from identity.
    let ad_hoc = start(
        &w,
        &w.officer_token,
        pb::StartSecurityCheckRequest {
            checklist_id: list.id.clone(),
            target: Some(pb::SecurityCheckTarget { platform_account_id: account.clone(), ..Default::default() }),
            ..Default::default()
        },
    )
    .await
    .expect("started");
    assert_eq!(ad_hoc.target.as_ref().map(|t| t.department_id.clone()), Some(department.clone()));

    // A revision is a new version; the check already started keeps version 1.
    let mut v2_items = list.items.clone();
    v2_items.push(item("ACC-RECOVERY", "The recovery phone is the office's"));
    let v2 = client(&w)
        .revise_security_checklist(with_token(
            pb::ReviseSecurityChecklistRequest {
                request_id: rid(),
                checklist_id: list.id.clone(),
                items: v2_items,
                change_note: "Recovery phones after the 2026 notice".into(),
                etag: list.etag.clone(),
            },
            &w.officer_token,
        ))
        .await
        .expect("revised")
        .into_inner()
        .checklist
        .expect("checklist");
    assert_eq!((v2.version, v2.items.len()), (2, 4));
    let first = client(&w)
        .get_security_checklist(with_token(
            pb::GetSecurityChecklistRequest { checklist_id: list.id.clone(), version: 1 },
            &w.auditor_token,
        ))
        .await
        .expect("v1")
        .into_inner()
        .checklist
        .expect("checklist");
    assert_eq!((first.version, first.current_version, first.items.len()), (1, 2, 3));
    let ad_hoc =
        record(&w, &ad_hoc, vec![pass("ACC-2FA"), pass("ACC-PWD"), pass("ACC-DEVICES")]).await.expect("recorded");
    assert_eq!((ad_hoc.checklist_version, ad_hoc.items.len()), (1, 3));

    // A schedule of the department every 30 days, due today.
    let schedule = client(&w)
        .create_security_check_schedule(with_token(
            pb::CreateSecurityCheckScheduleRequest {
                request_id: rid(),
                schedule: Some(pb::SecurityCheckSchedule {
                    checklist_id: list.id.clone(),
                    target: Some(pb::SecurityCheckTarget { department_id: department.clone(), ..Default::default() }),
                    interval_days: 30,
                    ..Default::default()
                }),
            },
            &w.officer_token,
        ))
        .await
        .expect("scheduled")
        .into_inner()
        .schedule
        .expect("schedule");
    assert!(schedule.due);
    let due = |w: &World| {
        let mut c = client(w);
        let token = w.auditor_token.clone();
        async move {
            c.list_security_check_schedules(with_token(
                pb::ListSecurityCheckSchedulesRequest { due_only: true, ..Default::default() },
                &token,
            ))
            .await
            .expect("listed")
            .into_inner()
            .schedules
            .into_iter()
            .map(|s| s.id)
            .collect::<Vec<_>>()
        }
    };
    assert_eq!(due(&w).await, vec![schedule.id.clone()]);

    let check = start(
        &w,
        &w.officer_token,
        pb::StartSecurityCheckRequest { schedule_id: schedule.id.clone(), ..Default::default() },
    )
    .await
    .expect("started");
    assert_eq!((check.checklist_version, check.items.len()), (2, 4));
    let fail = |owner: &str| pb::SecurityCheckResult {
        item_code: "ACC-DEVICES".into(),
        result: pb::CheckItemResult::Fail as i32,
        evidence: "The device list shows an unknown phone since 3 November".into(),
        hidden_danger: Some(pb::HiddenDangerSpec {
            description: "An unknown phone stays logged in to the account".into(),
            owner_user_id: owner.into(),
            severity: pb::HiddenDangerSeverity::Major as i32,
            working_days: 5,
        }),
    };
    // A failed item needs its hidden danger; its owner must be of the department checked.
    let no_danger = record(&w, &check, vec![pb::SecurityCheckResult { hidden_danger: None, ..fail(&owner) }]).await;
    assert_eq!(no_danger.expect_err("needs a danger").code(), Code::InvalidArgument);
    let wrong_owner = record(&w, &check, vec![fail(&stranger)]).await.expect_err("other department");
    assert_eq!(wrong_owner.code(), Code::FailedPrecondition);
    assert!(wrong_owner.message().contains("R7.2.2"), "{}", wrong_owner.message());
    let check = record(&w, &check, vec![pass("ACC-2FA"), pass("ACC-PWD"), fail(&owner)]).await.expect("recorded");
    let complete = |check: &pb::SecurityCheck| {
        let mut c = client(&w);
        let (id, etag, token) = (check.id.clone(), check.etag.clone(), w.officer_token.clone());
        async move {
            c.complete_security_check(with_token(
                pb::CompleteSecurityCheckRequest {
                    request_id: rid(),
                    check_id: id,
                    conclusion: "One major hidden danger: an unknown device".into(),
                    etag,
                },
                &token,
            ))
            .await
            .map(|r| r.into_inner())
        }
    };
    let missing = complete(&check).await.expect_err("ACC-RECOVERY has no result");
    assert_eq!(missing.code(), Code::FailedPrecondition);
    assert!(missing.message().contains("ACC-RECOVERY"), "{}", missing.message());
    let check = record(&w, &check, vec![pass("ACC-RECOVERY")]).await.expect("recorded");
    let done = complete(&check).await.expect("completed");
    let completed = done.check.expect("check");
    assert_eq!((completed.state, completed.failed_count), (pb::SecurityCheckState::Completed as i32, 1));
    let [danger] = done.hidden_dangers.try_into().expect("one hidden danger");
    assert_eq!((danger.owner_user_id.as_str(), danger.state), (owner.as_str(), pb::HiddenDangerState::Open as i32));
    assert_eq!(danger.severity, pb::HiddenDangerSeverity::Major as i32);
    assert!(!danger.due_date.is_empty() && !danger.overdue);
    assert_eq!(completed.items[2].hidden_danger_id, danger.id);
    assert!(due(&w).await.is_empty(), "the schedule moved on 30 days");
    let again = record(&w, &completed, vec![pass("ACC-2FA")]).await.expect_err("final");
    assert_eq!(again.code(), Code::FailedPrecondition);

    // The department sees its hidden dangers; another department does not.
    let list_for = |token: &str, department: &str| {
        let mut c = client(&w);
        let (token, department) = (token.to_owned(), department.to_owned());
        async move {
            c.list_hidden_dangers(with_token(
                pb::ListHiddenDangersRequest { department_id: department, ..Default::default() },
                &token,
            ))
            .await
        }
    };
    let mine = list_for(&owner_token, &department).await.expect("own department").into_inner().hidden_dangers;
    assert_eq!(mine.iter().map(|d| d.id.clone()).collect::<Vec<_>>(), vec![danger.id.clone()]);
    assert_eq!(list_for(&outsider_token, &department).await.expect_err("not theirs").code(), Code::PermissionDenied);
    let peek = client(&w)
        .get_hidden_danger(with_token(
            pb::GetHiddenDangerRequest { hidden_danger_id: danger.id.clone() },
            &outsider_token,
        ))
        .await
        .expect_err("not theirs");
    assert_eq!(peek.code(), Code::PermissionDenied);

    // Only the owner submits; the owner never verifies their own fix, even holding the
    // security officer's role; a return reopens it.
    w.grant_scoped(&owner, "security_officer", cpb::ScopeKind::Global, "").await;
    let submit = |d: &pb::HiddenDanger, token: &str| {
        let mut c = client(&w);
        let (id, etag, token) = (d.id.clone(), d.etag.clone(), token.to_owned());
        async move {
            c.submit_hidden_danger_fix(with_token(
                pb::SubmitHiddenDangerFixRequest {
                    request_id: rid(),
                    hidden_danger_id: id,
                    evidence: "Signed the phone out; changed the password; device list attached".into(),
                    etag,
                },
                &token,
            ))
            .await
            .map(|r| r.into_inner().hidden_danger.expect("danger"))
        }
    };
    let verify = |d: &pb::HiddenDanger, token: &str, accepted: bool, note: &str| {
        let mut c = client(&w);
        let (id, etag, token, note) = (d.id.clone(), d.etag.clone(), token.to_owned(), note.to_owned());
        async move {
            c.verify_hidden_danger_fix(with_token(
                pb::VerifyHiddenDangerFixRequest { request_id: rid(), hidden_danger_id: id, accepted, note, etag },
                &token,
            ))
            .await
            .map(|r| r.into_inner().hidden_danger.expect("danger"))
        }
    };
    assert_eq!(submit(&danger, &w.officer_token).await.expect_err("no respond").code(), Code::PermissionDenied);
    let colleague = submit(&danger, &colleague_token).await.expect_err("not the owner");
    assert_eq!(colleague.code(), Code::FailedPrecondition);
    let submitted = submit(&danger, &owner_token).await.expect("submitted");
    assert_eq!(submitted.state, pb::HiddenDangerState::FixSubmitted as i32);
    let own = verify(&submitted, &owner_token, true, "done").await.expect_err("own fix");
    assert_eq!(own.code(), Code::FailedPrecondition);
    assert!(own.message().contains("R7.2.2"), "{}", own.message());
    let silent = verify(&submitted, &w.officer_token, false, "").await.expect_err("a return needs its reason");
    assert_eq!(silent.code(), Code::InvalidArgument);
    let returned =
        verify(&submitted, &w.officer_token, false, "The tablet is still logged in").await.expect("returned");
    assert_eq!(returned.state, pb::HiddenDangerState::Open as i32);
    let submitted = submit(&returned, &owner_token).await.expect("submitted again");
    let closed =
        verify(&submitted, &w.officer_token, true, "Device list checked: office devices only").await.expect("closed");
    assert_eq!((closed.state, closed.overdue), (pb::HiddenDangerState::Closed as i32, false));

    let trail = w
        .records(
            &[
                "security_checklist.created",
                "security_checklist.revised",
                "security_check.scheduled",
                "security_check.started",
                "security_check.completed",
                "hidden_danger.opened",
                "hidden_danger.fix_submitted",
                "hidden_danger.reopened",
                "hidden_danger.closed",
            ],
            11,
        )
        .await;
    assert!(trail.iter().all(|e| e.rule_id == "R7.2.2"));
    assert!(
        trail.iter().any(|e| e.action == "hidden_danger.opened"
            && e.resource.as_ref().is_some_and(|r| r.department_id == department))
    );
}

storage_tests!(checks_open_hidden_dangers_that_only_someone_else_closes_r7_2_2);
