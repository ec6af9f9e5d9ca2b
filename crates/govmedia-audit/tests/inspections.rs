//! Inspections and spot checks over real gRPC with a real identity service, on
//! PostgreSQL and SQLite (R8.1.1): the sample is drawn from what the log says went out or
//! was answered in the period and scope; the same seed draws the same sample; every item
//! is judged against its criteria before the inspection completes.

mod common;

use chrono::{Duration, Utc};
use common::World;
use govmedia_proto::audit::v1 as pb;
use govmedia_proto::audit::v1::inspection_service_client::InspectionServiceClient;
use govmedia_proto::common::v1 as cpb;
use govmedia_testkit::{TestDatabase, storage_tests, with_token};
use tonic::Code;
use tonic::transport::Channel;
use tonic_types::StatusExt;

fn rid() -> String {
    uuid::Uuid::now_v7().to_string()
}

fn client(w: &World) -> InspectionServiceClient<Channel> {
    InspectionServiceClient::new(w.audit.channel())
}

fn event(producer: &str, action: &str, (kind, id): (&str, &str), account: &str, minutes_ago: i64) -> pb::AuditEvent {
    let at = Utc::now() - Duration::minutes(minutes_ago);
    pb::AuditEvent {
        id: rid(),
        occur_time: Some(prost_types::Timestamp { seconds: at.timestamp(), nanos: 0 }),
        action: action.into(),
        actor: Some(cpb::PrincipalRef {
            kind: cpb::PrincipalKind::Service as i32,
            id: "svc".into(),
            display_name: String::new(),
        }),
        producer: producer.into(),
        resource: Some(pb::AuditResource {
            r#type: kind.into(),
            id: id.into(),
            platform_account_id: account.into(),
            ..Default::default()
        }),
        outcome: pb::AuditOutcome::Success as i32,
        ..Default::default()
    }
}

async fn create(
    w: &World,
    token: &str,
    department: &str,
    seed: &str,
    sample_size: u32,
) -> Result<pb::Inspection, tonic::Status> {
    let today = (Utc::now() + Duration::hours(8)).date_naive();
    client(w)
        .create_inspection(with_token(
            pb::CreateInspectionRequest {
                request_id: rid(),
                inspection: Some(pb::Inspection {
                    kind: pb::InspectionKind::SpotCheck as i32,
                    title: "November spot check".into(),
                    department_id: department.into(),
                    start_date: (today - chrono::Days::new(7)).to_string(),
                    end_date: today.to_string(),
                    seed: seed.into(),
                    sample_size,
                    ..Default::default()
                }),
            },
            token,
        ))
        .await
        .map(|r| r.into_inner().inspection.expect("inspection"))
}

fn sample(i: &pb::Inspection) -> Vec<(i32, String)> {
    i.items.iter().map(|x| (x.item_type, x.item_id.clone())).collect()
}

async fn verdict(
    w: &World,
    i: &pb::Inspection,
    item: &pb::InspectionItem,
    problem: Option<(&str, &str)>,
) -> Result<pb::Inspection, tonic::Status> {
    let (verdict, failed, note) = match problem {
        Some((rule, note)) => (pb::Verdict::Problem, rule, note),
        None => (pb::Verdict::Pass, "", ""),
    };
    client(w)
        .record_inspection_verdict(with_token(
            pb::RecordInspectionVerdictRequest {
                request_id: rid(),
                inspection_id: i.id.clone(),
                item_type: item.item_type,
                item_id: item.item_id.clone(),
                verdict: verdict as i32,
                failed_rule_id: failed.into(),
                note: note.into(),
                etag: i.etag.clone(),
            },
            &w.auditor_token,
        ))
        .await
        .map(|r| r.into_inner().inspection.expect("inspection"))
}

async fn the_same_seed_draws_the_same_sample_and_every_item_is_judged_r8_1_1(db: TestDatabase) {
    let w = World::start(db).await;
    let department = w.department("Department of Culture", "CULT").await;
    let (owner, editor) =
        w.staff("cult-editor", &department, &[("editor", cpb::ScopeKind::Department, department.as_str())]).await;
    let ours = w.platform_account(cpb::Platform::Weibo, "cult-weibo", &department, &owner).await;
    let other = w.department("Department of Sport", "SPORT").await;
    let theirs = w.platform_account(cpb::Platform::Douyin, "sport-douyin", &other, &owner).await;
    let mut published: Vec<pb::AuditEvent> = (0..30)
        .map(|n| event("content", "publication.published", ("publication", &format!("p{n:02}")), &ours, 60 + n))
        .collect();
    published.extend(
        (0..10)
            .map(|n| event("content", "publication.published", ("publication", &format!("q{n:02}")), &theirs, 60 + n)),
    );
    w.client()
        .append_events(with_token(pb::AppendEventsRequest { events: published }, &w.content_token))
        .await
        .expect("appended");
    let interaction = w.principal_token("govmedia-interaction", &w.interaction_secret).await;
    let replies =
        (0..20).map(|n| event("interaction", "reply.posted", ("reply", &format!("r{n:02}")), &ours, 30 + n)).collect();
    w.client()
        .append_events(with_token(pb::AppendEventsRequest { events: replies }, &interaction))
        .await
        .expect("appended");

    assert_eq!(
        create(&w, &editor, &department, "7", 5).await.expect_err("the office inspects").code(),
        Code::PermissionDenied
    );
    let first = create(&w, &w.auditor_token, &department, "20261129", 5).await.expect("drawn");
    assert_eq!(first.seed, "20261129");
    assert_eq!(first.items.len(), 10, "5 publications and 5 replies; no conversation was answered");
    assert!(first.items.iter().all(|x| x.platform_account_id == ours), "the department's accounts only");
    let again = create(&w, &w.auditor_token, &department, "20261129", 5).await.expect("drawn");
    assert_eq!(sample(&first), sample(&again), "the same seed draws the same sample");
    let other_seed = create(&w, &w.auditor_token, &department, "20261130", 5).await.expect("drawn");
    assert_ne!(sample(&first), sample(&other_seed));
    let bureau = create(&w, &w.auditor_token, "", "", 40).await.expect("drawn");
    assert!(!bureau.seed.is_empty(), "a seed is chosen and recorded");
    assert_eq!(bureau.items.iter().filter(|x| x.item_type == pb::SampledItemType::Publication as i32).count(), 40);

    let bad = create(&w, &w.auditor_token, &department, "-1", 0).await.expect_err("invalid");
    let fields: Vec<String> =
        bad.get_details_bad_request().expect("violations").field_violations.into_iter().map(|v| v.field).collect();
    assert_eq!(fields, ["inspection.seed", "inspection.sample_size"]);

    // Every item judged against its criteria, then completed.
    let complete = |i: pb::Inspection| {
        let mut c = client(&w);
        let token = w.auditor_token.clone();
        async move {
            c.complete_inspection(with_token(
                pb::CompleteInspectionRequest { request_id: rid(), inspection_id: i.id, etag: i.etag },
                &token,
            ))
            .await
        }
    };
    let early = complete(first.clone()).await.expect_err("items without a verdict");
    assert_eq!(early.code(), Code::FailedPrecondition);
    let publication = first.items.iter().find(|x| x.item_type == pb::SampledItemType::Publication as i32).expect("p");
    assert_eq!(publication.criteria, "R3.2.3");
    let wrong = verdict(&w, &first, publication, Some(("R4.1.2", "rude"))).await.expect_err("not its criterion");
    assert_eq!(wrong.code(), Code::InvalidArgument);
    let mut current =
        verdict(&w, &first, publication, Some(("R3.2.3", "The date in the title is wrong"))).await.expect("judged");
    for item in first.items.iter().filter(|x| x.item_id != publication.item_id) {
        current = verdict(&w, &current, item, None).await.expect("judged");
    }
    let done = complete(current).await.expect("completed").into_inner().inspection.expect("inspection");
    assert_eq!((done.state, done.problems), (pb::InspectionState::Completed as i32, 1));
    let problem = done.items.iter().find(|x| x.verdict == pb::Verdict::Problem as i32).expect("a finding");
    assert_eq!((problem.item_id.as_str(), problem.failed_rule_id.as_str()), (publication.item_id.as_str(), "R3.2.3"));

    let created = w.records(&["inspection.created"], 4).await;
    assert!(created.iter().any(|e| e.attributes.get("seed").is_some_and(|s| s == "20261129")));
    w.records(&["inspection.completed"], 1).await;
}

storage_tests!(the_same_seed_draws_the_same_sample_and_every_item_is_judged_r8_1_1);
