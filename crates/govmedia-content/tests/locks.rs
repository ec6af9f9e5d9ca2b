//! No remote call is made while a transaction holds the database: permission answers
//! are obtained before the unit of work begins. On SQLite, where a write transaction
//! holds the database's one write lock, a slow identity would otherwise make every other
//! writer wait for it.

mod common;

use std::time::{Duration, Instant};

use common::{approve, create, desk_with, submit};
use govmedia_proto::content::v1 as pb;
use govmedia_testkit::TestDatabase;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_approvals_on_sqlite_wait_for_one_slow_permission_check_not_two() {
    let slow = Duration::from_secs(1);
    let d = desk_with(TestDatabase::sqlite(), Some(slow)).await;
    let first = submit(&d, &create(&d, "第一篇稿件，部署国家安全宣传教育工作。").await).await.expect("submitted");
    let second = submit(&d, &create(&d, "第二篇稿件，部署防汛防台风工作。").await).await.expect("submitted");

    let started = Instant::now();
    let (a, b) = tokio::join!(
        approve(&d, &first, pb::ReviewStage::Department, &d.reviewer),
        approve(&d, &second, pb::ReviewStage::Department, &d.reviewer2),
    );
    let took = started.elapsed();
    let (a, b) = (a.expect("first approved"), b.expect("second approved"));
    assert_eq!(a.review_stage, pb::ReviewStage::SupervisingLeader as i32);
    assert_eq!(b.review_stage, pb::ReviewStage::SupervisingLeader as i32);
    assert!(took >= slow, "each approval asked the slow authority ({took:?})");
    // Asked under the write lock, the second approval would wait for the first one's
    // check: two seconds in all.
    assert!(took < Duration::from_millis(1800), "the approvals waited for each other: {took:?}");
}
