//! The operators' command line as a real process against `govmedia up`: login through the
//! gateway (the first password must be changed), change-password, whoami in both forms,
//! the session file owner-only, a clear message for a wrong password, logout.

mod common;

use common::{FIRST, Person};

const SECOND: &str = "Quiet#Forest2027!";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_signs_in_changes_the_password_and_sees_who_they_are() {
    let data = tempfile::tempdir().expect("data");
    let config = tempfile::tempdir().expect("config");
    let running = common::start(data.path(), None).await;
    let admin = Person::new(config.path(), "govmedia", &running.gateway);
    let config = admin.config.clone();

    let cli = |args: &'static [&'static str], stdin: String| {
        let admin = admin.clone();
        tokio::task::spawn_blocking(move || admin.run(args, &stdin))
    };
    let wrong = cli(&["login", "--username", "admin", "--password-stdin"], "not-it\n".into()).await.expect("ran");
    assert!(!wrong.status.success());
    assert!(
        String::from_utf8_lossy(&wrong.stderr).contains("Unauthenticated"),
        "{}",
        String::from_utf8_lossy(&wrong.stderr)
    );

    let login = cli(&["login", "--username", "admin", "--password-stdin"], format!("{FIRST}\n")).await.expect("ran");
    assert!(login.status.success(), "{}", String::from_utf8_lossy(&login.stderr));
    assert!(String::from_utf8_lossy(&login.stderr).contains("must be changed"));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(config.join("session.json")).expect("session kept").permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");

    let weak = cli(&["change-password", "--password-stdin"], format!("{FIRST}\nshort\n")).await.expect("ran");
    assert!(!weak.status.success());
    let changed = cli(&["change-password", "--password-stdin"], format!("{FIRST}\n{SECOND}\n")).await.expect("ran");
    assert!(changed.status.success(), "{}", String::from_utf8_lossy(&changed.stderr));

    let me = cli(&["whoami", "--json"], String::new()).await.expect("ran");
    assert!(me.status.success(), "{}", String::from_utf8_lossy(&me.stderr));
    let json: serde_json::Value = serde_json::from_slice(&me.stdout).expect("json");
    assert_eq!(json["username"], "admin");
    assert_eq!(json["password_change_required"], false);
    assert!(json["role_bindings"].as_array().expect("roles").iter().any(|b| b["role"] == "administrator"), "{json}");
    let table = cli(&["whoami"], String::new()).await.expect("ran");
    assert!(String::from_utf8_lossy(&table.stdout).contains("administrator"));

    let out = cli(&["logout"], String::new()).await.expect("ran");
    assert!(out.status.success());
    let after = cli(&["whoami"], String::new()).await.expect("ran");
    assert!(!after.status.success());
    assert!(String::from_utf8_lossy(&after.stderr).contains("govmedia login"));

    running.stop().await;
}

/// Issue 18 (low): two commands finding the access token expired both renewed it with
/// the same refresh token; the second use was taken for theft and ended the session.
/// Renewals now take turns under a lock, and the later one uses the renewed pair.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_renewing_one_session_at_once_keep_it_open() {
    let data = tempfile::tempdir().expect("data");
    let config = tempfile::tempdir().expect("config");
    let running = common::start(data.path(), None).await;
    let admin = Person::new(config.path(), "govmedia", &running.gateway);
    admin.first_sign_in("admin", FIRST, SECOND);

    // The access token "expires": every command must renew with the one refresh token.
    let path = admin.config.join("session.json");
    let mut session: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("session")).expect("json");
    session["access_token"] = "expired".into();
    std::fs::write(&path, session.to_string()).expect("written");

    let runs: Vec<_> = (0..4)
        .map(|_| {
            let admin = admin.clone();
            tokio::task::spawn_blocking(move || admin.run(&["whoami", "--json"], ""))
        })
        .collect();
    for run in runs {
        let out = run.await.expect("ran");
        assert!(out.status.success(), "a concurrent renewal failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let after = admin.json(&["whoami"]);
    assert_eq!(after["username"], "admin", "the session is still open after the concurrent renewals");

    running.stop().await;
}
