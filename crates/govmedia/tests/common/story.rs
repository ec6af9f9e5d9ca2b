//! The bureau office's daily work, told through the gateway by people at the command
//! line, each with their own session: the administrator sets up a department, staff, roles
//! and an account; an editor creates a draft from a file and submits it; reviewers find
//! it in their queues and approve it; an author approving their own draft is refused with
//! the rule; three people proofread; a publisher schedules it; a moderator answers a
//! comment from the queue; the auditor queries, verifies and exports the log. Told
//! against `govmedia up` and against the services as separate processes.

use std::path::Path;

use super::Person;
use govmedia_proto::identity::v1 as ipb;
use govmedia_testkit::with_token;

const ADMIN: &str = "Quiet#Forest2027!";
const STAFF: &str = "River#Stones2027?";

fn text(value: &serde_json::Value, key: &str) -> String {
    value[key].as_str().unwrap_or_else(|| panic!("no {key} in {value}")).to_owned()
}

/// The whole story against the gateway at `gateway`; the administrator `admin` signs in
/// first with `first_password`. `root_dir` holds everyone's sessions. Answers the
/// secrets the story used (passwords, one-time passwords, the integration's secret and
/// token; the sessions' tokens are in `root_dir`), for a scan of what the run wrote.
pub async fn the_office_story(root_dir: &Path, gateway: &str, first_password: &str) -> Vec<String> {
    let gateway = gateway.to_owned();
    let root = root_dir.to_path_buf();
    let gw = gateway.clone();
    let first = first_password.to_owned();
    let (integration_secret, one_time_passwords) =
        tokio::task::spawn_blocking(move || office_setup(&root, &gw, &first)).await.expect("setup");
    let mut used = vec![ADMIN.to_owned(), STAFF.to_owned(), first_password.to_owned()];
    used.extend(one_time_passwords);
    used.push(integration_secret.1.clone());

    // A comment arrives from the platform integration, through the gateway.
    let channel = tonic::transport::Endpoint::from_shared(gateway.clone()).expect("url").connect().await.expect("gw");
    let (account, integration) = integration_secret;
    let token =
        govmedia_proto::identity::v1::authentication_service_client::AuthenticationServiceClient::new(channel.clone())
            .exchange_client_credentials(ipb::ExchangeClientCredentialsRequest {
                client_id: "weibo-connector".into(),
                client_secret: integration,
            })
            .await
            .expect("integration token")
            .into_inner()
            .tokens
            .expect("tokens")
            .access_token;
    used.push(token.clone());
    govmedia_proto::interaction::v1::comment_service_client::CommentServiceClient::new(channel)
        .ingest_comments(with_token(
            govmedia_proto::interaction::v1::IngestCommentsRequest {
                platform_account_id: account,
                comments: vec![govmedia_proto::interaction::v1::IncomingComment {
                    platform_comment_id: "c-1".into(),
                    platform_post_id: "post-1".into(),
                    author_platform_id: "fan-1".into(),
                    author_name: "市民".into(),
                    text: "请问新版社保卡在哪里领取？".into(),
                    ..Default::default()
                }],
            },
            &token,
        ))
        .await
        .expect("comment");

    let root = root_dir.to_path_buf();
    let gw = gateway.clone();
    tokio::task::spawn_blocking(move || daily_work(&root, &gw)).await.expect("daily work");
    used
}

/// The administrator's part; answers the account id and the integration's secret, and the
/// one-time passwords staff were given.
fn office_setup(root: &Path, gateway: &str, first_password: &str) -> ((String, String), Vec<String>) {
    let admin = Person::new(root, "admin", gateway);
    admin.first_sign_in("admin", first_password, ADMIN);
    let department = text(&admin.json(&["departments", "create", "--name", "宣传处", "--code", "PUB"])[0], "id");
    let mut ids = std::collections::HashMap::new();
    let mut one_time_passwords = Vec::new();
    for (username, role) in [
        ("editor", "editor"),
        ("reviewer", "department_reviewer"),
        ("reviewer2", "department_reviewer"),
        ("leader", "supervising_leader"),
        ("principal", "principal_leader"),
        ("publisher", "publisher"),
        ("moderator", "moderator"),
        ("auditor", "auditor"),
    ] {
        let created = admin.json(&[
            "users",
            "create",
            "--username",
            username,
            "--display-name",
            username,
            "--department",
            &department,
        ]);
        let id = text(&created, "id");
        let mut grant = vec!["roles", "grant", "--principal", &id, "--role", role, "--reason", "staffing"];
        if role != "auditor" && role != "principal_leader" {
            grant.extend(["--department", &department]);
        }
        let bound = admin.json(&grant);
        assert_eq!(bound[0]["role"], role, "{bound}");
        let one_time = text(&created, "one_time_password");
        Person::new(root, username, gateway).first_sign_in(username, &one_time, STAFF);
        one_time_passwords.push(one_time);
        ids.insert(username, id);
    }
    let account = admin.json(&[
        "accounts",
        "create",
        "--platform",
        "weibo",
        "--handle",
        "bureau_weibo",
        "--display-name",
        "市局发布",
        "--department",
        &department,
        "--responsible",
        &ids["editor"],
    ]);
    let account = text(&account, "id");
    let listed = admin.ok(&["accounts", "list"]);
    assert!(listed.contains("bureau_weibo") && listed.contains("weibo"), "{listed}");
    let bindings = admin.json(&["roles", "list", "--principal", &ids["leader"]]);
    assert_eq!(bindings.as_array().map(Vec::len), Some(1), "{bindings}");
    let catalogue = admin.ok(&["roles", "catalogue"]);
    assert!(catalogue.contains("principal_leader"), "{catalogue}");

    // The platform integration is a service principal; there is no command for it yet, so
    // the test registers it over gRPC like another government system would.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let session: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(admin.config.join("session.json")).expect("session"))
            .expect("json");
    let admin_token = text(&session, "access_token");
    let secret = runtime.block_on(async {
        let channel =
            tonic::transport::Endpoint::from_shared(gateway.to_owned()).expect("url").connect().await.expect("gw");
        govmedia_faults::office::register_integration(&channel, &admin_token, "weibo-connector")
            .await
            .expect("service principal")
    });
    admin.ok(&["roles", "grant", "--principal", &secret.0, "--role", "platform_integration", "--reason", "comments"]);
    std::fs::write(root.join("department"), &department).expect("kept");
    ((account, secret.1), one_time_passwords)
}

/// Everyone else's part.
fn daily_work(root: &Path, gateway: &str) {
    let person = |name: &str| Person::new(root, name, gateway);
    let department = std::fs::read_to_string(root.join("department")).expect("department");
    let (editor, reviewer, reviewer2, leader, principal, publisher, moderator, auditor) = (
        person("editor"),
        person("reviewer"),
        person("reviewer2"),
        person("leader"),
        person("principal"),
        person("publisher"),
        person("moderator"),
        person("auditor"),
    );
    let account = text(&person("admin").json(&["accounts", "list"])[0], "id");

    // A draft from a file: the first line is the title.
    let file = root.join("notice.md");
    std::fs::write(&file, "# 汛期安全提示\n\n主汛期已至，请市民关注预警信息，减少不必要的外出。\n").expect("file");
    let draft = editor.json(&[
        "drafts",
        "create",
        "--file",
        file.to_str().expect("utf-8"),
        "--department",
        &department,
        "--account",
        &account,
    ]);
    assert_eq!(draft["title"], "汛期安全提示", "{draft}");
    let id = text(&draft, "id");
    let submitted = editor.json(&["drafts", "submit", &id]);
    assert_eq!(submitted["state"], "in_review", "{submitted}");

    // The author may not review their own draft: refused, and the rule is shown.
    let own = editor.run(&["drafts", "approve", &id, "--comment", "好"], "");
    assert!(!own.status.success());
    let said = String::from_utf8_lossy(&own.stderr);
    assert!(said.contains("PermissionDenied") || said.contains("rule R"), "{said}");

    for (who, stage) in [(&reviewer, "department"), (&leader, "supervising_leader"), (&principal, "principal_leader")] {
        let queue = who.json(&["drafts", "queue"]);
        assert!(
            queue.as_array().expect("rows").iter().any(|d| d["id"] == id.as_str() && d["stage"] == stage),
            "{stage}: {queue}"
        );
        who.ok(&["drafts", "approve", &id, "--comment", "符合要求"]);
    }
    let shown = editor.json(&["drafts", "show", &id]);
    assert_eq!(shown["state"], "approved", "{shown}");
    for who in [&editor, &reviewer, &reviewer2] {
        who.ok(&["drafts", "proofread", &id, "--note", "已校对"]);
    }
    let scheduled = publisher.json(&["schedule", &id, "--account", &account]);
    assert_eq!(scheduled["state"], "scheduled", "{scheduled}");
    // Without --account, someone whose roles are scoped sees the accounts they reach.
    for args in [&["publications", "list"][..], &["publications", "list", "--account", &account][..]] {
        let publications = publisher.ok(args);
        assert!(publications.contains(&text(&scheduled, "id")), "{args:?}: {publications}");
    }

    // The comments queue, and an answer.
    let queue = moderator.json(&["comments", "queue"]);
    assert_eq!(queue, moderator.json(&["comments", "queue", "--account", &account]));
    let comment = text(&queue[0], "id");
    let reply = moderator.json(&["comments", "reply", &comment, "--text", "您好，可在各区政务服务中心领取。"]);
    assert_eq!(reply["comment_id"], comment.as_str(), "{reply}");

    // The auditor: the approvals in the log (relayed in the background), the chain
    // intact, an export of every event.
    let mut approvals = serde_json::Value::Null;
    for _ in 0..100 {
        approvals = auditor.json(&["audit", "query", "--action", "draft.approved"]);
        if approvals.as_array().map(Vec::len) == Some(3) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert_eq!(approvals.as_array().map(Vec::len), Some(3), "{approvals}");
    assert!(approvals.as_array().expect("rows").iter().all(|e| e["resource"]["id"] == id.as_str()));
    let export = root.join("audit.jsonl");
    let summary = auditor.json(&["audit", "export", "--output", export.to_str().expect("utf-8")]);
    let lines = std::fs::read_to_string(&export).expect("export");
    assert_eq!(lines.lines().count().to_string(), text(&summary, "exported_events"));
    // The log only grows: a verification after the export covers at least what it holds.
    let verified = auditor.json(&["audit", "verify"]);
    assert_eq!(verified["intact"], "true", "{verified}");
    // In chunks of three that overlap by one, every event is counted once.
    let chunked = auditor.json(&["audit", "verify", "--chunk", "3"]);
    assert_eq!(chunked["intact"], "true", "{chunked}");
    let count = |v: &serde_json::Value| text(v, "verified_events").parse::<u64>().expect("count");
    assert!(count(&chunked) >= count(&verified), "{chunked} vs {verified}");
    assert_eq!(text(&chunked, "to").parse::<u64>().expect("to"), count(&chunked), "{chunked}");
    let (one, two) = (
        auditor.json(&["audit", "verify", "--from", "2", "--to", "7", "--chunk", "2"]),
        auditor.json(&["audit", "verify", "--from", "2", "--to", "7"]),
    );
    assert_eq!((count(&one), count(&two)), (6, 6), "{one} {two}");
    assert!(text(&verified, "verified_events").parse::<usize>().expect("count") >= lines.lines().count());
    assert!(lines.lines().all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok()));
    let table = auditor.ok(&["audit", "query", "--action", "draft.submitted"]);
    assert!(table.contains("draft.submitted"), "{table}");

    // Supervision (R8.1.1, R8.1.2): the account's inspection readiness today, and a
    // rectification order fixed by the editor and closed by the office.
    let assessed = auditor.json(&["compliance", "assess"]);
    assert_eq!(assessed["accounts"], "1", "{assessed}");
    let readiness = leader.json(&["compliance", "show", &account]);
    assert_eq!(readiness["level"], "compliant", "{readiness}");
    let listed = auditor.json(&["compliance", "list", "--department", &department]);
    assert_eq!(listed[0]["platform_account_id"], account.as_str(), "{listed}");
    let responsible = text(&person("admin").json(&["accounts", "show", &account]), "responsible_user_id");
    let order = auditor.json(&[
        "rectifications",
        "issue",
        "--source",
        "inspection",
        "--department",
        &department,
        "--responsible",
        &responsible,
        "--account",
        &account,
        "--title",
        "标题用字不规范",
        "--requirement",
        "更正标题并说明整改情况",
        "--rule",
        "R3.2.3",
        "--working-days",
        "5",
    ]);
    assert_eq!(order["state"], "in_progress", "{order}");
    let order = text(&order, "id");
    let submitted = editor.json(&["rectifications", "submit", &order, "--description", "已更正并复核"]);
    assert_eq!(submitted["state"], "submitted", "{submitted}");
    let closed = auditor.json(&["rectifications", "verify", &order, "--note", "核实无误"]);
    assert_eq!(closed["state"], "verified", "{closed}");
    let orders = leader.json(&["rectifications", "list", "--department", &department]);
    assert_eq!(orders[0]["id"], order.as_str(), "{orders}");
    let types = auditor.json(&["violations", "types"]);
    assert!(types.as_array().is_some_and(|t| t.iter().any(|t| t["code"] == "unreviewed_publication")), "{types}");
    let detected = auditor.json(&["violations", "detect"]);
    assert_eq!(detected["proposed"], "0", "nothing overdue, nothing revealed: {detected}");

    // Public supervision (R8.2): the office records a call and gives it to the
    // department, which answers and closes it with the order it led to.
    let call = auditor.json(&[
        "feedback",
        "record",
        "--channel",
        "hotline",
        "--account",
        &account,
        "--subject",
        "汛期提示的发布时间",
        "--content",
        "希望提前一天发布",
        "--name",
        "王女士",
        "--contact",
        "13912345678",
    ]);
    assert_eq!(call["contact"], "139****5678", "{call}");
    let call = text(&call, "id");
    auditor.ok(&["feedback", "triage", &call, "--department", &department, "--working-days", "5"]);
    let shown = editor.json(&["feedback", "show", &call]);
    assert_eq!(shown["contact"], "13912345678", "the department answering calls back: {shown}");
    editor.ok(&["feedback", "answer", &call, "--answer", "已采纳，今后提前一天发布", "--via", "电话"]);
    let closed = editor.json(&["feedback", "close", &call, "--rectification", &order]);
    assert_eq!(closed["state"], "closed", "{closed}");

    // A spot check of the last week: the same seed draws the same sample (R8.1.1). The
    // publication reaches the log through content's outbox after the scheduler ran.
    for _ in 0..100 {
        let published = auditor.json(&["audit", "query", "--action", "publication.published"]);
        if published.as_array().is_some_and(|p| !p.is_empty()) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let today = (chrono::Utc::now() + chrono::Duration::hours(8)).date_naive();
    let week_ago = (today - chrono::Days::new(7)).to_string();
    let today = today.to_string();
    let draw = || {
        auditor.json(&[
            "inspections",
            "create",
            "--title",
            "周抽查",
            "--from",
            &week_ago,
            "--to",
            &today,
            "--seed",
            "2026",
            "--sample-size",
            "3",
        ])
    };
    let (first, second) = (draw(), draw());
    assert_eq!(first["seed"], "2026", "{first}");
    assert_eq!(first["items"], second["items"], "{first} {second}");
    assert!(first["items"].as_array().is_some_and(|i| !i.is_empty()), "the published draft is in the sample: {first}");
}
