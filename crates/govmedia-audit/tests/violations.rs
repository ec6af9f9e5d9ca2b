//! Violations over real gRPC with a real identity service, on PostgreSQL and SQLite (R9.1,
//! R9.2): detectors propose from the log and the rectification register, a person
//! confirms with the handling and the rectification it triggered, nobody decides on
//! their own, and evidence must be events the hash chain vouches for.

mod common;

use chrono::{Duration, Utc};
use common::World;
use govmedia_proto::audit::v1 as pb;
use govmedia_proto::audit::v1::rectification_service_client::RectificationServiceClient;
use govmedia_proto::audit::v1::violation_service_client::ViolationServiceClient;
use govmedia_proto::common::v1 as cpb;
use govmedia_testkit::{TestDatabase, storage_tests, with_token};
use tonic::Code;
use tonic::transport::Channel;
use tonic_types::StatusExt;

fn rid() -> String {
    uuid::Uuid::now_v7().to_string()
}

fn client(w: &World) -> ViolationServiceClient<Channel> {
    ViolationServiceClient::new(w.audit.channel())
}

fn rules(status: &tonic::Status) -> Vec<String> {
    status
        .get_details_precondition_failure()
        .map(|p| p.violations.into_iter().map(|v| v.r#type).collect())
        .unwrap_or_default()
}

/// A department with an editor who is responsible for its account.
async fn office(w: &World, code: &str) -> (String, String, String, String) {
    let department = w.department(&format!("Department {code}"), code).await;
    let lower = code.to_lowercase();
    let scope = [("editor", cpb::ScopeKind::Department, department.as_str())];
    let (person, token) = w.staff(&format!("{lower}-editor"), &department, &scope).await;
    let account = w.platform_account(cpb::Platform::Weibo, &format!("{lower}-weibo"), &department, &person).await;
    (department, person, token, account)
}

async fn detect(w: &World) -> u32 {
    client(w)
        .run_violation_detectors(with_token(pb::RunViolationDetectorsRequest { request_id: rid() }, &w.auditor_token))
        .await
        .expect("detectors ran")
        .into_inner()
        .proposed
}

async fn proposed(w: &World) -> Vec<pb::Violation> {
    client(w)
        .list_violations(with_token(
            pb::ListViolationsRequest { state: pb::ViolationState::Proposed as i32, ..Default::default() },
            &w.auditor_token,
        ))
        .await
        .expect("listed")
        .into_inner()
        .violations
}

/// A user's event as `producer` appends it, `ago` before now.
fn event(
    producer: &str,
    action: &str,
    actor: &str,
    (kind, id): (&str, &str),
    (department, account): (&str, &str),
    ago: Duration,
) -> pb::AuditEvent {
    let at = Utc::now() - ago;
    pb::AuditEvent {
        id: rid(),
        occur_time: Some(prost_types::Timestamp { seconds: at.timestamp(), nanos: 0 }),
        action: action.into(),
        actor: Some(cpb::PrincipalRef {
            kind: cpb::PrincipalKind::User as i32,
            id: actor.into(),
            display_name: "张三".into(),
        }),
        producer: producer.into(),
        resource: Some(pb::AuditResource {
            r#type: kind.into(),
            id: id.into(),
            department_id: department.into(),
            platform_account_id: account.into(),
        }),
        outcome: pb::AuditOutcome::Success as i32,
        rule_id: "R2.3.2".into(),
        attributes: [("draft_id".to_owned(), "draft-without-approval".to_owned())].into_iter().collect(),
        ..Default::default()
    }
}

async fn an_overdue_rectification_yields_a_violation_a_person_confirms_r9_2(db: TestDatabase) {
    let w = World::start(db).await;
    let (department, person, person_token, account) = office(&w, "ROADS").await;
    let order = RectificationServiceClient::new(w.audit.channel())
        .issue_rectification(with_token(
            pb::IssueRectificationRequest {
                request_id: rid(),
                rectification: Some(pb::Rectification {
                    source: pb::FindingSource::Inspection as i32,
                    department_id: department.clone(),
                    responsible_user_id: person.clone(),
                    platform_account_id: account.clone(),
                    title: "Unanswered complaints".into(),
                    requirement: "Answer the complaints of November".into(),
                    rule_id: "R4.1.1".into(),
                    working_days: 3,
                    ..Default::default()
                }),
            },
            &w.officer_token,
        ))
        .await
        .expect("issued")
        .into_inner()
        .rectification
        .expect("order");
    assert_eq!(detect(&w).await, 0, "not due yet");
    w.sql(&format!(
        "UPDATE rectifications SET due_at = '2026-01-06T16:00:00+00:00', due_date = '2026-01-06' WHERE id = '{}'",
        order.id
    ))
    .await;
    let issued = w.records(&["rectification.issued"], 1).await;
    assert_eq!(detect(&w).await, 1);
    assert_eq!(detect(&w).await, 0, "a finding is proposed once");

    let found = proposed(&w).await;
    assert_eq!(found.len(), 1);
    let v = &found[0];
    assert_eq!((v.violation_type.as_str(), v.rule_id.as_str()), ("rectification_ignored", "R8.1.2"));
    assert_eq!((v.responsible_user_id.as_str(), v.department_id.as_str()), (person.as_str(), department.as_str()));
    assert_eq!(v.evidence_event_ids, [issued[0].id.clone()], "linked to the order's issue record");
    assert_eq!((v.detector.as_str(), v.severity), ("rectification_overdue", pb::ViolationSeverity::Minor as i32));

    let confirm = |token: String, etag: String| {
        let mut c = client(&w);
        let (id, order) = (v.id.clone(), order.id.clone());
        async move {
            c.confirm_violation(with_token(
                pb::ConfirmViolationRequest {
                    request_id: rid(),
                    violation_id: id,
                    handling: "书面提醒；一周内完成整改".into(),
                    severity: pb::ViolationSeverity::Serious as i32,
                    rectification_id: order,
                    etag,
                },
                &token,
            ))
            .await
        }
    };
    assert_eq!(
        confirm(person_token.clone(), v.etag.clone()).await.expect_err("not the office").code(),
        Code::PermissionDenied
    );
    let confirmed =
        confirm(w.auditor_token.clone(), v.etag.clone()).await.expect("confirmed").into_inner().violation.expect("v");
    assert_eq!(confirmed.state, pb::ViolationState::Confirmed as i32);
    assert_eq!(confirmed.severity, pb::ViolationSeverity::Serious as i32);
    assert_eq!(confirmed.rectification_id, order.id);
    assert!(!confirmed.decided_by.is_empty());
    let again = confirm(w.auditor_token.clone(), confirmed.etag.clone()).await.expect_err("decided already");
    assert_eq!((again.code(), rules(&again)), (Code::FailedPrecondition, vec!["R9.2".to_owned()]));

    let trail = w.records(&["violation.proposed", "violation.confirmed"], 2).await;
    assert_eq!(
        trail.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(),
        ["violation.proposed", "violation.confirmed"]
    );
    assert!(trail.iter().all(|e| e.resource.as_ref().is_some_and(|r| r.id == v.id)));
}

async fn credential_reveals_and_unapproved_manual_records_are_proposed_r9_1(db: TestDatabase) {
    let w = World::start(db).await;
    let (department, person, _, account) = office(&w, "HEALTH").await;
    let (_, outsider, _, _) = office(&w, "PARKS").await;
    let identity = w.principal_token("govmedia-identity", &w.identity_secret).await;
    let on = (department.as_str(), account.as_str());
    // Three reveals within one clock hour: at :00, :01 and :02 of the hour before last.
    let hour = (Utc::now() - Duration::hours(2)).timestamp() / 3600 * 3600;
    let ago = |minute: i64| Utc::now() - chrono::DateTime::from_timestamp(hour + minute * 60, 0).expect("time");
    let mut events: Vec<pb::AuditEvent> = (0..3)
        .map(|m| event("identity", "credential.revealed", &person, ("platform_account", &account), on, ago(m)))
        .collect();
    // One by someone of another department than the account's.
    events.push(event(
        "identity",
        "credential.revealed",
        &outsider,
        ("platform_account", &account),
        on,
        Duration::minutes(5),
    ));
    w.client().append_events(with_token(pb::AppendEventsRequest { events }, &identity)).await.expect("appended");
    let manual =
        event("content", "publication.recorded_manually", &person, ("publication", "p1"), on, Duration::minutes(3));
    w.client()
        .append_events(with_token(pb::AppendEventsRequest { events: vec![manual] }, &w.content_token))
        .await
        .expect("appended");

    assert_eq!(detect(&w).await, 3);
    let mut found: Vec<(String, String, usize)> = proposed(&w)
        .await
        .into_iter()
        .map(|v| (v.detector, v.responsible_user_id, v.evidence_event_ids.len()))
        .collect();
    found.sort();
    assert_eq!(
        found,
        [
            ("credential_outside_department".to_owned(), outsider.clone(), 1),
            ("credential_reveals".to_owned(), person.clone(), 3),
            ("unapproved_manual_publication".to_owned(), person.clone(), 1),
        ]
    );

    // The person named may not dismiss their own: the office may, with a reason.
    let outside =
        proposed(&w).await.into_iter().find(|v| v.detector == "credential_outside_department").expect("found");
    let dismissed = client(&w)
        .dismiss_violation(with_token(
            pb::DismissViolationRequest {
                request_id: rid(),
                violation_id: outside.id.clone(),
                reason: "Seconded to the department for the flood season".into(),
                etag: outside.etag.clone(),
            },
            &w.officer_token,
        ))
        .await
        .expect("dismissed")
        .into_inner()
        .violation
        .expect("v");
    assert_eq!(dismissed.state, pb::ViolationState::Dismissed as i32);
}

async fn recorded_violations_need_evidence_the_chain_vouches_for_r9_2(db: TestDatabase) {
    let w = World::start(db).await;
    let (department, person, _, account) = office(&w, "PORT").await;
    let evidence = event(
        "content",
        "publication.recorded_manually",
        &person,
        ("publication", "p9"),
        (&department, &account),
        Duration::minutes(1),
    );
    let evidence_id = evidence.id.clone();
    w.client()
        .append_events(with_token(pb::AppendEventsRequest { events: vec![evidence] }, &w.content_token))
        .await
        .expect("appended");
    let record = |ids: Vec<String>| {
        let mut c = client(&w);
        let (department, person, account, token) =
            (department.clone(), person.clone(), account.clone(), w.auditor_token.clone());
        async move {
            c.record_violation(with_token(
                pb::RecordViolationRequest {
                    request_id: rid(),
                    violation: Some(pb::Violation {
                        violation_type: "false_content".into(),
                        responsible_user_id: person,
                        department_id: department,
                        platform_account_id: account,
                        description: "A post gave the wrong date for the road closure".into(),
                        evidence_event_ids: ids,
                        ..Default::default()
                    }),
                    handling: "批评教育，责令更正".into(),
                },
                &token,
            ))
            .await
        }
    };
    let missing = record(vec![rid()]).await.expect_err("no such event");
    let fields: Vec<String> =
        missing.get_details_bad_request().expect("violations").field_violations.into_iter().map(|v| v.field).collect();
    assert_eq!(fields, ["evidence_event_ids[0]"]);
    let recorded = record(vec![evidence_id.clone()]).await.expect("recorded").into_inner().violation.expect("v");
    assert_eq!(
        (recorded.state, recorded.severity),
        (pb::ViolationState::Confirmed as i32, pb::ViolationSeverity::Serious as i32)
    );
    assert_eq!(recorded.rule_id, "R3.2.3");

    // Evidence that was altered after it was chained is refused.
    w.disable_guard().await;
    w.sql(&format!("UPDATE audit_events SET reason = 'nothing happened' WHERE id = '{evidence_id}'")).await;
    let tampered = record(vec![evidence_id]).await.expect_err("fails the chain");
    assert_eq!((tampered.code(), rules(&tampered)), (Code::FailedPrecondition, vec!["R1.3.5".to_owned()]));

    let types = client(&w)
        .list_violation_types(with_token(
            pb::ListViolationTypesRequest { page_size: 4, page_token: String::new() },
            &w.auditor_token,
        ))
        .await
        .expect("catalogue")
        .into_inner();
    assert_eq!(types.violation_types.len(), 4);
    let rest = client(&w)
        .list_violation_types(with_token(
            pb::ListViolationTypesRequest { page_size: 50, page_token: types.next_page_token },
            &w.auditor_token,
        ))
        .await
        .expect("catalogue")
        .into_inner();
    assert_eq!(rest.violation_types.len(), 3);
    assert!(rest.next_page_token.is_empty());
}

storage_tests!(
    an_overdue_rectification_yields_a_violation_a_person_confirms_r9_2,
    credential_reveals_and_unapproved_manual_records_are_proposed_r9_1,
    recorded_violations_need_evidence_the_chain_vouches_for_r9_2,
);
