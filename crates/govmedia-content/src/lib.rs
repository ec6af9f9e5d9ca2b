//! The content workflow service (`govmedia.content.v1`; R3, R5): plans, drafts and their
//! versions, the three-stage review with proofreading, scheduled publishing through
//! connectors, corrections, feedback and metrics.
//!
//! Built so far: the rules (`domain`) and the schema (`migrations`). The gRPC services,
//! the scheduler and the connectors follow (issue 5); until they exist this crate serves
//! nothing.

pub mod domain;

use govmedia_kit::db::ServiceMigrations;
use sqlx::migrate::Migrator;

static POSTGRES: Migrator = sqlx::migrate!("migrations/postgres");
static SQLITE: Migrator = sqlx::migrate!("migrations/sqlite");

/// The content service's migrations.
pub const MIGRATIONS: ServiceMigrations =
    ServiceMigrations { service: "content", postgres: &POSTGRES, sqlite: &SQLITE };
