//! The whole content workflow end to end over loopback with the real identity, audit and
//! content services: a plan, a draft realising it, three review stages, three
//! proofreading passes, scheduling by a publisher, the scheduler publishing through a
//! signed webhook, and content's outbox relayed to the audit service, whose
//! tamper-evident log then holds every step in order and verifies intact (R3.1–R3.3,
//! R9.2).

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::http::StatusCode;
use axum::routing::post;
use common::{all_met, approve, content, desk};
use govmedia_content::connector::webhook::{WebhookConnector, WebhookSettings};
use govmedia_content::scheduler::{Connectors, Scheduler, SchedulerSettings, Tick};
use govmedia_kit::client::{CallCredentials, ClientCredentials};
use govmedia_kit::config::Secret;
use govmedia_kit::outbox::{GrpcAuditSink, Relay};
use govmedia_proto::audit::v1 as apb;
use govmedia_proto::common::v1 as cpb;
use govmedia_proto::content::v1 as pb;
use govmedia_testkit::{TestDatabase, storage_tests, with_token};
use govmedia_world::rid;

async fn a_plan_goes_from_draft_to_published_and_the_audit_log_holds_every_step(db: TestDatabase) {
    let d = desk(db).await;
    let w = &d.c.world;
    let (_, publisher) =
        w.staff("publisher", &d.department, &[("publisher", cpb::ScopeKind::Department, &d.department)]).await;

    // A receiver for the webhook that counts what reaches it.
    let received = Arc::new(AtomicUsize::new(0));
    let counter = received.clone();
    let app = Router::new().route(
        "/hook",
        post(move || {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                (StatusCode::OK, "{}")
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });

    // The calendar.
    let now = chrono::Utc::now().timestamp();
    let plan =
        d.c.plans()
            .create_plan(with_token(
                pb::CreatePlanRequest {
                    request_id: rid(),
                    plan: Some(pb::Plan {
                        department_id: d.department.clone(),
                        topic: "汛期安全提示".into(),
                        reason: pb::PlanReason::WorkPriority as i32,
                        reason_detail: "主汛期到来，提醒市民注意出行安全".into(),
                        target_platform_account_ids: vec![d.account.clone()],
                        planned_window: Some(cpb::TimeRange {
                            start_time: Some(prost_types::Timestamp { seconds: now, nanos: 0 }),
                            end_time: Some(prost_types::Timestamp { seconds: now + 86_400, nanos: 0 }),
                        }),
                        ..Default::default()
                    }),
                },
                &d.author,
            ))
            .await
            .expect("planned")
            .into_inner()
            .plan
            .expect("plan");

    // The draft, its review and proofreading.
    let draft =
        d.c.drafts()
            .create_draft(with_token(
                pb::CreateDraftRequest {
                    request_id: rid(),
                    department_id: d.department.clone(),
                    target_platform_account_ids: vec![d.account.clone()],
                    plan_id: plan.id.clone(),
                    content: Some(content("汛期安全提示", "主汛期已至，请市民关注预警信息，减少不必要的外出。")),
                    ..Default::default()
                },
                &d.author,
            ))
            .await
            .expect("drafted")
            .into_inner()
            .draft
            .expect("draft");
    let draft =
        d.c.drafts()
            .submit_draft(with_token(
                pb::SubmitDraftRequest { request_id: rid(), draft_id: draft.id.clone(), etag: draft.etag.clone() },
                &d.author,
            ))
            .await
            .expect("submitted")
            .into_inner()
            .draft
            .expect("draft");
    let draft = approve(&d, &draft, pb::ReviewStage::Department, &d.reviewer).await.expect("department");
    let draft = approve(&d, &draft, pb::ReviewStage::SupervisingLeader, &d.leader).await.expect("supervising");
    let draft = approve(&d, &draft, pb::ReviewStage::PrincipalLeader, &d.principal).await.expect("principal");
    assert_eq!(draft.decisions.iter().map(|x| x.criteria).collect::<Vec<_>>(), vec![Some(all_met()); 3]);
    for token in [&d.author, &d.reviewer2, &d.reviewer] {
        d.c.drafts()
            .sign_off_proofreading(with_token(
                pb::SignOffProofreadingRequest {
                    request_id: rid(),
                    draft_id: draft.id.clone(),
                    version: draft.current_version,
                    note: "已校对".into(),
                },
                token,
            ))
            .await
            .expect("proofread");
    }

    // Scheduled by a publisher, published by the scheduler through the webhook.
    let publication =
        d.c.publications()
            .schedule_publication(with_token(
                pb::SchedulePublicationRequest {
                    request_id: rid(),
                    draft_id: draft.id.clone(),
                    platform_account_id: d.account.clone(),
                    scheduled_time: None,
                },
                &publisher,
            ))
            .await
            .expect("scheduled")
            .into_inner()
            .publication
            .expect("publication");
    let webhook = WebhookConnector::new(
        WebhookSettings::new(&url, Secret::new("end-to-end-webhook-secret"), false).expect("settings"),
    );
    let scheduler = Scheduler::new(d.c.core.clone(), Connectors::new(Arc::new(webhook)), SchedulerSettings::default());
    assert_eq!(scheduler.tick().await.expect("tick"), Tick { published: 1, ..Tick::default() });
    assert_eq!(received.load(Ordering::SeqCst), 1);
    let plan =
        d.c.plans()
            .get_plan(with_token(pb::GetPlanRequest { plan_id: plan.id.clone() }, &d.author))
            .await
            .expect("plan")
            .into_inner()
            .plan
            .expect("plan");
    assert_eq!(plan.state, pb::PlanState::Published as i32);

    // Content's outbox reaches the audit service, authenticated as content.
    let credentials = CallCredentials::ClientCredentials(Arc::new(ClientCredentials::new(
        w.identity.channel(),
        "govmedia-content".into(),
        Secret::new(w.content_secret.clone()),
    )));
    let relay = Relay::new(d.c.db.clone(), GrpcAuditSink::new(w.audit.channel(), credentials));
    while relay.deliver_batch().await.expect("relayed") > 0 {}
    let events = w
        .client()
        .query_events(with_token(
            apb::QueryEventsRequest {
                filter: Some(apb::EventFilter::default()),
                page_size: 1000,
                page_token: String::new(),
            },
            &w.auditor_token,
        ))
        .await
        .expect("query")
        .into_inner()
        .events;
    let mut story: Vec<(u64, String)> =
        events.iter().filter(|e| e.producer == "content").map(|e| (e.sequence, e.action.clone())).collect();
    story.sort_by_key(|(sequence, _)| *sequence);
    let actions: Vec<&str> = story.iter().map(|(_, a)| a.as_str()).collect();
    assert_eq!(
        actions,
        [
            "plan.created",
            "draft.created",
            "draft.submitted",
            "draft.approved",
            "draft.approved",
            "draft.approved",
            "draft.proofread",
            "draft.proofread",
            "draft.proofread",
            "publication.scheduled",
            "publication.published",
        ]
    );
    let published = events.iter().find(|e| e.action == "publication.published").expect("published event");
    assert_eq!(published.resource.as_ref().map(|r| r.id.as_str()), Some(publication.id.as_str()));
    let report = w
        .client()
        .verify_log(with_token(apb::VerifyLogRequest::default(), &w.auditor_token))
        .await
        .expect("verify")
        .into_inner();
    assert!(report.intact, "{}", report.detail);
}

storage_tests!(a_plan_goes_from_draft_to_published_and_the_audit_log_holds_every_step);
