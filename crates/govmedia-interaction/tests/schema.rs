//! The interaction schema migrates on both stores with the same numbering.

use govmedia_testkit::{TestDatabase, storage_tests};

async fn the_schema_migrates(db: TestDatabase) {
    let pool = db.connect(&govmedia_interaction::MIGRATIONS).await;
    // Migrating twice is a no-op.
    pool.migrate(&govmedia_interaction::MIGRATIONS).await.expect("re-migrates");
}

storage_tests!(the_schema_migrates);

#[test]
fn interaction_migrations_have_the_same_numbering_on_both_backends() {
    govmedia_kit::db::check_migration_parity(&govmedia_interaction::MIGRATIONS).expect("parity");
}

#[tokio::test]
async fn interaction_tables_are_the_same_on_both_backends() {
    govmedia_testkit::assert_schema_parity(&govmedia_interaction::MIGRATIONS).await;
}
