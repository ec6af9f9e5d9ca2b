//! The kit's storage on both backends: the test kit really provisions PostgreSQL and
//! SQLite, SQLite runs in WAL with foreign keys, and idempotency keys return the first
//! answer, refuse reuse for another request, and vanish with a rolled-back change.

use chrono::Utc;
use govmedia_domain::Error;
use govmedia_domain::ids::{PrincipalId, RequestId};
use govmedia_kit::db::{Database, ServiceMigrations};
use govmedia_kit::idempotency::{self, IdempotencyKey};
use govmedia_proto::identity::v1::{CreateDepartmentRequest, CreateDepartmentResponse, Department};
use govmedia_testkit::{TestBackend, TestDatabase, storage_tests};

async fn the_database_is_the_backend_it_claims(db: TestDatabase) {
    let backend = db.backend();
    let pool = db.connect(&ServiceMigrations::KIT_ONLY).await;
    match (&pool, backend) {
        (Database::Postgres(pool), TestBackend::Postgres) => {
            let version: String = sqlx::query_scalar("SELECT version()").fetch_one(pool).await.expect("version");
            assert!(version.starts_with("PostgreSQL"), "{version}");
        }
        (Database::Sqlite(pool), TestBackend::Sqlite) => {
            let mode: String = sqlx::query_scalar("PRAGMA journal_mode").fetch_one(pool).await.expect("mode");
            assert_eq!(mode, "wal");
            let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys").fetch_one(pool).await.expect("fk");
            assert_eq!(fk, 1);
            let timeout: i64 = sqlx::query_scalar("PRAGMA busy_timeout").fetch_one(pool).await.expect("busy");
            assert!(timeout >= 1000, "busy timeout {timeout}");
        }
        (pool, backend) => panic!("asked for {backend:?}, got {:?}", pool.backend()),
    }
    // Migrating again is a no-op.
    pool.migrate(&ServiceMigrations::KIT_ONLY).await.expect("re-migrate");
}

fn request(name: &str, request_id: RequestId) -> CreateDepartmentRequest {
    CreateDepartmentRequest {
        request_id: request_id.to_string(),
        department: Some(Department { name: name.to_owned(), ..Default::default() }),
    }
}

fn response(id: &str) -> CreateDepartmentResponse {
    CreateDepartmentResponse { department: Some(Department { id: id.to_owned(), ..Default::default() }) }
}

async fn a_repeated_request_id_returns_the_first_answer(db: TestDatabase) {
    let db = db.connect(&ServiceMigrations::KIT_ONLY).await;
    let principal: PrincipalId = uuid::Uuid::now_v7().to_string().parse().expect("id");
    let request_id = RequestId::new();
    let method = "/govmedia.identity.v1.DirectoryService/CreateDepartment";
    let key = IdempotencyKey::new(principal, method, request_id, &request("Publicity", request_id));

    let mut tx = db.begin().await.expect("begin");
    assert_eq!(idempotency::lookup::<CreateDepartmentResponse>(&mut tx, &key).await.expect("lookup"), None);
    idempotency::remember(&mut tx, &key, Some(&response("dept-1")), Utc::now()).await.expect("remember");
    tx.commit().await.expect("commit");

    let mut tx = db.begin().await.expect("begin");
    let stored = idempotency::lookup::<CreateDepartmentResponse>(&mut tx, &key).await.expect("lookup");
    assert_eq!(stored, Some(response("dept-1")));

    let other = IdempotencyKey::new(principal, method, request_id, &request("Finance", request_id));
    match idempotency::lookup::<CreateDepartmentResponse>(&mut tx, &other).await {
        Err(Error::InvalidArgument(v)) => assert_eq!(v[0].field, "request_id"),
        other => panic!("reuse for another request must be refused, got {other:?}"),
    }
    // A racing second insert of the same key is a conflict, not a second answer.
    match idempotency::remember(&mut tx, &key, Some(&response("dept-2")), Utc::now()).await {
        Err(Error::Conflict(_)) => {}
        other => panic!("expected a conflict, got {other:?}"),
    }
}

async fn a_rolled_back_request_leaves_no_answer(db: TestDatabase) {
    let db = db.connect(&ServiceMigrations::KIT_ONLY).await;
    let principal: PrincipalId = uuid::Uuid::now_v7().to_string().parse().expect("id");
    let request_id = RequestId::new();
    let key = IdempotencyKey::new(principal, "/x/Y", request_id, &request("Publicity", request_id));
    let mut tx = db.begin().await.expect("begin");
    idempotency::remember(&mut tx, &key, Some(&response("dept-1")), Utc::now()).await.expect("remember");
    tx.rollback().await.expect("rollback");
    let mut tx = db.begin().await.expect("begin");
    assert_eq!(idempotency::lookup::<CreateDepartmentResponse>(&mut tx, &key).await.expect("lookup"), None);
    drop(tx);
    assert_eq!(idempotency::purge(&db, Utc::now()).await.expect("purge"), 0);
}

/// A one-time password or client secret is not kept for replay (issue 18): the retry is
/// refused naming R2.3.2, and the stored row holds no answer.
async fn an_answer_holding_a_secret_is_not_kept(db: TestDatabase) {
    let db = db.connect(&ServiceMigrations::KIT_ONLY).await;
    let principal: PrincipalId = uuid::Uuid::now_v7().to_string().parse().expect("id");
    let request_id = RequestId::new();
    let key = IdempotencyKey::new(principal, "/x/ResetUserPassword", request_id, &request("Publicity", request_id));
    let mut tx = db.begin().await.expect("begin");
    idempotency::remember::<CreateDepartmentResponse>(&mut tx, &key, None, Utc::now()).await.expect("remember");
    tx.commit().await.expect("commit");
    let mut tx = db.begin().await.expect("begin");
    match idempotency::lookup::<CreateDepartmentResponse>(&mut tx, &key).await {
        Err(Error::RuleViolated(v)) => assert_eq!(v[0].rule_id, "R2.3.2"),
        other => panic!("a withheld answer must be refused, got {other:?}"),
    }
    let stored: Vec<u8> =
        govmedia_kit::sql!(&mut tx, scalar_one, "SELECT response FROM govmedia_idempotency").expect("the key is kept");
    assert!(stored.is_empty(), "nothing of the answer is stored");
}

storage_tests!(
    the_database_is_the_backend_it_claims,
    an_answer_holding_a_secret_is_not_kept,
    a_repeated_request_id_returns_the_first_answer,
    a_rolled_back_request_leaves_no_answer,
);

#[tokio::test]
async fn the_kit_tables_are_the_same_on_both_backends() {
    govmedia_testkit::assert_schema_parity(&ServiceMigrations::KIT_ONLY).await;
}

#[tokio::test]
async fn schema_parity_names_what_differs() {
    use govmedia_kit::schema::{differences, read};
    let (pg_db, lite_db) = (TestDatabase::postgres().await, TestDatabase::sqlite());
    let (pg, lite) =
        (pg_db.connect(&ServiceMigrations::KIT_ONLY).await, lite_db.connect(&ServiceMigrations::KIT_ONLY).await);
    let same = read(&pg).await.expect("read");
    assert!(same["govmedia_outbox"].unique.contains(&vec!["event_id".to_owned()]), "{:?}", same["govmedia_outbox"]);
    assert!(differences(&same, &read(&lite).await.expect("read")).is_empty());

    let (Database::Postgres(p), Database::Sqlite(s)) = (&pg, &lite) else { panic!("backends") };
    sqlx::query("ALTER TABLE govmedia_outbox ADD COLUMN note TEXT").execute(s).await.expect("alter");
    sqlx::query("CREATE UNIQUE INDEX outbox_created ON govmedia_outbox (created_at)").execute(p).await.expect("index");
    sqlx::query("ALTER TABLE govmedia_outbox ALTER COLUMN last_error SET NOT NULL").execute(p).await.expect("alter");
    let found = differences(&read(&pg).await.expect("read"), &read(&lite).await.expect("read"));
    assert_eq!(
        found,
        [
            "govmedia_outbox.last_error: PostgreSQL Column { family: Text, nullable: false }, SQLite Column { family: Text, nullable: true }",
            "govmedia_outbox.note: only in SQLite",
            "govmedia_outbox: unique key [\"created_at\"] only in PostgreSQL",
        ]
    );
}
