//! A PostgreSQL server for the tests of one test binary, found or started once:
//!
//! 1. `TEST_DATABASE_URL` or `DATABASE_URL`, if set: that server is used.
//! 2. Else a testcontainers PostgreSQL, if a Docker daemon answers.
//! 3. Else a throwaway cluster from the local PostgreSQL binaries (`initdb` and `pg_ctl`
//!    on PATH or under /usr/lib/postgresql/*/bin), in a temporary folder, run as the
//!    unprivileged `postgres` user when the tests run as root (PostgreSQL refuses root).
//!    A detached watchdog stops it and removes the folder when the test process exits.
//! 4. Else a clear error that says how to provide one. Never a silent skip.

use std::net::TcpListener;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

/// Why no PostgreSQL server could be provided.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "no PostgreSQL server for the tests: {0}.\n\
     Provide one of: TEST_DATABASE_URL=postgres://user@host:5432/postgres (a server the tests may create \
     databases on); a running Docker daemon (testcontainers); or the PostgreSQL server binaries \
     (initdb, pg_ctl) on PATH or under /usr/lib/postgresql/<version>/bin (Debian/Ubuntu: \
     apt install postgresql)."
)]
pub struct ProvisionError(pub String);

/// The server every test of this process uses: an admin URL ending in a database name
/// the tests may connect to in order to create their own databases.
pub(crate) fn server_url() -> Result<&'static str, ProvisionError> {
    static SERVER: OnceLock<Result<String, ProvisionError>> = OnceLock::new();
    SERVER.get_or_init(provision).as_deref().map_err(Clone::clone)
}

fn provision() -> Result<String, ProvisionError> {
    for name in ["TEST_DATABASE_URL", "DATABASE_URL"] {
        if let Ok(url) = std::env::var(name)
            && !url.trim().is_empty()
        {
            return Ok(url);
        }
    }
    let docker_error = match from_docker() {
        Ok(url) => return Ok(url),
        Err(e) => e,
    };
    from_local_binaries().map_err(|local| {
        ProvisionError(format!("no TEST_DATABASE_URL or DATABASE_URL; Docker: {docker_error}; local binaries: {local}"))
    })
}

/// Starts a testcontainers PostgreSQL on a thread that keeps it alive for the process.
fn from_docker() -> Result<String, String> {
    use testcontainers::runners::AsyncRunner;

    let (tx, rx) = std::sync::mpsc::channel::<Result<String, String>>();
    std::thread::Builder::new()
        .name("testkit-postgres-container".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = tx.send(Err(e.to_string()));
                    return;
                }
            };
            runtime.block_on(async move {
                let started = testcontainers_modules::postgres::Postgres::default().start().await;
                let container = match started {
                    Ok(c) => c,
                    Err(e) => {
                        let _ = tx.send(Err(e.to_string()));
                        return;
                    }
                };
                let port = match container.get_host_port_ipv4(5432).await {
                    Ok(p) => p,
                    Err(e) => {
                        let _ = tx.send(Err(e.to_string()));
                        return;
                    }
                };
                let _ = tx.send(Ok(format!("postgres://postgres:postgres@127.0.0.1:{port}/postgres")));
                // Holding the container keeps it running; testcontainers' reaper removes
                // it when this process ends.
                std::future::pending::<()>().await;
                drop(container);
            });
        })
        .map_err(|e| e.to_string())?;
    rx.recv_timeout(Duration::from_secs(120)).map_err(|e| format!("container did not start: {e}"))?
}

/// A PostgreSQL program (`pg_dump`, `initdb`, …) on PATH or under
/// /usr/lib/postgresql/<version>/bin, the newest version first.
pub fn find_binary(name: &str) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Some(candidate);
            }
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let candidate = e.path().join("bin").join(name);
            candidate.is_file().then_some((version, candidate))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, p)| p)
}

fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    listener.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}

fn running_as_root() -> bool {
    std::fs::metadata("/proc/self").map(|m| m.uid() == 0).unwrap_or(false)
}

/// Runs a PostgreSQL binary, as `postgres` when we are root.
fn pg_command(binary: &Path, as_user: Option<&str>) -> Command {
    match as_user {
        Some(user) => {
            let mut c = Command::new("runuser");
            c.arg("-u").arg(user).arg("--").arg(binary);
            c
        }
        None => Command::new(binary),
    }
}

fn run(mut command: Command, what: &str) -> Result<(), String> {
    let output = command.stdin(Stdio::null()).output().map_err(|e| format!("{what}: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{what} failed ({}): {}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

fn from_local_binaries() -> Result<String, String> {
    let cluster =
        LocalCluster::start(&["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"])?;
    let url = cluster.url();
    // Kept for the whole process: its watchdog stops and removes it when the process ends.
    std::mem::forget(cluster);
    Ok(url)
}

/// A PostgreSQL cluster of its own from the local binaries, in a temporary folder, run as
/// `postgres` when we are root: for what must do to its server what no shared server may
/// suffer (the fault suite restarts it under load). Stopped and removed when dropped, or
/// when the process ends without dropping it (killed).
#[derive(Debug)]
pub struct LocalCluster {
    pg_ctl: PathBuf,
    as_user: Option<&'static str>,
    root: PathBuf,
    data: PathBuf,
    port: u16,
    options: String,
}

impl LocalCluster {
    /// Makes and starts a cluster with the server options `extra` (`-c name=value` pairs)
    /// beside the test kit's own (loopback only, 300 connections).
    pub fn start(extra: &[&str]) -> Result<Self, String> {
        let initdb = find_binary("initdb").ok_or("initdb not found on PATH or under /usr/lib/postgresql/*/bin")?;
        let pg_ctl = find_binary("pg_ctl").ok_or("pg_ctl not found on PATH or under /usr/lib/postgresql/*/bin")?;
        let as_user = running_as_root().then_some("postgres");
        let root = std::env::temp_dir().join(format!(
            "govmedia-testpg-{}-{}",
            std::process::id(),
            uuid::Uuid::now_v7().simple()
        ));
        let data = root.join("data");
        std::fs::create_dir_all(&root).map_err(|e| format!("cannot create {}: {e}", root.display()))?;
        if let Some(user) = as_user {
            let mut chown = Command::new("chown");
            chown.arg("-R").arg(format!("{user}:{user}")).arg(&root);
            run(chown, "chown of the cluster folder to postgres")?;
        }
        let mut init = pg_command(&initdb, as_user);
        init.arg("-D").arg(&data).args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync", "--locale=C"]);
        run(init, "initdb")?;
        let port = free_port()?;
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c max_connections=300 -c shared_buffers=64MB {}",
            root.display(),
            extra.join(" ")
        );
        let cluster = Self { pg_ctl, as_user, root, data, port, options };
        cluster.pg_ctl(&["-w", "-t", "60", "start"], "pg_ctl start")?;
        // Dropping stops it; the watchdog also does when the process dies without dropping.
        spawn_watchdog(&cluster.pg_ctl, cluster.as_user, &cluster.data, &cluster.root);
        Ok(cluster)
    }

    fn pg_ctl(&self, args: &[&str], what: &str) -> Result<(), String> {
        let mut command = pg_command(&self.pg_ctl, self.as_user);
        command.arg("-D").arg(&self.data).arg("-o").arg(&self.options).arg("-l").arg(self.root.join("postgres.log"));
        command.args(args);
        run(command, what)
    }

    /// The administrator's URL (database `postgres`).
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops the server with `mode` (`fast`: clients cut off, a clean shutdown;
    /// `immediate`: as a crash, recovery at the next start) and starts it again, waiting
    /// until it accepts connections.
    pub fn restart(&self, mode: &str) -> Result<(), String> {
        self.pg_ctl(&["-w", "-t", "60", "-m", mode, "stop"], "pg_ctl stop")?;
        self.pg_ctl(&["-w", "-t", "60", "start"], "pg_ctl start")
    }

    /// The server's log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.root.join("postgres.log")).unwrap_or_default()
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        let _ = self.pg_ctl(&["-w", "-m", "immediate", "stop"], "pg_ctl stop");
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// A detached shell that waits for this process to end, then stops the cluster and
/// removes its folder (also after a panic or a kill).
fn spawn_watchdog(pg_ctl: &Path, as_user: Option<&str>, data: &Path, root: &Path) {
    let stop = match as_user {
        Some(user) => {
            format!("runuser -u {user} -- '{}' -D '{}' -m immediate -w stop", pg_ctl.display(), data.display())
        }
        None => format!("'{}' -D '{}' -m immediate -w stop", pg_ctl.display(), data.display()),
    };
    let script = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 1; done; {stop} >/dev/null 2>&1; rm -rf '{root}'",
        pid = std::process::id(),
        root = root.display()
    );
    let setsid = find_binary("setsid").or_else(|| Some(PathBuf::from("/usr/bin/setsid")).filter(|p| p.is_file()));
    let mut command = match setsid {
        Some(setsid) => {
            let mut c = Command::new(setsid);
            c.arg("sh");
            c
        }
        None => Command::new("sh"),
    };
    let spawned =
        command.arg("-c").arg(script).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).spawn();
    if let Err(e) = spawned {
        eprintln!("govmedia-testkit: cannot start the cleanup watchdog ({e}); remove {} by hand", root.display());
    }
}
