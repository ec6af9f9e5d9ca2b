//! The daily-work commands as real processes against `govmedia up`, each person with their
//! own session: the administrator sets up a department, staff, roles and an account; an
//! editor creates a draft from a file and submits it; reviewers find it in their queues and
//! approve it; an author approving their own draft is refused with the rule; three people
//! proofread; a publisher schedules it; a moderator answers a comment from the queue; the
//! auditor queries, verifies and exports the log. Tables by default, `--json` for scripts.

mod common;

use common::FIRST;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_office_does_its_daily_work_from_the_command_line() {
    let data = tempfile::tempdir().expect("data");
    let home = tempfile::tempdir().expect("config");
    let running = common::start(data.path(), None).await;
    common::story::the_office_story(home.path(), &running.gateway, FIRST).await;
    running.stop().await;
}
