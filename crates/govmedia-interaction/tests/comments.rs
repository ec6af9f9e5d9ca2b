//! Comments over real gRPC on both stores: ingest with screening and moderation rules
//! (R4.1.3), the queue and its deadlines on the business-hours clock (R4.1.1), hiding,
//! deleting, restoring and dismissing with reasons (R4.1.3), replies screened and
//! approved (R4.1.2).

mod common;

use common::{Desk, beijing, desk, incoming, violated_rule};
use govmedia_proto::common::v1 as cpb;
use govmedia_proto::interaction::v1 as pb;
use govmedia_testkit::{TestDatabase, storage_tests, with_token};
use govmedia_world::rid;
use tonic::Code;

async fn rule(
    d: &Desk,
    name: &str,
    priority: i32,
    condition: pb::RuleCondition,
    actions: Vec<pb::RuleAction>,
) -> pb::ModerationRule {
    d.i.moderation()
        .create_moderation_rule(with_token(
            pb::CreateModerationRuleRequest {
                request_id: rid(),
                moderation_rule: Some(pb::ModerationRule {
                    name: name.into(),
                    priority,
                    // A department's lead sets rules for its own accounts only.
                    condition: Some(pb::RuleCondition { platform_account_id: d.account.clone(), ..condition }),
                    actions,
                    enabled: true,
                    ..Default::default()
                }),
            },
            &d.lead,
        ))
        .await
        .expect("rule created")
        .into_inner()
        .moderation_rule
        .expect("rule")
}

fn status_of(r: &pb::IngestResult) -> pb::CommentStatus {
    pb::CommentStatus::try_from(r.status).expect("status")
}

async fn arriving_comments_are_screened_moderated_and_deduplicated_r4_1_3(db: TestDatabase) {
    let d = desk(db).await;
    // Abuse goes to a moderator's queue instead of being hidden outright.
    rule(
        &d,
        "abuse to the duty moderator",
        10,
        pb::RuleCondition { categories: vec![cpb::ScreeningCategory::Profanity as i32], ..Default::default() },
        vec![
            pb::RuleAction { kind: pb::RuleActionKind::FlagForReview as i32, ..Default::default() },
            pb::RuleAction {
                kind: pb::RuleActionKind::Assign as i32,
                assignee_user_id: d.moderator_id.clone(),
                ..Default::default()
            },
            pb::RuleAction { kind: pb::RuleActionKind::Tag as i32, tag: "abuse".into(), ..Default::default() },
        ],
    )
    .await;
    let answer = d
        .ingest(vec![
            incoming("c1", "附件为机密文件，大家看看"),
            incoming("c2", "你们这群傻逼"),
            incoming("c3", "请问社保卡在哪里办理？"),
            incoming("c3", "请问社保卡在哪里办理？"),
        ])
        .await;
    assert_eq!((answer.ingested_count, answer.duplicate_count), (3, 1));
    let r = &answer.results;
    assert_eq!(status_of(&r[0]), pb::CommentStatus::Hidden, "a classified marking is hidden");
    assert_eq!(status_of(&r[1]), pb::CommentStatus::NeedsReview, "the rule queues abuse");
    assert_eq!(status_of(&r[2]), pb::CommentStatus::Open);
    assert!(r[3].duplicate && r[3].comment_id == r[2].comment_id, "{:?}", r[3]);

    let hidden = d.comment(&r[0].comment_id).await;
    assert_eq!(hidden.screening_findings[0].category, cpb::ScreeningCategory::ClassifiedMarking as i32);
    assert_eq!(hidden.actions[0].action, "hide");
    assert!(hidden.actions[0].reason.contains("机密"), "{:?}", hidden.actions[0]);
    let abusive = d.comment(&r[1].comment_id).await;
    assert_eq!(abusive.assignee_user_id, d.moderator_id);
    assert_eq!(abusive.tags, vec!["abuse".to_owned()]);
    assert!(!abusive.actions[0].moderation_rule_id.is_empty());

    // The same batch again: nothing new, nothing changed.
    let again = d.ingest(vec![incoming("c1", "另一段文字"), incoming("c2", "x")]).await;
    assert_eq!((again.ingested_count, again.duplicate_count), (0, 2));
    assert_eq!(again.results[0].comment_id, r[0].comment_id);
    assert_eq!(d.comment(&r[0].comment_id).await.text, "附件为机密文件，大家看看");

    // The queue filters by status, assignee and tag.
    let queue =
        d.i.comments()
            .list_comments(with_token(
                pb::ListCommentsRequest {
                    statuses: vec![pb::CommentStatus::NeedsReview as i32, pb::CommentStatus::Open as i32],
                    platform_account_id: d.account.clone(),
                    ..Default::default()
                },
                &d.moderator,
            ))
            .await
            .expect("queue")
            .into_inner()
            .comments;
    assert_eq!(queue.iter().map(|c| c.platform_comment_id.as_str()).collect::<Vec<_>>(), ["c2", "c3"]);
    let tagged =
        d.i.comments()
            .list_comments(with_token(
                pb::ListCommentsRequest {
                    tag: "abuse".into(),
                    assignee_user_id: d.moderator_id.clone(),
                    ..Default::default()
                },
                &d.lead,
            ))
            .await;
    // A department-scoped lead may not list every account's comments at once.
    assert_eq!(tagged.expect_err("global list").code(), Code::PermissionDenied);

    let actions = d.i.outbox_actions().await;
    assert_eq!(actions.iter().filter(|a| *a == "comment.ingested").count(), 3, "{actions:?}");
    assert!(actions.contains(&"comment.hidden".to_owned()));
    assert!(actions.contains(&"comment.flagged".to_owned()));

    // Only a holder of comment.ingest delivers comments.
    let status = d
        .i
        .comments()
        .ingest_comments(with_token(
            pb::IngestCommentsRequest { platform_account_id: d.account.clone(), comments: vec![incoming("c9", "hi")] },
            &d.moderator,
        ))
        .await
        .expect_err("a moderator does not ingest");
    assert_eq!(status.code(), Code::PermissionDenied);
    let status = d
        .i
        .comments()
        .ingest_comments(with_token(
            pb::IngestCommentsRequest { platform_account_id: d.account.clone(), comments: vec![incoming("", "no id")] },
            &d.connector,
        ))
        .await
        .expect_err("no platform id");
    assert_eq!(status.code(), Code::InvalidArgument);
}

async fn an_allow_rule_keeps_a_known_false_positive_visible(db: TestDatabase) {
    let d = desk(db).await;
    rule(
        &d,
        "the archive's own notices",
        1,
        pb::RuleCondition { keywords: vec!["档案馆公告".into()], ..Default::default() },
        vec![pb::RuleAction { kind: pb::RuleActionKind::Allow as i32, ..Default::default() }],
    )
    .await;
    let r =
        d.ingest(vec![incoming("a1", "档案馆公告：机密档案解密目录已公布"), incoming("a2", "机密文件外泄了")]).await;
    assert_eq!(status_of(&r.results[0]), pb::CommentStatus::Open);
    assert_eq!(status_of(&r.results[1]), pb::CommentStatus::Hidden);
}

async fn moderators_hide_delete_restore_and_dismiss_with_reasons_r4_1_3(db: TestDatabase) {
    let d = desk(db).await;
    let r = d.ingest(vec![incoming("m1", "广告：低价代办证件"), incoming("m2", "谢谢")]).await;
    let (first, second) = (r.results[0].comment_id.clone(), r.results[1].comment_id.clone());
    let mut comments = d.i.comments();

    let status = comments
        .hide_comment(with_token(
            pb::HideCommentRequest { request_id: rid(), comment_id: first.clone(), ..Default::default() },
            &d.moderator,
        ))
        .await
        .expect_err("no reason");
    assert_eq!(status.code(), Code::InvalidArgument);
    let (_, nobody) = d.i.world.staff("nobody2", &d.department, &[]).await;
    let status = comments
        .hide_comment(with_token(
            pb::HideCommentRequest {
                request_id: rid(),
                comment_id: first.clone(),
                reason: "广告".into(),
                ..Default::default()
            },
            &nobody,
        ))
        .await
        .expect_err("no role");
    assert_eq!(status.code(), Code::PermissionDenied);

    let hide = pb::HideCommentRequest {
        request_id: rid(),
        comment_id: first.clone(),
        reason: "违规广告".into(),
        manual_evidence: Some(cpb::Evidence {
            uri: "https://evidence.example.gov.cn/weibo/m1.png".into(),
            description: "hidden in the Weibo console".into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let hidden = comments.hide_comment(with_token(hide.clone(), &d.moderator)).await.expect("hidden").into_inner();
    let c = hidden.comment.clone().expect("comment");
    assert_eq!(c.status, pb::CommentStatus::Hidden as i32);
    let action = c.actions.last().expect("action");
    assert_eq!((action.action.as_str(), action.channel), ("hide", pb::ActionChannel::Manual as i32));
    assert_eq!(action.evidence.as_ref().expect("evidence").uri, "https://evidence.example.gov.cn/weibo/m1.png");
    // A retry answers the same, and nothing happens twice.
    let retried = comments.hide_comment(with_token(hide, &d.moderator)).await.expect("replayed").into_inner();
    assert_eq!(retried, hidden);
    let status = comments
        .hide_comment(with_token(
            pb::HideCommentRequest {
                request_id: rid(),
                comment_id: first.clone(),
                reason: "again".into(),
                ..Default::default()
            },
            &d.moderator,
        ))
        .await
        .expect_err("already hidden");
    assert_eq!((status.code(), violated_rule(&status).as_str()), (Code::FailedPrecondition, "R4.1.3"));

    // A stale etag loses.
    let status = comments
        .restore_comment(with_token(
            pb::RestoreCommentRequest {
                request_id: rid(),
                comment_id: first.clone(),
                reason: "误判".into(),
                etag: "v1".into(),
            },
            &d.moderator,
        ))
        .await
        .expect_err("stale");
    assert_eq!(status.code(), Code::Aborted);
    let restored = comments
        .restore_comment(with_token(
            pb::RestoreCommentRequest {
                request_id: rid(),
                comment_id: first.clone(),
                reason: "误判".into(),
                etag: c.etag,
            },
            &d.moderator,
        ))
        .await
        .expect("restored")
        .into_inner()
        .comment
        .expect("comment");
    assert_eq!(restored.status, pb::CommentStatus::Open as i32);
    let deleted = comments
        .delete_comment(with_token(
            pb::DeleteCommentRequest {
                request_id: rid(),
                comment_id: first.clone(),
                reason: "违规广告".into(),
                ..Default::default()
            },
            &d.moderator,
        ))
        .await
        .expect("deleted")
        .into_inner()
        .comment
        .expect("comment");
    assert_eq!(deleted.status, pb::CommentStatus::Deleted as i32);
    assert_eq!(deleted.actions.iter().map(|a| a.action.as_str()).collect::<Vec<_>>(), ["hide", "restore", "delete"]);

    let dismissed = comments
        .dismiss_comment(with_token(
            pb::DismissCommentRequest {
                request_id: rid(),
                comment_id: second.clone(),
                note: "致谢，无需回复".into(),
                ..Default::default()
            },
            &d.moderator,
        ))
        .await
        .expect("dismissed")
        .into_inner()
        .comment
        .expect("comment");
    assert_eq!(dismissed.status, pb::CommentStatus::Dismissed as i32);
    assert!(dismissed.first_response_time.is_some(), "closing without reply is the response");

    let actions = d.i.outbox_actions().await;
    for expected in ["comment.hidden", "comment.restored", "comment.deleted", "comment.dismissed"] {
        assert!(actions.contains(&expected.to_owned()), "{expected} in {actions:?}");
    }
    assert_eq!(actions.iter().filter(|a| *a == "comment.hidden").count(), 1, "the retry audited nothing");
}

async fn replies_are_screened_and_approved_by_someone_else_r4_1_2(db: TestDatabase) {
    let d = desk(db).await;
    let settings =
        d.i.moderation()
            .update_interaction_settings(with_token(
                pb::UpdateInteractionSettingsRequest {
                    request_id: rid(),
                    settings: Some(pb::InteractionSettings {
                        platform_account_id: d.account.clone(),
                        reply_approval_required: true,
                        ..Default::default()
                    }),
                    update_mask: Some(prost_types::FieldMask { paths: vec!["reply_approval_required".into()] }),
                },
                &d.lead,
            ))
            .await
            .expect("settings")
            .into_inner()
            .settings
            .expect("settings");
    assert!(settings.reply_approval_required);
    let r = d.ingest(vec![incoming("r1", "请问办事大厅周六开门吗？")]).await;
    let comment = r.results[0].comment_id.clone();
    let mut comments = d.i.comments();

    let status = comments
        .reply_to_comment(with_token(
            pb::ReplyToCommentRequest {
                request_id: rid(),
                comment_id: comment.clone(),
                text: "自己不会查吗，傻逼".into(),
            },
            &d.moderator,
        ))
        .await
        .expect_err("a rude reply is refused");
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(status.message().contains("傻逼") || format!("{status:?}").contains("傻逼"), "{status:?}");

    let reply = comments
        .reply_to_comment(with_token(
            pb::ReplyToCommentRequest {
                request_id: rid(),
                comment_id: comment.clone(),
                text: "您好，办事大厅周六上午9:00-12:00开放。".into(),
            },
            &d.moderator,
        ))
        .await
        .expect("reply")
        .into_inner()
        .reply
        .expect("reply");
    assert_eq!(reply.state, pb::ReplyState::PendingApproval as i32);

    // Not posted before it is approved, not approved by a moderator without the right.
    let status = comments
        .mark_reply_posted(with_token(
            pb::MarkReplyPostedRequest {
                request_id: rid(),
                reply_id: reply.id.clone(),
                platform_reply_id: "w-1".into(),
                ..Default::default()
            },
            &d.moderator,
        ))
        .await
        .expect_err("pending");
    assert_eq!(violated_rule(&status), "R4.1.2");
    let status = comments
        .approve_reply(with_token(
            pb::ApproveReplyRequest { request_id: rid(), reply_id: reply.id.clone() },
            &d.moderator,
        ))
        .await
        .expect_err("a moderator does not approve");
    assert_eq!(status.code(), Code::PermissionDenied);

    // The lead's own reply needs someone else.
    let own = comments
        .reply_to_comment(with_token(
            pb::ReplyToCommentRequest {
                request_id: rid(),
                comment_id: comment.clone(),
                text: "补充：周日休息。".into(),
            },
            &d.lead,
        ))
        .await
        .expect("lead's reply")
        .into_inner()
        .reply
        .expect("reply");
    let status = comments
        .approve_reply(with_token(pb::ApproveReplyRequest { request_id: rid(), reply_id: own.id.clone() }, &d.lead))
        .await
        .expect_err("own reply");
    assert_eq!((status.code(), violated_rule(&status).as_str()), (Code::FailedPrecondition, "R4.1.2"));
    let rejected = comments
        .reject_reply(with_token(
            pb::RejectReplyRequest { request_id: rid(), reply_id: own.id, reason: "重复".into() },
            &d.i.world
                .staff("lead2", &d.department, &[("moderation_lead", cpb::ScopeKind::Department, &d.department)])
                .await
                .1,
        ))
        .await
        .expect("rejected")
        .into_inner()
        .reply
        .expect("reply");
    assert_eq!(rejected.state, pb::ReplyState::Rejected as i32);

    let approved = comments
        .approve_reply(with_token(pb::ApproveReplyRequest { request_id: rid(), reply_id: reply.id.clone() }, &d.lead))
        .await
        .expect("approved")
        .into_inner()
        .reply
        .expect("reply");
    assert_eq!(
        (approved.state, approved.approver_user_id.as_str()),
        (pb::ReplyState::Approved as i32, d.lead_id.as_str())
    );

    d.i.clock.advance(chrono::Duration::minutes(30));
    let posted = comments
        .mark_reply_posted(with_token(
            pb::MarkReplyPostedRequest {
                request_id: rid(),
                reply_id: reply.id.clone(),
                platform_reply_id: "w-1".into(),
                ..Default::default()
            },
            &d.moderator,
        ))
        .await
        .expect("posted")
        .into_inner()
        .reply
        .expect("reply");
    assert_eq!(posted.channel, pb::ActionChannel::PlatformApi as i32);
    let answered = d.comment(&comment).await;
    assert_eq!(answered.status, pb::CommentStatus::Answered as i32);
    assert_eq!(answered.time_to_first_response.expect("ttfr").seconds, 30 * 60);
    assert!(!answered.overdue);
    let actions = d.i.outbox_actions().await;
    for expected in ["reply.refused", "reply.created", "reply.rejected", "reply.approved", "reply.posted"] {
        assert!(actions.contains(&expected.to_owned()), "{expected} in {actions:?}");
    }
}

async fn a_comment_is_overdue_after_its_business_hours_target_r4_1_1(db: TestDatabase) {
    let d = desk(db).await;
    // Friday 16:00: 90 working minutes today, the other 150 on Monday from 09:00.
    let r = d.ingest(vec![incoming("o1", "周末能办理吗？")]).await;
    let id = r.results[0].comment_id.clone();
    let c = d.comment(&id).await;
    let due = beijing(2026, 11, 30, 11, 30);
    assert_eq!(c.response_due_time.expect("due").seconds, due.timestamp());
    let overdue = |d: &Desk| {
        let mut comments = d.i.comments();
        let account = d.account.clone();
        let token = d.moderator.clone();
        async move {
            comments
                .list_comments(with_token(
                    pb::ListCommentsRequest { platform_account_id: account, overdue_only: true, ..Default::default() },
                    &token,
                ))
                .await
                .expect("overdue list")
                .into_inner()
                .comments
        }
    };
    d.i.clock.set(beijing(2026, 11, 30, 11, 29));
    assert!(overdue(&d).await.is_empty(), "one working minute is left");
    assert_eq!(d.comment(&id).await.time_to_first_response.expect("ttfr").seconds, 239 * 60);
    d.i.clock.set(beijing(2026, 11, 30, 11, 31));
    let late = overdue(&d).await;
    assert_eq!(late.len(), 1);
    assert!(late[0].overdue);
    // Over lunch the business clock stands still.
    d.i.clock.set(beijing(2026, 11, 30, 13, 0));
    assert_eq!(d.comment(&id).await.time_to_first_response.expect("ttfr").seconds, 240 * 60 + 30 * 60);
}

async fn a_reply_with_a_review_finding_waits_for_approval_r4_1_2(db: TestDatabase) {
    // Reply approval is off (the default): a clean reply is approved at once, one with
    // a review finding waits for a second person all the same.
    let d = desk(db).await;
    let r = d.ingest(vec![incoming("q1", "请问台湾居民怎么办理？"), incoming("q2", "请问几点开门？")]).await;
    let reply = |comment: String, text: &'static str| {
        let mut comments = d.i.comments();
        let moderator = d.moderator.clone();
        async move {
            comments
                .reply_to_comment(with_token(
                    pb::ReplyToCommentRequest { request_id: rid(), comment_id: comment, text: text.into() },
                    &moderator,
                ))
                .await
                .map(|r| r.into_inner().reply.expect("reply"))
        }
    };
    let held = reply(r.results[0].comment_id.clone(), "台湾政府的说法不准确，请以本局公告为准。").await.expect("reply");
    assert_eq!(held.state, pb::ReplyState::PendingApproval as i32, "held for review");
    assert!(!held.screening_findings.is_empty());
    let clean = reply(r.results[1].comment_id.clone(), "您好，工作日9:00开门。").await.expect("reply");
    assert_eq!(clean.state, pb::ReplyState::Approved as i32);
}

async fn a_frozen_account_replies_and_answers_nothing_r2_3_3(db: TestDatabase) {
    let d = desk(db).await;
    let r = d.ingest(vec![incoming("f1", "请问几点开门？"), incoming("f2", "请问在哪里办理？")]).await;
    let mut comments = d.i.comments();
    let pending = comments
        .reply_to_comment(with_token(
            pb::ReplyToCommentRequest {
                request_id: rid(),
                comment_id: r.results[0].comment_id.clone(),
                text: "台湾政府的说法不准确。".into(),
            },
            &d.moderator,
        ))
        .await
        .expect("reply")
        .into_inner()
        .reply
        .expect("reply");
    let conversation =
        d.i.conversations()
            .ingest_private_messages(with_token(
                pb::IngestPrivateMessagesRequest {
                    platform_account_id: d.account.clone(),
                    messages: vec![pb::IncomingPrivateMessage {
                        platform_message_id: "pm1".into(),
                        correspondent_platform_id: "u1".into(),
                        correspondent_name: "市民".into(),
                        text: "你好，想咨询一下".into(),
                        ..Default::default()
                    }],
                },
                &d.connector,
            ))
            .await
            .expect("ingested")
            .into_inner()
            .conversation_ids[0]
            .clone();

    // A suspected takeover: the administrator freezes the account. At once, no reply, no
    // approval of a waiting one, no answer to a private message.
    d.i.world.freeze_account(&d.account, "疑似被盗，冻结排查").await;
    let status = comments
        .reply_to_comment(with_token(
            pb::ReplyToCommentRequest {
                request_id: rid(),
                comment_id: r.results[1].comment_id.clone(),
                text: "您好，请到办事大厅办理。".into(),
            },
            &d.moderator,
        ))
        .await
        .expect_err("frozen");
    assert_eq!(violated_rule(&status), "R2.3.3");
    assert!(status.message().contains("frozen"), "{}", status.message());
    let status = comments
        .approve_reply(with_token(pb::ApproveReplyRequest { request_id: rid(), reply_id: pending.id.clone() }, &d.lead))
        .await
        .expect_err("frozen");
    assert_eq!(violated_rule(&status), "R2.3.3");
    let status =
        d.i.conversations()
            .reply_to_conversation(with_token(
                pb::ReplyToConversationRequest {
                    request_id: rid(),
                    conversation_id: conversation,
                    text: "您好，请讲。".into(),
                },
                &d.moderator,
            ))
            .await
            .expect_err("frozen");
    assert_eq!(violated_rule(&status), "R2.3.3");
}

storage_tests!(
    a_reply_with_a_review_finding_waits_for_approval_r4_1_2,
    a_frozen_account_replies_and_answers_nothing_r2_3_3,
    arriving_comments_are_screened_moderated_and_deduplicated_r4_1_3,
    an_allow_rule_keeps_a_known_false_positive_visible,
    moderators_hide_delete_restore_and_dismiss_with_reasons_r4_1_3,
    replies_are_screened_and_approved_by_someone_else_r4_1_2,
    a_comment_is_overdue_after_its_business_hours_target_r4_1_1,
);
