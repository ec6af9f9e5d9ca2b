//! Screening over real gRPC with the default lexicon, on PostgreSQL and SQLite: every
//! category with real Chinese examples, exact spans, the whitelist, and lexicon updates
//! that take effect without a restart, audited, and never seen half-built by screening
//! running at the same time (R7.1.1, R3.2.3).

mod common;

use common::World;
use govmedia_domain::personal::PersonalDataKind;
use govmedia_proto::audit::v1 as pb;
use govmedia_proto::common::v1 as cpb;
use govmedia_testkit::{TestDatabase, storage_tests, with_token};
use tonic::Code;

fn request(context: cpb::ScreeningContext, texts: &[(&str, &str)]) -> pb::ScreenTextRequest {
    pb::ScreenTextRequest {
        context: context as i32,
        texts: texts.iter().map(|(k, t)| pb::TextToScreen { key: (*k).into(), text: (*t).into() }).collect(),
    }
}

async fn screen(w: &World, context: cpb::ScreeningContext, texts: &[(&str, &str)]) -> pb::ScreenTextResponse {
    w.screening()
        .screen_text(with_token(request(context, texts), &w.content_token))
        .await
        .expect("screened")
        .into_inner()
}

fn rid() -> String {
    uuid::Uuid::now_v7().to_string()
}

async fn every_category_is_found_with_exact_spans_r7_1_1(db: TestDatabase) {
    let w = World::start(db).await;
    let cases: &[(&str, &str, cpb::ScreeningCategory, cpb::ScreeningSeverity, &str)] = &[
        (
            "marking",
            "附件为机密文件，请勿外传",
            cpb::ScreeningCategory::ClassifiedMarking,
            cpb::ScreeningSeverity::Block,
            "机密",
        ),
        (
            "obfuscated",
            "这份内*部*资*料大家看看",
            cpb::ScreeningCategory::ClassifiedMarking,
            cpb::ScreeningSeverity::Block,
            "内*部*资*料",
        ),
        (
            "traditional",
            "請勿轉發絕密材料",
            cpb::ScreeningCategory::ClassifiedMarking,
            cpb::ScreeningSeverity::Block,
            "絕密",
        ),
        // Overlapping terms are both reported: 煽动颠覆 and 颠覆国家政权.
        (
            "political",
            "有人在网上煽动颠覆国家政权",
            cpb::ScreeningCategory::Political,
            cpb::ScreeningSeverity::Block,
            "颠覆国家政权",
        ),
        ("illegal", "专业代开发票，联系我", cpb::ScreeningCategory::Illegal, cpb::ScreeningSeverity::Block, "代开发票"),
        ("abuse", "你们这群傻逼", cpb::ScreeningCategory::Profanity, cpb::ScreeningSeverity::Block, "傻逼"),
        (
            "wording",
            "台湾政府发言人表示",
            cpb::ScreeningCategory::NonStandardWording,
            cpb::ScreeningSeverity::Review,
            "台湾政府",
        ),
        (
            "name",
            "中华人民共合国成立七十七周年",
            cpb::ScreeningCategory::CriticalName,
            cpb::ScreeningSeverity::Block,
            "中华人民共合国",
        ),
        (
            "id",
            "我的身份证号是11010519491231002X",
            cpb::ScreeningCategory::PersonalData,
            cpb::ScreeningSeverity::Block,
            "11010519491231002X",
        ),
        (
            "mobile",
            "有事请拨打13800138000咨询",
            cpb::ScreeningCategory::PersonalData,
            cpb::ScreeningSeverity::Review,
            "13800138000",
        ),
        (
            "card",
            "退款请转到6222021234567890128",
            cpb::ScreeningCategory::PersonalData,
            cpb::ScreeningSeverity::Block,
            "6222021234567890128",
        ),
        (
            "emoji",
            "😀👍 ＡＢＣ 机\u{200B}密 😀",
            cpb::ScreeningCategory::ClassifiedMarking,
            cpb::ScreeningSeverity::Block,
            "机\u{200B}密",
        ),
    ];
    let texts: Vec<(&str, &str)> = cases.iter().map(|(k, t, ..)| (*k, *t)).collect();
    let answer = screen(&w, cpb::ScreeningContext::Post, &texts).await;
    assert_eq!(answer.lexicon_version, 1, "the default lexicon is version 1");
    for ((key, text, category, severity, excerpt), result) in cases.iter().zip(&answer.results) {
        assert_eq!(&result.key, key);
        // Personal data is answered masked (R7.1.1); the span still points at it.
        let shown = match *key {
            "id" => PersonalDataKind::ResidentIdNumber.mask(excerpt),
            "mobile" => PersonalDataKind::MobileNumber.mask(excerpt),
            "card" => PersonalDataKind::BankCardNumber.mask(excerpt),
            _ => (*excerpt).to_owned(),
        };
        let finding = result
            .findings
            .iter()
            .find(|f| f.category == *category as i32 && f.excerpt == shown)
            .unwrap_or_else(|| panic!("{key}: no {category:?} finding {shown:?} in {:?}", result.findings));
        assert_eq!(finding.severity, *severity as i32, "{key}");
        let span = finding.span.expect("span");
        assert_eq!(&text[span.byte_start as usize..span.byte_end as usize], *excerpt, "{key}: byte span");
        let chars: Vec<char> = text.chars().collect();
        assert_eq!(
            chars[span.char_start as usize..span.char_end as usize].iter().collect::<String>(),
            *excerpt,
            "{key}: char span"
        );
        assert_eq!(result.blocked, *severity == cpb::ScreeningSeverity::Block, "{key}");
    }
    let suggestion = &answer.results[7].findings[0].suggestion;
    assert_eq!(suggestion, "中华人民共和国");

    // Ordinary text and whitelisted phrases pass.
    let clean = screen(
        &w,
        cpb::ScreeningContext::Comment,
        &[("a", "推进垃圾分类，建设美丽城市"), ("b", "请保管好手机密码"), ("c", "市民服务热线12345")],
    )
    .await;
    assert!(clean.results.iter().all(|r| r.findings.is_empty()), "{:?}", clean.results);

    // Refusals.
    let status = w
        .screening()
        .screen_text(with_token(request(cpb::ScreeningContext::Unspecified, &[("a", "x")]), &w.content_token))
        .await
        .expect_err("no context");
    assert_eq!(status.code(), Code::InvalidArgument);
    let status = w
        .screening()
        .screen_text(with_token(request(cpb::ScreeningContext::Post, &[("a", "x")]), &w.nobody_token))
        .await
        .expect_err("no role");
    assert_eq!(status.code(), Code::PermissionDenied);
}

async fn lexicon_updates_take_effect_at_once_and_are_audited_r7_1_1(db: TestDatabase) {
    let w = World::start(db).await;
    let before = screen(&w, cpb::ScreeningContext::Post, &[("t", "本周举办云端推介会")]).await;
    assert!(before.results[0].findings.is_empty());

    let entry = pb::LexiconEntry {
        term: "云端推介会".into(),
        category: cpb::ScreeningCategory::NonStandardWording as i32,
        severity: cpb::ScreeningSeverity::Review as i32,
        suggestion: "线上推介会".into(),
        rule_id: "R3.2.3".into(),
        source: "bureau style guide 2026".into(),
        ..Default::default()
    };
    let status = w
        .screening()
        .upsert_lexicon_entries(with_token(
            pb::UpsertLexiconEntriesRequest { request_id: rid(), entries: vec![entry.clone()] },
            &w.auditor_token,
        ))
        .await
        .expect_err("auditors read, officers manage");
    assert_eq!(status.code(), Code::PermissionDenied);
    let mut bad = entry.clone();
    bad.rule_id = "7.1.1".into();
    bad.category = cpb::ScreeningCategory::PersonalData as i32;
    let status = w
        .screening()
        .upsert_lexicon_entries(with_token(
            pb::UpsertLexiconEntriesRequest { request_id: rid(), entries: vec![bad] },
            &w.officer_token,
        ))
        .await
        .expect_err("invalid");
    assert_eq!(status.code(), Code::InvalidArgument);

    let updated = w
        .screening()
        .upsert_lexicon_entries(with_token(
            pb::UpsertLexiconEntriesRequest { request_id: rid(), entries: vec![entry] },
            &w.officer_token,
        ))
        .await
        .expect("upserted")
        .into_inner();
    assert_eq!((updated.version, updated.inserted_count), (2, 1));
    let after = screen(&w, cpb::ScreeningContext::Post, &[("t", "本周举办云端推介会")]).await;
    assert_eq!(after.lexicon_version, 2);
    assert_eq!(after.results[0].findings[0].suggestion, "线上推介会");

    // The whitelist and deletions are versions too.
    w.screening()
        .upsert_whitelist_entries(with_token(
            pb::UpsertWhitelistEntriesRequest {
                request_id: rid(),
                entries: vec![pb::WhitelistEntry {
                    phrase: "云端推介会回放".into(),
                    note: "the recording's title".into(),
                    ..Default::default()
                }],
            },
            &w.officer_token,
        ))
        .await
        .expect("whitelisted");
    let replay = screen(&w, cpb::ScreeningContext::Post, &[("t", "观看云端推介会回放")]).await;
    assert_eq!(replay.lexicon_version, 3);
    assert!(replay.results[0].findings.is_empty());
    let listed = w
        .screening()
        .list_lexicon_entries(with_token(
            pb::ListLexiconEntriesRequest {
                category: cpb::ScreeningCategory::NonStandardWording as i32,
                ..Default::default()
            },
            &w.auditor_token,
        ))
        .await
        .expect("list")
        .into_inner()
        .entries;
    let ours = listed.iter().find(|e| e.term == "云端推介会").expect("listed");
    w.screening()
        .delete_lexicon_entries(with_token(
            pb::DeleteLexiconEntriesRequest { request_id: rid(), entry_ids: vec![ours.id.clone()] },
            &w.officer_token,
        ))
        .await
        .expect("deleted");
    let gone = screen(&w, cpb::ScreeningContext::Post, &[("t", "本周举办云端推介会")]).await;
    assert_eq!(gone.lexicon_version, 4);
    assert!(gone.results[0].findings.is_empty());
    let info = w
        .screening()
        .get_lexicon(with_token(pb::GetLexiconRequest {}, &w.auditor_token))
        .await
        .expect("info")
        .into_inner();
    assert_eq!(info.version, 4);
    let whitelist = w
        .screening()
        .list_whitelist_entries(with_token(pb::ListWhitelistEntriesRequest::default(), &w.auditor_token))
        .await
        .expect("list")
        .into_inner();
    assert_eq!(whitelist.entries.len(), 5);

    // Each change is in the audit log.
    let mut events = Vec::new();
    for _ in 0..50 {
        events = w
            .client()
            .query_events(with_token(
                pb::QueryEventsRequest {
                    filter: Some(pb::EventFilter {
                        actions: vec!["lexicon.updated".into(), "whitelist.updated".into()],
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                &w.auditor_token,
            ))
            .await
            .expect("query")
            .into_inner()
            .events;
        if events.len() == 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(events.len(), 3, "two lexicon changes and one whitelist change");
}

async fn screening_racing_an_update_never_sees_a_half_built_lexicon_r7_1_1(db: TestDatabase) {
    let w = World::start(db).await;
    let text = "试点新闻甲乙丙丁";
    let mut screeners = Vec::new();
    for _ in 0..4 {
        let mut client = w.screening();
        let token = w.content_token.clone();
        screeners.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            for _ in 0..40 {
                let r = client
                    .screen_text(with_token(request(cpb::ScreeningContext::Post, &[("t", text)]), &token))
                    .await
                    .expect("screened")
                    .into_inner();
                let terms: Vec<String> = r.results[0].findings.iter().map(|f| f.matched_term.clone()).collect();
                seen.push((r.lexicon_version, terms));
            }
            seen
        }));
    }
    // Two terms added in one version: a screening sees both or neither.
    let entries = ["甲乙", "丙丁"]
        .iter()
        .map(|t| pb::LexiconEntry {
            term: (*t).into(),
            category: cpb::ScreeningCategory::Illegal as i32,
            severity: cpb::ScreeningSeverity::Block as i32,
            rule_id: "R1.3.1".into(),
            ..Default::default()
        })
        .collect();
    w.screening()
        .upsert_lexicon_entries(with_token(
            pb::UpsertLexiconEntriesRequest { request_id: rid(), entries },
            &w.officer_token,
        ))
        .await
        .expect("upserted");
    let mut versions = std::collections::BTreeSet::new();
    for s in screeners {
        for (version, terms) in s.await.expect("task") {
            versions.insert(version);
            match version {
                1 => assert!(terms.is_empty(), "version 1 knows neither term: {terms:?}"),
                2 => assert_eq!(terms, ["甲乙", "丙丁"], "version 2 knows both"),
                other => panic!("unexpected version {other}"),
            }
        }
    }
    let last = screen(&w, cpb::ScreeningContext::Post, &[("t", text)]).await;
    assert_eq!(last.lexicon_version, 2);
}

storage_tests!(
    every_category_is_found_with_exact_spans_r7_1_1,
    lexicon_updates_take_effect_at_once_and_are_audited_r7_1_1,
    screening_racing_an_update_never_sees_a_half_built_lexicon_r7_1_1,
);
