//! Workspace-level end-to-end scenarios (in `tests/`), and what they share: the real
//! `govmedia` binary started as an operator starts it, and talked to only through its
//! gateway.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

/// The `govmedia` binary of this build. `cargo test --workspace` (the README's test
/// command) builds it next to the test executables; when a test of this package runs
/// alone and it is missing, it is built here.
pub fn govmedia_binary() -> PathBuf {
    // <target>/<profile>/deps/<test executable> -> <target>/<profile>/govmedia
    let exe = std::env::current_exe().expect("the test knows where it runs");
    let profile_dir = exe.parent().and_then(Path::parent).expect("a target folder").to_path_buf();
    let binary = profile_dir.join("govmedia");
    if !binary.exists() {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut build = Command::new(cargo);
        build.args(["build", "--package", "govmedia", "--bin", "govmedia"]);
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            build.arg("--release");
        }
        let status = build.status().expect("cargo runs");
        assert!(status.success(), "building the govmedia binary failed");
    }
    binary
}

/// `govmedia up` running as a process on a fresh data folder.
pub struct Up {
    child: Child,
    /// The gateway's URL.
    pub gateway: String,
    /// The data folder (databases or nothing, secrets, the archive of publications).
    pub data: tempfile::TempDir,
    lines: Receiver<String>,
}

impl Up {
    /// Starts `govmedia up` (on SQLite files, or on `database_url`) with `first_password`
    /// as the administrator's one-time password; returns once it says it is up.
    pub fn start(database_url: Option<&str>, first_password: &str) -> Self {
        let data = tempfile::tempdir().expect("data folder");
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
        let mut command = Command::new(govmedia_binary());
        // The test's own environment must not configure the system.
        for (key, _) in std::env::vars() {
            if key.starts_with("GOVMEDIA_") || key.starts_with("OTEL_") {
                command.env_remove(key);
            }
        }
        command
            .args(["up", "--listen-address", &format!("127.0.0.1:{port}")])
            .arg("--data-dir")
            .arg(data.path())
            .env("GOVMEDIA_IDENTITY_BOOTSTRAP_PASSWORD", first_password)
            .env("GOVMEDIA_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(url) = database_url {
            command.args(["--database-url", url]);
        }
        let mut child = command.spawn().expect("govmedia up starts");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut up = Self { child, gateway: format!("http://127.0.0.1:{port}"), data, lines };
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match up.lines.recv_timeout(left) {
                Ok(line) if line.contains("govmedia is up") => break,
                Ok(line) => seen.push(line),
                Err(_) => {
                    let _ = up.child.kill();
                    panic!("govmedia up never said it was up; it said:\n{}", seen.join("\n"));
                }
            }
        }
        up
    }

    /// Stops it as an operator does (SIGTERM) and checks that it stops cleanly.
    pub fn stop(mut self) {
        let killed = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().expect("kill runs");
        assert!(killed.success());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                let said: Vec<String> = self.lines.try_iter().collect();
                assert!(status.success(), "govmedia up stopped with {status}; it said:\n{}", said.join("\n"));
                return;
            }
            assert!(Instant::now() < deadline, "govmedia up did not stop within 30 s of SIGTERM");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        // A failed test must not leave the system running.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
