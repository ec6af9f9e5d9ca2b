//! The audit log over real gRPC with a real identity service, on PostgreSQL and SQLite:
//! idempotent appends by services only, queries and export, a gap-free chain under
//! concurrent appends, and tamper evidence: an altered, deleted or reordered event or a
//! forged checkpoint is named by VerifyLog (R1.3.5, R9.2).

mod common;

use common::{CHECKPOINT_EVERY, World};
use govmedia_proto::audit::v1 as pb;
use govmedia_proto::common::v1 as cpb;
use govmedia_testkit::{TestDatabase, storage_tests, with_token};
use tokio_stream::StreamExt;
use tonic::Code;
use tonic_types::StatusExt;

/// An hour ago: events are appended as they happen (an older one is refused).
fn an_hour_ago() -> i64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("after 1970");
    i64::try_from(now.as_secs()).unwrap_or(i64::MAX) - 3600
}

fn event(n: usize, action: &str) -> pb::AuditEvent {
    pb::AuditEvent {
        id: uuid::Uuid::now_v7().to_string(),
        occur_time: Some(prost_types::Timestamp { seconds: an_hour_ago() + i64::try_from(n).unwrap_or(0), nanos: 0 }),
        action: action.into(),
        actor: Some(cpb::PrincipalRef {
            kind: cpb::PrincipalKind::User as i32,
            id: format!("user-{}", n % 3),
            display_name: "李伟".into(),
        }),
        producer: "content".into(),
        resource: Some(pb::AuditResource { r#type: "draft".into(), id: format!("draft-{n}"), ..Default::default() }),
        outcome: pb::AuditOutcome::Success as i32,
        rule_id: "R3.2.2".into(),
        attributes: [("stage".to_owned(), "department".to_owned())].into_iter().collect(),
        ..Default::default()
    }
}

async fn append(w: &World, events: Vec<pb::AuditEvent>) -> pb::AppendEventsResponse {
    w.client()
        .append_events(with_token(pb::AppendEventsRequest { events }, &w.content_token))
        .await
        .expect("appended")
        .into_inner()
}

async fn verify(w: &World) -> pb::VerifyLogResponse {
    w.client()
        .verify_log(with_token(pb::VerifyLogRequest::default(), &w.auditor_token))
        .await
        .expect("verified")
        .into_inner()
}

async fn appends_are_idempotent_by_event_id_and_for_services_only_r9_2(db: TestDatabase) {
    let w = World::start(db).await;
    let batch: Vec<_> = (0..5).map(|n| event(n, "draft.approved")).collect();
    let first = append(&w, batch.clone()).await;
    assert_eq!((first.appended_count, first.last_sequence), (5, 5));
    let replay = append(&w, batch.clone()).await;
    assert_eq!(replay.appended_count, 0, "a replay appends nothing");
    assert_eq!(replay.duplicate_event_ids.len(), 5, "and says so");
    assert_eq!(replay.last_sequence, 5);

    // Staff cannot append, even an auditor; nobody without a token.
    let status = w
        .client()
        .append_events(with_token(
            pb::AppendEventsRequest { events: vec![event(9, "draft.approved")] },
            &w.auditor_token,
        ))
        .await
        .expect_err("user");
    assert_eq!(status.code(), Code::PermissionDenied);
    let status = w
        .client()
        .append_events(pb::AppendEventsRequest { events: vec![event(9, "draft.approved")] })
        .await
        .expect_err("anonymous");
    assert_eq!(status.code(), Code::Unauthenticated);

    // Malformed events are refused field by field; nothing of the batch is written.
    let mut bad = event(10, "Draft Approved");
    bad.id = "nope".into();
    bad.outcome = 0;
    let valid = event(11, "draft.approved");
    let status = w
        .client()
        .append_events(with_token(pb::AppendEventsRequest { events: vec![valid.clone(), bad] }, &w.content_token))
        .await
        .expect_err("invalid");
    assert_eq!(status.code(), Code::InvalidArgument);
    let fields: Vec<_> =
        status.get_details_bad_request().expect("violations").field_violations.into_iter().map(|f| f.field).collect();
    assert_eq!(fields, ["events[1].id", "events[1].action", "events[1].outcome"]);
    let status = w
        .client()
        .get_event(with_token(pb::GetEventRequest { event_id: valid.id.clone() }, &w.auditor_token))
        .await
        .expect_err("the valid half of the refused batch was not written");
    assert_eq!(status.code(), Code::NotFound);

    // Query by actor, by action prefix, with paging; get one event.
    let more: Vec<_> =
        (5..12).map(|n| event(n, if n % 2 == 0 { "draft.rejected" } else { "publication.published" })).collect();
    append(&w, more).await;
    let page = w
        .client()
        .query_events(with_token(
            pb::QueryEventsRequest {
                filter: Some(pb::EventFilter { actions: vec!["draft.*".into()], ..Default::default() }),
                page_size: 4,
                page_token: String::new(),
            },
            &w.auditor_token,
        ))
        .await
        .expect("query")
        .into_inner();
    assert_eq!(page.events.len(), 4);
    assert!(page.events.iter().all(|e| e.action.starts_with("draft.")));
    let rest = w
        .client()
        .query_events(with_token(
            pb::QueryEventsRequest {
                filter: Some(pb::EventFilter { actions: vec!["draft.*".into()], ..Default::default() }),
                page_size: 4,
                page_token: page.next_page_token,
            },
            &w.auditor_token,
        ))
        .await
        .expect("query")
        .into_inner();
    assert_eq!(page.events.len() + rest.events.len(), 8, "5 approved + 3 rejected (6, 8, 10)");
    assert!(rest.events[0].sequence > page.events[3].sequence);
    let by_actor = w
        .client()
        .query_events(with_token(
            pb::QueryEventsRequest {
                filter: Some(pb::EventFilter { actor_id: "user-0".into(), ..Default::default() }),
                ..Default::default()
            },
            &w.auditor_token,
        ))
        .await
        .expect("query")
        .into_inner();
    assert_eq!(by_actor.events.len(), 4, "n = 0, 3, 6, 9");
    let got = w
        .client()
        .get_event(with_token(pb::GetEventRequest { event_id: batch[2].id.clone() }, &w.auditor_token))
        .await
        .expect("get")
        .into_inner();
    let got = got.event.expect("event");
    assert_eq!(got.sequence, 3);
    assert_eq!(got.actor.expect("actor").display_name, "李伟");
    let status = w
        .client()
        .query_events(with_token(pb::QueryEventsRequest::default(), &w.nobody_token))
        .await
        .expect_err("no role");
    assert_eq!(status.code(), Code::PermissionDenied);

    // Export streams everything with progress.
    let mut stream = w
        .client()
        .export_events(with_token(pb::ExportEventsRequest::default(), &w.auditor_token))
        .await
        .expect("export")
        .into_inner();
    let mut exported = 0;
    let mut refusals = 0;
    let mut last = None;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.expect("chunk");
        exported += chunk.events.len();
        refusals += chunk.events.iter().filter(|e| e.action == "permission.denied").count();
        last = Some(chunk);
    }
    // 12 appended, plus the audit service's own record of this export (written at once),
    // plus the records of the refused append and query (decision 0029) that its outbox
    // relay has delivered by now: 0 to 2.
    assert_eq!(exported - refusals, 13);
    assert!(refusals <= 2, "{refusals}");
    assert_eq!(usize::try_from(last.expect("a chunk").exported_count).expect("fits"), exported);

    // The checkpoint after 10 events is signed and retrievable; the log verifies.
    let checkpoint = w
        .client()
        .get_latest_checkpoint(with_token(pb::GetLatestCheckpointRequest {}, &w.auditor_token))
        .await
        .expect("checkpoint")
        .into_inner();
    let checkpoint = checkpoint.checkpoint.expect("a checkpoint exists");
    assert!(i64::try_from(checkpoint.sequence).expect("fits") >= CHECKPOINT_EVERY, "made once 10 events were passed");
    let report = verify(&w).await;
    assert!(report.intact, "{}", report.detail);
    assert!(report.verified_checkpoint_count >= 1);
    // Exports and verifications are themselves audited.
    let own = w
        .client()
        .query_events(with_token(
            pb::QueryEventsRequest {
                filter: Some(pb::EventFilter { actions: vec!["audit.*".into()], ..Default::default() }),
                ..Default::default()
            },
            &w.auditor_token,
        ))
        .await
        .expect("query")
        .into_inner();
    assert!(own.events.iter().any(|e| e.action == "audit.exported"));
    assert!(own.events.iter().any(|e| e.action == "audit.verified"));
}

async fn concurrent_appends_make_one_gap_free_chain_r1_3_5(db: TestDatabase) {
    let w = World::start(db).await;
    let mut tasks = Vec::new();
    for t in 0..8 {
        let mut client = w.client();
        let token = w.content_token.clone();
        tasks.push(tokio::spawn(async move {
            for b in 0..5 {
                let events: Vec<_> = (0..10).map(|n| event(t * 100 + b * 10 + n, "comment.ingested")).collect();
                client.append_events(with_token(pb::AppendEventsRequest { events }, &token)).await.expect("appended");
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    let report = verify(&w).await;
    assert!(report.intact, "{}", report.detail);
    assert_eq!(report.verified_event_count, 400);
    assert_eq!(report.end_sequence, 400, "400 events, sequences 1..=400 without a gap");
    assert!(report.verified_checkpoint_count >= 1);
}

/// Appends 30 events and turns the append-only guard off.
async fn tampered(db: TestDatabase) -> World {
    let w = World::start(db).await;
    for chunk in 0..3 {
        append(&w, (0..10).map(|n| event(chunk * 10 + n, "draft.approved")).collect()).await;
    }
    assert!(verify(&w).await.intact);
    w.disable_guard().await;
    w
}

async fn the_append_only_guard_refuses_changes_r1_3_5(db: TestDatabase) {
    let w = World::start(db).await;
    append(&w, vec![event(1, "draft.approved")]).await;
    let refused = match &w.audit_db {
        govmedia_kit::db::Database::Postgres(pool) => {
            sqlx::query("UPDATE audit_events SET reason = 'x'").execute(pool).await.is_err()
        }
        govmedia_kit::db::Database::Sqlite(pool) => {
            sqlx::query("UPDATE audit_events SET reason = 'x'").execute(pool).await.is_err()
        }
    };
    assert!(refused, "UPDATE on the audit log must be refused");
    let refused = match &w.audit_db {
        govmedia_kit::db::Database::Postgres(pool) => {
            sqlx::query("DELETE FROM audit_events").execute(pool).await.is_err()
        }
        govmedia_kit::db::Database::Sqlite(pool) => {
            sqlx::query("DELETE FROM audit_events").execute(pool).await.is_err()
        }
    };
    assert!(refused, "DELETE on the audit log must be refused");
}

async fn an_altered_event_is_named_r1_3_5(db: TestDatabase) {
    let w = tampered(db).await;
    w.sql("UPDATE audit_events SET reason = 'nothing to see' WHERE sequence = 12").await;
    let report = verify(&w).await;
    assert!(!report.intact);
    assert_eq!(report.first_broken_sequence, 12);
    assert_eq!(report.break_kind, pb::BreakKind::HashMismatch as i32);
}

async fn a_deleted_event_is_named_r1_3_5(db: TestDatabase) {
    let w = tampered(db).await;
    w.sql("DELETE FROM audit_events WHERE sequence = 17").await;
    let report = verify(&w).await;
    assert!(!report.intact);
    assert_eq!(report.first_broken_sequence, 17);
    assert_eq!(report.break_kind, pb::BreakKind::SequenceGap as i32);
}

async fn reordered_events_are_named_r1_3_5(db: TestDatabase) {
    let w = tampered(db).await;
    // Swap the sequence numbers of events 21 and 22 (their content and hashes move).
    w.sql("UPDATE audit_events SET sequence = -1 WHERE sequence = 21").await;
    w.sql("UPDATE audit_events SET sequence = 21 WHERE sequence = 22").await;
    w.sql("UPDATE audit_events SET sequence = 22 WHERE sequence = -1").await;
    let report = verify(&w).await;
    assert!(!report.intact);
    assert_eq!(report.first_broken_sequence, 21);
    assert_eq!(report.break_kind, pb::BreakKind::ChainMismatch as i32);
}

async fn a_forged_checkpoint_signature_is_reported_r1_3_5(db: TestDatabase) {
    let w = tampered(db).await;
    let statement = match &w.audit_db {
        govmedia_kit::db::Database::Postgres(_) => {
            "UPDATE audit_checkpoints SET signature = decode(repeat('ab', 64), 'hex') WHERE sequence = 20"
        }
        govmedia_kit::db::Database::Sqlite(_) => {
            "UPDATE audit_checkpoints SET signature = randomblob(64) WHERE sequence = 20"
        }
    };
    w.sql(statement).await;
    let report = verify(&w).await;
    assert!(!report.intact);
    assert_eq!(report.first_broken_sequence, 20);
    assert_eq!(report.break_kind, pb::BreakKind::CheckpointSignatureInvalid as i32);
}

/// A checkpoint is signed after the interval even when fewer than N events arrived.
async fn a_checkpoint_follows_the_interval_r1_3_5(db: TestDatabase) {
    use std::sync::Arc;

    let db = db.connect(&govmedia_audit::MIGRATIONS).await;
    let stop = tokio_util::sync::CancellationToken::new();
    let appender = govmedia_audit::appender::Appender::start(
        db.clone(),
        Arc::new(govmedia_domain::clock::SystemClock),
        govmedia_audit::appender::CheckpointPolicy {
            every_events: 1_000_000,
            every: std::time::Duration::from_millis(100),
            key_id: "k".into(),
            key: ed25519_dalek::SigningKey::from_bytes(&[1; 32]),
        },
        stop.clone(),
    );
    let record = govmedia_domain::audit::AuditRecord::new(
        govmedia_domain::audit::AuditAction::DraftApproved,
        govmedia_domain::audit::Actor::system("test"),
        govmedia_domain::audit::AuditResourceRef::new("draft", "d1"),
        "content",
        chrono::Utc::now(),
    );
    appender.append(vec![govmedia_audit::new_event(&record)]).await.expect("appended");
    let latest = govmedia_testkit::eventually("a timed checkpoint", std::time::Duration::from_secs(5), async || {
        govmedia_audit::store::latest_checkpoint(&db).await.expect("read")
    })
    .await;
    assert_eq!(latest.sequence, 1);
    stop.cancel();
}

storage_tests!(
    a_checkpoint_follows_the_interval_r1_3_5,
    appends_are_idempotent_by_event_id_and_for_services_only_r9_2,
    concurrent_appends_make_one_gap_free_chain_r1_3_5,
    the_append_only_guard_refuses_changes_r1_3_5,
    an_altered_event_is_named_r1_3_5,
    a_deleted_event_is_named_r1_3_5,
    reordered_events_are_named_r1_3_5,
    a_forged_checkpoint_signature_is_reported_r1_3_5,
);

#[test]
fn audit_migrations_have_the_same_numbering_on_both_backends() {
    govmedia_kit::db::check_migration_parity(&govmedia_audit::MIGRATIONS).expect("parity");
}

#[tokio::test]
async fn audit_tables_are_the_same_on_both_backends() {
    govmedia_testkit::assert_schema_parity(&govmedia_audit::MIGRATIONS).await;
}
