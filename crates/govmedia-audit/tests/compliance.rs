//! Inspection readiness over real gRPC with a real identity service, on PostgreSQL and
//! SQLite (R8.1.1): the facts come from events appended by the services' own principals
//! and from identity's register; warnings and vetoes, alerts in the log, the daily
//! history with finished dates made final, and who may read what.

mod common;

use chrono::{DateTime, Duration, Utc};
use common::World;
use govmedia_audit::compliance_monitor::{self as monitor, COMPONENT};
use govmedia_domain::audit::Actor;
use govmedia_proto::audit::v1 as pb;
use govmedia_proto::audit::v1::compliance_service_client::ComplianceServiceClient;
use govmedia_proto::common::v1 as cpb;
use govmedia_testkit::{TestDatabase, storage_tests, with_token};
use tonic::Code;
use tonic::transport::Channel;
use tonic_types::StatusExt;

fn rid() -> String {
    uuid::Uuid::now_v7().to_string()
}

fn client(w: &World) -> ComplianceServiceClient<Channel> {
    ComplianceServiceClient::new(w.audit.channel())
}

/// An event as `producer` writes it about `account`.
fn event(producer: &str, action: &str, (kind, id): (&str, &str), account: &str, at: DateTime<Utc>) -> pb::AuditEvent {
    pb::AuditEvent {
        id: rid(),
        occur_time: Some(prost_types::Timestamp { seconds: at.timestamp(), nanos: 0 }),
        action: action.into(),
        actor: Some(cpb::PrincipalRef {
            kind: cpb::PrincipalKind::Service as i32,
            id: "svc".into(),
            display_name: "".into(),
        }),
        producer: producer.into(),
        resource: Some(pb::AuditResource {
            r#type: kind.into(),
            id: id.into(),
            platform_account_id: account.into(),
            ..Default::default()
        }),
        outcome: pb::AuditOutcome::Success as i32,
        rule_id: "R3.3.1".into(),
        ..Default::default()
    }
}

async fn append(w: &World, token: &str, events: Vec<pb::AuditEvent>) {
    w.client().append_events(with_token(pb::AppendEventsRequest { events }, token)).await.expect("appended");
}

/// A department with a responsible person, and `n` accounts of it.
async fn accounts(w: &World, code: &str, n: usize) -> (String, Vec<String>) {
    let department = w.department(&format!("Department {code}"), code).await;
    let (person, _) = w.staff(&format!("owner-{}", code.to_lowercase()), &department, &[]).await;
    let mut ids = Vec::new();
    for i in 0..n {
        ids.push(w.platform_account(cpb::Platform::Weibo, &format!("{code}-{i}"), &department, &person).await);
    }
    (department, ids)
}

async fn run(w: &World, token: &str) -> pb::RunComplianceAssessmentResponse {
    client(w)
        .run_compliance_assessment(with_token(pb::RunComplianceAssessmentRequest { request_id: rid() }, token))
        .await
        .expect("assessed")
        .into_inner()
}

async fn get(w: &World, account: &str, token: &str) -> Result<pb::AccountCompliance, tonic::Status> {
    client(w)
        .get_account_compliance(with_token(
            pb::GetAccountComplianceRequest { platform_account_id: account.into(), assessment_date: String::new() },
            token,
        ))
        .await
        .map(|r| r.into_inner().compliance.expect("compliance"))
}

async fn an_account_silent_11_days_is_warned_and_at_15_days_vetoed_r8_1_1(db: TestDatabase) {
    let w = World::start(db).await;
    let (_, ids) = accounts(&w, "OFFICE", 4).await;
    let [silent_11, silent_15, fresh, never] = [&ids[0], &ids[1], &ids[2], &ids[3]];
    let now = Utc::now();
    let day = Duration::days(1);
    // Whole days back from now keep the Beijing dates apart by exactly that many.
    append(
        &w,
        &w.content_token,
        vec![
            event("content", "publication.published", ("publication", "p1"), silent_11, now - day * 11),
            event("content", "publication.published", ("publication", "p2"), silent_15, now - day * 15),
            // A later post of the same account that was taken down does not count.
            event("content", "publication.recorded_manually", ("publication", "p3"), silent_15, now - day * 2),
            event("content", "publication.retracted", ("publication", "p3"), silent_15, now - day),
            event("content", "publication.published", ("publication", "p4"), fresh, now - day),
        ],
    )
    .await;

    let nobody = client(&w)
        .run_compliance_assessment(with_token(
            pb::RunComplianceAssessmentRequest { request_id: rid() },
            &w.nobody_token,
        ))
        .await
        .expect_err("refused");
    assert_eq!(nobody.code(), Code::PermissionDenied);

    let run1 = run(&w, &w.auditor_token).await;
    assert_eq!((run1.accounts, run1.warnings, run1.vetoes, run1.alerts), (4, 1, 1, 2));

    let warned = get(&w, silent_11, &w.auditor_token).await.expect("assessed");
    assert_eq!(warned.level, pb::ComplianceLevel::Warning as i32);
    assert_eq!(warned.days_since_last_publication, 11);
    assert_eq!(warned.items.len(), 1);
    assert_eq!(warned.items[0].indicator, pb::ComplianceIndicator::UpdateFrequency as i32);
    assert_eq!(warned.items[0].rule_id, "R3.1.1");
    assert_eq!(warned.score, 100);
    assert!(!warned.r#final, "today is still in progress");

    let vetoed = get(&w, silent_15, &w.auditor_token).await.expect("assessed");
    assert_eq!(vetoed.level, pb::ComplianceLevel::Veto as i32);
    assert_eq!(vetoed.days_since_last_publication, 15, "the retracted post does not count");
    let never_published = get(&w, never, &w.auditor_token).await.expect("assessed");
    assert_eq!(never_published.days_since_last_publication, 0, "counted from registration, today");
    assert_eq!(never_published.last_publication_time, None);
    assert_eq!(never_published.interaction_status, pb::InteractionStatus::NoChannel as i32);
    assert_eq!(get(&w, fresh, &w.auditor_token).await.expect("assessed").level, pb::ComplianceLevel::Compliant as i32);

    // Worst first; the list of a department at warning or worse is what a leader reads.
    let listed = client(&w)
        .list_account_compliance(with_token(
            pb::ListAccountComplianceRequest {
                minimum_level: pb::ComplianceLevel::Warning as i32,
                ..Default::default()
            },
            &w.officer_token,
        ))
        .await
        .expect("listed")
        .into_inner();
    let order: Vec<&str> = listed.compliance.iter().map(|c| c.platform_account_id.as_str()).collect();
    assert_eq!(order, [silent_15.as_str(), silent_11.as_str()]);
    assert_eq!(listed.assessment_date, warned.assessment_date);

    // Crossing is recorded once: the second run changes nothing.
    let alerts = w.records(&["compliance.warning_raised", "compliance.veto_raised"], 2).await;
    let raised: Vec<(&str, &str)> = alerts
        .iter()
        .map(|e| (e.action.as_str(), e.resource.as_ref().map_or("", |r| r.platform_account_id.as_str())))
        .collect();
    assert!(raised.contains(&("compliance.warning_raised", silent_11.as_str())), "{raised:?}");
    assert!(raised.contains(&("compliance.veto_raised", silent_15.as_str())), "{raised:?}");
    assert!(alerts.iter().all(|e| e.actor.as_ref().is_some_and(|a| a.kind == cpb::PrincipalKind::User as i32)));
    let run2 = run(&w, &w.auditor_token).await;
    assert_eq!((run2.warnings, run2.vetoes, run2.alerts), (1, 1, 0));

    // A post today clears the warning, and the clearing is recorded.
    append(
        &w,
        &w.content_token,
        vec![event("content", "publication.published", ("publication", "p5"), silent_11, now)],
    )
    .await;
    let run3 = run(&w, &w.auditor_token).await;
    assert_eq!((run3.warnings, run3.alerts), (0, 1));
    w.records(&["compliance.cleared"], 1).await;
    w.records(&["compliance.assessed"], 3).await;
}

async fn unanswered_public_and_incidents_are_veto_items_and_deductions_count_r8_1_1(db: TestDatabase) {
    let w = World::start(db).await;
    let (_, ids) = accounts(&w, "PRESS", 2).await;
    let [ignored, answered] = [&ids[0], &ids[1]];
    let interaction = w.principal_token("govmedia-interaction", &w.interaction_secret).await;
    let identity = w.principal_token("govmedia-identity", &w.identity_secret).await;
    let now = Utc::now();
    let hour = Duration::hours(1);
    let events = [ignored, answered]
        .iter()
        .map(|account| event("content", "publication.published", ("publication", &rid()), account, now - hour * 30))
        .collect();
    append(&w, &w.content_token, events).await;
    let mut events = Vec::new();
    for i in 0..12 {
        let c = format!("c{i}");
        events.push(event("interaction", "comment.ingested", ("comment", &c), ignored, now - hour * (60 + i)));
        events.push(event("interaction", "comment.escalated", ("comment", &c), ignored, now - hour * (20 + i)));
    }
    for i in 0..3 {
        let c = format!("d{i}");
        events.push(event("interaction", "comment.ingested", ("comment", &c), answered, now - hour * 50));
        events.push(event("interaction", "comment.escalated", ("comment", &c), answered, now - hour * 20));
        events.push(event("interaction", "reply.posted", ("reply", &c), answered, now - hour * 10));
    }
    events.push(event("interaction", "referral.escalated", ("referral", "r1"), answered, now - hour * 5));
    append(&w, &interaction, events).await;
    append(
        &w,
        &identity,
        vec![event("identity", "account_incident.reported", ("platform_account", answered), answered, now - hour)],
    )
    .await;

    run(&w, &w.officer_token).await;
    let a = get(&w, ignored, &w.auditor_token).await.expect("assessed");
    assert_eq!(a.level, pb::ComplianceLevel::Veto as i32);
    assert_eq!(a.interaction_status, pb::InteractionStatus::NotAnswered as i32);
    assert_eq!((a.interactions_received, a.interactions_answered, a.missed_reply_deadlines), (12, 0, 12));
    assert_eq!(a.score, 80, "12 missed deadlines at 2 points each, capped at 20");
    let b = get(&w, answered, &w.auditor_token).await.expect("assessed");
    assert_eq!(b.interaction_status, pb::InteractionStatus::Working as i32);
    assert_eq!((b.security_incidents, b.overdue_referrals), (1, 1));
    assert_eq!(b.level, pb::ComplianceLevel::Veto as i32, "an incident is a veto item");
    assert_eq!(b.score, 100 - 6 - 2);
    let indicators: Vec<i32> = b.items.iter().map(|i| i.indicator).collect();
    assert!(indicators.contains(&(pb::ComplianceIndicator::SecurityIncident as i32)));
    assert!(indicators.contains(&(pb::ComplianceIndicator::OverdueReferrals as i32)));
}

async fn a_finished_date_is_made_final_and_the_history_shows_each_day_r8_1_1(db: TestDatabase) {
    let w = World::start(db).await;
    let (department, ids) = accounts(&w, "HIST", 1).await;
    let account = &ids[0];
    let start = Utc::now();
    let published = start - Duration::seconds(1);
    append(
        &w,
        &w.content_token,
        vec![event("content", "publication.published", ("publication", "p"), account, published)],
    )
    .await;
    let register = w.core.register().accounts().await.expect("register");
    assert_eq!(register.len(), 1);
    assert!(register[0].responsible_active);
    // Three rounds a day apart, as the monitor would run them.
    for days in [0, 1, 2] {
        let now = start + Duration::days(days);
        let dates = monitor::pending_dates(&w.core, now).await.expect("dates");
        for date in dates {
            let assessed = monitor::facts(&w.core, &register, date, now).await.expect("facts");
            w.core
                .work()
                .run_unkeyed(async |m| monitor::write(m, date, assessed, &Actor::system(COMPONENT)).await)
                .await
                .expect("written");
        }
    }
    let first = start.with_timezone(&chrono_tz::Asia::Shanghai).date_naive();
    let last = first + chrono::Days::new(2);
    let (_, reviewer) = w
        .staff("hist-reviewer", &department, &[("department_reviewer", cpb::ScopeKind::Department, &department)])
        .await;
    // Two pages of two: the token carries on from the day after the last one given.
    let mut history = Vec::new();
    let mut page_token = String::new();
    for _ in 0..2 {
        let page = client(&w)
            .list_account_compliance_history(with_token(
                pb::ListAccountComplianceHistoryRequest {
                    platform_account_id: account.clone(),
                    start_date: first.to_string(),
                    end_date: last.to_string(),
                    page_size: 2,
                    page_token: page_token.clone(),
                },
                &reviewer,
            ))
            .await
            .expect("history")
            .into_inner();
        history.extend(page.compliance);
        page_token = page.next_page_token;
    }
    assert_eq!(history.len(), 3);
    let days: Vec<(String, i32, bool)> =
        history.iter().map(|c| (c.assessment_date.clone(), c.days_since_last_publication, c.r#final)).collect();
    assert_eq!(
        days,
        [
            (first.to_string(), 0, true),
            ((first + chrono::Days::new(1)).to_string(), 1, true),
            (last.to_string(), 2, false)
        ]
    );

    // Another department's reviewer reads nothing of it; a stranger learns nothing of
    // which accounts exist.
    let other = w.department("Other", "OTHER").await;
    let (_, outsider) =
        w.staff("other-reviewer", &other, &[("department_reviewer", cpb::ScopeKind::Department, &other)]).await;
    assert_eq!(get(&w, account, &outsider).await.expect_err("refused").code(), Code::PermissionDenied);
    let unknown = uuid::Uuid::now_v7().to_string();
    assert_eq!(get(&w, &unknown, &outsider).await.expect_err("refused").code(), Code::PermissionDenied);
    assert_eq!(get(&w, &unknown, &w.auditor_token).await.expect_err("absent").code(), Code::NotFound);
    let listed = client(&w)
        .list_account_compliance(with_token(pb::ListAccountComplianceRequest::default(), &outsider))
        .await
        .expect_err("the whole bureau needs a bureau-wide binding");
    assert_eq!(listed.code(), Code::PermissionDenied);

    let bad = client(&w)
        .list_account_compliance_history(with_token(
            pb::ListAccountComplianceHistoryRequest {
                platform_account_id: "x".into(),
                start_date: "2026-13-01".into(),
                end_date: String::new(),
                ..Default::default()
            },
            &w.auditor_token,
        ))
        .await
        .expect_err("invalid");
    assert_eq!(bad.code(), Code::InvalidArgument);
    let fields: Vec<String> = bad
        .get_details_bad_request()
        .expect("field violations")
        .field_violations
        .into_iter()
        .map(|v| v.field)
        .collect();
    assert_eq!(fields, ["platform_account_id", "start_date", "end_date"]);
}

storage_tests!(
    an_account_silent_11_days_is_warned_and_at_15_days_vetoed_r8_1_1,
    unanswered_public_and_incidents_are_veto_items_and_deductions_count_r8_1_1,
    a_finished_date_is_made_final_and_the_history_shows_each_day_r8_1_1,
);
