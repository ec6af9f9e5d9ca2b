//! Test support for govmedia (a dev-dependency only):
//!
//! - [`TestDatabase`]: a fresh database per test, on PostgreSQL (provisioned as
//!   [`postgres`] describes) or on a SQLite file in a temporary folder;
//! - [`storage_tests!`]: runs the same async test body on both backends, so the stores
//!   cannot drift apart;
//! - [`TestServer`]: a real tonic server from the kit's bootstrap on 127.0.0.1:0;
//! - [`TestAuth`]: a signing key whose tokens the test servers accept, to make
//!   authenticated clients without an identity service;
//! - [`raw`]: calling any method by path, for sweeps over every RPC of a service.

pub mod postgres;
pub mod raw;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use govmedia_domain::ids::{DepartmentId, PrincipalId};
use govmedia_kit::auth::{AccessClaims, AuthLayer, AuthPolicy, KeySource, PrincipalKind, SigningKey, TokenVerifier};
use govmedia_kit::config::{Backend, DatabaseUrl};
use govmedia_kit::db::{Database, ServiceMigrations};
use govmedia_kit::server::{BoundServer, ServerBuilder};
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

pub use postgres::ProvisionError;

/// Which store a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestBackend {
    /// PostgreSQL.
    Postgres,
    /// SQLite.
    Sqlite,
}

/// A database of its own for one test. PostgreSQL databases are dropped when it drops;
/// SQLite files go with their temporary folder.
#[derive(Debug)]
pub struct TestDatabase {
    backend: TestBackend,
    url: String,
    dir: Option<tempfile::TempDir>,
    drop_from: Option<(String, String)>,
}

impl TestDatabase {
    /// A fresh database on `backend`. Panics with instructions when PostgreSQL cannot be
    /// provided: a storage test must fail, never skip.
    pub async fn new(backend: TestBackend) -> Self {
        match backend {
            TestBackend::Postgres => Self::postgres().await,
            TestBackend::Sqlite => Self::sqlite(),
        }
    }

    /// A fresh PostgreSQL database.
    pub async fn postgres() -> Self {
        match Self::try_postgres().await {
            Ok(db) => db,
            Err(e) => panic!("{e}"),
        }
    }

    /// A fresh PostgreSQL database, or why none could be had.
    pub async fn try_postgres() -> Result<Self, ProvisionError> {
        let server =
            tokio::task::spawn_blocking(postgres::server_url).await.map_err(|e| ProvisionError(e.to_string()))??;
        let name = format!("govmedia_test_{}", uuid::Uuid::now_v7().simple());
        let mut admin = connect_admin(server).await?;
        sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(&mut admin)
            .await
            .map_err(|e| ProvisionError(format!("cannot create a test database on {}: {e}", redact(server))))?;
        Ok(Self {
            backend: TestBackend::Postgres,
            url: with_database(server, &name),
            dir: None,
            drop_from: Some((server.to_owned(), name)),
        })
    }

    /// A fresh SQLite database file in a temporary folder.
    pub fn sqlite() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("govmedia-test-sqlite-")
            .tempdir()
            .unwrap_or_else(|e| panic!("cannot create a temporary folder: {e}"));
        let url = format!("sqlite:{}", dir.path().join("test.db").display());
        Self { backend: TestBackend::Sqlite, url, dir: Some(dir), drop_from: None }
    }

    /// The backend.
    pub fn backend(&self) -> TestBackend {
        self.backend
    }

    /// The database URL.
    pub fn url(&self) -> DatabaseUrl {
        self.url.parse().unwrap_or_else(|e| panic!("test database URL does not parse: {e}"))
    }

    /// The temporary folder of a SQLite database.
    pub fn folder(&self) -> Option<&std::path::Path> {
        self.dir.as_ref().map(tempfile::TempDir::path)
    }

    /// Connects a pool and runs the kit's and the service's migrations.
    pub async fn connect(&self, migrations: &ServiceMigrations) -> Database {
        let db = Database::connect(&self.url(), 10)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to the test database: {e}"));
        db.migrate(migrations).await.unwrap_or_else(|e| panic!("cannot migrate the test database: {e}"));
        assert_eq!(
            db.backend(),
            match self.backend {
                TestBackend::Postgres => Backend::Postgres,
                TestBackend::Sqlite => Backend::Sqlite,
            }
        );
        db
    }
}

/// deploy/postgres/service-roles.sql with psql's variables filled in as `psql -v` would:
/// the shipped script itself, so a test proves what operators run.
pub fn service_roles_sql(schema: &str, owner: &str, app: &str, owner_password: &str, app_password: &str) -> String {
    include_str!("../../../deploy/postgres/service-roles.sql")
        .replace(":\"schema\"", &format!("\"{schema}\""))
        .replace(":\"owner\"", &format!("\"{owner}\""))
        .replace(":\"app\"", &format!("\"{app}\""))
        .replace(":'owner_password'", &format!("'{owner_password}'"))
        .replace(":'app_password'", &format!("'{app_password}'"))
}

/// Every row of every table of `db` as text, `table: row`, for tests that search the
/// whole store for something that must never be there (a secret, personal data).
pub async fn every_row(db: &Database) -> Vec<String> {
    let mut out = Vec::new();
    match db {
        Database::Postgres(pool) => {
            let tables: Vec<String> = sqlx::query_scalar(
                "SELECT table_name::text FROM information_schema.tables \
                 WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'",
            )
            .fetch_all(pool)
            .await
            .unwrap_or_else(|e| panic!("tables: {e}"));
            for table in tables {
                let rows: Vec<String> = sqlx::query_scalar(&format!("SELECT t::text FROM \"{table}\" t"))
                    .fetch_all(pool)
                    .await
                    .unwrap_or_else(|e| panic!("{table}: {e}"));
                out.extend(rows.into_iter().map(|r| format!("{table}: {r}")));
            }
        }
        Database::Sqlite(pool) => {
            let tables: Vec<String> =
                sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
                    .fetch_all(pool)
                    .await
                    .unwrap_or_else(|e| panic!("tables: {e}"));
            for table in tables {
                let columns: Vec<String> =
                    sqlx::query_scalar(&format!("SELECT name FROM pragma_table_info('{table}')"))
                        .fetch_all(pool)
                        .await
                        .unwrap_or_else(|e| panic!("{table}: {e}"));
                let row = columns.iter().map(|c| format!("quote(\"{c}\")")).collect::<Vec<_>>().join(" || '|' || ");
                let rows: Vec<String> = sqlx::query_scalar(&format!("SELECT {row} FROM \"{table}\""))
                    .fetch_all(pool)
                    .await
                    .unwrap_or_else(|e| panic!("{table}: {e}"));
                out.extend(rows.into_iter().map(|r| format!("{table}: {r}")));
            }
        }
    }
    out
}

/// Asks `probe` every 20 ms until it answers `Some`, for at most `within`; panics naming
/// `what` when it never does. For what happens in the background (a server coming up, a
/// relay delivering, a checkpoint being signed): the test waits as long as it must and no
/// longer, instead of sleeping a guessed time and then asserting.
pub async fn eventually<T>(what: &str, within: std::time::Duration, mut probe: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("{what}: not within {within:?}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Migrates `migrations` on a fresh PostgreSQL and a fresh SQLite database and panics,
/// listing every difference, unless both build the same tables: columns, their type
/// families and nullability, primary, unique and foreign keys (`govmedia_kit::schema`).
pub async fn assert_schema_parity(migrations: &ServiceMigrations) {
    let (postgres, sqlite) = (TestDatabase::postgres().await, TestDatabase::sqlite());
    let read = |db: Database| async move {
        govmedia_kit::schema::read(&db).await.unwrap_or_else(|e| panic!("cannot read the schema: {e}"))
    };
    let p = read(postgres.connect(migrations).await).await;
    let s = read(sqlite.connect(migrations).await).await;
    assert!(!p.is_empty(), "no tables read from PostgreSQL");
    let differences = govmedia_kit::schema::differences(&p, &s);
    assert!(
        differences.is_empty(),
        "{}: the PostgreSQL and SQLite migrations build different tables:\n  {}",
        migrations.service,
        differences.join("\n  ")
    );
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some((server, name)) = self.drop_from.take() else { return };
        // Drop runs outside any runtime guarantee: use a thread with its own runtime.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
            runtime.block_on(async move {
                let mut admin = connect_admin(&server).await.ok()?;
                sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")).execute(&mut admin).await.ok()
            })
        });
        let _ = dropped.join();
    }
}

async fn connect_admin(server: &str) -> Result<sqlx::PgConnection, ProvisionError> {
    use sqlx::Connection;
    let mut last = String::new();
    // A freshly started server may refuse connections for a moment.
    for _ in 0..50 {
        match sqlx::PgConnection::connect(server).await {
            Ok(c) => return Ok(c),
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(ProvisionError(format!("cannot connect to {}: {last}", redact(server))))
}

/// `url` with its database name replaced by `database`.
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let after_scheme = base.find("://").map_or(0, |i| i + 3);
    let base = match base[after_scheme..].find('/') {
        Some(slash) => &base[..after_scheme + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{database}?{q}"),
        None => format!("{base}/{database}"),
    }
}

fn redact(url: &str) -> String {
    url.parse::<DatabaseUrl>().map_or_else(|_| "the database".to_owned(), |u| u.redacted())
}

/// Runs each named `async fn(TestDatabase)` as two tests, `postgres::<name>` and
/// `sqlite::<name>`, each on a fresh database of that backend.
#[macro_export]
macro_rules! storage_tests {
    ($($name:ident),+ $(,)?) => {
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::TestDatabase::new($crate::TestBackend::Postgres).await).await;
                }
            )+
        }
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::TestDatabase::new($crate::TestBackend::Sqlite).await).await;
                }
            )+
        }
    };
}

/// A server started in-process on 127.0.0.1 with a free port; stopped when dropped.
#[derive(Debug)]
pub struct TestServer {
    addr: SocketAddr,
    channel: Channel,
    shutdown: CancellationToken,
    task: Option<tokio::task::JoinHandle<Result<(), govmedia_kit::server::ServeError>>>,
}

impl TestServer {
    /// Binds and serves `builder` (whose settings should listen on 127.0.0.1:0).
    pub async fn start(builder: ServerBuilder) -> Self {
        let bound: BoundServer = builder.bind().await.unwrap_or_else(|e| panic!("test server cannot bind: {e}"));
        let addr = bound.local_addr();
        let shutdown = CancellationToken::new();
        let stop = shutdown.clone();
        let task = tokio::spawn(bound.serve(async move { stop.cancelled().await }));
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .unwrap_or_else(|e| panic!("bad test endpoint: {e}"))
            .connect_timeout(Duration::from_secs(5))
            .connect_lazy();
        Self { addr, channel, shutdown, task: Some(task) }
    }

    /// The address served.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A channel to the server.
    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    /// A channel to the server from another loopback source address (`127.0.0.2`, …:
    /// Linux routes all of 127/8 to the loopback device), so a test can be two clients in
    /// two places.
    pub fn channel_from(&self, source: std::net::IpAddr) -> Channel {
        tonic::transport::Endpoint::from_shared(format!("http://{}", self.addr))
            .unwrap_or_else(|e| panic!("bad test endpoint: {e}"))
            .connect_timeout(Duration::from_secs(5))
            .local_address(Some(source))
            .connect_lazy()
    }

    /// Shuts the server down gracefully and waits for it to stop.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            match task.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => panic!("test server failed: {e}"),
                Err(e) => panic!("test server task failed: {e}"),
            }
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A token issuer for tests: servers built with [`TestAuth::layer`] accept its tokens.
#[derive(Debug, Clone)]
pub struct TestAuth {
    key: SigningKey,
    verifier: Arc<TokenVerifier>,
}

impl Default for TestAuth {
    fn default() -> Self {
        Self::new()
    }
}

impl TestAuth {
    /// A fresh key.
    pub fn new() -> Self {
        let key = SigningKey::generate("test-key");
        let verifier =
            Arc::new(TokenVerifier::new(KeySource::Static(vec![(key.key_id().to_owned(), key.public_key())])));
        Self { key, verifier }
    }

    /// The verifier that accepts this issuer's tokens.
    pub fn verifier(&self) -> Arc<TokenVerifier> {
        Arc::clone(&self.verifier)
    }

    /// An auth layer accepting this issuer's tokens under `policy`.
    pub fn layer(&self, policy: AuthPolicy) -> AuthLayer {
        AuthLayer::new(self.verifier(), policy)
    }

    /// A 15-minute token for a user.
    pub fn user_token(&self, user: PrincipalId, name: &str, department: Option<DepartmentId>) -> String {
        let mut claims =
            AccessClaims::new(user, PrincipalKind::User, name, chrono::Utc::now(), Duration::from_secs(900));
        claims.dept = department.map(|d| d.to_string());
        self.sign(&claims)
    }

    /// A 15-minute token for a service principal.
    pub fn service_token(&self, service: PrincipalId, name: &str) -> String {
        let mut claims =
            AccessClaims::new(service, PrincipalKind::Service, name, chrono::Utc::now(), Duration::from_secs(900));
        // As identity issues them: the name is the client id.
        claims.cid = Some(name.to_owned());
        self.sign(&claims)
    }

    /// Signs arbitrary claims (for tests of expiry, restricted sessions and the like).
    pub fn sign(&self, claims: &AccessClaims) -> String {
        self.key.sign(claims).unwrap_or_else(|e| panic!("cannot sign a test token: {e}"))
    }
}

/// Puts `authorization: Bearer <token>` on a request.
pub fn with_token<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    let value = format!("Bearer {token}").parse().unwrap_or_else(|e| panic!("token is not a header value: {e}"));
    request.metadata_mut().insert("authorization", value);
    request
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_names_are_replaced_in_urls() {
        assert_eq!(with_database("postgres://u@h:5432/postgres", "t1"), "postgres://u@h:5432/t1");
        assert_eq!(
            with_database("postgres://u@h:5432/postgres?sslmode=disable", "t1"),
            "postgres://u@h:5432/t1?sslmode=disable"
        );
        assert_eq!(with_database("postgres://u@h:5432", "t1"), "postgres://u@h:5432/t1");
    }
}
