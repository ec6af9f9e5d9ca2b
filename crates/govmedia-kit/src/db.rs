//! Databases: one URL picks PostgreSQL (production) or SQLite (the embedded store of
//! `govmedia up`); migrations are embedded per service and per backend, with the same
//! numbering for both, and run at start together with the kit's own tables (outbox,
//! idempotency keys), which take versions from 9000000001 up so they never collide with
//! a service's 1, 2, 3, ...
//!
//! A request's unit of work is a [`Tx`]: a transaction on either backend. Stores match
//! on it and run the backend's SQL; the kit's outbox and idempotency writes join it, so
//! a change, its audit record and its idempotent answer commit together or not at all.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use futures::future::BoxFuture;
use govmedia_domain::Error;
use sqlx::migrate::{Migration, MigrationSource, Migrator};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Postgres, Sqlite, Transaction};

use crate::access::Authorized;
use crate::config::{Backend, DatabaseUrl};

#[doc(hidden)]
pub use sqlx;

/// How long a SQLite writer waits for the lock before giving up.
pub const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

static KIT_POSTGRES: Migrator = sqlx::migrate!("migrations/postgres");
static KIT_SQLITE: Migrator = sqlx::migrate!("migrations/sqlite");

/// A service's embedded migrations, one set per backend (`sqlx::migrate!` of
/// `migrations/postgres` and `migrations/sqlite`).
#[derive(Debug, Clone, Copy)]
pub struct ServiceMigrations {
    /// The service's name, for messages.
    pub service: &'static str,
    /// The PostgreSQL migrations.
    pub postgres: &'static Migrator,
    /// The SQLite migrations.
    pub sqlite: &'static Migrator,
}

impl ServiceMigrations {
    /// The kit's own tables only (outbox and idempotency), for services that have no
    /// tables yet and for the kit's tests.
    pub const KIT_ONLY: ServiceMigrations =
        ServiceMigrations { service: "kit", postgres: &KIT_POSTGRES, sqlite: &KIT_SQLITE };
}

/// Why the PostgreSQL and SQLite migrations of a service differ.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{service}: PostgreSQL and SQLite migrations differ: {detail}")]
pub struct MigrationParityError {
    /// The service.
    pub service: &'static str,
    /// Which versions differ.
    pub detail: String,
}

/// Checks that both backends have the same migrations: same versions, same
/// descriptions, in the same order. Every service has a test calling this.
pub fn check_migration_parity(migrations: &ServiceMigrations) -> Result<(), MigrationParityError> {
    let list = |m: &Migrator| m.iter().map(|m| (m.version, m.description.to_string())).collect::<Vec<_>>();
    let pg = list(migrations.postgres);
    let lite = list(migrations.sqlite);
    if pg == lite {
        return Ok(());
    }
    let only_pg: Vec<_> = pg.iter().filter(|m| !lite.contains(m)).map(|(v, d)| format!("{v}_{d}")).collect();
    let only_lite: Vec<_> = lite.iter().filter(|m| !pg.contains(m)).map(|(v, d)| format!("{v}_{d}")).collect();
    Err(MigrationParityError {
        service: migrations.service,
        detail: format!("only in postgres: {only_pg:?}; only in sqlite: {only_lite:?}"),
    })
}

#[derive(Debug)]
struct Combined(Vec<Migration>);

impl MigrationSource<'static> for Combined {
    fn resolve(self) -> BoxFuture<'static, Result<Vec<Migration>, sqlx::error::BoxDynError>> {
        Box::pin(async move { Ok(self.0) })
    }
}

async fn combined(kit: &Migrator, service: &Migrator) -> Result<Migrator, sqlx::migrate::MigrateError> {
    let mut all: Vec<Migration> = kit.iter().chain(service.iter()).cloned().collect();
    all.sort_by_key(|m| m.version);
    // KIT_ONLY passes the kit's own migrations as the service's.
    all.dedup_by_key(|m| m.version);
    Migrator::new(Combined(all)).await
}

/// A connection pool to the service's database.
#[derive(Debug, Clone)]
pub enum Database {
    /// PostgreSQL.
    Postgres(PgPool),
    /// SQLite.
    Sqlite(SqlitePool),
}

/// Why the database could not be opened or migrated.
#[derive(Debug, thiserror::Error)]
pub enum DatabaseError {
    /// Connecting failed.
    #[error("cannot connect to {url}: {source}")]
    Connect {
        /// The URL, password redacted.
        url: String,
        /// The cause.
        source: sqlx::Error,
    },
    /// A migration failed.
    #[error("migrating the {service} database failed: {source}")]
    Migrate {
        /// The service.
        service: &'static str,
        /// The cause.
        source: sqlx::migrate::MigrateError,
    },
    /// The SQLite file's folder cannot be created.
    #[error("cannot create the folder for {path}: {source}")]
    Folder {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
}

impl DatabaseError {
    /// Whether the database could not be reached (refused, timed out, still starting), as
    /// opposed to refusing this service (a wrong password, no such database): only the
    /// first is worth waiting for.
    pub fn is_unreachable(&self) -> bool {
        let DatabaseError::Connect { source, .. } = self else { return false };
        match source {
            sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::Tls(_) => true,
            // 57P03 cannot_connect_now: PostgreSQL is starting up or shutting down.
            sqlx::Error::Database(e) => e.code().as_deref() == Some("57P03"),
            _ => false,
        }
    }
}

impl Database {
    /// Opens a pool: PostgreSQL, or SQLite in WAL mode with a busy timeout and foreign
    /// keys on (creating the file and its folder if missing).
    pub async fn connect(url: &DatabaseUrl, max_connections: u32) -> Result<Self, DatabaseError> {
        let connect_error = |source| DatabaseError::Connect { url: url.redacted(), source };
        match url.backend() {
            Backend::Postgres => {
                let pool = PgPoolOptions::new()
                    .max_connections(max_connections)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect(url.expose())
                    .await
                    .map_err(connect_error)?;
                crate::telemetry::set_database_system("postgresql");
                Ok(Database::Postgres(pool))
            }
            Backend::Sqlite => {
                let options = SqliteConnectOptions::from_str(url.expose())
                    .map_err(connect_error)?
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(SQLITE_BUSY_TIMEOUT)
                    .foreign_keys(true);
                let file = options.get_filename().to_path_buf();
                // Owner-only before SQLite opens it: SQLite gives the WAL and SHM files
                // the database file's mode, so they are born private too.
                let in_memory = file.as_os_str().is_empty()
                    || file.as_os_str() == ":memory:"
                    || url.expose().contains("mode=memory");
                let folder_error = |source| DatabaseError::Folder { path: file.display().to_string(), source };
                if !in_memory {
                    if let Some(parent) = file.parent().filter(|p| !p.as_os_str().is_empty() && !p.exists()) {
                        crate::private_files::private_dir(parent).map_err(folder_error)?;
                    }
                    crate::private_files::private_file(&file).map_err(folder_error)?;
                }
                let pool = SqlitePoolOptions::new()
                    .max_connections(max_connections)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_with(options)
                    .await
                    .map_err(connect_error)?;
                if !in_memory {
                    crate::private_files::private_sqlite(&file).map_err(folder_error)?;
                }
                crate::telemetry::set_database_system("sqlite");
                Ok(Database::Sqlite(pool))
            }
        }
    }

    /// Opens a SQLite file (a convenience for `govmedia up` and tests).
    pub async fn open_sqlite_file(path: &Path, max_connections: u32) -> Result<Self, DatabaseError> {
        let url: DatabaseUrl =
            format!("sqlite:{}", path.display()).parse().map_err(|e: crate::config::DatabaseUrlError| {
                DatabaseError::Connect { url: path.display().to_string(), source: sqlx::Error::Configuration(e.into()) }
            })?;
        Self::connect(&url, max_connections).await
    }

    /// Connects the service's pool at `url` after running the pending migrations as
    /// `owner` when given (one connection, closed afterwards), else over the pool itself.
    /// The service's role then needs only to read and write the tables, not own them.
    ///
    /// A database that cannot be reached yet is tried again, with growing pauses (0.25 s
    /// up to 5 s) and a warning each time, for up to `patience`; then the last error.
    pub async fn open_migrated(
        url: &DatabaseUrl,
        owner: Option<&DatabaseUrl>,
        max_connections: u32,
        patience: Duration,
        migrations: &ServiceMigrations,
    ) -> Result<Self, DatabaseError> {
        if let Some(owner) = owner {
            let owner_db = Self::connect_patiently(owner, 1, patience).await?;
            owner_db.migrate(migrations).await?;
            owner_db.close().await;
            Self::connect_patiently(url, max_connections, patience).await
        } else {
            let db = Self::connect_patiently(url, max_connections, patience).await?;
            db.migrate(migrations).await?;
            Ok(db)
        }
    }

    /// [`Database::connect`], tried again while the database is unreachable, for up to
    /// `patience` in all; each failure is logged with the redacted URL.
    pub async fn connect_patiently(
        url: &DatabaseUrl,
        max_connections: u32,
        patience: Duration,
    ) -> Result<Self, DatabaseError> {
        use backon::{BackoffBuilder, ExponentialBuilder};
        let deadline = tokio::time::Instant::now() + patience;
        let mut pauses = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(250))
            .with_max_delay(Duration::from_secs(5))
            .without_max_times()
            .build();
        loop {
            // One attempt may itself wait (the pool's acquire timeout): it gets what is
            // left of the patience, no more.
            // A patience of zero still makes the one attempt, with the pool's own timeout.
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let attempt = if left.is_zero() {
                Self::connect(url, max_connections).await
            } else {
                match tokio::time::timeout(left, Self::connect(url, max_connections)).await {
                    Ok(result) => result,
                    Err(_) => Err(DatabaseError::Connect { url: url.redacted(), source: sqlx::Error::PoolTimedOut }),
                }
            };
            let error = match attempt {
                Ok(db) => return Ok(db),
                Err(e) if e.is_unreachable() => e,
                Err(e) => return Err(e),
            };
            let pause = pauses.next().unwrap_or(Duration::from_secs(5));
            if tokio::time::Instant::now() + pause >= deadline {
                return Err(error);
            }
            tracing::warn!(%error, retry_in_ms = pause.as_millis(), "the database is not reachable yet; trying again");
            tokio::time::sleep(pause).await;
        }
    }

    /// Runs the kit's and the service's pending migrations.
    pub async fn migrate(&self, migrations: &ServiceMigrations) -> Result<(), DatabaseError> {
        let error = |source| DatabaseError::Migrate { service: migrations.service, source };
        match self {
            Database::Postgres(pool) => {
                let migrator = combined(&KIT_POSTGRES, migrations.postgres).await.map_err(error)?;
                migrator.run(pool).await.map_err(error)
            }
            Database::Sqlite(pool) => {
                let migrator = combined(&KIT_SQLITE, migrations.sqlite).await.map_err(error)?;
                migrator.run(pool).await.map_err(error)
            }
        }
    }

    /// Which backend this is.
    pub fn backend(&self) -> Backend {
        match self {
            Database::Postgres(_) => Backend::Postgres,
            Database::Sqlite(_) => Backend::Sqlite,
        }
    }

    /// Begins a transaction that will write. On SQLite it takes the write lock at once
    /// (`BEGIN IMMEDIATE`, waiting up to the busy timeout), so a read-then-write never
    /// fails on a snapshot another writer made stale.
    ///
    /// How long that took (a pooled connection, and on SQLite the write lock) is
    /// recorded in `govmedia.db.begin_wait`: the first sign of a pool too small or a
    /// writer holding the lock.
    pub async fn begin(&self) -> Result<Tx, Error> {
        let started = std::time::Instant::now();
        let tx = match self {
            Database::Postgres(pool) => pool.begin().await.map(Tx::Postgres).map_err(db_error),
            Database::Sqlite(pool) => pool.begin_with("BEGIN IMMEDIATE").await.map(Tx::Sqlite).map_err(db_error),
        };
        begin_wait().record(
            started.elapsed().as_secs_f64(),
            &[opentelemetry::KeyValue::new("db.system.name", self.system_name())],
        );
        tx
    }

    /// The OpenTelemetry name of the database system: `postgresql` or `sqlite`.
    pub fn system_name(&self) -> &'static str {
        match self {
            Database::Postgres(_) => "postgresql",
            Database::Sqlite(_) => "sqlite",
        }
    }

    /// Connections of the pool: (in use, idle).
    pub fn pool_connections(&self) -> (u32, u32) {
        let (size, idle) = match self {
            Database::Postgres(pool) => (pool.size(), pool.num_idle()),
            Database::Sqlite(pool) => (pool.size(), pool.num_idle()),
        };
        let idle = u32::try_from(idle).unwrap_or(u32::MAX);
        (size.saturating_sub(idle), idle)
    }

    /// Begins a transaction that only reads (concurrent with writers on both backends).
    pub async fn begin_read(&self) -> Result<Tx, Error> {
        match self {
            Database::Postgres(pool) => pool.begin().await.map(Tx::Postgres).map_err(db_error),
            Database::Sqlite(pool) => pool.begin().await.map(Tx::Sqlite).map_err(db_error),
        }
    }

    /// Closes the pool, waiting for connections to be returned.
    pub async fn close(&self) {
        match self {
            Database::Postgres(pool) => pool.close().await,
            Database::Sqlite(pool) => pool.close().await,
        }
    }
}

/// The begin-wait histogram of the component whose call is running (under `govmedia up`
/// one database per component share the process).
fn begin_wait() -> &'static opentelemetry::metrics::Histogram<f64> {
    static WAIT: crate::telemetry::components::PerComponent<opentelemetry::metrics::Histogram<f64>> =
        crate::telemetry::components::PerComponent::new();
    WAIT.get(crate::telemetry::components::current(), |meter| {
        meter
            .f64_histogram("govmedia.db.begin_wait")
            .with_unit("s")
            .with_description("Time to begin a writing transaction: a pooled connection, and on SQLite the write lock")
            .with_boundaries(vec![0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0])
            .build()
    })
}

/// A transaction on either backend: the unit of work of one request.
#[derive(Debug)]
pub enum Tx {
    /// On PostgreSQL.
    Postgres(Transaction<'static, Postgres>),
    /// On SQLite.
    Sqlite(Transaction<'static, Sqlite>),
}

impl Tx {
    /// Commits.
    pub async fn commit(self) -> Result<(), Error> {
        match self {
            Tx::Postgres(tx) => tx.commit().await.map_err(db_error),
            Tx::Sqlite(tx) => tx.commit().await.map_err(db_error),
        }
    }

    /// Rolls back (dropping a `Tx` does too, without waiting).
    pub async fn rollback(self) -> Result<(), Error> {
        match self {
            Tx::Postgres(tx) => tx.rollback().await.map_err(db_error),
            Tx::Sqlite(tx) => tx.rollback().await.map_err(db_error),
        }
    }
}

/// The SQL dialect of a backend. Stores write one SQL text with PostgreSQL's `$1`
/// placeholders and portable syntax (ids as TEXT, times bound from the clock,
/// `ON CONFLICT`, `RETURNING`); [`Dialect::sql`] adapts the placeholders for SQLite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// PostgreSQL: the text as written.
    Postgres,
    /// SQLite: `$N` becomes `?N` (numbered, so order of appearance does not matter).
    Sqlite,
}

impl Dialect {
    /// The SQL text for this backend.
    pub fn sql(self, text: &str) -> std::borrow::Cow<'_, str> {
        match self {
            Dialect::Postgres => std::borrow::Cow::Borrowed(text),
            Dialect::Sqlite => {
                let mut out = String::with_capacity(text.len());
                let mut chars = text.chars().peekable();
                while let Some(c) = chars.next() {
                    if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
                        out.push('?');
                    } else {
                        out.push(c);
                    }
                }
                std::borrow::Cow::Owned(out)
            }
        }
    }
}

/// Runs one body of code on a [`Tx`] of either backend: `$conn` is the transaction's
/// connection and `$dialect` its [`Dialect`]. The body is compiled once per backend, so
/// the same `sqlx::query(...)` chain works on both.
///
/// ```ignore
/// let n: i64 = on_tx!(tx, |conn, dialect| {
///     sqlx::query_scalar(&dialect.sql("SELECT COUNT(*) FROM users WHERE department_id = $1"))
///         .bind(department.to_string())
///         .fetch_one(conn)
///         .await
/// })
/// .map_err(db_error)?;
/// ```
#[macro_export]
macro_rules! on_tx {
    ($tx:expr, |$conn:ident, $dialect:ident| $body:expr) => {
        match $tx {
            $crate::db::Tx::Postgres(tx) => {
                let $conn = &mut **tx;
                let $dialect = $crate::db::Dialect::Postgres;
                $body
            }
            $crate::db::Tx::Sqlite(tx) => {
                let $conn = &mut **tx;
                let $dialect = $crate::db::Dialect::Sqlite;
                $body
            }
        }
    };
}

/// One statement on a [`Tx`] of either backend, its parameters bound in order: the
/// body [`on_tx!`] would hold for the common case, so a store function says its SQL and
/// its values and nothing else. The second word says what comes back:
///
/// | mode | built with | gives |
/// | --- | --- | --- |
/// | `execute` | `sqlx::query` | rows affected (`u64`) |
/// | `fetch_all`, `fetch_one`, `fetch_optional` | `sqlx::query_as` | rows (`FromRow`) |
/// | `scalar_all`, `scalar_one`, `scalar_optional` | `sqlx::query_scalar` | one column |
///
/// The result is `Result<_, sqlx::Error>`: the caller maps the error (most with
/// [`db_error`], inserts with their own unique-violation answer). SQL that differs per
/// dialect beyond placeholders stays with [`on_tx!`].
///
/// ```ignore
/// let n: i64 = sql!(tx, scalar_one, "SELECT COUNT(*) FROM users WHERE department_id = $1", department.to_string())
///     .map_err(db_error)?;
/// ```
#[macro_export]
macro_rules! sql {
    ($tx:expr, execute, $sql:expr $(, $arg:expr)* $(,)?) => {
        $crate::on_tx!($tx, |conn, dialect| {
            $crate::db::sqlx::query(&dialect.sql($sql)) $(.bind($arg))* .execute(conn).await.map(|r| r.rows_affected())
        })
    };
    ($tx:expr, scalar_all, $sql:expr $(, $arg:expr)* $(,)?) => {
        $crate::on_tx!($tx, |conn, dialect| {
            $crate::db::sqlx::query_scalar(&dialect.sql($sql)) $(.bind($arg))* .fetch_all(conn).await
        })
    };
    ($tx:expr, scalar_one, $sql:expr $(, $arg:expr)* $(,)?) => {
        $crate::on_tx!($tx, |conn, dialect| {
            $crate::db::sqlx::query_scalar(&dialect.sql($sql)) $(.bind($arg))* .fetch_one(conn).await
        })
    };
    ($tx:expr, scalar_optional, $sql:expr $(, $arg:expr)* $(,)?) => {
        $crate::on_tx!($tx, |conn, dialect| {
            $crate::db::sqlx::query_scalar(&dialect.sql($sql)) $(.bind($arg))* .fetch_optional(conn).await
        })
    };
    ($tx:expr, $fetch:ident, $sql:expr $(, $arg:expr)* $(,)?) => {
        $crate::on_tx!($tx, |conn, dialect| {
            $crate::db::sqlx::query_as(&dialect.sql($sql)) $(.bind($arg))* .$fetch(conn).await
        })
    };
}

/// As [`on_tx!`], on a pool ([`Database`]) for reads outside a transaction.
#[macro_export]
macro_rules! on_db {
    ($db:expr, |$pool:ident, $dialect:ident| $body:expr) => {
        match $db {
            $crate::db::Database::Postgres(pool) => {
                let $pool = pool;
                let $dialect = $crate::db::Dialect::Postgres;
                $body
            }
            $crate::db::Database::Sqlite(pool) => {
                let $pool = pool;
                let $dialect = $crate::db::Dialect::Sqlite;
                $body
            }
        }
    };
}

/// Loads the row of `table` whose `id` column is `id`, locked for the change: `FOR
/// UPDATE` on PostgreSQL; on SQLite the transaction already holds the database's write
/// lock (`BEGIN IMMEDIATE`). It takes the change's [`Authorized`]: a row is locked only
/// once the permission was granted, which was asked before the transaction began. The
/// caller checks that the row, as locked, is still within the grant
/// ([`Authorized::ensure_covers`]).
pub async fn lock_row<R>(tx: &mut Tx, table: &'static str, id: &str, grant: &Authorized) -> Result<Option<R>, Error>
where
    R: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>
        + for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>
        + Send
        + Unpin,
{
    tracing::trace!(
        table,
        id,
        permission = grant.permission().map_or("service", |p| p.as_str()),
        "locking for a change"
    );
    on_tx!(tx, |conn, dialect| {
        let sql = match dialect {
            Dialect::Postgres => format!("SELECT * FROM {table} WHERE id = $1 FOR UPDATE"),
            Dialect::Sqlite => format!("SELECT * FROM {table} WHERE id = ?1"),
        };
        sqlx::query_as(&sql).bind(id).fetch_optional(conn).await
    })
    .map_err(db_error)
}

/// The entity whose row of `table` has `id`, read in the caller's transaction (no lock);
/// a row that does not convert is an error.
pub async fn get_by_id<R, T>(tx: &mut Tx, table: &'static str, id: impl std::fmt::Display) -> Result<Option<T>, Error>
where
    R: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>
        + for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>
        + Send
        + Unpin,
    T: TryFrom<R, Error = Error>,
{
    let sql = format!("SELECT * FROM {table} WHERE id = $1");
    let row: Option<R> = sql!(tx, fetch_optional, &sql, id.to_string()).map_err(db_error)?;
    row.map(T::try_from).transpose()
}

/// As [`lock_row`], converted to the entity; NOT_FOUND naming `kind` when there is none.
/// The caller still checks the entity is inside the grant.
pub async fn lock_by_id<R, T>(
    tx: &mut Tx,
    table: &'static str,
    kind: &'static str,
    id: impl std::fmt::Display,
    grant: &Authorized,
) -> Result<T, Error>
where
    R: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>
        + for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>
        + Send
        + Unpin,
    T: TryFrom<R, Error = Error>,
{
    let id = id.to_string();
    let row: R = lock_row(tx, table, &id, grant).await?.ok_or_else(|| Error::not_found(kind, &id))?;
    T::try_from(row)
}

/// The end of a save-if-version (`UPDATE … WHERE id = $1 AND version = $n`): zero rows
/// updated means someone else changed `what` since it was read: ABORTED, to be retried.
pub fn saved(rows_affected: u64, what: &str) -> Result<(), Error> {
    if rows_affected == 0 {
        Err(Error::Conflict(format!("the {what} changed since it was read; read it again and retry")))
    } else {
        Ok(())
    }
}

/// Maps a database error to the domain error: pool exhaustion and broken connections are
/// UNAVAILABLE (the caller may retry), everything else is internal.
pub fn db_error(error: sqlx::Error) -> Error {
    match error {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
            Error::Unavailable { dependency: "database", source: Box::new(error) }
        }
        other => Error::internal(other),
    }
}

/// True when the error is a unique-constraint violation (a duplicate key).
pub fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(e) if e.is_unique_violation())
}

/// Stored columns read back into domain values: ids kept as text, the empty text for
/// none, state names. A stored value that does not parse is an internal error naming
/// the column (the database holds what the service wrote, so it is corruption).
pub mod column {
    use std::str::FromStr;

    use govmedia_domain::Error;
    use govmedia_domain::ids::InvalidId;

    /// Parses an id read from the database.
    pub fn id<T: FromStr<Err = InvalidId>>(column: &str, value: &str) -> Result<T, Error> {
        value.parse().map_err(|_| Error::internal(format!("stored {column} {value:?} is not an id")))
    }

    /// An optional id: the empty text is none.
    pub fn optional_id<T: FromStr<Err = InvalidId>>(column: &str, value: &str) -> Result<Option<T>, Error> {
        if value.is_empty() { Ok(None) } else { id(column, value).map(Some) }
    }

    /// An optional id or value as stored: the empty text is none.
    pub fn text_of<T: ToString>(x: Option<T>) -> String {
        x.map(|v| v.to_string()).unwrap_or_default()
    }

    /// A stored state name.
    pub fn parsed<T>(column: &str, value: &str, parse: impl Fn(&str) -> Option<T>) -> Result<T, Error> {
        parse(value).ok_or_else(|| Error::internal(format!("stored {column} {value:?} is not known")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_placeholders_are_numbered() {
        let sql = "UPDATE t SET a = $2 WHERE id = $1 AND note <> '$'";
        assert_eq!(Dialect::Sqlite.sql(sql), "UPDATE t SET a = ?2 WHERE id = ?1 AND note <> '$'");
        assert_eq!(Dialect::Postgres.sql(sql), sql);
    }

    #[test]
    fn kit_migrations_have_the_same_numbering_on_both_backends() {
        check_migration_parity(&ServiceMigrations::KIT_ONLY).expect("kit migrations match");
    }
}

#[cfg(test)]
mod patience_tests {
    use super::*;

    /// A service started before its database waits, logging, and gives up after its
    /// patience with the reason: it neither exits at once nor hangs.
    #[tokio::test]
    async fn an_unreachable_database_is_tried_again_until_the_patience_runs_out() {
        // A port nothing listens on: bound, then released.
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
        let url: DatabaseUrl = format!("postgres://govmedia:secret@127.0.0.1:{port}/govmedia").parse().expect("url");
        let started = std::time::Instant::now();
        let error = Database::connect_patiently(&url, 1, Duration::from_secs(2)).await.expect_err("nothing listens");
        let waited = started.elapsed();
        assert!(error.is_unreachable(), "{error}");
        assert!(waited >= Duration::from_millis(1500), "gave up after {waited:?}");
        assert!(waited < Duration::from_secs(30), "kept trying for {waited:?}");
        assert!(!error.to_string().contains("secret"), "{error}");
    }
}
