//! The three-stage review over real gRPC with real identity and audit services, on
//! PostgreSQL and SQLite: a draft goes through department review, supervising leader
//! review and principal leader approval and three proofreading passes; each separation
//! rule refuses with its rule id; two reviewers racing on one stage leave exactly one
//! decision; a blocked term refuses submission naming the text, the place and the reason
//! (R3.2.1–R3.2.3, R3.3.2, R7.1.1).

mod common;

use common::{all_met, approve, content, create, desk, submit};
use govmedia_proto::common::v1 as cpb;
use govmedia_proto::content::v1 as pb;
use govmedia_testkit::{TestDatabase, every_row, storage_tests, with_token};
use govmedia_world::rid;
use tonic::Code;
use tonic_types::StatusExt;

fn rule(status: &tonic::Status) -> String {
    status.get_details_precondition_failure().map(|p| p.violations[0].r#type.clone()).unwrap_or_default()
}

async fn a_draft_passes_all_three_stages_and_proofreading_r3_2_2(db: TestDatabase) {
    let d = desk(db).await;
    let draft = create(&d, "今天上午，市局召开专题会议，部署国家安全宣传教育工作。").await;
    assert_eq!(draft.state, pb::DraftState::Drafting as i32);
    let draft = submit(&d, &draft).await.expect("submitted");
    assert_eq!(
        (draft.state, draft.review_stage),
        (pb::DraftState::InReview as i32, pb::ReviewStage::Department as i32)
    );
    assert!(draft.screening_lexicon_version >= 1, "screened with a named lexicon version");

    // The reviewer sees it in the queue; the author does not.
    let queue =
        d.c.drafts()
            .list_review_queue(with_token(pb::ListReviewQueueRequest::default(), &d.reviewer))
            .await
            .expect("queue")
            .into_inner();
    assert_eq!(queue.drafts.iter().map(|x| x.id.as_str()).collect::<Vec<_>>(), [draft.id.as_str()]);
    let queue =
        d.c.drafts()
            .list_review_queue(with_token(pb::ListReviewQueueRequest::default(), &d.leader))
            .await
            .expect("queue")
            .into_inner();
    assert!(queue.drafts.is_empty(), "not yet at the leader's stage");

    let draft = approve(&d, &draft, pb::ReviewStage::Department, &d.reviewer).await.expect("department");
    let draft = approve(&d, &draft, pb::ReviewStage::SupervisingLeader, &d.leader).await.expect("supervising");
    let draft = approve(&d, &draft, pb::ReviewStage::PrincipalLeader, &d.principal).await.expect("principal");
    assert_eq!(draft.state, pb::DraftState::Approved as i32);
    assert_eq!(draft.decisions.len(), 3);

    // Three proofreading passes by different people; the author may be one of them.
    for token in [&d.author, &d.reviewer2, &d.reviewer] {
        d.c.drafts()
            .sign_off_proofreading(with_token(
                pb::SignOffProofreadingRequest {
                    request_id: rid(),
                    draft_id: draft.id.clone(),
                    version: draft.current_version,
                    note: String::new(),
                },
                token,
            ))
            .await
            .expect("signed");
    }
    let status =
        d.c.drafts()
            .sign_off_proofreading(with_token(
                pb::SignOffProofreadingRequest {
                    request_id: rid(),
                    draft_id: draft.id.clone(),
                    version: draft.current_version,
                    note: String::new(),
                },
                &d.author,
            ))
            .await
            .expect_err("twice");
    assert_eq!(rule(&status), "R3.3.2");
    let fetched =
        d.c.drafts()
            .get_draft(with_token(pb::GetDraftRequest { draft_id: draft.id.clone() }, &d.author))
            .await
            .expect("get")
            .into_inner()
            .draft
            .expect("draft");
    assert_eq!(fetched.proofreading_sign_offs.len(), 3);
    assert_eq!(fetched.required_proofreading_count, 3);

    let actions = d.c.outbox_actions().await;
    let story: Vec<&str> = actions.iter().map(String::as_str).filter(|a| a.starts_with("draft.")).collect();
    assert_eq!(
        story,
        [
            "draft.created",
            "draft.submitted",
            "draft.approved",
            "draft.approved",
            "draft.approved",
            "draft.proofread",
            "draft.proofread",
            "draft.proofread"
        ]
    );
}

async fn separation_of_duties_r3_2_2(db: TestDatabase) {
    let d = desk(db).await;
    // The author cannot review their own draft, even holding a reviewer role.
    d.c.world.grant_scoped(&d.author_id, "department_reviewer", cpb::ScopeKind::Department, &d.department).await;
    let draft = submit(&d, &create(&d, "关于开展文明城市创建工作的通知").await).await.expect("submitted");
    let status = approve(&d, &draft, pb::ReviewStage::Department, &d.author).await.expect_err("own draft");
    assert_eq!(rule(&status), "R3.2.2");

    // One person never signs two stages of the same version.
    let draft = approve(&d, &draft, pb::ReviewStage::Department, &d.double).await.expect("first stage");
    let status = approve(&d, &draft, pb::ReviewStage::SupervisingLeader, &d.double).await.expect_err("second stage");
    assert_eq!(rule(&status), "R3.2.2");
    assert!(status.message().contains("two stages"), "{}", status.message());

    // A reviewer acts only within the scope of their binding.
    let finance = d.c.world.department("Finance", "FIN").await;
    let (_, outsider) =
        d.c.world.staff("outsider", &finance, &[("supervising_leader", cpb::ScopeKind::Department, &finance)]).await;
    let status =
        approve(&d, &draft, pb::ReviewStage::SupervisingLeader, &outsider).await.expect_err("other department");
    assert_eq!(status.code(), Code::PermissionDenied);
    // And only at their stage.
    let status = approve(&d, &draft, pb::ReviewStage::SupervisingLeader, &d.principal).await.expect_err("wrong role");
    assert_eq!(status.code(), Code::PermissionDenied);

    // Approval needs all five criteria (R3.2.3); a rejection needs a reason.
    let mut criteria = all_met();
    criteria.accuracy = pb::CriterionResult::NotMet as i32;
    let status =
        d.c.drafts()
            .approve_draft(with_token(
                pb::ApproveDraftRequest {
                    request_id: rid(),
                    draft_id: draft.id.clone(),
                    version: draft.current_version,
                    stage: pb::ReviewStage::SupervisingLeader as i32,
                    criteria: Some(criteria),
                    comment: String::new(),
                },
                &d.leader,
            ))
            .await
            .expect_err("criteria");
    assert_eq!(rule(&status), "R3.2.3");
    let status =
        d.c.drafts()
            .reject_draft(with_token(
                pb::RejectDraftRequest {
                    request_id: rid(),
                    draft_id: draft.id.clone(),
                    version: draft.current_version,
                    stage: pb::ReviewStage::SupervisingLeader as i32,
                    criteria: Some(criteria),
                    reason: String::new(),
                },
                &d.leader,
            ))
            .await
            .expect_err("no reason");
    assert_eq!(status.code(), Code::InvalidArgument);

    // Changes requested: back to the author; a new version restarts the chain.
    let back =
        d.c.drafts()
            .request_draft_changes(with_token(
                pb::RequestDraftChangesRequest {
                    request_id: rid(),
                    draft_id: draft.id.clone(),
                    version: draft.current_version,
                    stage: pb::ReviewStage::SupervisingLeader as i32,
                    criteria: Some(criteria),
                    comment: "请补充活动时间".into(),
                },
                &d.leader,
            ))
            .await
            .expect("changes requested")
            .into_inner()
            .draft
            .expect("draft");
    assert_eq!(back.state, pb::DraftState::ChangesRequested as i32);
    let v2 =
        d.c.drafts()
            .update_draft(with_token(
                pb::UpdateDraftRequest {
                    request_id: rid(),
                    draft_id: back.id.clone(),
                    etag: back.etag.clone(),
                    content: Some(content("市局发布", "关于开展文明城市创建工作的通知（11月30日起）")),
                    change_note: "added the date".into(),
                    ..Default::default()
                },
                &d.author,
            ))
            .await
            .expect("new version")
            .into_inner()
            .draft
            .expect("draft");
    assert_eq!(v2.current_version, 2);
    assert!(v2.decisions.is_empty(), "decisions on version 1 do not count for version 2");
    let v2 = submit(&d, &v2).await.expect("resubmitted");
    assert_eq!(v2.review_stage, pb::ReviewStage::Department as i32);
    let status = approve(&d, &draft, pb::ReviewStage::Department, &d.reviewer).await.expect_err("version 1 is stale");
    assert_eq!(status.code(), Code::Aborted);
    let versions =
        d.c.drafts()
            .list_draft_versions(with_token(
                pb::ListDraftVersionsRequest { draft_id: v2.id.clone(), ..Default::default() },
                &d.author,
            ))
            .await
            .expect("versions")
            .into_inner();
    assert_eq!(versions.versions.iter().map(|v| v.version).collect::<Vec<_>>(), [2, 1]);

    // Nobody reviews a draft they wrote a version of: an editor who is also a reviewer
    // rewrites a colleague's draft, then may not approve it (issue 18).
    let roles = [
        ("editor", cpb::ScopeKind::Department, d.department.as_str()),
        ("department_reviewer", cpb::ScopeKind::Department, d.department.as_str()),
    ];
    let (_, rewriter) = d.c.world.staff("rewriter", &d.department, &roles).await;
    let original = create(&d, "关于冬季供暖的通知").await;
    let rewritten =
        d.c.drafts()
            .update_draft(with_token(
                pb::UpdateDraftRequest {
                    request_id: rid(),
                    draft_id: original.id.clone(),
                    etag: original.etag.clone(),
                    content: Some(content("市局发布", "关于冬季供暖的通知（改写）")),
                    change_note: "my words now".into(),
                    ..Default::default()
                },
                &rewriter,
            ))
            .await
            .expect("a colleague's draft rewritten")
            .into_inner()
            .draft
            .expect("draft");
    let submitted = submit(&d, &rewritten).await.expect("submitted by its author");
    let status = approve(&d, &submitted, pb::ReviewStage::Department, &rewriter).await.expect_err("wrote version 2");
    assert_eq!(rule(&status), "R3.2.2");
    assert!(status.message().contains("wrote a version"), "{}", status.message());
    approve(&d, &submitted, pb::ReviewStage::Department, &d.reviewer).await.expect("another reviewer may");

    // An editor of one account may not aim a draft at another account by updating it
    // (issue 18): new targets are checked as on creation.
    let w = &d.c.world;
    let other = w.platform_account(cpb::Platform::Douyin, "bureau_douyin", &d.department, &d.author_id).await;
    let (_, narrow) =
        w.staff("narrow", &d.department, &[("editor", cpb::ScopeKind::PlatformAccount, d.account.as_str())]).await;
    let mine =
        d.c.drafts()
            .create_draft(with_token(
                pb::CreateDraftRequest {
                    request_id: rid(),
                    department_id: d.department.clone(),
                    target_platform_account_ids: vec![d.account.clone()],
                    content: Some(content("市局发布", "关于冬季供暖的补充通知")),
                    ..Default::default()
                },
                &narrow,
            ))
            .await
            .expect("a draft for the account it may write for")
            .into_inner()
            .draft
            .expect("draft");
    let widened =
        d.c.drafts()
            .update_draft(with_token(
                pb::UpdateDraftRequest {
                    request_id: rid(),
                    draft_id: mine.id.clone(),
                    etag: mine.etag.clone(),
                    content: Some(content("市局发布", "关于冬季供暖的补充通知")),
                    target_platform_account_ids: vec![d.account.clone(), other],
                    change_note: "also on Douyin".into(),
                },
                &narrow,
            ))
            .await
            .expect_err("not an editor of the other account");
    assert_eq!(widened.code(), Code::PermissionDenied);
}

async fn two_reviewers_racing_leave_exactly_one_decision_r3_2_2(db: TestDatabase) {
    let d = desk(db).await;
    let draft = submit(&d, &create(&d, "今日天气晴好，适宜出行。").await).await.expect("submitted");
    let (a, b) = tokio::join!(
        approve(&d, &draft, pb::ReviewStage::Department, &d.reviewer),
        approve(&d, &draft, pb::ReviewStage::Department, &d.reviewer2)
    );
    let outcomes =
        [a.as_ref().map(|_| ()).map_err(tonic::Status::code), b.as_ref().map(|_| ()).map_err(tonic::Status::code)];
    assert_eq!(outcomes.iter().filter(|o| o.is_ok()).count(), 1, "{outcomes:?}");
    assert!(outcomes.contains(&Err(Code::Aborted)), "the other gets ABORTED: {outcomes:?}");
    let fetched =
        d.c.drafts()
            .get_draft(with_token(pb::GetDraftRequest { draft_id: draft.id.clone() }, &d.author))
            .await
            .expect("get")
            .into_inner()
            .draft
            .expect("draft");
    assert_eq!(fetched.decisions.len(), 1);
    assert_eq!(fetched.review_stage, pb::ReviewStage::SupervisingLeader as i32);
}

async fn a_blocked_term_refuses_submission_naming_the_finding_r7_1_1(db: TestDatabase) {
    let d = desk(db).await;
    let draft = create(&d, "附件为机密文件，请各单位传达学习。").await;
    let status = submit(&d, &draft).await.expect_err("blocked");
    assert_eq!(status.code(), Code::FailedPrecondition);
    let violation = &status.get_details_precondition_failure().expect("violations").violations[0];
    assert_eq!(violation.r#type, "R7.1.1");
    assert_eq!(violation.subject, "body[3..5]", "the text and the place");
    assert!(violation.description.contains("机密"), "{}", violation.description);
    let fetched =
        d.c.drafts()
            .get_draft(with_token(pb::GetDraftRequest { draft_id: draft.id.clone() }, &d.author))
            .await
            .expect("get")
            .into_inner()
            .draft
            .expect("draft");
    assert_eq!(fetched.state, pb::DraftState::Drafting as i32, "nothing changed");
    assert!(d.c.outbox_actions().await.contains(&"draft.submission_blocked".to_owned()));

    // A review finding travels with the draft for the reviewers.
    let reviewed =
        submit(&d, &create(&d, "台湾政府发言人当天表示").await).await.expect("submitted with a review finding");
    assert_eq!(reviewed.screening_findings.len(), 1);
    assert_eq!(reviewed.screening_findings[0].suggestion, "台湾当局");
}

async fn personal_data_is_refused_in_drafts_and_masked_everywhere_r7_1_1(db: TestDatabase) {
    const ID: &str = "110105199003071239";
    const MOBILE: &str = "13800138000";
    let d = desk(db).await;

    // A resident ID number is refused before anything is stored; the refusal names the
    // place and shows the number masked.
    let status =
        d.c.drafts()
            .create_draft(with_token(
                pb::CreateDraftRequest {
                    request_id: rid(),
                    department_id: d.department.clone(),
                    target_platform_account_ids: vec![d.account.clone()],
                    content: Some(content("情况通报", &format!("当事人身份证号{ID}。"))),
                    ..Default::default()
                },
                &d.author,
            ))
            .await
            .expect_err("an ID number is refused");
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(rule(&status), "R7.1.1");
    let violation = &status.get_details_precondition_failure().expect("violations").violations[0];
    assert_eq!(violation.subject, "content.body[7..25]");
    assert!(violation.description.contains("1101**********1239"), "{}", violation.description);
    assert!(!format!("{status:?}").contains(ID), "the refusal never holds the number");

    // Nor can an update bring one in.
    let draft = create(&d, &format!("咨询热线{MOBILE}。")).await;
    let status =
        d.c.drafts()
            .update_draft(with_token(
                pb::UpdateDraftRequest {
                    request_id: rid(),
                    draft_id: draft.id.clone(),
                    etag: draft.etag.clone(),
                    content: Some(content("市局发布", &format!("咨询热线{MOBILE}，身份证号{ID}。"))),
                    target_platform_account_ids: vec![d.account.clone()],
                    ..Default::default()
                },
                &d.author,
            ))
            .await
            .expect_err("an ID number is refused");
    assert_eq!(rule(&status), "R7.1.1");

    // A mobile number may be a published hotline: a review finding, shown masked.
    let submitted = submit(&d, &draft).await.expect("submitted with a review finding");
    let finding = &submitted.screening_findings[0];
    assert_eq!((finding.matched_term.as_str(), finding.excerpt.as_str()), ("mobile_number", "138****8000"));

    // Across every row of the content store (the outbox included) and of the audit log:
    // the ID number nowhere, the mobile number only in the text it was written into.
    let mut rows = every_row(&d.c.db).await;
    rows.extend(every_row(&d.c.world.audit_db).await);
    assert!(rows.iter().all(|r| !r.contains(ID)), "{:?}", rows.iter().find(|r| r.contains(ID)));
    let holding: Vec<_> = rows.iter().filter(|r| r.contains(MOBILE)).collect();
    assert!(!holding.is_empty() && holding.iter().all(|r| r.starts_with("draft_versions: ")), "{holding:?}");
    assert!(rows.iter().any(|r| r.contains("138****8000")), "the finding is kept, masked");
}

async fn platform_formats_are_checked_on_submission_r3_3_1(db: TestDatabase) {
    let d = desk(db).await;
    let wechat =
        d.c.world
            .platform_account(cpb::Platform::WechatOfficialAccount, "gh_bureau", &d.department, &d.author_id)
            .await;
    let draft =
        d.c.drafts()
            .create_draft(with_token(
                pb::CreateDraftRequest {
                    request_id: rid(),
                    department_id: d.department.clone(),
                    target_platform_account_ids: vec![wechat],
                    content: Some(content("", "正文")),
                    ..Default::default()
                },
                &d.author,
            ))
            .await
            .expect("created")
            .into_inner()
            .draft
            .expect("draft");
    let status = submit(&d, &draft).await.expect_err("format");
    assert_eq!(status.code(), Code::InvalidArgument);
    let descriptions: Vec<_> = status
        .get_details_bad_request()
        .expect("violations")
        .field_violations
        .into_iter()
        .map(|f| f.description)
        .collect();
    assert!(descriptions.iter().any(|x| x.contains("requires a title")), "{descriptions:?}");
    assert!(descriptions.iter().any(|x| x.contains("cover image")), "{descriptions:?}");
}

storage_tests!(
    a_draft_passes_all_three_stages_and_proofreading_r3_2_2,
    separation_of_duties_r3_2_2,
    two_reviewers_racing_leave_exactly_one_decision_r3_2_2,
    a_blocked_term_refuses_submission_naming_the_finding_r7_1_1,
    personal_data_is_refused_in_drafts_and_masked_everywhere_r7_1_1,
    platform_formats_are_checked_on_submission_r3_3_1,
);
