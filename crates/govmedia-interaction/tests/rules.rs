//! Moderation rules and interaction settings over real gRPC on both stores: rules are
//! listed in evaluation order, changed under their etag and by field mask, deleted, and
//! limited to the accounts their author may manage (R4.1.3); settings start at the
//! defaults and change under their etag (R4.1.2).

mod common;

use common::desk;
use govmedia_proto::interaction::v1 as pb;
use govmedia_testkit::{TestDatabase, storage_tests, with_token};
use govmedia_world::rid;
use tonic::Code;

fn hide_rule(account: &str, name: &str, priority: i32) -> pb::ModerationRule {
    pb::ModerationRule {
        name: name.into(),
        priority,
        condition: Some(pb::RuleCondition {
            keywords: vec!["代办证件".into()],
            platform_account_id: account.into(),
            ..Default::default()
        }),
        actions: vec![pb::RuleAction { kind: pb::RuleActionKind::Hide as i32, ..Default::default() }],
        enabled: true,
        ..Default::default()
    }
}

async fn rules_are_ordered_changed_and_deleted_under_their_etag_r4_1_3(db: TestDatabase) {
    let d = desk(db).await;
    let mut moderation = d.i.moderation();
    let create = |rule: pb::ModerationRule| {
        let mut m = moderation.clone();
        let token = d.lead.clone();
        async move {
            m.create_moderation_rule(with_token(
                pb::CreateModerationRuleRequest { request_id: rid(), moderation_rule: Some(rule) },
                &token,
            ))
            .await
        }
    };
    let late = create(hide_rule(&d.account, "late", 50)).await.expect("late").into_inner().moderation_rule.expect("r");
    let early =
        create(hide_rule(&d.account, "early", 5)).await.expect("early").into_inner().moderation_rule.expect("r");

    // Invalid rules are refused field by field.
    let status = create(pb::ModerationRule {
        actions: vec![
            pb::RuleAction { kind: pb::RuleActionKind::Hide as i32, ..Default::default() },
            pb::RuleAction { kind: pb::RuleActionKind::Allow as i32, ..Default::default() },
            pb::RuleAction { kind: pb::RuleActionKind::Assign as i32, ..Default::default() },
        ],
        ..hide_rule(&d.account, "", 1)
    })
    .await
    .expect_err("invalid");
    assert_eq!(status.code(), Code::InvalidArgument);
    let fields: Vec<String> = {
        use tonic_types::StatusExt;
        status.get_details_bad_request().expect("bad request").field_violations.into_iter().map(|f| f.field).collect()
    };
    for field in ["moderation_rule.name", "moderation_rule.actions", "moderation_rule.actions[2].assignee_user_id"] {
        assert!(fields.contains(&field.to_owned()), "{field} in {fields:?}");
    }
    // A department's lead sets no bureau-wide rule, and a moderator sets none.
    let status = create(hide_rule("", "everywhere", 1)).await.expect_err("global");
    assert_eq!(status.code(), Code::PermissionDenied);
    let status = moderation
        .create_moderation_rule(with_token(
            pb::CreateModerationRuleRequest { request_id: rid(), moderation_rule: Some(hide_rule(&d.account, "m", 1)) },
            &d.moderator,
        ))
        .await
        .expect_err("moderator");
    assert_eq!(status.code(), Code::PermissionDenied);

    let list = moderation
        .list_moderation_rules(with_token(
            pb::ListModerationRulesRequest { platform_account_id: d.account.clone(), ..Default::default() },
            &d.moderator,
        ))
        .await
        .expect("list")
        .into_inner()
        .moderation_rules;
    assert_eq!(list.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), ["early", "late"]);

    let update = |etag: String| pb::UpdateModerationRuleRequest {
        request_id: rid(),
        moderation_rule: Some(pb::ModerationRule {
            id: late.id.clone(),
            priority: 1,
            enabled: false,
            etag,
            ..Default::default()
        }),
        update_mask: Some(prost_types::FieldMask { paths: vec!["priority".into(), "enabled".into()] }),
    };
    let status = moderation.update_moderation_rule(with_token(update(String::new()), &d.lead)).await.expect_err("etag");
    assert_eq!(status.code(), Code::InvalidArgument);
    let updated = moderation
        .update_moderation_rule(with_token(update(late.etag.clone()), &d.lead))
        .await
        .expect("updated")
        .into_inner()
        .moderation_rule
        .expect("rule");
    assert_eq!((updated.priority, updated.enabled, updated.name.as_str()), (1, false, "late"));
    let status =
        moderation.update_moderation_rule(with_token(update(late.etag.clone()), &d.lead)).await.expect_err("stale");
    assert_eq!(status.code(), Code::Aborted);

    // The disabled rule no longer acts; the enabled one does.
    let r = d.ingest(vec![common::incoming("k1", "低价代办证件，加微信")]).await;
    let comment = d.comment(&r.results[0].comment_id).await;
    assert_eq!(comment.status, pb::CommentStatus::Hidden as i32);
    assert_eq!(comment.actions[0].moderation_rule_id, early.id);

    moderation
        .delete_moderation_rule(with_token(
            pb::DeleteModerationRuleRequest {
                request_id: rid(),
                moderation_rule_id: early.id.clone(),
                etag: early.etag,
            },
            &d.lead,
        ))
        .await
        .expect("deleted");
    let status = moderation
        .get_moderation_rule(with_token(pb::GetModerationRuleRequest { moderation_rule_id: early.id }, &d.lead))
        .await
        .expect_err("gone");
    assert_eq!(status.code(), Code::NotFound);
    let r = d.ingest(vec![common::incoming("k2", "低价代办证件，加微信")]).await;
    assert_eq!(r.results[0].status, pb::CommentStatus::Open as i32);
    let actions = d.i.outbox_actions().await;
    for expected in ["moderation_rule.created", "moderation_rule.updated", "moderation_rule.deleted"] {
        assert!(actions.contains(&expected.to_owned()), "{expected} in {actions:?}");
    }
}

async fn settings_start_at_the_defaults_and_change_under_their_etag(db: TestDatabase) {
    let d = desk(db).await;
    let mut moderation = d.i.moderation();
    let get = pb::GetInteractionSettingsRequest { platform_account_id: d.account.clone() };
    let defaults = moderation
        .get_interaction_settings(with_token(get.clone(), &d.moderator))
        .await
        .expect("defaults")
        .into_inner()
        .settings
        .expect("settings");
    assert!(!defaults.reply_approval_required);
    assert!(defaults.etag.is_empty());
    let update = |etag: &str, minutes: u32| pb::UpdateInteractionSettingsRequest {
        request_id: rid(),
        settings: Some(pb::InteractionSettings {
            platform_account_id: d.account.clone(),
            response_targets: vec![pb::ResponseTarget { item_type: "comment".into(), business_minutes: minutes }],
            etag: etag.into(),
            ..Default::default()
        }),
        update_mask: Some(prost_types::FieldMask { paths: vec!["response_targets".into()] }),
    };
    let status = moderation.update_interaction_settings(with_token(update("", 0), &d.lead)).await.expect_err("zero");
    assert_eq!(status.code(), Code::InvalidArgument);
    let first = moderation
        .update_interaction_settings(with_token(update("", 60), &d.lead))
        .await
        .expect("set")
        .into_inner()
        .settings
        .expect("settings");
    let status = moderation.update_interaction_settings(with_token(update("", 30), &d.lead)).await.expect_err("etag");
    assert!(matches!(status.code(), Code::Aborted | Code::InvalidArgument), "{status:?}");
    moderation.update_interaction_settings(with_token(update(&first.etag, 30), &d.lead)).await.expect("changed");
    // The account's own target now sets comments' deadlines: 30 business minutes.
    let r = d.ingest(vec![common::incoming("t1", "请问")]).await;
    let c = d.comment(&r.results[0].comment_id).await;
    assert_eq!(c.response_due_time.expect("due").seconds - c.ingest_time.expect("in").seconds, 30 * 60);
    let status = moderation
        .update_interaction_settings(with_token(update(&first.etag, 30), &d.moderator))
        .await
        .expect_err("moderator");
    assert_eq!(status.code(), Code::PermissionDenied);
}

storage_tests!(
    rules_are_ordered_changed_and_deleted_under_their_etag_r4_1_3,
    settings_start_at_the_defaults_and_change_under_their_etag,
);
