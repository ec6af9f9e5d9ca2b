//! Public supervision over real gRPC with a real identity service, on PostgreSQL and
//! SQLite (R8.2.1, R8.2.2): feedback recorded by the office, triaged with a deadline in
//! working days, answered by the department, closed with the adjustment it led to; the
//! person's contact masked for everyone who does not answer, and never in the log.

mod common;

use common::World;
use govmedia_proto::audit::v1 as pb;
use govmedia_proto::audit::v1::public_feedback_service_client::PublicFeedbackServiceClient;
use govmedia_proto::audit::v1::rectification_service_client::RectificationServiceClient;
use govmedia_proto::common::v1 as cpb;
use govmedia_testkit::{TestDatabase, storage_tests, with_token};
use tonic::Code;
use tonic::transport::Channel;
use tonic_types::StatusExt;

const PHONE: &str = "13812348000";

fn rid() -> String {
    uuid::Uuid::now_v7().to_string()
}

fn client(w: &World) -> PublicFeedbackServiceClient<Channel> {
    PublicFeedbackServiceClient::new(w.audit.channel())
}

fn rules(status: &tonic::Status) -> Vec<String> {
    status
        .get_details_precondition_failure()
        .map(|p| p.violations.into_iter().map(|v| v.r#type).collect())
        .unwrap_or_default()
}

async fn get(w: &World, id: &str, token: &str) -> Result<pb::PublicFeedback, tonic::Status> {
    client(w)
        .get_public_feedback(with_token(pb::GetPublicFeedbackRequest { public_feedback_id: id.into() }, token))
        .await
        .map(|r| r.into_inner().public_feedback.expect("feedback"))
}

async fn close(
    w: &World,
    f: &pb::PublicFeedback,
    adjustments: Vec<pb::Adjustment>,
    token: &str,
) -> Result<pb::PublicFeedback, tonic::Status> {
    client(w)
        .close_public_feedback(with_token(
            pb::ClosePublicFeedbackRequest {
                request_id: rid(),
                public_feedback_id: f.id.clone(),
                adjustments,
                no_adjustment_reason: String::new(),
                etag: f.etag.clone(),
            },
            token,
        ))
        .await
        .map(|r| r.into_inner().public_feedback.expect("feedback"))
}

async fn feedback_is_triaged_answered_and_linked_to_its_adjustment_r8_2_2(db: TestDatabase) {
    let w = World::start(db).await;
    let department = w.department("Department of Transport", "TRANS").await;
    let scope = [("editor", cpb::ScopeKind::Department, department.as_str())];
    let (editor_id, editor) = w.staff("trans-editor", &department, &scope).await;
    let account = w.platform_account(cpb::Platform::Weibo, "trans-weibo", &department, &editor_id).await;
    let other = w.department("Department of Parks", "PARKS").await;
    let (_, outsider) =
        w.staff("parks-editor", &other, &[("editor", cpb::ScopeKind::Department, other.as_str())]).await;

    let recorded = client(&w)
        .record_public_feedback(with_token(
            pb::RecordPublicFeedbackRequest {
                request_id: rid(),
                public_feedback: Some(pb::PublicFeedback {
                    channel: pb::FeedbackChannel::Hotline as i32,
                    platform_account_id: account.clone(),
                    subject: "Road closure post gave the wrong date".into(),
                    content: format!("The post says the 3rd, the signs say the 5th. Call me back on {PHONE}."),
                    contact_name: "张先生".into(),
                    contact: PHONE.into(),
                    ..Default::default()
                }),
            },
            &w.auditor_token,
        ))
        .await
        .expect("recorded")
        .into_inner()
        .public_feedback
        .expect("feedback");
    assert_eq!(recorded.state, pb::PublicFeedbackState::Received as i32);
    assert_eq!((recorded.contact.as_str(), recorded.contact_name.as_str()), ("138****8000", "张**"));
    assert!(!recorded.content.contains(PHONE), "{}", recorded.content);

    // Only the bureau office triages; the department answers once it has it.
    let triage = |token: String, etag: String| {
        let mut c = client(&w);
        let (id, department) = (recorded.id.clone(), department.clone());
        async move {
            c.triage_public_feedback(with_token(
                pb::TriagePublicFeedbackRequest {
                    request_id: rid(),
                    public_feedback_id: id,
                    department_id: department,
                    working_days: 5,
                    etag,
                },
                &token,
            ))
            .await
        }
    };
    assert_eq!(
        triage(editor.clone(), recorded.etag.clone()).await.expect_err("office only").code(),
        Code::PermissionDenied
    );
    let triaged = triage(w.auditor_token.clone(), recorded.etag.clone()).await.expect("triaged").into_inner();
    let triaged = triaged.public_feedback.expect("feedback");
    assert_eq!((triaged.state, triaged.working_days), (pb::PublicFeedbackState::Triaged as i32, 5));
    assert!(triaged.due_time.is_some() && !triaged.overdue);

    // The department's editor sees the contact to call back; another department sees
    // nothing; the office's list shows it masked.
    let shown = get(&w, &triaged.id, &editor).await.expect("read");
    assert_eq!(shown.contact, PHONE);
    assert_eq!(get(&w, &triaged.id, &outsider).await.expect_err("other department").code(), Code::PermissionDenied);
    let listed = client(&w)
        .list_public_feedback(with_token(pb::ListPublicFeedbackRequest::default(), &w.auditor_token))
        .await
        .expect("listed")
        .into_inner()
        .public_feedback;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].contact, "138****8000");

    let answered = client(&w)
        .answer_public_feedback(with_token(
            pb::AnswerPublicFeedbackRequest {
                request_id: rid(),
                public_feedback_id: shown.id.clone(),
                answer: "Thank you: the date was wrong and the post is being corrected.".into(),
                answer_channel: "phone call".into(),
                etag: shown.etag.clone(),
            },
            &editor,
        ))
        .await
        .expect("answered")
        .into_inner()
        .public_feedback
        .expect("feedback");
    assert_eq!(answered.state, pb::PublicFeedbackState::Answered as i32);

    let bare = close(&w, &answered, Vec::new(), &editor).await.expect_err("an adjustment or a reason");
    assert_eq!((bare.code(), rules(&bare)), (Code::FailedPrecondition, vec!["R8.2.2".to_owned()]));
    let dangling =
        vec![pb::Adjustment { kind: pb::AdjustmentKind::Rectification as i32, id: rid(), note: String::new() }];
    assert_eq!(close(&w, &answered, dangling, &editor).await.expect_err("no such order").code(), Code::InvalidArgument);

    let order = RectificationServiceClient::new(w.audit.channel())
        .issue_rectification(with_token(
            pb::IssueRectificationRequest {
                request_id: rid(),
                rectification: Some(pb::Rectification {
                    source: pb::FindingSource::PublicFeedback as i32,
                    source_id: answered.id.clone(),
                    department_id: department.clone(),
                    responsible_user_id: editor_id.clone(),
                    platform_account_id: account.clone(),
                    title: "Check dates against the traffic notice before review".into(),
                    requirement: "Add the traffic notice to the review checklist".into(),
                    rule_id: "R3.2.3".into(),
                    working_days: 5,
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
    let correction = rid();
    let closed = close(
        &w,
        &answered,
        vec![
            pb::Adjustment {
                kind: pb::AdjustmentKind::CorrectionDraft as i32,
                id: correction.clone(),
                note: "correction post".into(),
            },
            pb::Adjustment {
                kind: pb::AdjustmentKind::Rectification as i32,
                id: order.id.clone(),
                note: String::new(),
            },
        ],
        &editor,
    )
    .await
    .expect("closed");
    assert_eq!(closed.state, pb::PublicFeedbackState::Closed as i32);
    let linked: Vec<&str> = closed.adjustments.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(linked, [correction.as_str(), order.id.as_str()]);

    let trail = w
        .records(
            &[
                "public_feedback.recorded",
                "public_feedback.triaged",
                "public_feedback.answered",
                "public_feedback.closed",
            ],
            4,
        )
        .await;
    assert_eq!(trail.last().map(|e| e.rule_id.as_str()), Some("R8.2.2"));
    for e in &trail {
        let said = format!("{} {:?}", e.reason, e.attributes);
        assert!(!said.contains(PHONE), "the contact reached the log: {said}");
    }
    assert!(trail.last().is_some_and(|e| e.attributes.get("adjustments").is_some_and(|a| a.contains(&order.id))));
}

storage_tests!(feedback_is_triaged_answered_and_linked_to_its_adjustment_r8_2_2);
