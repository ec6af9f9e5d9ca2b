//! Interaction end to end over loopback with the real identity, audit and interaction
//! services: a batch of comments arrives (a classified marking, an abusive one, an
//! ordinary one and a duplicate); the marking is hidden, the abuse queued for a
//! moderator by a rule, the duplicate ignored; a rude reply is refused with its finding
//! and a polite one goes out; an unanswered comment shows on the overdue list at the
//! right business-hours moment; a private message is marked important, referred to a
//! department and closed with its outcome; and interaction's outbox, relayed to the
//! audit service, leaves every step in the tamper-evident log (R4.1, R4.2, R1.3).

mod common;

use common::{beijing, desk, incoming};
use govmedia_kit::outbox::{GrpcAuditSink, Relay};
use govmedia_proto::audit::v1 as apb;
use govmedia_proto::common::v1 as cpb;
use govmedia_proto::interaction::v1 as pb;
use govmedia_testkit::{TestDatabase, storage_tests, with_token};
use govmedia_world::rid;
use tonic::Code;

async fn comments_and_messages_are_moderated_answered_and_audited(db: TestDatabase) {
    let d = desk(db).await;
    let w = &d.i.world;
    let housing = w.department("Housing", "HOU").await;
    let (_, clerk) = w.staff("clerk", &housing, &[("editor", cpb::ScopeKind::Department, &housing)]).await;
    let mut moderation = d.i.moderation();
    let mut comments = d.i.comments();
    let mut conversations = d.i.conversations();

    // Abuse goes to the duty moderator rather than vanishing.
    moderation
        .create_moderation_rule(with_token(
            pb::CreateModerationRuleRequest {
                request_id: rid(),
                moderation_rule: Some(pb::ModerationRule {
                    name: "abuse to the duty moderator".into(),
                    priority: 10,
                    condition: Some(pb::RuleCondition {
                        categories: vec![cpb::ScreeningCategory::Profanity as i32],
                        platform_account_id: d.account.clone(),
                        ..Default::default()
                    }),
                    actions: vec![
                        pb::RuleAction { kind: pb::RuleActionKind::FlagForReview as i32, ..Default::default() },
                        pb::RuleAction {
                            kind: pb::RuleActionKind::Assign as i32,
                            assignee_user_id: d.moderator_id.clone(),
                            ..Default::default()
                        },
                    ],
                    enabled: true,
                    ..Default::default()
                }),
            },
            &d.lead,
        ))
        .await
        .expect("rule");

    // Friday 16:00 in Beijing: the batch arrives.
    let batch = d
        .ingest(vec![
            incoming("w-1", "内部资料：绝密级会议纪要，速看"),
            incoming("w-2", "你们这帮傻逼只会发通知"),
            incoming("w-3", "请问新版社保卡在哪里领取？"),
            incoming("w-4", "老旧小区加装电梯什么时候开始报名？"),
            incoming("w-3", "请问新版社保卡在哪里领取？"),
        ])
        .await;
    assert_eq!((batch.ingested_count, batch.duplicate_count), (4, 1));
    let status: Vec<i32> = batch.results.iter().map(|r| r.status).collect();
    assert_eq!(
        status,
        [
            pb::CommentStatus::Hidden as i32,
            pb::CommentStatus::NeedsReview as i32,
            pb::CommentStatus::Open as i32,
            pb::CommentStatus::Open as i32,
            pb::CommentStatus::Open as i32,
        ]
    );
    assert!(batch.results[4].duplicate);
    let (hidden, abusive, question, waiting) = (
        batch.results[0].comment_id.clone(),
        batch.results[1].comment_id.clone(),
        batch.results[2].comment_id.clone(),
        batch.results[3].comment_id.clone(),
    );
    let queued = d.comment(&abusive).await;
    assert_eq!(queued.assignee_user_id, d.moderator_id);

    // A rude reply is refused with the finding; a polite one goes out.
    let refused = comments
        .reply_to_comment(with_token(
            pb::ReplyToCommentRequest {
                request_id: rid(),
                comment_id: question.clone(),
                text: "自己去查，傻逼".into(),
            },
            &d.moderator,
        ))
        .await
        .expect_err("rude");
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(refused.message().contains("傻逼") || format!("{refused:?}").contains("傻逼"), "{refused:?}");
    let reply = comments
        .reply_to_comment(with_token(
            pb::ReplyToCommentRequest {
                request_id: rid(),
                comment_id: question.clone(),
                text: "您好，新版社保卡可在各区政务服务中心领取，请携带身份证。".into(),
            },
            &d.moderator,
        ))
        .await
        .expect("reply")
        .into_inner()
        .reply
        .expect("reply");
    d.i.clock.advance(chrono::Duration::minutes(15));
    comments
        .mark_reply_posted(with_token(
            pb::MarkReplyPostedRequest {
                request_id: rid(),
                reply_id: reply.id,
                platform_reply_id: "weibo-reply-1".into(),
                ..Default::default()
            },
            &d.moderator,
        ))
        .await
        .expect("posted");
    comments
        .delete_comment(with_token(
            pb::DeleteCommentRequest {
                request_id: rid(),
                comment_id: abusive.clone(),
                reason: "辱骂他人".into(),
                ..Default::default()
            },
            &d.moderator,
        ))
        .await
        .expect("deleted");

    // The unanswered comment: 240 business minutes run out Monday 11:30, not before.
    let overdue = |at| {
        d.i.clock.set(at);
        let mut comments = d.i.comments();
        let request = pb::ListCommentsRequest {
            platform_account_id: d.account.clone(),
            overdue_only: true,
            ..Default::default()
        };
        let token = d.moderator.clone();
        async move { comments.list_comments(with_token(request, &token)).await.expect("overdue").into_inner().comments }
    };
    assert!(overdue(beijing(2026, 11, 28, 10, 0)).await.is_empty(), "Saturday does not count");
    assert!(overdue(beijing(2026, 11, 30, 11, 29)).await.is_empty());
    let late = overdue(beijing(2026, 11, 30, 11, 31)).await;
    assert_eq!(late.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(), [waiting.as_str()]);

    // A private message: important, referred, answered by the department, closed.
    let inbox = conversations
        .ingest_private_messages(with_token(
            pb::IngestPrivateMessagesRequest {
                platform_account_id: d.account.clone(),
                messages: vec![pb::IncomingPrivateMessage {
                    platform_message_id: "dm-1".into(),
                    correspondent_platform_id: "citizen-7".into(),
                    correspondent_name: "王女士".into(),
                    text: "小区电梯停运一周，物业不处理".into(),
                    ..Default::default()
                }],
            },
            &d.connector,
        ))
        .await
        .expect("message")
        .into_inner();
    let conversation = inbox.conversation_ids[0].clone();
    conversations
        .mark_conversation_important(with_token(
            pb::MarkConversationImportantRequest {
                request_id: rid(),
                conversation_id: conversation.clone(),
                note: "民生诉求：电梯停运".into(),
            },
            &d.moderator,
        ))
        .await
        .expect("important");
    let referral = conversations
        .create_referral(with_token(
            pb::CreateReferralRequest {
                request_id: rid(),
                conversation_id: conversation.clone(),
                department_id: housing.clone(),
                summary: "请核实并督促物业恢复电梯运行".into(),
                ..Default::default()
            },
            &d.moderator,
        ))
        .await
        .expect("referred")
        .into_inner()
        .referral
        .expect("referral");
    conversations
        .acknowledge_referral(with_token(
            pb::AcknowledgeReferralRequest {
                request_id: rid(),
                referral_id: referral.id.clone(),
                ..Default::default()
            },
            &clerk,
        ))
        .await
        .expect("acknowledged");
    conversations
        .record_referral_outcome(with_token(
            pb::RecordReferralOutcomeRequest {
                request_id: rid(),
                referral_id: referral.id.clone(),
                outcome: "已约谈物业，电梯已恢复运行".into(),
                ..Default::default()
            },
            &clerk,
        ))
        .await
        .expect("outcome");
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
    assert!(!closed.overdue);

    // Interaction's outbox reaches the audit service, authenticated as interaction.
    let relay = Relay::new(d.i.db.clone(), GrpcAuditSink::new(w.audit.channel(), d.i.credentials.clone()));
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
    let mut story: Vec<(u64, String, String)> = events
        .iter()
        .filter(|e| e.producer == "interaction")
        .map(|e| (e.sequence, e.action.clone(), e.resource.as_ref().map(|r| r.id.clone()).unwrap_or_default()))
        .collect();
    story.sort_by_key(|(sequence, _, _)| *sequence);
    let actions: Vec<&str> = story.iter().map(|(_, a, _)| a.as_str()).collect();
    assert_eq!(
        actions,
        [
            "moderation_rule.created",
            "comment.ingested",
            "comment.hidden",
            "comment.ingested",
            "comment.flagged",
            "comment.ingested",
            "comment.ingested",
            "reply.refused",
            "reply.created",
            "reply.posted",
            "comment.deleted",
            "message.ingested",
            "conversation.marked_important",
            "referral.created",
            "referral.acknowledged",
            "referral.outcome_recorded",
            "referral.closed",
        ]
    );
    assert!(story.iter().any(|(_, a, id)| a == "comment.hidden" && *id == hidden));
    let report = w
        .client()
        .verify_log(with_token(apb::VerifyLogRequest::default(), &w.auditor_token))
        .await
        .expect("verify")
        .into_inner();
    assert!(report.intact, "{}", report.detail);
}

storage_tests!(comments_and_messages_are_moderated_answered_and_audited);
