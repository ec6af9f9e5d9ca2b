//! Private messages over real gRPC on both stores: conversations per correspondent,
//! assignment with a cap, screened replies, important records and referrals to a
//! department with a due date in working days (R4.2.1, R4.2.2), and the response-time
//! report (R4.1.1, R4.2.1).

mod common;

use common::{Desk, beijing, desk, desk_with, incoming, violated_rule};
use govmedia_domain::clock::Clock;
use govmedia_proto::common::v1 as cpb;
use govmedia_proto::interaction::v1 as pb;
use govmedia_testkit::{TestDatabase, storage_tests, with_token};
use govmedia_world::rid;
use tonic::Code;

fn message(id: &str, from: &str, text: &str) -> pb::IncomingPrivateMessage {
    pb::IncomingPrivateMessage {
        platform_message_id: id.into(),
        correspondent_platform_id: from.into(),
        correspondent_name: format!("市民{from}"),
        text: text.into(),
        ..Default::default()
    }
}

async fn ingest(d: &Desk, messages: Vec<pb::IncomingPrivateMessage>) -> pb::IngestPrivateMessagesResponse {
    d.i.conversations()
        .ingest_private_messages(with_token(
            pb::IngestPrivateMessagesRequest { platform_account_id: d.account.clone(), messages },
            &d.connector,
        ))
        .await
        .expect("ingested")
        .into_inner()
}

async fn messages_gather_into_one_conversation_per_correspondent_r4_2_1(db: TestDatabase) {
    let d = desk(db).await;
    let r = ingest(
        &d,
        vec![
            message("m1", "u1", "你好，我想咨询公积金提取"),
            message("m2", "u2", "投诉：小区噪音扰民"),
            message("m3", "u1", "需要带什么材料？"),
            message("m1", "u1", "你好，我想咨询公积金提取"),
        ],
    )
    .await;
    assert_eq!((r.ingested_count, r.duplicate_count), (3, 1));
    assert_eq!(r.conversation_ids.len(), 2);
    let mut conversations = d.i.conversations();
    let first = conversations
        .get_conversation(with_token(
            pb::GetConversationRequest { conversation_id: r.conversation_ids[0].clone() },
            &d.moderator,
        ))
        .await
        .expect("conversation")
        .into_inner()
        .conversation
        .expect("conversation");
    assert_eq!((first.message_count, first.state), (2, pb::ConversationState::AwaitingResponse as i32));
    // A private message waits one working day, its length (420 minutes, R4.2.1): 90 on
    // Friday from 16:00, 180 on Monday morning, 150 after lunch from 13:30.
    assert_eq!(first.response_due_time.expect("due").seconds, beijing(2026, 11, 30, 16, 0).timestamp());

    let again = ingest(&d, vec![message("m3", "u1", "需要带什么材料？")]).await;
    assert_eq!((again.ingested_count, again.duplicate_count), (0, 1));

    let status = conversations
        .reply_to_conversation(with_token(
            pb::ReplyToConversationRequest {
                request_id: rid(),
                conversation_id: first.id.clone(),
                text: "问这么多，傻逼".into(),
            },
            &d.moderator,
        ))
        .await
        .expect_err("refused");
    assert_eq!(status.code(), Code::FailedPrecondition);
    d.i.clock.advance(chrono::Duration::minutes(20));
    let replied = conversations
        .reply_to_conversation(with_token(
            pb::ReplyToConversationRequest {
                request_id: rid(),
                conversation_id: first.id.clone(),
                text: "您好，请携带身份证和购房合同到服务大厅办理。".into(),
            },
            &d.moderator,
        ))
        .await
        .expect("replied")
        .into_inner();
    let after = replied.conversation.expect("conversation");
    assert_eq!(after.state, pb::ConversationState::Answered as i32);
    assert_eq!(after.time_to_first_response.expect("ttfr").seconds, 20 * 60);
    let listed = conversations
        .list_messages(with_token(
            pb::ListMessagesRequest { conversation_id: first.id.clone(), ..Default::default() },
            &d.moderator,
        ))
        .await
        .expect("messages")
        .into_inner()
        .messages;
    assert_eq!(
        listed.iter().map(|m| m.direction).collect::<Vec<_>>(),
        [
            pb::MessageDirection::Inbound as i32,
            pb::MessageDirection::Inbound as i32,
            pb::MessageDirection::Outbound as i32
        ]
    );
    // A new question reopens the wait.
    ingest(&d, vec![message("m4", "u1", "周末可以办吗？")]).await;
    let waiting = conversations
        .list_conversations(with_token(
            pb::ListConversationsRequest {
                platform_account_id: d.account.clone(),
                state: pb::ConversationState::AwaitingResponse as i32,
                ..Default::default()
            },
            &d.moderator,
        ))
        .await
        .expect("list")
        .into_inner()
        .conversations;
    assert_eq!(waiting.len(), 2);
    let closed = conversations
        .close_conversation(with_token(
            pb::CloseConversationRequest {
                request_id: rid(),
                conversation_id: first.id.clone(),
                note: "已答复".into(),
                ..Default::default()
            },
            &d.moderator,
        ))
        .await
        .expect("closed")
        .into_inner()
        .conversation
        .expect("conversation");
    assert_eq!(closed.state, pb::ConversationState::Closed as i32);
    // After closing, the same person starts a new conversation.
    let fresh = ingest(&d, vec![message("m5", "u1", "还有一个问题")]).await;
    assert_ne!(fresh.conversation_ids[0], first.id);
}

async fn assignment_is_capped_per_person(db: TestDatabase) {
    let policy = govmedia_interaction::Policy {
        max_open_conversations: 2,
        ..govmedia_interaction::Policy::standard().expect("policy")
    };
    let d = desk_with(db, policy).await;
    let r = ingest(&d, (0..3).map(|i| message(&format!("a{i}"), &format!("p{i}"), "咨询")).collect()).await;
    let mut conversations = d.i.conversations();
    for id in &r.conversation_ids[..2] {
        conversations
            .assign_conversation(with_token(
                pb::AssignConversationRequest {
                    request_id: rid(),
                    conversation_id: id.clone(),
                    assignee_user_id: d.moderator_id.clone(),
                    ..Default::default()
                },
                &d.lead,
            ))
            .await
            .expect("assigned");
    }
    let mine = conversations
        .list_conversations(with_token(
            pb::ListConversationsRequest {
                assignee_user_id: d.moderator_id.clone(),
                platform_account_id: d.account.clone(),
                ..Default::default()
            },
            &d.moderator,
        ))
        .await
        .expect("mine")
        .into_inner()
        .conversations;
    assert_eq!(mine.len(), 2);
    let third = pb::AssignConversationRequest {
        request_id: rid(),
        conversation_id: r.conversation_ids[2].clone(),
        assignee_user_id: d.moderator_id.clone(),
        ..Default::default()
    };
    let status = conversations.assign_conversation(with_token(third.clone(), &d.lead)).await.expect_err("over the cap");
    assert_eq!((status.code(), violated_rule(&status).as_str()), (Code::FailedPrecondition, "R4.2.1"));
    // Closing one frees a place.
    conversations
        .close_conversation(with_token(
            pb::CloseConversationRequest {
                request_id: rid(),
                conversation_id: r.conversation_ids[0].clone(),
                ..Default::default()
            },
            &d.moderator,
        ))
        .await
        .expect("closed");
    conversations
        .assign_conversation(with_token(pb::AssignConversationRequest { request_id: rid(), ..third }, &d.lead))
        .await
        .expect("assigned after closing one");
    // Someone who may not handle messages cannot be given one.
    let (outsider, _) = d.i.world.staff("outsider", &d.department, &[]).await;
    let status = conversations
        .assign_conversation(with_token(
            pb::AssignConversationRequest {
                request_id: rid(),
                conversation_id: r.conversation_ids[0].clone(),
                assignee_user_id: outsider,
                ..Default::default()
            },
            &d.lead,
        ))
        .await
        .expect_err("outsider");
    assert_eq!(violated_rule(&status), "R2.2.2");
}

async fn an_important_message_is_referred_and_followed_to_its_outcome_r4_2_2(db: TestDatabase) {
    let d = desk(db).await;
    let housing = d.i.world.department("Housing", "HOU").await;
    let (_, clerk) = d.i.world.staff("clerk", &housing, &[("editor", cpb::ScopeKind::Department, &housing)]).await;
    let r = ingest(&d, vec![message("i1", "u9", "小区电梯停运一周无人处理")]).await;
    let id = r.conversation_ids[0].clone();
    let mut conversations = d.i.conversations();
    let marked = conversations
        .mark_conversation_important(with_token(
            pb::MarkConversationImportantRequest {
                request_id: rid(),
                conversation_id: id.clone(),
                note: "民生诉求，需住建部门处理".into(),
            },
            &d.moderator,
        ))
        .await
        .expect("marked")
        .into_inner()
        .conversation
        .expect("conversation");
    assert!(marked.important);
    assert_eq!(marked.marked_important_by, d.moderator_id);

    let status = conversations
        .create_referral(with_token(
            pb::CreateReferralRequest {
                request_id: rid(),
                conversation_id: id.clone(),
                department_id: housing.clone(),
                ..Default::default()
            },
            &d.moderator,
        ))
        .await
        .expect_err("no summary");
    assert_eq!(status.code(), Code::InvalidArgument);
    let referral = conversations
        .create_referral(with_token(
            pb::CreateReferralRequest {
                request_id: rid(),
                conversation_id: id.clone(),
                department_id: housing.clone(),
                summary: "请核实电梯停运情况并答复市民".into(),
                ..Default::default()
            },
            &d.moderator,
        ))
        .await
        .expect("referred")
        .into_inner()
        .referral
        .expect("referral");
    // Five working days after Friday: the end of the following Friday.
    assert_eq!(referral.due_time.expect("due").seconds, beijing(2026, 12, 4, 17, 30).timestamp());
    assert_eq!(referral.state, pb::ReferralState::Sent as i32);

    // Closing before the outcome is refused; the sending desk cannot answer for the department.
    let status = conversations
        .close_referral(with_token(
            pb::CloseReferralRequest { request_id: rid(), referral_id: referral.id.clone(), ..Default::default() },
            &d.moderator,
        ))
        .await
        .expect_err("no outcome yet");
    assert_eq!(violated_rule(&status), "R4.2.2");
    let status = conversations
        .acknowledge_referral(with_token(
            pb::AcknowledgeReferralRequest {
                request_id: rid(),
                referral_id: referral.id.clone(),
                ..Default::default()
            },
            &d.moderator,
        ))
        .await
        .expect_err("not the receiving department");
    assert_eq!(status.code(), Code::PermissionDenied);

    let acknowledged = conversations
        .acknowledge_referral(with_token(
            pb::AcknowledgeReferralRequest {
                request_id: rid(),
                referral_id: referral.id.clone(),
                ..Default::default()
            },
            &clerk,
        ))
        .await
        .expect("acknowledged")
        .into_inner()
        .referral
        .expect("referral");
    assert_eq!(acknowledged.state, pb::ReferralState::Acknowledged as i32);
    let queue = conversations
        .list_referrals(with_token(
            pb::ListReferralsRequest { department_id: housing.clone(), ..Default::default() },
            &clerk,
        ))
        .await
        .expect("department's referrals")
        .into_inner()
        .referrals;
    assert_eq!(queue.len(), 1);

    // Late: a working week and a bit later, still without an outcome.
    d.i.clock.set(beijing(2026, 12, 4, 17, 31));
    let overdue = conversations
        .list_referrals(with_token(
            pb::ListReferralsRequest { department_id: housing.clone(), overdue_only: true, ..Default::default() },
            &clerk,
        ))
        .await
        .expect("overdue")
        .into_inner()
        .referrals;
    assert_eq!(overdue.len(), 1);
    assert!(overdue[0].overdue);

    let answered = conversations
        .record_referral_outcome(with_token(
            pb::RecordReferralOutcomeRequest {
                request_id: rid(),
                referral_id: referral.id.clone(),
                outcome: "已协调物业，电梯于12月5日恢复运行".into(),
                ..Default::default()
            },
            &clerk,
        ))
        .await
        .expect("outcome")
        .into_inner()
        .referral
        .expect("referral");
    assert_eq!(answered.state, pb::ReferralState::OutcomeRecorded as i32);
    let closed = conversations
        .close_referral(with_token(
            pb::CloseReferralRequest { request_id: rid(), referral_id: referral.id.clone(), ..Default::default() },
            &d.moderator,
        ))
        .await
        .expect("closed")
        .into_inner()
        .referral
        .expect("referral");
    assert_eq!(closed.state, pb::ReferralState::Closed as i32);
    assert!(closed.overdue, "the outcome came after the due time");
    let conversation = conversations
        .get_conversation(with_token(pb::GetConversationRequest { conversation_id: id }, &d.moderator))
        .await
        .expect("conversation")
        .into_inner()
        .conversation
        .expect("conversation");
    assert_eq!(conversation.referral_ids, vec![referral.id]);
    let actions = d.i.outbox_actions().await;
    for expected in [
        "conversation.marked_important",
        "referral.created",
        "referral.acknowledged",
        "referral.outcome_recorded",
        "referral.closed",
    ] {
        assert!(actions.contains(&expected.to_owned()), "{expected} in {actions:?}");
    }
}

async fn the_response_time_report_counts_per_person_and_account(db: TestDatabase) {
    let d = desk(db).await;
    let start = d.i.clock.now();
    let c = d.ingest(vec![incoming("r1", "问题一"), incoming("r2", "问题二")]).await;
    let m = ingest(&d, vec![message("p1", "u1", "咨询")]).await;
    d.i.clock.advance(chrono::Duration::minutes(10));
    let mut comments = d.i.comments();
    let reply = comments
        .reply_to_comment(with_token(
            pb::ReplyToCommentRequest {
                request_id: rid(),
                comment_id: c.results[0].comment_id.clone(),
                text: "您好，已收到。".into(),
            },
            &d.moderator,
        ))
        .await
        .expect("reply")
        .into_inner()
        .reply
        .expect("reply");
    comments
        .mark_reply_posted(with_token(
            pb::MarkReplyPostedRequest {
                request_id: rid(),
                reply_id: reply.id,
                platform_reply_id: "w-9".into(),
                ..Default::default()
            },
            &d.moderator,
        ))
        .await
        .expect("posted");
    d.i.clock.advance(chrono::Duration::minutes(20));
    d.i.conversations()
        .reply_to_conversation(with_token(
            pb::ReplyToConversationRequest {
                request_id: rid(),
                conversation_id: m.conversation_ids[0].clone(),
                text: "您好。".into(),
            },
            &d.lead,
        ))
        .await
        .expect("replied");
    let report =
        d.i.conversations()
            .get_response_time_report(with_token(
                pb::GetResponseTimeReportRequest {
                    period: Some(cpb::TimeRange {
                        start_time: Some(prost_types::Timestamp { seconds: start.timestamp() - 60, nanos: 0 }),
                        end_time: Some(prost_types::Timestamp { seconds: start.timestamp() + 3600, nanos: 0 }),
                    }),
                    platform_account_id: d.account.clone(),
                    ..Default::default()
                },
                &d.lead,
            ))
            .await
            .expect("report")
            .into_inner();
    let overall = report.overall.expect("overall");
    assert_eq!((overall.item_count, overall.responded_count), (3, 2));
    assert_eq!(overall.median_time_to_first_response.expect("median").seconds, 10 * 60);
    assert_eq!(overall.average_time_to_first_response.expect("average").seconds, 20 * 60);
    assert!((overall.within_deadline_share - 1.0).abs() < 1e-9);
    let people: Vec<(&str, u32)> =
        report.by_user.iter().map(|r| (r.user_id.as_str(), r.figures.as_ref().expect("f").responded_count)).collect();
    assert!(people.contains(&(d.moderator_id.as_str(), 1)) && people.contains(&(d.lead_id.as_str(), 1)), "{people:?}");
    assert_eq!(report.by_account.len(), 1);

    let status =
        d.i.conversations()
            .get_response_time_report(with_token(pb::GetResponseTimeReportRequest::default(), &d.lead))
            .await
            .expect_err("no period");
    assert_eq!(status.code(), Code::InvalidArgument);
    let status =
        d.i.conversations()
            .get_response_time_report(with_token(
                pb::GetResponseTimeReportRequest {
                    period: Some(cpb::TimeRange {
                        start_time: Some(prost_types::Timestamp { seconds: start.timestamp() - 60, nanos: 0 }),
                        end_time: Some(prost_types::Timestamp { seconds: start.timestamp() + 3600, nanos: 0 }),
                    }),
                    platform_account_id: d.account.clone(),
                    ..Default::default()
                },
                &d.moderator,
            ))
            .await
            .expect_err("moderators do not read reports");
    assert_eq!(status.code(), Code::PermissionDenied);
}

storage_tests!(
    messages_gather_into_one_conversation_per_correspondent_r4_2_1,
    assignment_is_capped_per_person,
    an_important_message_is_referred_and_followed_to_its_outcome_r4_2_2,
    the_response_time_report_counts_per_person_and_account,
);
