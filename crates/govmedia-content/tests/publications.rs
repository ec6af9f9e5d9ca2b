//! `PublicationService` over real gRPC with real identity and audit, on PostgreSQL and
//! SQLite: a publisher schedules an approved draft, the scheduler publishes it through
//! the archive, it is retracted through the connector, feedback is tracked to closure
//! with a correction draft; each refusal names its rule; manual records need evidence
//! (R3.2.1, R3.3.1, R3.3.3, R2.3.3).

mod common;

use common::{Desk, approved, create, desk, submit};
use govmedia_content::scheduler::{Scheduler, SchedulerSettings, Tick};
use govmedia_proto::common::v1 as cpb;
use govmedia_proto::content::v1 as pb;
use govmedia_proto::identity::v1 as ipb;
use govmedia_proto::identity::v1::platform_account_service_client::PlatformAccountServiceClient;
use govmedia_testkit::{TestDatabase, storage_tests, with_token};
use govmedia_world::rid;
use tonic::Code;
use tonic_types::StatusExt;

fn rule(status: &tonic::Status) -> String {
    status.get_details_precondition_failure().map(|p| p.violations[0].r#type.clone()).unwrap_or_default()
}

async fn publisher(d: &Desk) -> (String, String) {
    d.c.world.staff("publisher", &d.department, &[("publisher", cpb::ScopeKind::Department, &d.department)]).await
}

async fn schedule(d: &Desk, token: &str, draft: &pb::Draft) -> Result<pb::Publication, tonic::Status> {
    d.c.publications()
        .schedule_publication(with_token(
            pb::SchedulePublicationRequest {
                request_id: rid(),
                draft_id: draft.id.clone(),
                platform_account_id: d.account.clone(),
                scheduled_time: None,
            },
            token,
        ))
        .await
        .map(|r| r.into_inner().publication.expect("publication"))
}

async fn get(d: &Desk, token: &str, id: &str) -> pb::Publication {
    d.c.publications()
        .get_publication(with_token(pb::GetPublicationRequest { publication_id: id.into() }, token))
        .await
        .expect("get")
        .into_inner()
        .publication
        .expect("publication")
}

fn evidence() -> cpb::Evidence {
    cpb::Evidence {
        uri: "https://dms.bureau.example/evidence/42".into(),
        sha256: "ab".repeat(32),
        description: "截图".into(),
    }
}

async fn scheduled_published_retracted_and_feedback_closed_r3_3_1(db: TestDatabase) {
    let d = desk(db).await;
    let (publisher_id, publisher) = publisher(&d).await;
    let draft = approved(&d, "市局发布防汛通告，请市民减少外出。").await;
    let scheduled = schedule(&d, &publisher, &draft).await.expect("scheduled");
    assert_eq!(scheduled.state, pb::PublicationState::Scheduled as i32);
    assert_eq!((scheduled.connector.as_str(), scheduled.scheduled_by.as_str()), ("archive", publisher_id.as_str()));

    let scheduler = Scheduler::new(d.c.core.clone(), d.c.connectors.clone(), SchedulerSettings::default());
    assert_eq!(scheduler.tick().await.expect("tick"), Tick { published: 1, ..Tick::default() });
    let published = get(&d, &d.author, &scheduled.id).await;
    assert_eq!(published.state, pb::PublicationState::Published as i32);
    assert_eq!(published.approver_user_ids.len(), 3);
    assert_eq!(published.proofreader_user_ids.len(), 3);
    assert!(published.url.starts_with("file://"), "{}", published.url);

    let listed =
        d.c.publications()
            .list_publications(with_token(
                pb::ListPublicationsRequest { platform_account_id: d.account.clone(), ..Default::default() },
                &d.author,
            ))
            .await
            .expect("list")
            .into_inner();
    assert_eq!(listed.publications.iter().map(|p| p.id.as_str()).collect::<Vec<_>>(), [scheduled.id.as_str()]);

    // An editor may not retract; the publisher may, through the connector.
    let denied =
        d.c.publications()
            .retract_publication(with_token(
                pb::RetractPublicationRequest {
                    request_id: rid(),
                    publication_id: scheduled.id.clone(),
                    reason: "数据有误".into(),
                    ..Default::default()
                },
                &d.author,
            ))
            .await
            .expect_err("denied");
    assert_eq!(denied.code(), Code::PermissionDenied);
    let retracted =
        d.c.publications()
            .retract_publication(with_token(
                pb::RetractPublicationRequest {
                    request_id: rid(),
                    publication_id: scheduled.id.clone(),
                    reason: "数据有误".into(),
                    etag: published.etag.clone(),
                    ..Default::default()
                },
                &publisher,
            ))
            .await
            .expect("retracted")
            .into_inner()
            .publication
            .expect("publication");
    assert_eq!(retracted.state, pb::PublicationState::Retracted as i32);
    assert_eq!(retracted.withdrawal_reason, "数据有误");
    let archived = d.c.archive.path().join(&d.account).join(format!("{}.retracted.json", scheduled.id));
    assert!(archived.exists(), "the connector took it down: {}", archived.display());

    // Feedback: recorded, assigned, closed with a correction that goes through review.
    let item =
        d.c.publications()
            .create_feedback_item(with_token(
                pb::CreateFeedbackItemRequest {
                    request_id: rid(),
                    feedback_item: Some(pb::FeedbackItem {
                        publication_id: scheduled.id.clone(),
                        kind: pb::FeedbackKind::ErrorReport as i32,
                        description: "通告中的日期写错了".into(),
                        source: "12345热线".into(),
                        ..Default::default()
                    }),
                },
                &publisher,
            ))
            .await
            .expect("created")
            .into_inner()
            .feedback_item
            .expect("item");
    assert_eq!(item.state, pb::FeedbackState::Open as i32);
    let refused =
        d.c.publications()
            .assign_feedback_item(with_token(
                pb::AssignFeedbackItemRequest {
                    request_id: rid(),
                    feedback_item_id: item.id.clone(),
                    assignee_user_id: d.author_id.clone(),
                    etag: String::new(),
                },
                &publisher,
            ))
            .await
            .expect_err("an editor does not handle feedback");
    assert_eq!(rule(&refused), "R3.3.3");
    d.c.publications()
        .assign_feedback_item(with_token(
            pb::AssignFeedbackItemRequest {
                request_id: rid(),
                feedback_item_id: item.id.clone(),
                assignee_user_id: publisher_id.clone(),
                etag: item.etag.clone(),
            },
            &publisher,
        ))
        .await
        .expect("assigned");
    let correction =
        d.c.drafts()
            .create_draft(with_token(
                pb::CreateDraftRequest {
                    request_id: rid(),
                    department_id: d.department.clone(),
                    target_platform_account_ids: vec![d.account.clone()],
                    content: Some(common::content("更正", "更正：通告日期应为11月28日。")),
                    corrects_publication_id: scheduled.id.clone(),
                    ..Default::default()
                },
                &d.author,
            ))
            .await
            .expect("correction draft")
            .into_inner()
            .draft
            .expect("draft");
    let unrelated = create(&d, "无关稿件。").await;
    let wrong =
        d.c.publications()
            .close_feedback_item(with_token(
                pb::CloseFeedbackItemRequest {
                    request_id: rid(),
                    feedback_item_id: item.id.clone(),
                    resolution: "已更正".into(),
                    correction_draft_id: unrelated.id.clone(),
                    etag: String::new(),
                },
                &publisher,
            ))
            .await
            .expect_err("not a correction of this publication");
    assert_eq!(rule(&wrong), "R3.3.3");
    let closed =
        d.c.publications()
            .close_feedback_item(with_token(
                pb::CloseFeedbackItemRequest {
                    request_id: rid(),
                    feedback_item_id: item.id.clone(),
                    resolution: "已更正并发布更正稿".into(),
                    correction_draft_id: correction.id.clone(),
                    etag: String::new(),
                },
                &publisher,
            ))
            .await
            .expect("closed")
            .into_inner()
            .feedback_item
            .expect("item");
    assert_eq!(
        (closed.state, closed.correction_draft_id.as_str()),
        (pb::FeedbackState::Closed as i32, correction.id.as_str())
    );
    assert_eq!(get(&d, &d.author, &scheduled.id).await.correction_draft_ids, [correction.id.as_str()]);

    let actions = d.c.outbox_actions().await;
    let story: Vec<&str> = actions
        .iter()
        .map(String::as_str)
        .filter(|a| a.starts_with("publication.") || a.starts_with("feedback."))
        .collect();
    assert_eq!(
        story,
        [
            "publication.scheduled",
            "publication.published",
            "publication.retracted",
            "feedback.created",
            "feedback.assigned",
            "feedback.closed"
        ]
    );
}

async fn scheduling_refusals_name_their_rules_r3_3_1(db: TestDatabase) {
    let d = desk(db).await;
    let (_, publisher) = publisher(&d).await;
    let drafting = create(&d, "尚未提交的稿件。").await;
    assert_eq!(schedule(&d, &d.author, &drafting).await.expect_err("editor").code(), Code::PermissionDenied);
    assert_eq!(rule(&schedule(&d, &publisher, &drafting).await.expect_err("not submitted")), "R3.2.1");

    // In review may be scheduled: it goes out only if approved by then, else expires.
    let in_review = submit(&d, &create(&d, "审核中的稿件。").await).await.expect("submitted");
    let p = schedule(&d, &publisher, &in_review).await.expect("scheduled while in review");
    assert_eq!(rule(&schedule(&d, &publisher, &in_review).await.expect_err("twice")), "R3.3.1");
    let scheduler = Scheduler::new(d.c.core.clone(), d.c.connectors.clone(), SchedulerSettings::default());
    assert_eq!(scheduler.tick().await.expect("tick"), Tick { expired: 1, ..Tick::default() });
    let expired = get(&d, &publisher, &p.id).await;
    assert_eq!(expired.state, pb::PublicationState::Expired as i32);
    let rescheduled =
        d.c.publications()
            .reschedule_publication(with_token(
                pb::ReschedulePublicationRequest {
                    request_id: rid(),
                    publication_id: p.id.clone(),
                    scheduled_time: Some(prost_types::Timestamp {
                        seconds: chrono::Utc::now().timestamp() + 3600,
                        nanos: 0,
                    }),
                    etag: expired.etag.clone(),
                },
                &publisher,
            ))
            .await
            .expect("rescheduled")
            .into_inner()
            .publication
            .expect("publication");
    assert_eq!((rescheduled.state, rescheduled.last_error.as_str()), (pb::PublicationState::Scheduled as i32, ""));
    let cancelled =
        d.c.publications()
            .cancel_publication(with_token(
                pb::CancelPublicationRequest {
                    request_id: rid(),
                    publication_id: p.id.clone(),
                    reason: "活动取消".into(),
                    etag: "v1".into(),
                },
                &publisher,
            ))
            .await
            .expect_err("stale etag");
    assert_eq!(cancelled.code(), Code::Aborted);
    let cancelled =
        d.c.publications()
            .cancel_publication(with_token(
                pb::CancelPublicationRequest {
                    request_id: rid(),
                    publication_id: p.id.clone(),
                    reason: "活动取消".into(),
                    etag: rescheduled.etag.clone(),
                },
                &publisher,
            ))
            .await
            .expect("cancelled")
            .into_inner()
            .publication
            .expect("publication");
    assert_eq!(cancelled.state, pb::PublicationState::Cancelled as i32);
    let again = d
        .c
        .publications()
        .reschedule_publication(with_token(
            pb::ReschedulePublicationRequest { request_id: rid(), publication_id: p.id.clone(), ..Default::default() },
            &publisher,
        ))
        .await
        .expect_err("a cancelled publication stays cancelled");
    assert_eq!(rule(&again), "R3.3.1");

    // Not a target of the draft: a field error. A frozen account: R2.3.3.
    let other = d.c.world.platform_account(cpb::Platform::Douyin, "bureau_douyin", &d.department, &d.author_id).await;
    let approved = approved(&d, "市局发布出行提示。").await;
    let not_target =
        d.c.publications()
            .schedule_publication(with_token(
                pb::SchedulePublicationRequest {
                    request_id: rid(),
                    draft_id: approved.id.clone(),
                    platform_account_id: other,
                    scheduled_time: None,
                },
                &publisher,
            ))
            .await
            .expect_err("not a target");
    assert_eq!(not_target.code(), Code::InvalidArgument);
    assert_eq!(not_target.get_details_bad_request().expect("details").field_violations[0].field, "platform_account_id");
    PlatformAccountServiceClient::new(d.c.world.identity.channel())
        .freeze_platform_account(with_token(
            ipb::FreezePlatformAccountRequest {
                request_id: rid(),
                platform_account_id: d.account.clone(),
                reason: "异常登录".into(),
                etag: String::new(),
            },
            &d.c.world.admin_token,
        ))
        .await
        .expect("frozen");
    assert_eq!(rule(&schedule(&d, &publisher, &approved).await.expect_err("frozen")), "R2.3.3");
}

async fn manual_publications_need_approval_before_the_post_and_evidence_r3_2_1_r3_3_1(db: TestDatabase) {
    let d = desk(db).await;
    let (_, publisher) = publisher(&d).await;
    // Posted by hand just now: after the approval, not in the future.
    let manual = |draft: &pb::Draft, evidence: Option<cpb::Evidence>| pb::RecordManualPublicationRequest {
        request_id: rid(),
        draft_id: draft.id.clone(),
        platform_account_id: d.account.clone(),
        publish_time: Some(prost_types::Timestamp::from(std::time::SystemTime::from(d.c.core.now()))),
        url: "https://weibo.example/bureau/1".into(),
        evidence,
    };
    let in_review = submit(&d, &create(&d, "审核中的稿件。").await).await.expect("submitted");
    let refused =
        d.c.publications()
            .record_manual_publication(with_token(manual(&in_review, Some(evidence())), &publisher))
            .await
            .expect_err("not approved");
    assert_eq!(rule(&refused), "R3.2.1");

    let draft = approved(&d, "市局发布手工发布的稿件。").await;
    // A post made by hand before the review was complete is a breach, not a publication.
    let mut early = manual(&draft, Some(evidence()));
    let approved_at = d.c.core.now().timestamp();
    early.publish_time = Some(prost_types::Timestamp { seconds: approved_at - 3600, nanos: 0 });
    let refused =
        d.c.publications()
            .record_manual_publication(with_token(early, &publisher))
            .await
            .expect_err("posted before approval");
    assert_eq!(rule(&refused), "R3.2.1");
    assert!(refused.message().contains("before the review"), "{}", refused.message());
    let missing =
        d.c.publications()
            .record_manual_publication(with_token(manual(&draft, None), &publisher))
            .await
            .expect_err("no evidence");
    assert_eq!(missing.code(), Code::InvalidArgument);
    let recorded =
        d.c.publications()
            .record_manual_publication(with_token(manual(&draft, Some(evidence())), &publisher))
            .await
            .expect("recorded")
            .into_inner()
            .publication
            .expect("publication");
    assert_eq!(
        (recorded.state, recorded.channel),
        (pb::PublicationState::Published as i32, pb::PublicationChannel::Manual as i32)
    );
    assert_eq!(recorded.evidence.as_ref().map(|e| e.uri.as_str()), Some("https://dms.bureau.example/evidence/42"));
    assert_eq!(recorded.approver_user_ids.len(), 3);

    let by_connector =
        d.c.publications()
            .retract_publication(with_token(
                pb::RetractPublicationRequest {
                    request_id: rid(),
                    publication_id: recorded.id.clone(),
                    reason: "撤回".into(),
                    ..Default::default()
                },
                &publisher,
            ))
            .await
            .expect_err("published by hand: retracted by hand");
    assert_eq!(rule(&by_connector), "R3.3.3");
    let retracted =
        d.c.publications()
            .retract_publication(with_token(
                pb::RetractPublicationRequest {
                    request_id: rid(),
                    publication_id: recorded.id.clone(),
                    reason: "撤回".into(),
                    manual_evidence: Some(cpb::Evidence {
                        uri: "https://dms.bureau.example/evidence/43".into(),
                        ..evidence()
                    }),
                    etag: String::new(),
                },
                &publisher,
            ))
            .await
            .expect("retracted by hand")
            .into_inner()
            .publication
            .expect("publication");
    assert_eq!(retracted.state, pb::PublicationState::Retracted as i32);
    assert_eq!(retracted.evidence.map(|e| e.uri), Some("https://dms.bureau.example/evidence/43".into()));
}

storage_tests!(
    scheduled_published_retracted_and_feedback_closed_r3_3_1,
    scheduling_refusals_name_their_rules_r3_3_1,
    manual_publications_need_approval_before_the_post_and_evidence_r3_2_1_r3_3_1,
);
