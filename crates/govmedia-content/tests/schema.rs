//! The content schema migrates on both stores with the same numbering.

use govmedia_testkit::{TestDatabase, storage_tests};

async fn the_schema_migrates(db: TestDatabase) {
    let pool = db.connect(&govmedia_content::MIGRATIONS).await;
    // Migrating twice is a no-op.
    pool.migrate(&govmedia_content::MIGRATIONS).await.expect("re-migrates");
}

storage_tests!(the_schema_migrates);

#[test]
fn content_migrations_have_the_same_numbering_on_both_backends() {
    govmedia_kit::db::check_migration_parity(&govmedia_content::MIGRATIONS).expect("parity");
}

#[tokio::test]
async fn content_tables_are_the_same_on_both_backends() {
    govmedia_testkit::assert_schema_parity(&govmedia_content::MIGRATIONS).await;
    // The comparison sees foreign keys (both stores report this one).
    for db in [TestDatabase::postgres().await, TestDatabase::sqlite()] {
        let schema = govmedia_kit::schema::read(&db.connect(&govmedia_content::MIGRATIONS).await).await.expect("read");
        let key = ("draft_id".to_owned(), "drafts".to_owned(), "id".to_owned());
        assert!(schema["publications"].foreign.contains(&key), "{:?}", schema["publications"].foreign);
    }
}
