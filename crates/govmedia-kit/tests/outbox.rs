//! The audit outbox on both stores, against a real gRPC receiver: nothing is lost while
//! the receiver is down, nothing is doubled when it crashes mid-batch, a rolled-back
//! change leaves no audit record, and two relays on one PostgreSQL never send an event
//! twice (R1.3.5, R9.2).

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use govmedia_domain::audit::{Actor, AuditAction, AuditRecord, AuditResourceRef};
use govmedia_kit::client::{CallCredentials, lazy_channel};
use govmedia_kit::config::ServerSettings;
use govmedia_kit::db::{Database, ServiceMigrations};
use govmedia_kit::outbox::{self, GrpcAuditSink, Relay};
use govmedia_kit::server::ServerBuilder;
use govmedia_testkit::{TestBackend, TestDatabase, TestServer, storage_tests};
use tokio_util::sync::CancellationToken;

fn record(n: usize) -> AuditRecord {
    AuditRecord::new(
        AuditAction::DraftApproved,
        Actor::system("kit-test"),
        AuditResourceRef::new("draft", format!("d{n}")),
        "content",
        Utc::now(),
    )
    .rule("R3.2.2")
    .attr("n", n)
}

/// Writes `count` records, `per_tx` to a transaction, committed.
async fn write_records(db: &Database, count: usize, per_tx: usize) -> Vec<String> {
    let mut ids = Vec::new();
    let mut n = 0;
    while n < count {
        let mut tx = db.begin().await.expect("begin");
        let batch: Vec<_> = (n..(n + per_tx).min(count)).map(record).collect();
        ids.extend(batch.iter().map(|r| r.id.to_string()));
        outbox::enqueue(&mut tx, &batch).await.expect("enqueue");
        tx.commit().await.expect("commit");
        n += per_tx;
    }
    ids
}

fn free_addr() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr")
}

async fn start_receiver(addr: SocketAddr, store: Arc<Mutex<common::Store>>) -> TestServer {
    let settings = ServerSettings { listen_address: addr, ..ServerSettings::loopback() };
    TestServer::start(ServerBuilder::new(settings).add_service(common::server(store))).await
}

fn relay_to(db: &Database, addr: SocketAddr, batch: u32) -> Relay<GrpcAuditSink> {
    let channel = lazy_channel(&format!("http://{addr}")).expect("endpoint");
    Relay::new(db.clone(), GrpcAuditSink::new(channel, CallCredentials::None)).with_batch_size(batch)
}

async fn drain(relay: &Relay<GrpcAuditSink>) {
    for _ in 0..100 {
        match relay.deliver_batch().await {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) => panic!("delivery failed: {e}"),
        }
    }
    panic!("outbox did not drain");
}

fn assert_exactly_once(store: &common::Store, ids: &[String]) {
    assert_eq!(store.log, ids, "every event, in order, once");
}

async fn events_written_while_the_receiver_is_down_arrive_exactly_once(db: TestDatabase) {
    let db = db.connect(&ServiceMigrations::KIT_ONLY).await;
    let addr = free_addr();
    let relay = relay_to(&db, addr, 7);
    let ids = write_records(&db, 25, 4).await;

    assert!(relay.deliver_batch().await.is_err(), "nobody listens yet");
    assert_eq!(relay.pending().await.expect("count"), 25, "nothing lost while the receiver is down");

    let store = Arc::new(Mutex::new(common::Store::default()));
    let receiver = start_receiver(addr, store.clone()).await;
    drain(&relay).await;
    assert_eq!(relay.pending().await.expect("count"), 0);
    {
        let store = store.lock().expect("store");
        assert_exactly_once(&store, &ids);
        assert!(store.received.values().all(|n| *n == 1), "no event was sent twice");
    }
    receiver.stop().await;
}

async fn a_receiver_crashing_mid_batch_loses_and_doubles_nothing(db: TestDatabase) {
    let db = db.connect(&ServiceMigrations::KIT_ONLY).await;
    let addr = free_addr();
    let relay = relay_to(&db, addr, 10);
    let ids = write_records(&db, 10, 10).await;

    let crashed = CancellationToken::new();
    let store = Arc::new(Mutex::new(common::Store {
        crash_after: Some(6),
        crashed: Some(crashed.clone()),
        ..Default::default()
    }));
    let receiver = start_receiver(addr, store.clone()).await;
    assert!(relay.deliver_batch().await.is_err(), "the receiver crashed");
    crashed.cancelled().await;
    receiver.stop().await;
    assert_eq!(store.lock().expect("store").log.len(), 6, "the receiver kept the first six");
    assert_eq!(relay.pending().await.expect("count"), 10, "the relay keeps the whole batch");

    let receiver = start_receiver(addr, store.clone()).await;
    drain(&relay).await;
    {
        let store = store.lock().expect("store");
        assert_exactly_once(&store, &ids);
        assert_eq!(store.received.values().filter(|n| **n == 2).count(), 6, "the six were re-sent and recognised");
    }
    receiver.stop().await;
}

async fn a_rolled_back_change_leaves_no_audit_record(db: TestDatabase) {
    let db = db.connect(&ServiceMigrations::KIT_ONLY).await;
    let mut tx = db.begin().await.expect("begin");
    outbox::enqueue(&mut tx, &[record(1)]).await.expect("enqueue");
    tx.rollback().await.expect("rollback");
    let relay = relay_to(&db, free_addr(), 10);
    assert_eq!(relay.pending().await.expect("count"), 0);
}

async fn the_running_relay_ships_soon_after_a_wake_up(db: TestDatabase) {
    let db = db.connect(&ServiceMigrations::KIT_ONLY).await;
    let addr = free_addr();
    let store = Arc::new(Mutex::new(common::Store::default()));
    let receiver = start_receiver(addr, store.clone()).await;
    let relay = relay_to(&db, addr, 50).with_idle_poll(Duration::from_secs(3600));
    let waker = relay.waker();
    let stop = CancellationToken::new();
    let task = tokio::spawn(relay.run(stop.clone()));
    let ids = write_records(&db, 3, 3).await;
    waker.notify_one();
    govmedia_testkit::eventually("three records delivered", Duration::from_secs(2), async || {
        (store.lock().expect("store").log.len() == 3).then_some(())
    })
    .await;
    assert_exactly_once(&store.lock().expect("store"), &ids);
    stop.cancel();
    task.await.expect("relay stops");
    receiver.stop().await;
}

/// Delivers until the outbox is empty, through refusals.
async fn drain_through_refusals(relay: &Relay<GrpcAuditSink>) {
    for _ in 0..100 {
        let _ = relay.deliver_batch().await;
        if relay.pending().await.expect("count") == 0 {
            return;
        }
    }
    panic!("outbox did not drain");
}

async fn an_invalid_record_goes_to_the_dead_letters_while_the_records_behind_it_are_delivered(db: TestDatabase) {
    let db = db.connect(&ServiceMigrations::KIT_ONLY).await;
    let addr = free_addr();
    let ids = write_records(&db, 10, 10).await;
    let store = Arc::new(Mutex::new(common::Store { invalid: vec![ids[3].clone()], ..Default::default() }));
    let receiver = start_receiver(addr, store.clone()).await;
    let relay = relay_to(&db, addr, 10).with_max_rejections(3);

    let first = relay.deliver_batch().await.expect("the others go on");
    assert_eq!(first, 9, "the batch was refused, then sent record by record");
    let mut others = ids.clone();
    let bad = others.remove(3);
    assert_eq!(store.lock().expect("store").log, others, "every record but the refused one, in order");
    assert!(outbox::dead_letters(&db).await.expect("list").is_empty(), "one refusal is not yet the limit");

    drain_through_refusals(&relay).await;
    let dead = outbox::dead_letters(&db).await.expect("list");
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].event_id, bad);
    assert_eq!(dead[0].action.as_deref(), Some("draft.approved"));
    assert_eq!(dead[0].attempts, 3, "refused three times, the limit");
    assert!(dead[0].last_error.contains("InvalidArgument"), "the code is kept: {}", dead[0].last_error);

    // Records written later are not held up by it.
    let later = write_records(&db, 2, 2).await;
    drain(&relay).await;
    others.extend(later);
    assert_eq!(store.lock().expect("store").log, others);

    // Once the cause is fixed, the re-drive delivers it, once.
    store.lock().expect("store").invalid.clear();
    assert_eq!(outbox::redrive(&db, std::slice::from_ref(&bad), "content", "ops").await.expect("redrive"), 1);
    assert!(outbox::dead_letters(&db).await.expect("list").is_empty());
    drain(&relay).await;
    {
        let store = store.lock().expect("store");
        let n = store.log.len();
        assert_eq!(store.log[n - 2], bad, "re-driven at the end of the outbox");
        assert_eq!(store.received[&bad], 1, "appended once");
        // The last is the re-drive's own audit record.
    }
    assert_eq!(outbox::redrive(&db, &[], "content", "ops").await.expect("redrive"), 0, "nothing left to re-drive");
    receiver.stop().await;
}

async fn an_outage_never_buries_a_record(db: TestDatabase) {
    let db = db.connect(&ServiceMigrations::KIT_ONLY).await;
    let relay = relay_to(&db, free_addr(), 10).with_max_rejections(1);
    write_records(&db, 3, 3).await;
    for _ in 0..5 {
        assert!(relay.deliver_batch().await.is_err(), "nobody listens");
    }
    assert_eq!(relay.pending().await.expect("count"), 3, "an outage is retried for as long as it lasts");
    assert!(outbox::dead_letters(&db).await.expect("list").is_empty());
}

async fn a_record_that_does_not_decode_is_buried_at_once(db: TestDatabase) {
    let db = db.connect(&ServiceMigrations::KIT_ONLY).await;
    let broken = uuid::Uuid::now_v7();
    match &db {
        Database::Postgres(pool) => {
            sqlx::query("INSERT INTO govmedia_outbox (event_id, payload) VALUES ($1, '{\"not\": \"a record\"}')")
                .bind(broken)
                .execute(pool)
                .await
                .map(|_| ())
        }
        Database::Sqlite(pool) => {
            sqlx::query("INSERT INTO govmedia_outbox (event_id, payload) VALUES (?1, '{\"not\": \"a record\"}')")
                .bind(broken.to_string())
                .execute(pool)
                .await
                .map(|_| ())
        }
    }
    .expect("insert");
    let ids = write_records(&db, 2, 2).await;
    let addr = free_addr();
    let store = Arc::new(Mutex::new(common::Store::default()));
    let receiver = start_receiver(addr, store.clone()).await;
    let relay = relay_to(&db, addr, 10);
    drain(&relay).await;
    assert_exactly_once(&store.lock().expect("store"), &ids);
    let dead = outbox::dead_letters(&db).await.expect("list");
    assert_eq!(dead.iter().map(|d| d.event_id.clone()).collect::<Vec<_>>(), [broken.to_string()]);
    assert_eq!(dead[0].action, None);
    assert!(dead[0].last_error.contains("does not decode"), "{}", dead[0].last_error);
    receiver.stop().await;
}

storage_tests!(
    a_record_that_does_not_decode_is_buried_at_once,
    an_invalid_record_goes_to_the_dead_letters_while_the_records_behind_it_are_delivered,
    an_outage_never_buries_a_record,
    events_written_while_the_receiver_is_down_arrive_exactly_once,
    a_receiver_crashing_mid_batch_loses_and_doubles_nothing,
    a_rolled_back_change_leaves_no_audit_record,
    the_running_relay_ships_soon_after_a_wake_up,
);

/// Two relay replicas on one PostgreSQL claim disjoint batches (FOR UPDATE SKIP LOCKED).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_relays_on_one_postgres_send_each_event_once() {
    let test_db = TestDatabase::new(TestBackend::Postgres).await;
    let db = test_db.connect(&ServiceMigrations::KIT_ONLY).await;
    let addr = free_addr();
    let store = Arc::new(Mutex::new(common::Store { delay: Some(Duration::from_millis(20)), ..Default::default() }));
    let receiver = start_receiver(addr, store.clone()).await;
    let ids = write_records(&db, 200, 20).await;

    let a = relay_to(&db, addr, 10);
    let b = relay_to(&db, addr, 10);
    let (ra, rb) = tokio::join!(drain(&a), drain(&b));
    let ((), ()) = (ra, rb);
    {
        let store = store.lock().expect("store");
        assert_eq!(store.log.len(), 200);
        assert!(store.received.values().all(|n| *n == 1), "an event was sent by both relays");
        let mut delivered = store.log.clone();
        delivered.sort();
        let mut expected = ids;
        expected.sort();
        assert_eq!(delivered, expected);
    }
    receiver.stop().await;
}
