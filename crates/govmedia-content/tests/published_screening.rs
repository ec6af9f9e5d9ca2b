//! Published content screened again when the lexicon grows, on PostgreSQL and SQLite,
//! with the real audit service's screening (R7.1.1, R3.2.3): a misspelt critical name the
//! lexicon learns after publication is found in what is out, written to the audit log
//! once as a serious wording error, and found only for publications that hold it; only
//! whoever manages the lexicon may have it done at once.

mod common;

use common::{approved, desk};
use govmedia_content::published_screening::PublishedScreening;
use govmedia_content::scheduler::{Scheduler, SchedulerSettings};
use govmedia_proto::audit::v1 as apb;
use govmedia_proto::common::v1 as cpb;
use govmedia_proto::content::v1 as pb;
use govmedia_testkit::{TestDatabase, storage_tests, with_token};
use govmedia_world::rid;
use tonic::Code;

async fn published_content_is_screened_again_with_the_lexicon_of_the_time_r3_2_3(db: TestDatabase) {
    let d = desk(db).await;
    let w = &d.c.world;
    let (_, publisher) =
        w.staff("publisher", &d.department, &[("publisher", cpb::ScopeKind::Department, &d.department)]).await;
    for body in ["根据国家锐务总局公告，汇算自3月1日开始。", "主汛期已至，请减少外出。"]
    {
        let draft = approved(&d, body).await;
        d.c.publications()
            .schedule_publication(with_token(
                pb::SchedulePublicationRequest {
                    request_id: rid(),
                    draft_id: draft.id.clone(),
                    platform_account_id: d.account.clone(),
                    ..Default::default()
                },
                &publisher,
            ))
            .await
            .expect("scheduled");
    }
    let scheduler = Scheduler::new(d.c.core.clone(), d.c.connectors.clone(), SchedulerSettings::default());
    assert_eq!(scheduler.tick().await.expect("tick").published, 2);

    // Nothing is found while the lexicon does not know the misspelling; both are screened.
    let watch = PublishedScreening::new(d.c.core.clone(), std::time::Duration::ZERO);
    let first = watch.round().await.expect("round");
    assert_eq!((first.screened, first.found), (2, 0));
    assert_eq!(watch.round().await.expect("round").screened, 0, "nothing new to screen with the same version");

    w.screening()
        .upsert_lexicon_entries(with_token(
            apb::UpsertLexiconEntriesRequest {
                request_id: rid(),
                entries: vec![apb::LexiconEntry {
                    term: "国家锐务总局".into(),
                    category: cpb::ScreeningCategory::CriticalName as i32,
                    severity: cpb::ScreeningSeverity::Block as i32,
                    suggestion: "国家税务总局".into(),
                    rule_id: "R3.2.3".into(),
                    ..Default::default()
                }],
            },
            &w.officer_token,
        ))
        .await
        .expect("lexicon entry");

    // Only whoever manages the lexicon may have it done at once; the watch finds it too.
    let denied =
        d.c.publications()
            .rescreen_publications(with_token(pb::RescreenPublicationsRequest { request_id: rid() }, &d.author))
            .await
            .expect_err("an editor");
    assert_eq!(denied.code(), Code::PermissionDenied);
    let now =
        d.c.publications()
            .rescreen_publications(with_token(pb::RescreenPublicationsRequest { request_id: rid() }, &w.officer_token))
            .await
            .expect("rescreened")
            .into_inner();
    assert_eq!((now.screened, now.found), (2, 1), "both screened with the new version, one holds the name");
    assert!(now.lexicon_version > first.lexicon_version);
    let again = watch.round().await.expect("round");
    assert_eq!((again.screened, again.found), (0, 0), "found once, recorded once");

    let actions = d.c.outbox_actions().await;
    assert_eq!(actions.iter().filter(|a| *a == "publication.wording_error_found").count(), 1, "{actions:?}");
}

storage_tests!(published_content_is_screened_again_with_the_lexicon_of_the_time_r3_2_3);
