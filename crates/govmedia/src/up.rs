//! `govmedia up`: the whole system in one process — identity, audit, content,
//! interaction and the gateway — on SQLite files in a data folder, or on one PostgreSQL
//! database with a schema per service (`--database-url`). The services talk to
//! each other over loopback gRPC exactly as when deployed apart; their service-to-service
//! credentials, the credential vault's sealing key and the audit checkpoint key are
//! generated on first start and kept in `<data-dir>/secrets/` (owner-only files). The
//! administrator's one-time password is printed once, on first start.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use govmedia_kit::config::{DatabaseUrl, PeerSettings, PreBound, Secret};
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
pub(crate) const PRINCIPALS: [&str; 4] =
    ["govmedia-identity", "govmedia-audit", "govmedia-content", "govmedia-interaction"];

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// 32 random bytes in base64.
pub(crate) fn random_key() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    STANDARD.encode(bytes)
}

/// A secret kept in `<data-dir>/secrets/<name>`, made on first use; readable by the owner
/// only. A kept secret that others may read (copied in by hand, an older version) is
/// tightened, with a warning: it may have been read. A new one is written whole or not
/// at all, and two starters racing keep the first one's.
fn secret(dir: &Path, name: &str, make: impl FnOnce() -> String) -> Result<String, BoxError> {
    use govmedia_kit::private_files::{FILE_MODE, create_file, is_open_to_others};
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    match std::fs::read_to_string(&path) {
        Ok(s) => {
            if is_open_to_others(&path)? {
                tracing::warn!(file = %path.display(), "a secret file was readable by others; made owner-only (rotate it if others may have read it)");
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(FILE_MODE))?;
            }
            return Ok(s.trim().to_owned());
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("cannot read {}: {e}", path.display()).into()),
    }
    let value = make();
    match create_file(&path, value.as_bytes()) {
        Ok(()) => Ok(value),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            Ok(std::fs::read_to_string(&path)?.trim().to_owned())
        }
        Err(e) => Err(format!("cannot create {}: {e}", path.display()).into()),
    }
}

/// Holds the data folder for this `up` until it returns (the lock goes with the file);
/// a second `up` on the same folder is refused, saying so.
fn lock_data_folder(data: &Path) -> Result<std::fs::File, BoxError> {
    let path = data.join("govmedia.lock");
    govmedia_kit::private_files::private_file(&path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(format!(
            "another govmedia up is running on {} (it holds {}); stop it first or use another --data-dir",
            data.display(),
            path.display()
        )
        .into()),
        Err(std::fs::TryLockError::Error(e)) => Err(format!("cannot lock {}: {e}", path.display()).into()),
    }
}

/// A loopback socket for a service behind the gateway, bound here and handed to the
/// service: the port is never free between choosing it and serving on it.
fn loopback_socket() -> Result<(PreBound, u16), BoxError> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    Ok((PreBound::new(listener), port))
}

/// A service's settings as `up` runs it: its defaults (and `GOVMEDIA_*` variables, as
/// for any service), which the caller then completes field by field.
fn defaults<T: clap::Parser>(program: &str) -> Result<T, BoxError> {
    T::try_parse_from([program]).map_err(|e| e.to_string().into())
}

/// How a service behind the gateway signs in to identity and reaches audit.
fn peers(identity: &str, audit: Option<&str>, client_id: &str, secret: &str) -> PeerSettings {
    PeerSettings {
        identity_endpoint: Some(identity.to_owned()),
        audit_endpoint: audit.map(str::to_owned),
        content_endpoint: None,
        client_id: Some(client_id.to_owned()),
        client_secret: Some(Secret::new(secret)),
    }
}

/// Runs everything until `shutdown` completes; `ready` gets the gateway's address once
/// every service is started.
pub async fn up(
    settings: UpSettings,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ready: Option<tokio::sync::oneshot::Sender<SocketAddr>>,
) -> Result<(), BoxError> {
    let data = &settings.data_dir;
    // The data folder and everything in it are the owner's only (R7.1.1).
    govmedia_kit::private_files::private_dir(data).map_err(|e| format!("cannot create {}: {e}", data.display()))?;
    // One `up` per data folder: two would share the SQLite files and the secrets.
    let _lock = lock_data_folder(data)?;
    // Every port before any secret is made or password printed: a start that cannot
    // listen leaves nothing behind.
    let gateway_listener = std::net::TcpListener::bind(settings.listen_address)
        .map_err(|e| format!("cannot listen on {}: {e}", settings.listen_address))?;
    let listen_address = gateway_listener.local_addr()?;
    let (identity_socket, identity_port) = loopback_socket()?;
    let (audit_socket, audit_port) = loopback_socket()?;
    let (content_socket, content_port) = loopback_socket()?;
    let (interaction_socket, interaction_port) = loopback_socket()?;
    let secrets = data.join("secrets");
    govmedia_kit::private_files::private_dir(&secrets)
        .map_err(|e| format!("cannot create {}: {e}", secrets.display()))?;
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
    let database = |name: &str| -> Result<Option<DatabaseUrl>, BoxError> {
        Ok(Some(sqlite(name).parse().map_err(|e| format!("the {name} database: {e}"))?))
    };
    let url = |port: u16| format!("http://127.0.0.1:{port}");
    let (identity_url, audit_url) = (url(identity_port), url(audit_port));

    let mut identity: govmedia_identity::IdentitySettings = defaults("govmedia-identity")?;
    identity.server.listen_address = SocketAddr::from(([127, 0, 0, 1], identity_port));
    identity.server.listener = identity_socket;
    // Behind the gateway (on loopback): the caller's address is the one it names.
    identity.server.trusted_proxies = vec![ipnet::IpNet::from(std::net::IpAddr::from([127, 0, 0, 1]))];
    identity.database.database_url = database("identity")?;
    identity.peers = peers(&identity_url, Some(&audit_url), PRINCIPALS[0], &client_secrets[0]);
    identity.identity.sealing_keys = Some(Secret::new(sealing));
    identity.identity.bootstrap_password.clone_from(&settings.bootstrap_password);
    // First start: the database, the administrator, and every service's credentials,
    // before anything listens.
    let (core, bootstrap) =
        govmedia_identity::open(&identity, Arc::new(govmedia_domain_clock())).await.map_err(|e| e.to_string())?;
    for (principal, secret) in PRINCIPALS.iter().zip(&client_secrets) {
        core.provision_service_principal(principal, secret).await.map_err(|e| e.to_string())?;
    }
    core.db().close().await;
    drop(core);

    let mut audit: govmedia_audit::AuditSettings = defaults("govmedia-audit")?;
    audit.server.listen_address = SocketAddr::from(([127, 0, 0, 1], audit_port));
    audit.server.listener = audit_socket;
    audit.server.trusted_proxies = vec![ipnet::IpNet::from(std::net::IpAddr::from([127, 0, 0, 1]))];
    audit.database.database_url = database("audit")?;
    audit.peers = peers(&identity_url, None, PRINCIPALS[1], &client_secrets[1]);
    audit.peers.content_endpoint = Some(url(content_port));
    audit.audit.checkpoint_key = Some(Secret::new(checkpoint));

    let mut content: govmedia_content::ContentSettings = defaults("govmedia-content")?;
    content.server.listen_address = SocketAddr::from(([127, 0, 0, 1], content_port));
    content.server.listener = content_socket;
    content.server.trusted_proxies = vec![ipnet::IpNet::from(std::net::IpAddr::from([127, 0, 0, 1]))];
    content.database.database_url = database("content")?;
    content.peers = peers(&identity_url, Some(&audit_url), PRINCIPALS[2], &client_secrets[2]);
    content.content.archive_dir = data.join("publications");

    let mut interaction: govmedia_interaction::InteractionSettings = defaults("govmedia-interaction")?;
    interaction.server.listen_address = SocketAddr::from(([127, 0, 0, 1], interaction_port));
    interaction.server.listener = interaction_socket;
    interaction.server.trusted_proxies = vec![ipnet::IpNet::from(std::net::IpAddr::from([127, 0, 0, 1]))];
    interaction.database.database_url = database("interaction")?;
    interaction.peers = peers(&identity_url, Some(&audit_url), PRINCIPALS[3], &client_secrets[3]);

    let mut gateway: govmedia_gateway::GatewaySettings = defaults("govmedia-gateway")?;
    gateway.server.listen_address = listen_address;
    gateway.server.listener = PreBound::new(gateway_listener);
    gateway.upstreams.identity_upstreams = Some(identity_url.clone());
    gateway.upstreams.audit_upstreams = Some(audit_url.clone());
    gateway.upstreams.content_upstreams = Some(url(content_port));
    gateway.upstreams.interaction_upstreams = Some(url(interaction_port));

    // The audit service stops last: the others' relays ship their last audit records to
    // it as they stop.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let (audit_stop_tx, audit_stop_rx) = tokio::sync::watch::channel(false);
    let on = |rx: &tokio::sync::watch::Receiver<bool>| {
        let mut rx = rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let stopped = || on(&stop_rx);
    let mut services = tokio::task::JoinSet::new();
    services.spawn(named("identity", govmedia_identity::serve(identity, stopped())));
    services.spawn(named("audit", govmedia_audit::serve(audit, on(&audit_stop_rx))));
    services.spawn(named("content", govmedia_content::serve(content, stopped())));
    services.spawn(named("interaction", govmedia_interaction::serve(interaction, stopped())));
    // The gateway starts once the services behind it listen: its first health probe must
    // find them up, or it would take them out of its balancers until the next probe.
    let loopback = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
    let ports = [identity_port, audit_port, content_port, interaction_port].map(loopback);
    let mut listening = wait_for(&ports).await;
    services.spawn(named("gateway", govmedia_gateway::serve(gateway, stopped())));
    listening &= wait_for(&[listen_address]).await;
    if !listening {
        tracing::warn!(address = %listen_address, "a service is not taking connections yet");
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
        listen_address,
        secrets.display()
    );
    if let Some(ready) = ready {
        let _ = ready.send(listen_address);
    }

    // Run until asked to stop, or until a service stops on its own (then stop the rest).
    let mut failure: Option<String> = None;
    let mut running = std::collections::BTreeSet::from(["identity", "audit", "content", "interaction", "gateway"]);
    tokio::select! {
        () = shutdown => {}
        Some(first) = services.join_next() => {
            failure = Some(match first {
                Ok((name, Ok(()))) => {
                    running.remove(name);
                    format!("the {name} service stopped")
                }
                Ok((name, Err(e))) => {
                    running.remove(name);
                    format!("the {name} service failed: {e}")
                }
                Err(e) => format!("a service panicked: {e}"),
            });
        }
    }
    let _ = stop_tx.send(true);
    loop {
        if running.iter().all(|name| *name == "audit") {
            let _ = audit_stop_tx.send(true);
        }
        let Some(done) = services.join_next().await else { break };
        match done {
            Ok((name, result)) => {
                running.remove(name);
                if let Err(e) = result {
                    failure.get_or_insert_with(|| format!("the {name} service failed: {e}"));
                }
            }
            // A panicked task's name is lost: stop the audit service too rather than wait.
            Err(e) => {
                failure.get_or_insert_with(|| format!("a service panicked: {e}"));
                running.retain(|name| *name == "audit");
            }
        }
    }
    match failure {
        Some(why) => Err(why.into()),
        None => Ok(()),
    }
}

/// Waits (up to 10 s each) until every address answers its gRPC health check as
/// serving; false if one never did. (A socket bound in advance takes connections before
/// its service runs, so a connection alone proves nothing.)
async fn wait_for(addresses: &[SocketAddr]) -> bool {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;
    for address in addresses {
        let mut serving = false;
        for _ in 0..200 {
            let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{address}"))
                .map(|e| e.connect_timeout(std::time::Duration::from_millis(200)));
            if let Ok(endpoint) = endpoint
                && let Ok(channel) = endpoint.connect().await
            {
                let answer = HealthClient::new(channel).check(HealthCheckRequest { service: String::new() }).await;
                if answer.is_ok_and(|a| a.into_inner().status == ServingStatus::Serving as i32) {
                    serving = true;
                    break;
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        if !serving {
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

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn a_secret_is_made_once_owner_only_and_an_open_one_is_tightened_r7_1_1() {
        let dir = tempfile::tempdir().expect("dir");
        let made = secret(dir.path(), "signing", || "first".to_owned()).expect("made");
        let again = secret(dir.path(), "signing", || "second".to_owned()).expect("kept");
        assert_eq!((made.as_str(), again.as_str()), ("first", "first"));
        let path = dir.path().join("signing");
        assert_eq!(std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777, 0o600);

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("opened up");
        assert_eq!(secret(dir.path(), "signing", || "third".to_owned()).expect("kept"), "first");
        assert_eq!(std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777, 0o600, "tightened");
    }
}
