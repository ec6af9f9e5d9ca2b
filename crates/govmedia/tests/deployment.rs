//! What containers run besides `govmedia serve`: the health probe and the secrets
//! generator, as real processes.

mod common;

use common::Person;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_health_probe_says_serving_and_fails_when_nothing_answers() {
    let data = tempfile::tempdir().expect("data");
    let config = tempfile::tempdir().expect("config");
    let running = common::start(data.path(), None).await;
    let operator = Person::new(config.path(), "operator", &running.gateway);
    let gateway = running.gateway.clone();
    let probe = operator.clone();
    let answer =
        tokio::task::spawn_blocking(move || probe.json(&["health", "--address", &gateway])).await.expect("ran");
    assert_eq!(answer["status"], "SERVING", "{answer}");

    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr");
    let address = format!("http://{closed}");
    let out =
        tokio::task::spawn_blocking(move || operator.run(&["health", "--address", &address, "--timeout", "1s"], ""))
            .await
            .expect("ran");
    assert!(!out.status.success(), "nothing listens there");
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot reach"), "{}", String::from_utf8_lossy(&out.stderr));
    running.stop().await;
}

#[test]
fn secrets_are_made_once_each_in_its_own_file_and_kept_on_a_second_run() {
    use std::os::unix::fs::PermissionsExt;
    let root = tempfile::tempdir().expect("root");
    let dir = root.path().join("secrets");
    let operator = Person::new(root.path(), "operator", "http://127.0.0.1:9");
    let first = operator.json(&["secrets", "--dir", dir.to_str().expect("utf-8")]);
    assert_eq!(first["made"], "24", "{first}");
    assert_eq!(std::fs::metadata(&dir).expect("folder").permissions().mode() & 0o777, 0o700);
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).expect(name).trim().to_owned();
    let password = read("audit-database-password");
    assert_eq!(password.len(), 64);
    assert_eq!(
        read("audit-database-url"),
        format!(
            "postgres://govmedia_audit:{password}@postgres:5432/govmedia?options=-c%20search_path%3Dgovmedia_audit"
        )
    );
    assert!(read("audit-database-owner-url").starts_with("postgres://govmedia_audit_owner:"));
    assert!(read("identity-sealing-keys").starts_with("k1:"));
    assert_ne!(read("govmedia-content"), read("govmedia-interaction"), "every secret is its own");
    let sealing = read("identity-sealing-keys");
    let second = operator.json(&["secrets", "--dir", dir.to_str().expect("utf-8")]);
    assert_eq!((second["made"].as_str(), second["kept"].as_str()), (Some("0"), Some("24")), "{second}");
    assert_eq!(read("identity-sealing-keys"), sealing, "a kept secret is never replaced");
}
