//! The `govmedia` binary as an operator runs it: help, refusals naming the setting, and
//! `govmedia serve identity` started as a real process on a SQLite file — it prints the
//! administrator's one-time password once, answers health over gRPC, and stops cleanly on
//! SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

fn govmedia() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_govmedia"));
    // The test's own environment must not configure the service.
    for (key, _) in std::env::vars() {
        if key.starts_with("GOVMEDIA_") || key.starts_with("OTEL_") {
            c.env_remove(key);
        }
    }
    c
}

#[test]
fn help_and_refusals_name_what_to_do() {
    let out = govmedia().arg("--help").output().expect("runs");
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("govmedia serve <service>"));

    let out = govmedia().args(["serve", "identity", "--help"]).output().expect("runs");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("GOVMEDIA_LISTEN_ADDRESS") && help.contains("GOVMEDIA_DATABASE_URL"), "{help}");

    let out = govmedia().args(["serve", "mailroom"]).output().expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown service"));

    let out = govmedia().args(["serve", "content"]).output().expect("runs");
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("GOVMEDIA_DATABASE_URL"));

    let out = govmedia().args(["serve", "gateway", "--listen-address", "nowhere"]).output().expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("GOVMEDIA_LISTEN_ADDRESS"));
}

#[test]
fn identity_runs_as_a_process_and_stops_on_sigterm() {
    let folder = tempfile::tempdir().expect("dir");
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let mut child = govmedia()
        .args(["serve", "identity", "--listen-address", &format!("127.0.0.1:{port}")])
        .env("GOVMEDIA_DATABASE_URL", format!("sqlite://{}?mode=rwc", folder.path().join("identity.db").display()))
        .env("GOVMEDIA_LOG", "warn")
        // The credential vault's key (a test key: 32 bytes of 7).
        .env("GOVMEDIA_IDENTITY_SEALING_KEYS", "k1:BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starts");
    let stderr = child.stderr.take().expect("stderr");
    let (lines_tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    let password_line = lines
        .recv_timeout(Duration::from_secs(60))
        .expect("the first start prints the administrator's one-time password");
    assert!(password_line.contains("one-time password"), "{password_line}");

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let serving = runtime.block_on(async {
        for _ in 0..100 {
            if let Ok(channel) = tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{port}"))
                .expect("url")
                .connect()
                .await
            {
                let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
                let answer = health
                    .check(tonic_health::pb::HealthCheckRequest {
                        service: "govmedia.identity.v1.AuthenticationService".into(),
                    })
                    .await
                    .expect("health answers");
                return answer.into_inner().status;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("identity never answered");
    });
    assert_eq!(serving, tonic_health::pb::health_check_response::ServingStatus::Serving as i32);
    // Close our connection: graceful shutdown waits for open connections (up to the grace).
    drop(runtime);

    let killed = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("kill runs");
    assert!(killed.success());
    let status = child.wait().expect("exits");
    assert!(status.success(), "a clean shutdown exits 0: {status:?}");
}
