//! What the binary's tests share: `govmedia up` started in-process on a data folder, and a
//! person at the command line with a session of their own.

#![allow(dead_code, unreachable_pub)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use govmedia::up::{UpSettings, up};

pub mod otlp;
pub mod story;

/// The administrator's first (one-time) password in these tests.
pub const FIRST: &str = "Harbour#Lights2026";

/// `govmedia up` running in this process.
pub struct Running {
    /// The gateway's URL.
    pub gateway: String,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), Box<dyn std::error::Error + Send + Sync>>>,
}

impl Running {
    /// Stops it and checks that it stopped cleanly.
    pub async fn stop(self) {
        self.stop.send(()).expect("stop");
        self.task.await.expect("joined").expect("stopped cleanly");
    }
}

/// Starts `govmedia up` on `dir` (SQLite files, or `database`) with [`FIRST`] as the
/// administrator's first password; returns once it is up.
pub async fn start(dir: &Path, database: Option<&str>) -> Running {
    use clap::Parser;
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let mut args = vec![
        "govmedia up".to_owned(),
        "--data-dir".into(),
        dir.to_str().expect("utf-8").into(),
        "--listen-address".into(),
        format!("127.0.0.1:{port}"),
        "--bootstrap-password".into(),
        FIRST.into(),
    ];
    if let Some(url) = database {
        args.extend(["--database-url".to_owned(), url.to_owned()]);
    }
    let settings = UpSettings::try_parse_from(args).expect("settings");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (ready_tx, ready) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(up(
        settings,
        async move {
            let _ = stopped.await;
        },
        Some(ready_tx),
    ));
    let address = ready.await.expect("up is ready");
    Running { gateway: format!("http://{address}"), stop, task }
}

/// One person at the command line: their own config folder, hence their own session.
#[derive(Clone)]
pub struct Person {
    /// The config folder holding the session.
    pub config: PathBuf,
    gateway: String,
}

impl Person {
    /// `name`'s config folder under `root`.
    pub fn new(root: &Path, name: &str, gateway: &str) -> Self {
        Self { config: root.join(name), gateway: gateway.to_owned() }
    }

    /// Runs `govmedia args…` with `stdin`.
    pub fn run(&self, args: &[&str], stdin: &str) -> Output {
        let mut child = Command::new(env!("CARGO_BIN_EXE_govmedia"))
            .args(args)
            .env("GOVMEDIA_CLI_CONFIG_DIR", &self.config)
            .env("GOVMEDIA_GATEWAY", &self.gateway)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("runs");
        child.stdin.take().expect("stdin").write_all(stdin.as_bytes()).expect("stdin written");
        child.wait_with_output().expect("exits")
    }

    /// Runs a command that must succeed; its standard output.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args, "");
        assert!(out.status.success(), "govmedia {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).expect("utf-8")
    }

    /// Runs a command with --json that must succeed; its JSON.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut args = args.to_vec();
        args.push("--json");
        let text = self.ok(&args);
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("govmedia {args:?} printed no JSON ({e}): {text}"))
    }

    /// Signs in with a one-time password and sets their own.
    pub fn first_sign_in(&self, username: &str, one_time: &str, own: &str) {
        let out = self.run(&["login", "--username", username, "--password-stdin"], &format!("{one_time}\n"));
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let out = self.run(&["change-password", "--password-stdin"], &format!("{one_time}\n{own}\n"));
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
}
