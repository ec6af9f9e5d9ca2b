//! ListDrafts shows a caller exactly the drafts GetDraft would show them (issue 18: a
//! listing by platform account used to return other departments' drafts that target it,
//! in full, although GetDraft refused them), on PostgreSQL and SQLite.

mod common;

use common::{content, desk};
use govmedia_proto::common::v1 as cpb;
use govmedia_proto::content::v1 as pb;
use govmedia_testkit::{TestDatabase, storage_tests, with_token};
use govmedia_world::rid;

async fn list_drafts_by_account_shows_only_drafts_get_draft_shows(db: TestDatabase) {
    let desk = desk(db).await;
    let w = &desk.c.world;
    let finance = w.department("Finance", "FIN").await;
    let d = cpb::ScopeKind::Department;
    let (_, finance_editor) = w.staff("qianfang", &finance, &[("editor", d, &finance)]).await;
    let own = common::create(&desk, "宣传科的稿件").await;
    // Another department's draft aimed at the publicity department's account.
    let foreign = desk
        .c
        .drafts()
        .create_draft(with_token(
            pb::CreateDraftRequest {
                request_id: rid(),
                department_id: finance.clone(),
                target_platform_account_ids: vec![desk.account.clone()],
                content: Some(content("财务科", "财务科的稿件，尚未送审")),
                ..Default::default()
            },
            &finance_editor,
        ))
        .await
        .expect("created")
        .into_inner()
        .draft
        .expect("draft");

    let readable = desk
        .c
        .drafts()
        .get_draft(with_token(pb::GetDraftRequest { draft_id: foreign.id.clone() }, &desk.author))
        .await
        .is_ok();
    let listed = desk
        .c
        .drafts()
        .list_drafts(with_token(
            pb::ListDraftsRequest { platform_account_id: desk.account.clone(), ..Default::default() },
            &desk.author,
        ))
        .await
        .expect("listed")
        .into_inner()
        .drafts;
    let ids: Vec<_> = listed.iter().map(|x| x.id.clone()).collect();
    assert!(ids.contains(&own.id), "{ids:?}");
    assert_eq!(ids.contains(&foreign.id), readable, "listed: {ids:?}; GetDraft allowed: {readable}");
    assert!(!readable, "a publicity editor does not read the finance department's drafts");
    for draft in &listed {
        desk.c
            .drafts()
            .get_draft(with_token(pb::GetDraftRequest { draft_id: draft.id.clone() }, &desk.author))
            .await
            .expect("every listed draft is readable one by one");
    }
}

storage_tests!(list_drafts_by_account_shows_only_drafts_get_draft_shows);
