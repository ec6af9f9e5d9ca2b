//! Rectification orders over real gRPC with a real identity service, on PostgreSQL and
//! SQLite (R8.1.2): issued to a department's active member, fixed and evidenced only by
//! that person, closed only by the issuing office, returned with a reason; overdue
//! orders listed, flagged and counted against the account's readiness score.

mod common;

use common::World;
use govmedia_proto::audit::v1 as pb;
use govmedia_proto::audit::v1::compliance_service_client::ComplianceServiceClient;
use govmedia_proto::audit::v1::rectification_service_client::RectificationServiceClient;
use govmedia_proto::common::v1 as cpb;
use govmedia_testkit::{TestDatabase, storage_tests, with_token};
use tonic::Code;
use tonic::transport::Channel;
use tonic_types::StatusExt;

fn rid() -> String {
    uuid::Uuid::now_v7().to_string()
}

fn client(w: &World) -> RectificationServiceClient<Channel> {
    RectificationServiceClient::new(w.audit.channel())
}

/// A department with an editor (the person responsible), a second editor, and an account.
struct Office {
    department: String,
    person: String,
    person_token: String,
    colleague_token: String,
    account: String,
}

async fn office(w: &World, code: &str) -> Office {
    let department = w.department(&format!("Department {code}"), code).await;
    let scope = [("editor", cpb::ScopeKind::Department, department.as_str())];
    let lower = code.to_lowercase();
    let (person, person_token) = w.staff(&format!("{lower}-editor"), &department, &scope).await;
    let (_, colleague_token) = w.staff(&format!("{lower}-colleague"), &department, &scope).await;
    let account = w.platform_account(cpb::Platform::Weibo, &format!("{lower}-weibo"), &department, &person).await;
    Office { department, person, person_token, colleague_token, account }
}

fn order(o: &Office, working_days: u32) -> pb::Rectification {
    pb::Rectification {
        source: pb::FindingSource::Inspection as i32,
        source_id: "inspection-2026-11".into(),
        department_id: o.department.clone(),
        responsible_user_id: o.person.clone(),
        platform_account_id: o.account.clone(),
        title: "Misspelt title in the 20 November post".into(),
        requirement: "Correct the post through the full review and report the correction".into(),
        rule_id: "R3.2.3".into(),
        working_days,
        ..Default::default()
    }
}

async fn issue(w: &World, request_id: &str, order: pb::Rectification) -> Result<pb::Rectification, tonic::Status> {
    client(w)
        .issue_rectification(with_token(
            pb::IssueRectificationRequest { request_id: request_id.into(), rectification: Some(order) },
            &w.officer_token,
        ))
        .await
        .map(|r| r.into_inner().rectification.expect("rectification"))
}

async fn submit(w: &World, r: &pb::Rectification, token: &str) -> Result<pb::Rectification, tonic::Status> {
    client(w)
        .submit_rectification_evidence(with_token(
            pb::SubmitRectificationEvidenceRequest {
                request_id: rid(),
                rectification_id: r.id.clone(),
                evidence: Some(pb::RectificationEvidence {
                    description: "Correction published after review; screenshot archived".into(),
                    uri: "https://docs.example.gov.cn/rectification/1".into(),
                    sha256: "ab".repeat(32),
                }),
                etag: r.etag.clone(),
            },
            token,
        ))
        .await
        .map(|r| r.into_inner().rectification.expect("rectification"))
}

async fn verify(
    w: &World,
    r: &pb::Rectification,
    accepted: bool,
    note: &str,
    token: &str,
) -> Result<pb::Rectification, tonic::Status> {
    client(w)
        .verify_rectification(with_token(
            pb::VerifyRectificationRequest {
                request_id: rid(),
                rectification_id: r.id.clone(),
                accepted,
                note: note.into(),
                etag: r.etag.clone(),
            },
            token,
        ))
        .await
        .map(|r| r.into_inner().rectification.expect("rectification"))
}

fn rules(status: &tonic::Status) -> Vec<String> {
    status
        .get_details_precondition_failure()
        .map(|p| p.violations.into_iter().map(|v| v.r#type).collect())
        .unwrap_or_default()
}

async fn an_order_is_fixed_by_its_person_and_closed_by_the_office_r8_1_2(db: TestDatabase) {
    let w = World::start(db).await;
    let o = office(&w, "PRESS").await;
    let other = office(&w, "SPORT").await;

    // Issued only to an active member of the department, about one of its accounts.
    let mut stranger = order(&o, 5);
    stranger.responsible_user_id = other.person.clone();
    let refused = issue(&w, &rid(), stranger).await.expect_err("not of the department");
    assert_eq!((refused.code(), rules(&refused)), (Code::FailedPrecondition, vec!["R8.1.2".to_owned()]));
    let mut elsewhere = order(&o, 5);
    elsewhere.platform_account_id = other.account.clone();
    assert_eq!(issue(&w, &rid(), elsewhere).await.expect_err("another's account").code(), Code::FailedPrecondition);
    let mut bad = order(&o, 0);
    bad.rule_id = "3.2".into();
    let invalid = issue(&w, &rid(), bad).await.expect_err("invalid");
    let fields: Vec<String> =
        invalid.get_details_bad_request().expect("violations").field_violations.into_iter().map(|v| v.field).collect();
    assert_eq!(fields, ["rectification.rule_id", "rectification.working_days"]);
    let editor_issues = client(&w)
        .issue_rectification(with_token(
            pb::IssueRectificationRequest { request_id: rid(), rectification: Some(order(&o, 5)) },
            &o.person_token,
        ))
        .await
        .expect_err("an editor does not issue orders");
    assert_eq!(editor_issues.code(), Code::PermissionDenied);

    let key = rid();
    let issued = issue(&w, &key, order(&o, 5)).await.expect("issued");
    assert_eq!(issue(&w, &key, order(&o, 5)).await.expect("replayed").id, issued.id, "a retry is the same order");
    assert_eq!(issued.state, pb::RectificationState::InProgress as i32);
    assert!(!issued.overdue);
    assert_eq!(issued.working_days, 5);
    assert!(!issued.due_date.is_empty());

    // Only the person named submits; the person never verifies their own fix.
    let colleague = submit(&w, &issued, &o.colleague_token).await.expect_err("not the person responsible");
    assert_eq!((colleague.code(), rules(&colleague)), (Code::FailedPrecondition, vec!["R8.1.2".to_owned()]));
    let submitted = submit(&w, &issued, &o.person_token).await.expect("submitted");
    assert_eq!(submitted.state, pb::RectificationState::Submitted as i32);
    assert_eq!(submit(&w, &issued, &o.person_token).await.expect_err("stale etag").code(), Code::Aborted);
    assert_eq!(
        verify(&w, &submitted, true, "", &o.person_token).await.expect_err("no rectification.issue").code(),
        Code::PermissionDenied
    );
    let no_reason = verify(&w, &submitted, false, "", &w.officer_token).await.expect_err("a return needs a reason");
    assert_eq!(no_reason.code(), Code::InvalidArgument);
    let returned = verify(&w, &submitted, false, "The screenshot does not show the corrected title", &w.officer_token)
        .await
        .expect("returned");
    assert_eq!((returned.state, returned.return_count), (pb::RectificationState::InProgress as i32, 1));
    let again = submit(&w, &returned, &o.person_token).await.expect("submitted again");
    let closed = verify(&w, &again, true, "Checked against the live post", &w.auditor_token).await.expect("verified");
    assert_eq!(closed.state, pb::RectificationState::Verified as i32);
    let cancel = client(&w)
        .cancel_rectification(with_token(
            pb::CancelRectificationRequest {
                request_id: rid(),
                rectification_id: closed.id.clone(),
                reason: "issued in error".into(),
                etag: closed.etag.clone(),
            },
            &w.officer_token,
        ))
        .await
        .expect_err("a closed order stays closed");
    assert_eq!(cancel.code(), Code::FailedPrecondition);

    // Readable by the department and the office, not by another department.
    let read = |token: String| {
        let mut c = client(&w);
        let id = issued.id.clone();
        async move { c.get_rectification(with_token(pb::GetRectificationRequest { rectification_id: id }, &token)).await }
    };
    assert!(read(o.colleague_token.clone()).await.is_ok());
    assert_eq!(read(other.person_token.clone()).await.expect_err("another department").code(), Code::PermissionDenied);

    let trail = w
        .records(
            &[
                "rectification.issued",
                "rectification.evidence_submitted",
                "rectification.returned",
                "rectification.verified",
            ],
            5,
        )
        .await;
    let actions: Vec<&str> = trail.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "rectification.issued",
            "rectification.evidence_submitted",
            "rectification.returned",
            "rectification.evidence_submitted",
            "rectification.verified"
        ]
    );
    assert!(trail.iter().all(|e| e.rule_id == "R8.1.2"));
    assert!(trail.iter().all(|e| e.resource.as_ref().is_some_and(|r| r.platform_account_id == o.account)));
}

async fn overdue_orders_are_listed_flagged_and_count_against_the_account_r8_1_2(db: TestDatabase) {
    let w = World::start(db).await;
    let o = office(&w, "WATER").await;
    let late = issue(&w, &rid(), order(&o, 1)).await.expect("issued");
    let on_time = issue(&w, &rid(), order(&o, 10)).await.expect("issued");
    // As if the first order's working day had passed long ago.
    w.sql(&format!(
        "UPDATE rectifications SET issued_at = '2026-01-05T02:00:00+00:00', due_at = '2026-01-06T16:00:00+00:00', \
         due_date = '2026-01-06' WHERE id = '{}'",
        late.id
    ))
    .await;

    let list = |token: String, department: String| {
        let mut c = client(&w);
        async move {
            c.list_rectifications(with_token(
                pb::ListRectificationsRequest { overdue_only: true, department_id: department, ..Default::default() },
                &token,
            ))
            .await
        }
    };
    let overdue = list(o.person_token.clone(), o.department.clone()).await.expect("listed").into_inner().rectifications;
    assert_eq!(overdue.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), [late.id.as_str()]);
    assert!(overdue[0].overdue);
    let everything = client(&w)
        .list_rectifications(with_token(pb::ListRectificationsRequest::default(), &w.auditor_token))
        .await
        .expect("listed")
        .into_inner()
        .rectifications;
    assert_eq!(
        everything.iter().map(|r| (r.id.as_str(), r.overdue)).collect::<Vec<_>>(),
        [(late.id.as_str(), true), (on_time.id.as_str(), false)]
    );
    assert_eq!(
        list(o.person_token.clone(), String::new()).await.expect_err("the bureau's list").code(),
        Code::PermissionDenied
    );

    ComplianceServiceClient::new(w.audit.channel())
        .run_compliance_assessment(with_token(
            pb::RunComplianceAssessmentRequest { request_id: rid() },
            &w.auditor_token,
        ))
        .await
        .expect("assessed");
    let c = ComplianceServiceClient::new(w.audit.channel())
        .get_account_compliance(with_token(
            pb::GetAccountComplianceRequest { platform_account_id: o.account.clone(), assessment_date: String::new() },
            &w.auditor_token,
        ))
        .await
        .expect("assessment")
        .into_inner()
        .compliance
        .expect("compliance");
    assert_eq!((c.open_rectifications, c.overdue_rectifications), (2, 1));
    let item = c
        .items
        .iter()
        .find(|i| i.indicator == pb::ComplianceIndicator::Rectification as i32)
        .expect("a rectification deduction");
    assert_eq!((item.deduction, item.rule_id.as_str()), (1 + 5, "R8.1.2"));
}

storage_tests!(
    an_order_is_fixed_by_its_person_and_closed_by_the_office_r8_1_2,
    overdue_orders_are_listed_flagged_and_count_against_the_account_r8_1_2,
);
