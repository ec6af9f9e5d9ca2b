//! The content calendar over real gRPC, with real identity and audit services, on
//! PostgreSQL and SQLite (R3.1.1, R3.1.2).

mod common;

use common::Content;
use govmedia_proto::common::v1 as cpb;
use govmedia_proto::content::v1 as pb;
use govmedia_testkit::{TestDatabase, storage_tests, with_token};
use govmedia_world::rid;
use tonic::Code;
use tonic_types::StatusExt;

fn at(seconds: i64) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp { seconds, nanos: 0 })
}

async fn departments_plan_their_content_r3_1_1(db: TestDatabase) {
    let c = Content::start(db).await;
    let w = &c.world;
    let publicity = w.department("Publicity", "PUB").await;
    let finance = w.department("Finance", "FIN").await;
    let (editor_id, editor) = w.staff("liwei", &publicity, &[("editor", cpb::ScopeKind::Department, &publicity)]).await;
    let (_, other) = w.staff("zhaolei", &finance, &[("editor", cpb::ScopeKind::Department, &finance)]).await;
    let account = w.platform_account(cpb::Platform::WechatOfficialAccount, "gh_bureau", &publicity, &editor_id).await;

    let plan = |department: &str, topic: &str, start: i64| pb::CreatePlanRequest {
        request_id: rid(),
        plan: Some(pb::Plan {
            department_id: department.into(),
            topic: topic.into(),
            reason: pb::PlanReason::WorkPriority as i32,
            reason_detail: "年度重点工作".into(),
            target_platform_account_ids: vec![account.clone()],
            planned_window: Some(cpb::TimeRange { start_time: at(start), end_time: at(start + 86_400) }),
            ..Default::default()
        }),
    };

    // Invalid input, all at once.
    let status = c
        .plans()
        .create_plan(with_token(
            pb::CreatePlanRequest {
                request_id: rid(),
                plan: Some(pb::Plan {
                    department_id: publicity.clone(),
                    planned_window: Some(cpb::TimeRange { start_time: at(2_000), end_time: at(1_000) }),
                    ..Default::default()
                }),
            },
            &editor,
        ))
        .await
        .expect_err("invalid");
    assert_eq!(status.code(), Code::InvalidArgument);
    let fields: Vec<_> =
        status.get_details_bad_request().expect("violations").field_violations.into_iter().map(|f| f.field).collect();
    assert_eq!(fields, ["plan.topic", "plan.reason", "plan.planned_window.end_time"]);

    // Scope: an editor plans only for their department.
    let status = c
        .plans()
        .create_plan(with_token(plan(&publicity, "x", 1_800_000_000), &other))
        .await
        .expect_err("other department");
    assert_eq!(status.code(), Code::PermissionDenied);
    let status = c.plans().create_plan(plan(&publicity, "x", 1_800_000_000)).await.expect_err("no token");
    assert_eq!(status.code(), Code::Unauthenticated);

    // An unknown target account is refused.
    let mut unknown = plan(&publicity, "x", 1_800_000_000);
    if let Some(p) = unknown.plan.as_mut() {
        p.target_platform_account_ids = vec![uuid::Uuid::now_v7().to_string()];
    }
    let status = c.plans().create_plan(with_token(unknown, &editor)).await.expect_err("unknown account");
    assert_eq!(status.code(), Code::NotFound);

    let request = plan(&publicity, "国家安全教育日宣传", 1_800_000_000);
    let created = c
        .plans()
        .create_plan(with_token(request.clone(), &editor))
        .await
        .expect("planned")
        .into_inner()
        .plan
        .expect("plan");
    let replay =
        c.plans().create_plan(with_token(request, &editor)).await.expect("replayed").into_inner().plan.expect("plan");
    assert_eq!(created.id, replay.id);
    assert_eq!(created.state, pb::PlanState::Planned as i32);
    assert_eq!(created.owner_user_id, editor_id, "the creator owns the plan by default");
    c.plans().create_plan(with_token(plan(&publicity, "世界读书日", 1_801_000_000), &editor)).await.expect("planned");
    c.plans().create_plan(with_token(plan(&publicity, "年终总结", 1_830_000_000), &editor)).await.expect("planned");

    // The calendar by department and period, paged.
    let period = Some(cpb::TimeRange { start_time: at(1_799_000_000), end_time: at(1_810_000_000) });
    let page1 = c
        .plans()
        .list_plans(with_token(
            pb::ListPlansRequest { department_id: publicity.clone(), period, page_size: 1, ..Default::default() },
            &editor,
        ))
        .await
        .expect("list")
        .into_inner();
    assert_eq!(page1.plans.len(), 1);
    assert_eq!(page1.plans[0].topic, "国家安全教育日宣传");
    let page2 = c
        .plans()
        .list_plans(with_token(
            pb::ListPlansRequest {
                department_id: publicity.clone(),
                period,
                page_size: 1,
                page_token: page1.next_page_token,
                ..Default::default()
            },
            &editor,
        ))
        .await
        .expect("list")
        .into_inner();
    assert_eq!(page2.plans.iter().map(|p| p.topic.as_str()).collect::<Vec<_>>(), ["世界读书日"]);
    let status = c
        .plans()
        .get_plan(with_token(pb::GetPlanRequest { plan_id: created.id.clone() }, &other))
        .await
        .expect_err("other department");
    assert_eq!(status.code(), Code::PermissionDenied);

    // Update needs the etag; a stale one is a conflict.
    let mut changed = created.clone();
    changed.topic = "全民国家安全教育日宣传".into();
    let mask = Some(prost_types::FieldMask { paths: vec!["topic".into()] });
    let updated = c
        .plans()
        .update_plan(with_token(
            pb::UpdatePlanRequest { request_id: rid(), plan: Some(changed.clone()), update_mask: mask.clone() },
            &editor,
        ))
        .await
        .expect("updated")
        .into_inner()
        .plan
        .expect("plan");
    assert_eq!(updated.topic, "全民国家安全教育日宣传");
    let status = c
        .plans()
        .update_plan(with_token(
            pb::UpdatePlanRequest { request_id: rid(), plan: Some(changed), update_mask: mask },
            &editor,
        ))
        .await
        .expect_err("stale");
    assert_eq!(status.code(), Code::Aborted);

    // Cancel with a reason; a cancelled plan stays cancelled.
    let cancel = || pb::CancelPlanRequest {
        request_id: rid(),
        plan_id: created.id.clone(),
        reason: "merged into the April series".into(),
        etag: String::new(),
    };
    let cancelled =
        c.plans().cancel_plan(with_token(cancel(), &editor)).await.expect("cancelled").into_inner().plan.expect("plan");
    assert_eq!(cancelled.state, pb::PlanState::Cancelled as i32);
    let status = c.plans().cancel_plan(with_token(cancel(), &editor)).await.expect_err("again");
    assert_eq!(status.get_details_precondition_failure().expect("rule").violations[0].r#type, "R3.1.1");

    let actions = c.outbox_actions().await;
    assert_eq!(actions.iter().filter(|a| *a == "plan.created").count(), 3, "{actions:?}");
    assert!(
        actions.contains(&"plan.updated".to_owned()) && actions.contains(&"plan.cancelled".to_owned()),
        "{actions:?}"
    );
}

storage_tests!(departments_plan_their_content_r3_1_1);
