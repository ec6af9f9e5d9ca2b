//! `govmedia up`: the whole system in one process — identity, audit, content,
//! interaction and the gateway — on SQLite files in a data folder, or on one PostgreSQL
//! database with a schema per service (`--database-url`). The services talk to
//! each other over loopback gRPC exactly as when deployed apart; their service-to-service
//! credentials, the credential vault's sealing key and the audit checkpoint key are
//! generated on first start and kept in `<data-dir>/secrets/` (owner-only files). The
//! administrator's one-time password is printed once, on first start.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore;

/// `govmedia up`'s settings.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "govmedia up", about = "Run every govmedia service and the gateway in one process")]
pub struct UpSettings {
    /// The folder holding the databases, the secrets and the archive of publications.
    #[arg(long, env = "GOVMEDIA_DATA_DIR", default_value = "govmedia-data", value_name = "DIR")]
    pub data_dir: PathBuf,
    /// A PostgreSQL database to use instead of SQLite files (`postgres://user:password@host/db`);
    /// each service gets its own schema in it (`govmedia_identity`, …).
    #[arg(long, env = "GOVMEDIA_DATABASE_URL", value_name = "URL")]
    pub database_url: Option<govmedia_kit::config::DatabaseUrl>,
    /// Where the gateway listens; every call goes through it.
    #[arg(long, env = "GOVMEDIA_LISTEN_ADDRESS", default_value = "127.0.0.1:50051", value_name = "HOST:PORT")]
    pub listen_address: SocketAddr,
    /// The first administrator's password, instead of a generated one-time password
    /// (it must still be changed at first login).
    #[arg(long, env = "GOVMEDIA_IDENTITY_BOOTSTRAP_PASSWORD", value_name = "PASSWORD", hide_env_values = true)]
    pub bootstrap_password: Option<govmedia_kit::config::Secret>,
    /// Logs, traces, metrics.
    #[command(flatten)]
    pub telemetry: govmedia_kit::config::TelemetrySettings,
}

/// The services' client ids at identity.
const PRINCIPALS: [&str; 4] = ["govmedia-identity", "govmedia-audit", "govmedia-content", "govmedia-interaction"];

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// 32 random bytes in base64.
fn random_key() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    STANDARD.encode(bytes)
}

/// A secret kept in `<data-dir>/secrets/<name>`, made on first use; readable by the owner
/// only.
fn secret(dir: &Path, name: &str, make: impl FnOnce() -> String) -> Result<String, BoxError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = dir.join(name);
    match std::fs::read_to_string(&path) {
        Ok(s) => return Ok(s.trim().to_owned()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("cannot read {}: {e}", path.display()).into()),
    }
    let value = make();
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    file.write_all(value.as_bytes())?;
    Ok(value)
}

fn free_loopback_port() -> Result<u16, BoxError> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn args(program: &str, pairs: &[(&str, &str)]) -> Vec<OsString> {
    std::iter::once(OsString::from(program))
        .chain(pairs.iter().flat_map(|(k, v)| [OsString::from(format!("--{k}")), OsString::from(*v)]))
        .collect()
}

fn parsed<T: clap::Parser>(args: Vec<OsString>) -> Result<T, BoxError> {
    T::try_parse_from(args).map_err(|e| e.to_string().into())
}

/// Runs everything until `shutdown` completes; `ready` gets the gateway's address once
/// every service is started.
pub async fn up(
    settings: UpSettings,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ready: Option<tokio::sync::oneshot::Sender<SocketAddr>>,
) -> Result<(), BoxError> {
    use std::os::unix::fs::PermissionsExt;
    let data = &settings.data_dir;
    std::fs::create_dir_all(data.join("secrets")).map_err(|e| format!("cannot create {}: {e}", data.display()))?;
    std::fs::set_permissions(data.join("secrets"), std::fs::Permissions::from_mode(0o700))?;
    let secrets = data.join("secrets");
    let sealing = secret(&secrets, "identity-sealing-keys", || format!("k1:{}", random_key()))?;
    let checkpoint = secret(&secrets, "audit-checkpoint-key", random_key)?;
    let mut client_secrets = Vec::new();
    for principal in PRINCIPALS {
        client_secrets.push(secret(&secrets, principal, random_key)?);
    }
    let postgres = match &settings.database_url {
        Some(url) if url.backend() == govmedia_kit::config::Backend::Postgres => {
            create_schemas(url.expose()).await?;
            Some(url.expose().to_owned())
        }
        Some(_) => return Err("--database-url must be a postgres:// URL (SQLite is the default without it)".into()),
        None => None,
    };
    // A service's database: its schema of the PostgreSQL database, or its SQLite file.
    let sqlite = |name: &str| match &postgres {
        Some(url) => in_schema(url, name),
        None => format!("sqlite://{}?mode=rwc", data.join(format!("{name}.db")).display()),
    };
    let (identity_port, audit_port, content_port, interaction_port) =
        (free_loopback_port()?, free_loopback_port()?, free_loopback_port()?, free_loopback_port()?);
    let at = |port: u16| format!("127.0.0.1:{port}");
    let url = |port: u16| format!("http://127.0.0.1:{port}");
    let (identity_url, audit_url) = (url(identity_port), url(audit_port));
    let archive = data.join("publications");
    let archive = archive.to_str().ok_or("the data folder's path is not UTF-8")?.to_owned();

    let bootstrap_password = settings.bootstrap_password.as_ref().map(|p| p.expose().to_owned());
    let (identity_db, identity_at) = (sqlite("identity"), at(identity_port));
    let mut identity_args: Vec<(&str, &str)> = vec![
        ("database-url", &identity_db),
        ("listen-address", &identity_at),
        ("sealing-keys", &sealing),
        ("identity-endpoint", &identity_url),
        ("audit-endpoint", &audit_url),
        ("client-id", PRINCIPALS[0]),
        ("client-secret", &client_secrets[0]),
    ];
    if let Some(p) = &bootstrap_password {
        identity_args.push(("bootstrap-password", p));
    }
    let identity_settings: govmedia_identity::IdentitySettings = parsed(args("govmedia-identity", &identity_args))?;
    // First start: the database, the administrator, and every service's credentials,
    // before anything listens.
    let (core, bootstrap) = govmedia_identity::open(&identity_settings, Arc::new(govmedia_domain_clock()))
        .await
        .map_err(|e| e.to_string())?;
    for (principal, secret) in PRINCIPALS.iter().zip(&client_secrets) {
        core.provision_service_principal(principal, secret).await.map_err(|e| e.to_string())?;
    }
    core.db().close().await;
    drop(core);

    let audit_settings: govmedia_audit::AuditSettings = parsed(args(
        "govmedia-audit",
        &[
            ("database-url", &sqlite("audit")),
            ("listen-address", &at(audit_port)),
            ("checkpoint-key", &checkpoint),
            ("identity-endpoint", &identity_url),
            ("client-id", PRINCIPALS[1]),
            ("client-secret", &client_secrets[1]),
        ],
    ))?;
    let content_settings: govmedia_content::ContentSettings = parsed(args(
        "govmedia-content",
        &[
            ("database-url", &sqlite("content")),
            ("listen-address", &at(content_port)),
            ("identity-endpoint", &identity_url),
            ("audit-endpoint", &audit_url),
            ("client-id", PRINCIPALS[2]),
            ("client-secret", &client_secrets[2]),
            ("archive-dir", &archive),
        ],
    ))?;
    let interaction_settings: govmedia_interaction::InteractionSettings = parsed(args(
        "govmedia-interaction",
        &[
            ("database-url", &sqlite("interaction")),
            ("listen-address", &at(interaction_port)),
            ("identity-endpoint", &identity_url),
            ("audit-endpoint", &audit_url),
            ("client-id", PRINCIPALS[3]),
            ("client-secret", &client_secrets[3]),
        ],
    ))?;
    let gateway_settings: govmedia_gateway::GatewaySettings = parsed(args(
        "govmedia-gateway",
        &[
            ("listen-address", &settings.listen_address.to_string()),
            ("identity-upstreams", &identity_url),
            ("audit-upstreams", &audit_url),
            ("content-upstreams", &url(content_port)),
            ("interaction-upstreams", &url(interaction_port)),
        ],
    ))?;

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let mut services = tokio::task::JoinSet::new();
    services.spawn(named("identity", govmedia_identity::serve(identity_settings, stopped())));
    services.spawn(named("audit", govmedia_audit::serve(audit_settings, stopped())));
    services.spawn(named("content", govmedia_content::serve(content_settings, stopped())));
    services.spawn(named("interaction", govmedia_interaction::serve(interaction_settings, stopped())));
    // The gateway starts once the services behind it listen: its first health probe must
    // find them up, or it would take them out of its balancers until the next probe.
    let loopback = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
    let ports = [identity_port, audit_port, content_port, interaction_port].map(loopback);
    let mut listening = wait_for(&ports).await;
    services.spawn(named("gateway", govmedia_gateway::serve(gateway_settings, stopped())));
    listening &= wait_for(&[settings.listen_address]).await;
    if !listening {
        tracing::warn!(address = %settings.listen_address, "a service is not taking connections yet");
    }
    if let Some(b) = &bootstrap
        && let Some(password) = &b.one_time_password
    {
        // Shown once, to the operator who started the system; never logged.
        eprintln!(
            "govmedia: first start — administrator {:?}, one-time password: {password}\n          (change it at first login)",
            b.admin_username
        );
    }
    let databases = match &settings.database_url {
        Some(url) => format!("databases in {url}, one schema per service"),
        None => format!("databases in {}", data.display()),
    };
    eprintln!(
        "govmedia is up: the gateway listens on http://{} ({databases}; secrets in {}); Ctrl-C stops it",
        settings.listen_address,
        secrets.display()
    );
    if let Some(ready) = ready {
        let _ = ready.send(settings.listen_address);
    }

    // Run until asked to stop, or until a service stops on its own (then stop the rest).
    let mut failure: Option<String> = None;
    tokio::select! {
        () = shutdown => {}
        Some(first) = services.join_next() => {
            failure = Some(match first {
                Ok((name, Ok(()))) => format!("the {name} service stopped"),
                Ok((name, Err(e))) => format!("the {name} service failed: {e}"),
                Err(e) => format!("a service panicked: {e}"),
            });
        }
    }
    let _ = stop_tx.send(true);
    while let Some(done) = services.join_next().await {
        if let Ok((name, Err(e))) = done {
            failure.get_or_insert_with(|| format!("the {name} service failed: {e}"));
        }
    }
    match failure {
        Some(why) => Err(why.into()),
        None => Ok(()),
    }
}

/// Waits (up to 10 s each) until every address takes connections; false if one never did.
async fn wait_for(addresses: &[SocketAddr]) -> bool {
    for address in addresses {
        let mut open = false;
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(address).await.is_ok() {
                open = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        if !open {
            return false;
        }
    }
    true
}

/// The schema of a service in the shared PostgreSQL database.
fn schema(service: &str) -> String {
    format!("govmedia_{service}")
}

/// The URL of `service`'s schema: the connection's search path names it, so the
/// service's tables and its migration history live there.
fn in_schema(url: &str, service: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}options=-c%20search_path%3D{}", schema(service))
}

async fn create_schemas(url: &str) -> Result<(), BoxError> {
    use sqlx::Connection;
    let mut connection =
        sqlx::PgConnection::connect(url).await.map_err(|e| format!("cannot connect to the database: {e}"))?;
    for service in ["identity", "audit", "content", "interaction"] {
        sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS {}", schema(service)))
            .execute(&mut connection)
            .await
            .map_err(|e| format!("cannot create schema {}: {e}", schema(service)))?;
    }
    connection.close().await?;
    Ok(())
}

async fn named(
    name: &'static str,
    service: impl std::future::Future<Output = Result<(), BoxError>>,
) -> (&'static str, Result<(), BoxError>) {
    (name, service.await)
}

fn govmedia_domain_clock() -> govmedia_domain::clock::SystemClock {
    govmedia_domain::clock::SystemClock
}
