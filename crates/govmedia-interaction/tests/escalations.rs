//! Missed deadlines escalate on their own (R4.1.1, R4.2.1, R4.2.2): the deadline watch
//! raises each once per deadline to the responsible department's queue, with an audit
//! record; the department head reads and acknowledges it; it resolves itself when the
//! item is answered. Real gRPC, both stores, a clock the test moves.

mod common;

use std::time::Duration;

use common::{Desk, beijing, desk, violated_rule};
use govmedia_interaction::deadline_watch::{DeadlineWatch, Round};
use govmedia_proto::common::v1 as cpb;
use govmedia_proto::interaction::v1 as pb;
use govmedia_proto::interaction::v1::escalation_service_client::EscalationServiceClient;
use govmedia_testkit::{TestDatabase, storage_tests, with_token};
use govmedia_world::rid;
use tonic::Code;
use tonic::transport::Channel;

fn escalations(d: &Desk) -> EscalationServiceClient<Channel> {
    EscalationServiceClient::new(d.i.server.channel())
}

async fn queue(d: &Desk, department: &str, token: &str) -> Result<Vec<pb::Escalation>, tonic::Status> {
    let request = pb::ListEscalationsRequest { department_id: department.into(), ..Default::default() };
    Ok(escalations(d).list_escalations(with_token(request, token)).await?.into_inner().escalations)
}

async fn round_at(d: &Desk, at: chrono::DateTime<chrono::Utc>) -> Round {
    d.i.clock.set(at);
    DeadlineWatch::new(d.i.core.clone(), Duration::from_secs(60)).round().await.expect("a round")
}

fn message(id: &str, text: &str) -> pb::IncomingPrivateMessage {
    pb::IncomingPrivateMessage {
        platform_message_id: id.into(),
        correspondent_platform_id: "u1".into(),
        correspondent_name: "市民".into(),
        text: text.into(),
        ..Default::default()
    }
}

async fn ingest(d: &Desk, messages: Vec<pb::IncomingPrivateMessage>) -> String {
    let request = pb::IngestPrivateMessagesRequest { platform_account_id: d.account.clone(), messages };
    let r = d.i.conversations().ingest_private_messages(with_token(request, &d.connector)).await.expect("ingested");
    r.into_inner().conversation_ids[0].clone()
}

async fn overdue_items_escalate_to_the_department_heads_queue_r4_1_1_r4_2_1_r4_2_2(db: TestDatabase) {
    let d = desk(db).await;
    let w = &d.i.world;
    let dep = cpb::ScopeKind::Department;
    // The supervising leader bound to a department is its head (分管领导).
    let (head_id, head) = w.staff("head", &d.department, &[("supervising_leader", dep, &d.department)]).await;
    let housing = w.department("Housing", "HSG").await;
    let (_, housing_head) = w.staff("housing_head", &housing, &[("supervising_leader", dep, &housing)]).await;

    // Friday 16:00: a comment (due Monday 11:30), a private message (due Monday 16:00)
    // referred to Housing (due the next Friday 17:30).
    let comment = d.ingest(vec![common::incoming("c1", "公积金怎么提取？")]).await.results[0].comment_id.clone();
    let conversation = ingest(&d, vec![message("m1", "小区电梯停运一周了")]).await;
    let referral =
        d.i.conversations()
            .create_referral(with_token(
                pb::CreateReferralRequest {
                    request_id: rid(),
                    conversation_id: conversation.clone(),
                    department_id: housing.clone(),
                    summary: "请核实电梯停运情况".into(),
                    ..Default::default()
                },
                &d.moderator,
            ))
            .await
            .expect("referred")
            .into_inner()
            .referral
            .expect("referral");

    assert_eq!(round_at(&d, beijing(2026, 11, 30, 11, 29)).await, Round::default(), "nothing is late yet");
    let first = round_at(&d, beijing(2026, 11, 30, 11, 31)).await;
    assert_eq!(first.escalated, 1, "{first:?}");
    assert_eq!(round_at(&d, beijing(2026, 11, 30, 11, 40)).await.escalated, 0, "once per deadline");

    let mine = queue(&d, &d.department, &head).await.expect("the head's queue");
    assert_eq!(mine.len(), 1);
    let e = &mine[0];
    assert_eq!((e.item_type, e.item_id.as_str()), (pb::EscalatedItemType::Comment as i32, comment.as_str()));
    assert_eq!((e.state, e.rule_id.as_str()), (pb::EscalationState::Open as i32, "R4.1.1"));
    assert_eq!(e.due_time.expect("due").seconds, beijing(2026, 11, 30, 11, 30).timestamp());
    assert_eq!(e.department_id, d.department);

    // Not the moderators' queue, and not another department's head's.
    let refused = queue(&d, &d.department, &d.moderator).await.expect_err("a moderator is no head");
    assert_eq!(refused.code(), Code::PermissionDenied);
    let refused = queue(&d, &d.department, &housing_head).await.expect_err("another department's head");
    assert_eq!(refused.code(), Code::PermissionDenied);
    let refused = queue(&d, "", &head).await.expect_err("a department's head reads only that department's");
    assert_eq!(refused.code(), Code::PermissionDenied);

    // The head takes it in hand, once.
    let ack = |token: String, note: &str| {
        let request = pb::AcknowledgeEscalationRequest {
            request_id: rid(),
            escalation_id: e.id.clone(),
            note: note.into(),
            ..Default::default()
        };
        let mut client = escalations(&d);
        async move { client.acknowledge_escalation(with_token(request, &token)).await }
    };
    let refused = ack(d.moderator.clone(), "").await.expect_err("a moderator cannot acknowledge");
    assert_eq!(refused.code(), Code::PermissionDenied);
    let acknowledged =
        ack(head.clone(), "已安排专人今日答复").await.expect("acknowledged").into_inner().escalation.expect("e");
    assert_eq!(acknowledged.state, pb::EscalationState::Acknowledged as i32);
    assert_eq!(
        (acknowledged.acknowledged_by.as_str(), acknowledged.note.as_str()),
        (head_id.as_str(), "已安排专人今日答复")
    );
    let again = ack(head.clone(), "").await.expect_err("acknowledged already");
    assert_eq!((again.code(), violated_rule(&again).as_str()), (Code::FailedPrecondition, "R4.1.1"));

    // Answering the comment resolves its escalation.
    d.i.comments()
        .dismiss_comment(with_token(
            pb::DismissCommentRequest {
                request_id: rid(),
                comment_id: comment.clone(),
                note: "已电话答复".into(),
                ..Default::default()
            },
            &d.moderator,
        ))
        .await
        .expect("dismissed");
    assert_eq!(round_at(&d, beijing(2026, 11, 30, 11, 45)).await.resolved, 1);
    let resolved = escalations(&d)
        .get_escalation(with_token(pb::GetEscalationRequest { escalation_id: e.id.clone() }, &head))
        .await
        .expect("escalation")
        .into_inner()
        .escalation
        .expect("e");
    assert_eq!(resolved.state, pb::EscalationState::Resolved as i32);
    assert!(resolved.resolve_time.is_some());

    // The private message: escalated at its deadline; answered, then asked again, it
    // escalates again at the new deadline.
    assert_eq!(round_at(&d, beijing(2026, 11, 30, 16, 1)).await.escalated, 1);
    d.i.clock.set(beijing(2026, 11, 30, 16, 5));
    d.i.conversations()
        .reply_to_conversation(with_token(
            pb::ReplyToConversationRequest {
                request_id: rid(),
                conversation_id: conversation.clone(),
                text: "已转住建部门核实。".into(),
            },
            &d.moderator,
        ))
        .await
        .expect("answered");
    d.i.clock.set(beijing(2026, 11, 30, 16, 6));
    ingest(&d, vec![message("m2", "什么时候能修好？")]).await;
    let answered = round_at(&d, beijing(2026, 11, 30, 16, 10)).await;
    assert_eq!((answered.escalated, answered.resolved), (0, 1), "the first deadline was met late; the new one runs");
    assert_eq!(round_at(&d, beijing(2026, 12, 1, 16, 7)).await.escalated, 1, "the new deadline, missed");
    let conversations: Vec<_> = queue(&d, &d.department, &head)
        .await
        .expect("queue")
        .into_iter()
        .filter(|e| e.item_type == pb::EscalatedItemType::Conversation as i32)
        .collect();
    assert_eq!(conversations.len(), 2);
    assert!(conversations.iter().all(|e| e.item_id == conversation && e.rule_id == "R4.2.1"));

    // The referral goes to the receiving department's head.
    assert_eq!(round_at(&d, beijing(2026, 12, 4, 17, 31)).await.escalated, 1);
    let theirs = queue(&d, &housing, &housing_head).await.expect("Housing's queue");
    assert_eq!(theirs.len(), 1);
    assert_eq!((theirs[0].item_id.as_str(), theirs[0].rule_id.as_str()), (referral.id.as_str(), "R4.2.2"));
    assert!(queue(&d, &housing, &head).await.is_err(), "Publicity's head does not read Housing's queue");

    let actions = d.i.outbox_actions().await;
    let count = |a: &str| actions.iter().filter(|x| *x == a).count();
    assert_eq!(count("comment.escalated"), 1);
    assert_eq!(count("conversation.escalated"), 2);
    assert_eq!(count("referral.escalated"), 1);
    assert_eq!(count("escalation.acknowledged"), 1);
    assert_eq!(count("escalation.resolved"), 2);
}

async fn two_watches_escalate_a_deadline_once_r4_1_1(db: TestDatabase) {
    let d = desk(db).await;
    d.ingest(vec![common::incoming("c1", "请问办事大厅几点开门？")]).await;
    d.i.clock.set(beijing(2026, 11, 30, 12, 0));
    let watch = || DeadlineWatch::new(d.i.core.clone(), Duration::from_secs(60));
    let (a, b) = (watch(), watch());
    let (a, b) = tokio::join!(a.round(), b.round());
    let total = a.expect("a").escalated + b.expect("b").escalated;
    assert_eq!(total, 1, "the deadline is the escalation's key");
    let actions = d.i.outbox_actions().await;
    assert_eq!(actions.iter().filter(|a| *a == "comment.escalated").count(), 1);
}

async fn escalation_requests_are_checked_whole(db: TestDatabase) {
    let d = desk(db).await;
    let status = escalations(&d)
        .acknowledge_escalation(with_token(
            pb::AcknowledgeEscalationRequest {
                request_id: "not-a-uuid".into(),
                escalation_id: "nope".into(),
                note: "x".repeat(2_001),
                ..Default::default()
            },
            &d.lead,
        ))
        .await
        .expect_err("bad request");
    assert_eq!(status.code(), Code::InvalidArgument);
    use tonic_types::StatusExt;
    let fields: Vec<String> = status
        .get_details_bad_request()
        .expect("field violations")
        .field_violations
        .into_iter()
        .map(|v| v.field)
        .collect();
    assert_eq!(fields, ["request_id", "escalation_id", "note"]);
    let status = escalations(&d)
        .list_escalations(with_token(
            pb::ListEscalationsRequest { state: 42, item_type: 9, ..Default::default() },
            &d.lead,
        ))
        .await
        .expect_err("bad enums");
    assert_eq!(status.code(), Code::InvalidArgument);
    let status = escalations(&d)
        .get_escalation(with_token(
            pb::GetEscalationRequest { escalation_id: uuid::Uuid::now_v7().to_string() },
            &d.lead,
        ))
        .await
        .expect_err("none");
    assert_eq!(status.code(), Code::NotFound);
}

storage_tests!(
    overdue_items_escalate_to_the_department_heads_queue_r4_1_1_r4_2_1_r4_2_2,
    two_watches_escalate_a_deadline_once_r4_1_1,
    escalation_requests_are_checked_whole,
);
