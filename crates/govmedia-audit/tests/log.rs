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
    // TRUNCATE fires no row trigger (issue 18): statement triggers refuse it, and the
    // chain head that vouches for the end of the log is never removed.
    let statements: &[&str] = match &w.audit_db {
        govmedia_kit::db::Database::Postgres(_) => &[
            "TRUNCATE audit_events",
            "TRUNCATE audit_checkpoints",
            "TRUNCATE audit_chain_head",
            "DELETE FROM audit_chain_head",
        ],
        govmedia_kit::db::Database::Sqlite(_) => &["DELETE FROM audit_chain_head"],
    };
    for statement in statements {
        let refused = match &w.audit_db {
            govmedia_kit::db::Database::Postgres(pool) => sqlx::query(statement).execute(pool).await.is_err(),
            govmedia_kit::db::Database::Sqlite(pool) => sqlx::query(statement).execute(pool).await.is_err(),
        };
        assert!(refused, "{statement} must be refused");
    }
    assert!(verify(&w).await.intact);
}

async fn an_altered_event_is_named_r1_3_5(db: TestDatabase) {
    let w = tampered(db).await;
    w.sql("UPDATE audit_events SET reason = 'nothing to see' WHERE sequence = 12").await;
    let report = verify(&w).await;
    assert!(!report.intact);
    assert_eq!(report.first_broken_sequence, 12);
    assert_eq!(report.break_kind, pb::BreakKind::HashMismatch as i32);
}

/// Found by the fault suite's tampering scenario: a row altered so that it no longer
/// decodes (attributes that are not JSON, a hash of the wrong length, on SQLite a time
/// that is not a time) made VerifyLog fail as an internal error instead of naming it.
async fn an_event_altered_past_reading_is_named_r1_3_5(db: TestDatabase) {
    let w = tampered(db).await;
    w.sql("UPDATE audit_events SET attributes = 'not json' WHERE sequence = 8").await;
    let report = verify(&w).await;
    assert_eq!((report.first_broken_sequence, report.break_kind), (8, pb::BreakKind::HashMismatch as i32));
    assert!(report.detail.contains("no longer an event"), "{}", report.detail);
    w.sql("UPDATE audit_events SET hash = previous_hash || previous_hash WHERE sequence = 5").await;
    let report = verify(&w).await;
    assert_eq!((report.first_broken_sequence, report.break_kind), (5, pb::BreakKind::HashMismatch as i32));
    if matches!(w.audit_db, govmedia_kit::db::Database::Sqlite(_)) {
        w.sql("UPDATE audit_events SET occur_time = 'yesterday' WHERE sequence = 3").await;
        let report = verify(&w).await;
        assert_eq!((report.first_broken_sequence, report.break_kind), (3, pb::BreakKind::HashMismatch as i32));
    }
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

/// The audit writer on `db`, signing a checkpoint every `every_events` or `every`.
fn appender_on(
    db: &govmedia_kit::db::Database,
    every_events: i64,
    every: std::time::Duration,
    stop: &tokio_util::sync::CancellationToken,
) -> govmedia_audit::appender::Appender {
    govmedia_audit::appender::Appender::start(
        db.clone(),
        std::sync::Arc::new(govmedia_domain::clock::SystemClock),
        govmedia_audit::appender::CheckpointPolicy {
            every_events,
            every,
            key_id: "k".into(),
            key: ed25519_dalek::SigningKey::from_bytes(&[1; 32]),
        },
        stop.clone(),
    )
}

/// One content event, as a producer would send it.
fn one_event() -> govmedia_audit::domain::chain::ChainedEvent {
    let record = govmedia_domain::audit::AuditRecord::new(
        govmedia_domain::audit::AuditAction::DraftApproved,
        govmedia_domain::audit::Actor::system("test"),
        govmedia_domain::audit::AuditResourceRef::new("draft", "d1"),
        "content",
        chrono::Utc::now(),
    );
    govmedia_audit::new_event(&record)
}

/// A checkpoint is signed after the interval even when fewer than N events arrived.
async fn a_checkpoint_follows_the_interval_r1_3_5(db: TestDatabase) {
    let db = db.connect(&govmedia_audit::MIGRATIONS).await;
    let stop = tokio_util::sync::CancellationToken::new();
    let appender = appender_on(&db, 1_000_000, std::time::Duration::from_millis(100), &stop);
    appender.append(vec![one_event()]).await.expect("appended");
    let latest = govmedia_testkit::eventually("a timed checkpoint", std::time::Duration::from_secs(5), async || {
        govmedia_audit::store::latest_checkpoint(&db).await.expect("read")
    })
    .await;
    assert_eq!(latest.sequence, 1);
    stop.cancel();
}

async fn verify_with(w: &World, kept: Option<pb::Checkpoint>) -> Result<pb::VerifyLogResponse, tonic::Status> {
    w.client()
        .verify_log(with_token(pb::VerifyLogRequest { kept_checkpoint: kept, ..Default::default() }, &w.auditor_token))
        .await
        .map(tonic::Response::into_inner)
}

async fn latest_checkpoint(w: &World) -> pb::Checkpoint {
    w.client()
        .get_latest_checkpoint(with_token(pb::GetLatestCheckpointRequest {}, &w.auditor_token))
        .await
        .expect("read")
        .into_inner()
        .checkpoint
        .expect("a checkpoint")
}

/// Issue 18 (low): VerifyLog did not report a log that ends early. Removing the newest
/// events is found by the chain head and the stored checkpoints; removing them together
/// with their checkpoints and rewinding the head is found only by a checkpoint kept
/// outside the database, which is why `govmedia audit checkpoint` exports one. (Every
/// verification appends its own `audit.verified` event, so the log grows as it runs.)
async fn a_removed_tail_is_named_r1_3_5(db: TestDatabase) {
    let w = tampered(db).await;
    let report = verify(&w).await;
    assert_eq!(report.latest_checkpoint_sequence, 30);
    assert_eq!(report.events_after_latest_checkpoint, report.end_sequence - 30, "{report:?}");
    let kept = latest_checkpoint(&w).await;
    assert_eq!(kept.sequence, 30);
    let stored_twenty = govmedia_audit::store::checkpoint_at(&w.audit_db, 20).await.expect("read").expect("stored");
    let twenty = pb::Checkpoint {
        sequence: 20,
        hash: stored_twenty.hash,
        create_time: Some(prost_types::Timestamp::from(std::time::SystemTime::from(stored_twenty.created_at))),
        key_id: stored_twenty.key_id,
        signature: stored_twenty.signature,
        public_key: stored_twenty.public_key,
    };
    assert!(verify_with(&w, Some(kept.clone())).await.expect("verified").intact);
    assert!(verify_with(&w, Some(twenty.clone())).await.expect("verified").intact);

    // The tail alone: the chain head and the stored checkpoint at 30 still vouch for it.
    w.sql("DELETE FROM audit_events WHERE sequence > 25").await;
    let report = verify(&w).await;
    assert!(!report.intact);
    assert_eq!(report.first_broken_sequence, 26, "{}", report.detail);
    assert_eq!(report.break_kind, pb::BreakKind::TailMissing as i32);
    assert!(report.detail.contains("checkpoint vouches for event 30"), "{}", report.detail);

    // The tail, its checkpoint and the head rewound: the database no longer knows ...
    w.sql("DELETE FROM audit_events WHERE sequence > 25").await;
    w.sql("DELETE FROM audit_checkpoints WHERE sequence > 25").await;
    w.sql("UPDATE audit_chain_head SET sequence = 25, hash = (SELECT hash FROM audit_events WHERE sequence = 25)")
        .await;
    assert!(verify(&w).await.intact, "nothing inside the database vouches for the removed events");
    // ... but the kept copy does: first the log ends before it, and once new events
    // reach its sequence, the event there is not the one it signed.
    let report = verify_with(&w, Some(kept.clone())).await.expect("verified");
    assert!(!report.intact);
    assert_eq!(report.break_kind, pb::BreakKind::TailMissing as i32, "{}", report.detail);
    assert!(report.detail.contains("the kept checkpoint vouches for event 30"), "{}", report.detail);
    append(&w, (100..105).map(|n| event(n, "draft.approved")).collect()).await;
    let report = verify_with(&w, Some(kept.clone())).await.expect("verified");
    assert_eq!(report.break_kind, pb::BreakKind::CheckpointHashMismatch as i32, "{}", report.detail);
    assert_eq!(report.first_broken_sequence, 30);

    // A kept checkpoint removed from the stored ones is named.
    w.sql("DELETE FROM audit_checkpoints WHERE sequence = 20").await;
    let report = verify_with(&w, Some(twenty.clone())).await.expect("verified");
    assert_eq!(report.break_kind, pb::BreakKind::CheckpointMissing as i32, "{}", report.detail);
    assert_eq!(report.first_broken_sequence, 20);

    // A kept checkpoint that is not this log's signature is the caller's mistake.
    let mut forged = kept.clone();
    forged.signature[0] ^= 1;
    let status = verify_with(&w, Some(forged)).await.expect_err("a forged kept checkpoint");
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    let violations = tonic_types::StatusExt::get_details_bad_request(&status).expect("field violations");
    assert_eq!(violations.field_violations[0].field, "kept_checkpoint.signature");
    let status = verify_with(&w, Some(pb::Checkpoint { sequence: 20, ..kept })).await.expect_err("mixed up");
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
}

storage_tests!(
    a_removed_tail_is_named_r1_3_5,
    a_checkpoint_follows_the_interval_r1_3_5,
    appends_are_idempotent_by_event_id_and_for_services_only_r9_2,
    concurrent_appends_make_one_gap_free_chain_r1_3_5,
    the_append_only_guard_refuses_changes_r1_3_5,
    an_altered_event_is_named_r1_3_5,
    an_event_altered_past_reading_is_named_r1_3_5,
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

/// The roles of deploy/postgres/service-roles.sql, made for one test and dropped after.
struct SplitRoles {
    admin: sqlx::PgPool,
    owner: String,
    app: String,
    schema: String,
}

impl SplitRoles {
    /// Runs the shipped script with psql's variables filled in.
    async fn create(db: &TestDatabase) -> (Self, String, String) {
        let suffix = uuid::Uuid::now_v7().simple().to_string()[20..].to_owned();
        let (owner, app, schema) = (format!("owner_{suffix}"), format!("app_{suffix}"), format!("audit_{suffix}"));
        let admin = sqlx::PgPool::connect(db.url().expose()).await.expect("admin");
        let script = govmedia_testkit::service_roles_sql(&schema, &owner, &app, "owner-secret", "app-secret");
        sqlx::raw_sql(&script).execute(&admin).await.expect("the roles script runs");
        let as_role = |role: &str, password: &str| {
            let mut url = url::Url::parse(db.url().expose()).expect("url");
            url.set_username(role).expect("user");
            url.set_password(Some(password)).expect("password");
            url.query_pairs_mut().append_pair("options", &format!("-c search_path={schema}"));
            url.to_string()
        };
        let (owner_url, app_url) = (as_role(&owner, "owner-secret"), as_role(&app, "app-secret"));
        (Self { admin, owner, app, schema }, owner_url, app_url)
    }

    async fn drop(self) {
        for statement in [
            format!("DROP SCHEMA \"{}\" CASCADE", self.schema),
            format!("DROP OWNED BY \"{}\", \"{}\"", self.owner, self.app),
            format!("DROP ROLE \"{}\"", self.app),
            format!("DROP ROLE \"{}\"", self.owner),
        ] {
            sqlx::query(&statement).execute(&self.admin).await.unwrap_or_else(|e| panic!("{statement}: {e}"));
        }
    }
}

/// Issue 18 (low): the service ran as the role owning the audit tables, so its own
/// credentials could disable the append-only triggers, drop or truncate the log. With
/// the roles of deploy/postgres/service-roles.sql it migrates as the owner and runs as
/// a role that can only read and append.
#[tokio::test]
async fn the_service_role_cannot_drop_truncate_or_untrigger_the_log_r1_3_5() {
    use govmedia_kit::db::Database;
    let db = TestDatabase::postgres().await;
    let (roles, owner_url, app_url) = SplitRoles::create(&db).await;
    let app = Database::open_migrated(
        &app_url.parse().expect("app url"),
        Some(&owner_url.parse().expect("owner url")),
        2,
        std::time::Duration::from_secs(5),
        &govmedia_audit::MIGRATIONS,
    )
    .await
    .expect("migrated as the owner, opened as the service");

    // The service appends and checkpoints as before.
    let stop = tokio_util::sync::CancellationToken::new();
    let appender = appender_on(&app, 1, std::time::Duration::from_secs(3600), &stop);
    appender.append(vec![one_event()]).await.expect("the service role appends");
    govmedia_testkit::eventually("a checkpoint", std::time::Duration::from_secs(5), async || {
        govmedia_audit::store::latest_checkpoint(&app).await.expect("read")
    })
    .await;
    stop.cancel();

    let Database::Postgres(pool) = &app else { unreachable!("PostgreSQL") };
    for statement in [
        "ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only",
        "ALTER TABLE audit_events DISABLE TRIGGER ALL",
        "DROP TABLE audit_checkpoints",
        "TRUNCATE audit_events",
        "DELETE FROM audit_events",
        "UPDATE audit_events SET reason = 'x'",
    ] {
        let refused = sqlx::query(statement).execute(pool).await.expect_err(statement);
        assert!(
            ["must be owner", "permission denied"].iter().any(|m| refused.to_string().contains(m)),
            "{statement}: {refused}"
        );
    }
    // Even the owner cannot empty it: TRUNCATE meets the statement trigger.
    let owner = sqlx::PgPool::connect(&owner_url).await.expect("owner");
    let refused = sqlx::query("TRUNCATE audit_events").execute(&owner).await.expect_err("the owner's TRUNCATE");
    assert!(refused.to_string().contains("append-only"), "{refused}");
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_events").fetch_one(pool).await.expect("count");
    assert_eq!(count, 1);

    owner.close().await;
    app.close().await;
    roles.drop().await;
}
