//! Followers and campaigns over real gRPC on both stores: daily snapshots with a repeat
//! replacing the day, the trend over a period (R4.3.1), campaigns with their counts
//! (R4.3.2).

mod common;

use chrono::{NaiveDate, TimeZone, Utc};
use common::desk;
use govmedia_proto::common::v1 as cpb;
use govmedia_proto::interaction::v1 as pb;
use govmedia_testkit::{TestDatabase, storage_tests, with_token};
use govmedia_world::rid;
use tonic::Code;

fn midnight(y: i32, m: u32, d: u32) -> prost_types::Timestamp {
    let t = Utc.from_utc_datetime(&NaiveDate::from_ymd_opt(y, m, d).expect("date").and_hms_opt(0, 0, 0).expect("t"));
    prost_types::Timestamp { seconds: t.timestamp(), nanos: 0 }
}

fn snapshot(account: &str, day: u32, followers: u64, new: u64, lost: u64) -> pb::FollowerSnapshot {
    pb::FollowerSnapshot {
        platform_account_id: account.into(),
        snapshot_date: Some(midnight(2026, 11, day)),
        follower_count: followers,
        new_followers: new,
        lost_followers: lost,
        breakdown: [("gender:female".to_owned(), followers / 2)].into_iter().collect(),
    }
}

async fn follower_snapshots_make_a_trend_r4_3_1(db: TestDatabase) {
    let d = desk(db).await;
    let mut audience = d.i.audience();
    let recorded = audience
        .record_follower_snapshots(with_token(
            pb::RecordFollowerSnapshotsRequest {
                request_id: rid(),
                snapshots: vec![
                    snapshot(&d.account, 1, 10_000, 0, 0),
                    snapshot(&d.account, 2, 10_150, 200, 50),
                    snapshot(&d.account, 3, 10_100, 20, 70),
                ],
            },
            &d.connector,
        ))
        .await
        .expect("recorded")
        .into_inner();
    assert_eq!((recorded.recorded_count, recorded.replaced_count), (3, 0));
    // The platform corrects the third day.
    let again = audience
        .record_follower_snapshots(with_token(
            pb::RecordFollowerSnapshotsRequest {
                request_id: rid(),
                snapshots: vec![snapshot(&d.account, 3, 10_500, 400, 50)],
            },
            &d.connector,
        ))
        .await
        .expect("replaced")
        .into_inner();
    assert_eq!((again.recorded_count, again.replaced_count), (0, 1));

    let trend = audience
        .get_follower_trend(with_token(
            pb::GetFollowerTrendRequest {
                platform_account_id: d.account.clone(),
                period: Some(cpb::TimeRange {
                    start_time: Some(midnight(2026, 11, 1)),
                    end_time: Some(midnight(2026, 11, 4)),
                }),
            },
            &d.moderator,
        ))
        .await
        .expect("trend")
        .into_inner();
    assert_eq!(trend.snapshots.len(), 3);
    assert_eq!(trend.net_change, 500);
    assert!((trend.growth_rate - 0.05).abs() < 1e-9, "{}", trend.growth_rate);
    assert_eq!((trend.total_new_followers, trend.total_lost_followers), (600, 100));
    assert_eq!(trend.snapshots[2].breakdown["gender:female"], 5_250);

    // A day is a UTC midnight; a moderator does not write follower data.
    let status = audience
        .record_follower_snapshots(with_token(
            pb::RecordFollowerSnapshotsRequest {
                request_id: rid(),
                snapshots: vec![pb::FollowerSnapshot {
                    snapshot_date: Some(prost_types::Timestamp {
                        seconds: midnight(2026, 11, 5).seconds + 3600,
                        nanos: 0,
                    }),
                    ..snapshot(&d.account, 5, 1, 0, 0)
                }],
            },
            &d.connector,
        ))
        .await
        .expect_err("not a midnight");
    assert_eq!(status.code(), Code::InvalidArgument);
    let status = audience
        .record_follower_snapshots(with_token(
            pb::RecordFollowerSnapshotsRequest { request_id: rid(), snapshots: vec![snapshot(&d.account, 6, 1, 0, 0)] },
            &d.moderator,
        ))
        .await
        .expect_err("moderator");
    assert_eq!(status.code(), Code::PermissionDenied);
    assert!(d.i.outbox_actions().await.contains(&"follower_snapshot.recorded".to_owned()));
}

async fn a_campaign_counts_participation_and_engagement_r4_3_2(db: TestDatabase) {
    let d = desk(db).await;
    let (_, publisher) =
        d.i.world.staff("publisher", &d.department, &[("publisher", cpb::ScopeKind::Department, &d.department)]).await;
    let mut audience = d.i.audience();
    let period = cpb::TimeRange { start_time: Some(midnight(2026, 12, 1)), end_time: Some(midnight(2026, 12, 8)) };
    let campaign = audience
        .create_campaign(with_token(
            pb::CreateCampaignRequest {
                request_id: rid(),
                campaign: Some(pb::Campaign {
                    name: "宪法宣传周有奖问答".into(),
                    description: "12月4日国家宪法日主题互动".into(),
                    department_id: d.department.clone(),
                    platform_account_ids: vec![d.account.clone()],
                    period: Some(period),
                    ..Default::default()
                }),
            },
            &publisher,
        ))
        .await
        .expect("created")
        .into_inner()
        .campaign
        .expect("campaign");
    let record = |day: u32, participants: u64, engagements: u64| pb::RecordCampaignMetricsRequest {
        request_id: rid(),
        campaign_id: campaign.id.clone(),
        platform_account_id: d.account.clone(),
        metric_date: Some(midnight(2026, 12, day)),
        participant_count: participants,
        engagement_count: engagements,
    };
    audience.record_campaign_metrics(with_token(record(1, 120, 300), &publisher)).await.expect("day 1");
    audience.record_campaign_metrics(with_token(record(2, 80, 150), &publisher)).await.expect("day 2");
    let corrected = audience
        .record_campaign_metrics(with_token(record(2, 90, 160), &publisher))
        .await
        .expect("day 2 corrected")
        .into_inner()
        .campaign
        .expect("campaign");
    assert_eq!((corrected.participant_count, corrected.engagement_count), (210, 460));
    let status = audience
        .record_campaign_metrics(with_token(record(20, 1, 1), &publisher))
        .await
        .expect_err("outside the period");
    assert_eq!(status.code(), Code::InvalidArgument);

    let renamed = audience
        .update_campaign(with_token(
            pb::UpdateCampaignRequest {
                request_id: rid(),
                campaign: Some(pb::Campaign {
                    id: campaign.id.clone(),
                    name: "宪法宣传周知识竞答".into(),
                    etag: corrected.etag.clone(),
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask { paths: vec!["name".into()] }),
            },
            &publisher,
        ))
        .await
        .expect("renamed")
        .into_inner()
        .campaign
        .expect("campaign");
    assert_eq!(renamed.name, "宪法宣传周知识竞答");
    let status = audience
        .update_campaign(with_token(
            pb::UpdateCampaignRequest {
                request_id: rid(),
                campaign: Some(pb::Campaign {
                    id: campaign.id.clone(),
                    name: "x".into(),
                    etag: corrected.etag,
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask { paths: vec!["name".into()] }),
            },
            &publisher,
        ))
        .await
        .expect_err("stale etag");
    assert_eq!(status.code(), Code::Aborted);

    let listed = audience
        .list_campaigns(with_token(
            pb::ListCampaignsRequest {
                platform_account_id: d.account.clone(),
                period: Some(period),
                ..Default::default()
            },
            &publisher,
        ))
        .await
        .expect("listed")
        .into_inner()
        .campaigns;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].participant_count, 210);
    let status = audience
        .create_campaign(with_token(
            pb::CreateCampaignRequest {
                request_id: rid(),
                campaign: Some(pb::Campaign {
                    name: "x".into(),
                    department_id: d.department.clone(),
                    ..Default::default()
                }),
            },
            &publisher,
        ))
        .await
        .expect_err("no accounts, no period");
    assert_eq!(status.code(), Code::InvalidArgument);
    let actions = d.i.outbox_actions().await;
    for expected in ["campaign.created", "campaign.metrics_recorded", "campaign.updated"] {
        assert!(actions.contains(&expected.to_owned()), "{expected} in {actions:?}");
    }
}

storage_tests!(follower_snapshots_make_a_trend_r4_3_1, a_campaign_counts_participation_and_engagement_r4_3_2);
