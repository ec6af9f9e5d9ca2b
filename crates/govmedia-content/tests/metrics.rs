//! Publication metrics and operating reports over real gRPC with real identity, on
//! PostgreSQL and SQLite: observations are idempotent per publication and time, a report
//! takes each publication's latest counts before the period's end, ranks, rates and
//! counts the days an account has been silent; department reports cover every account,
//! also one that never published; bad input names its fields; permissions hold (R5.1.1).

mod common;

use chrono::{DateTime, Duration, Utc};
use common::{Desk, create, desk, publication_row};
use govmedia_content::domain::publication::PublicationState;
use govmedia_domain::ids::PublicationId;
use govmedia_proto::common::v1 as cpb;
use govmedia_proto::content::v1 as pb;
use govmedia_proto::content::v1::metrics_service_client::MetricsServiceClient;
use govmedia_testkit::{TestDatabase, storage_tests, with_token};
use tonic::Code;
use tonic::transport::Channel;
use tonic_types::StatusExt;

fn client(d: &Desk) -> MetricsServiceClient<Channel> {
    MetricsServiceClient::new(d.c.server.channel())
}

/// Wire times here carry whole seconds; so do the times they are compared with.
fn whole_seconds(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(t.timestamp(), 0).expect("time")
}

fn ts(t: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds: t.timestamp(), nanos: 0 }
}

fn observation(p: PublicationId, at: DateTime<Utc>, reads: u64, likes: u64) -> pb::MetricObservation {
    pb::MetricObservation {
        publication_id: p.to_string(),
        observe_time: Some(ts(at)),
        reads,
        likes,
        comments: 2,
        shares: 1,
        favourites: 0,
    }
}

/// A published publication of a new draft on the desk's account.
async fn published(d: &Desk, title_body: &str, at: DateTime<Utc>) -> PublicationId {
    let draft = create(d, title_body).await;
    publication_row(d, &draft, PublicationState::Published, at, Some(at)).await
}

async fn record(d: &Desk, token: &str, observations: Vec<pb::MetricObservation>) -> (u32, u32) {
    let r = client(d)
        .record_publication_metrics(with_token(pb::RecordPublicationMetricsRequest { observations }, token))
        .await
        .expect("recorded")
        .into_inner();
    (r.recorded_count, r.duplicate_count)
}

fn period(start: DateTime<Utc>, end: DateTime<Utc>) -> Option<cpb::TimeRange> {
    Some(cpb::TimeRange { start_time: Some(ts(start)), end_time: Some(ts(end)) })
}

async fn observations_are_idempotent_per_time_and_reports_rank_them_r5_1_1(db: TestDatabase) {
    let d = desk(db).await;
    let w = &d.c.world;
    let (_, publisher) =
        w.staff("publisher", &d.department, &[("publisher", cpb::ScopeKind::Department, &d.department)]).await;
    let now = whole_seconds(Utc::now());
    let start = now - Duration::days(14);
    let a = published(&d, "第一篇：防汛通告。", now - Duration::days(10)).await;
    let b = published(&d, "第二篇：交通提示。", now - Duration::days(6)).await;
    let before = published(&d, "更早的一篇。", now - Duration::days(30)).await;

    let t1 = now - Duration::days(5);
    let t2 = now - Duration::days(4);
    assert_eq!(
        record(
            &d,
            &publisher,
            vec![observation(a, t1, 100, 5), observation(a, t2, 400, 30), observation(b, t2, 200, 10)]
        )
        .await,
        (3, 0)
    );
    assert_eq!(
        record(&d, &publisher, vec![observation(a, t2, 999_999, 0), observation(before, t1, 50, 1)]).await,
        (1, 1),
        "a repeat of (publication, time) is a duplicate and the first stands"
    );

    let listed = client(&d)
        .list_publication_metrics(with_token(
            pb::ListPublicationMetricsRequest { publication_id: a.to_string(), page_size: 1, ..Default::default() },
            &d.author,
        ))
        .await
        .expect("list")
        .into_inner();
    assert_eq!(listed.observations.iter().map(|o| o.reads).collect::<Vec<_>>(), [100]);
    let next = client(&d)
        .list_publication_metrics(with_token(
            pb::ListPublicationMetricsRequest {
                publication_id: a.to_string(),
                page_size: 1,
                page_token: listed.next_page_token,
                ..Default::default()
            },
            &d.author,
        ))
        .await
        .expect("list")
        .into_inner();
    assert_eq!(next.observations.iter().map(|o| o.reads).collect::<Vec<_>>(), [400], "the first stood");

    let report = client(&d)
        .get_account_report(with_token(
            pb::GetAccountReportRequest { platform_account_id: d.account.clone(), period: period(start, now) },
            &d.author,
        ))
        .await
        .expect("report")
        .into_inner()
        .report
        .expect("report");
    assert_eq!(report.publication_count, 2, "the older publication is outside the period");
    assert!((report.publications_per_week - 1.0).abs() < 1e-6, "{}", report.publications_per_week);
    let totals = report.totals.expect("totals");
    assert_eq!((totals.reads, totals.likes), (600, 40), "each publication's latest counts");
    assert!((report.engagement_rate - (40.0 + 4.0 + 2.0) / 600.0).abs() < 1e-9);
    let top: Vec<&str> = report.top_publications.iter().map(|p| p.publication_id.as_str()).collect();
    assert_eq!(top, [a.to_string(), b.to_string()]);
    assert_eq!(report.top_publications[0].title, "市局发布", "the title of the published version");
    assert_eq!(report.days_since_last_publication, 6);

    // Seen from a period that ended before the counts arrived: no counts yet.
    let early = client(&d)
        .get_account_report(with_token(
            pb::GetAccountReportRequest { platform_account_id: d.account.clone(), period: period(start, t1) },
            &d.author,
        ))
        .await
        .expect("report")
        .into_inner()
        .report
        .expect("report");
    assert_eq!(early.totals.expect("totals").reads, 0);

    let actions = d.c.outbox_actions().await;
    assert_eq!(actions.iter().filter(|a| *a == "metrics.recorded").count(), 3, "once per publication with new counts");
}

async fn a_department_report_covers_every_account_also_a_silent_one_r5_1_1(db: TestDatabase) {
    let d = desk(db).await;
    let w = &d.c.world;
    let silent = w.platform_account(cpb::Platform::Douyin, "bureau_douyin", &d.department, &d.author_id).await;
    let now = whole_seconds(Utc::now());
    published(&d, "部门发布。", now - Duration::days(20)).await;
    published(&d, "部门再发布。", now - Duration::days(3)).await;
    let answer = client(&d)
        .get_department_report(with_token(
            pb::GetDepartmentReportRequest {
                department_id: d.department.clone(),
                period: period(now - Duration::days(7), now),
            },
            &d.author,
        ))
        .await
        .expect("report")
        .into_inner();
    let report = answer.report.expect("report");
    assert_eq!((report.publication_count, report.days_since_last_publication), (1, 3));
    assert_eq!(answer.account_reports.len(), 2);
    assert_eq!(answer.account_reports[&d.account].publication_count, 1);
    let quiet = &answer.account_reports[&silent];
    assert_eq!((quiet.publication_count, quiet.days_since_last_publication), (0, -1), "never published");
}

async fn bad_input_names_its_fields_and_permissions_hold_r5_1_1(db: TestDatabase) {
    let d = desk(db).await;
    let now = whole_seconds(Utc::now());
    let p = published(&d, "权限测试。", now - Duration::days(1)).await;
    let status = client(&d)
        .record_publication_metrics(with_token(
            pb::RecordPublicationMetricsRequest {
                observations: vec![
                    pb::MetricObservation { publication_id: p.to_string(), ..Default::default() },
                    observation(p, now + Duration::days(1), 1, 1),
                    pb::MetricObservation { reads: u64::MAX, ..observation(p, now, 1, 1) },
                ],
            },
            &d.author,
        ))
        .await
        .expect_err("invalid");
    assert_eq!(status.code(), Code::InvalidArgument);
    let fields: Vec<String> =
        status.get_details_bad_request().expect("details").field_violations.into_iter().map(|f| f.field).collect();
    assert_eq!(fields, ["observations[0].observe_time", "observations[1].observe_time", "observations[2].reads"]);

    // An editor reads metrics but does not record them.
    let status = client(&d)
        .record_publication_metrics(with_token(
            pb::RecordPublicationMetricsRequest { observations: vec![observation(p, now, 1, 1)] },
            &d.author,
        ))
        .await
        .expect_err("denied");
    assert_eq!(status.code(), Code::PermissionDenied);
    assert!(d.c.outbox_actions().await.iter().all(|a| a != "metrics.recorded"), "nothing half written");

    let status = client(&d)
        .get_account_report(with_token(
            pb::GetAccountReportRequest {
                platform_account_id: d.account.clone(),
                period: period(now, now - Duration::days(1)),
            },
            &d.author,
        ))
        .await
        .expect_err("invalid");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(status.get_details_bad_request().expect("details").field_violations[0].field, "period.end_time");

    let (_, stranger) = d.c.world.staff("stranger", &d.department, &[]).await;
    let status = client(&d)
        .get_account_report(with_token(
            pb::GetAccountReportRequest {
                platform_account_id: d.account.clone(),
                period: period(now - Duration::days(7), now),
            },
            &stranger,
        ))
        .await
        .expect_err("denied");
    assert_eq!(status.code(), Code::PermissionDenied);
}

storage_tests!(
    observations_are_idempotent_per_time_and_reports_rank_them_r5_1_1,
    a_department_report_covers_every_account_also_a_silent_one_r5_1_1,
    bad_input_names_its_fields_and_permissions_hold_r5_1_1,
);
