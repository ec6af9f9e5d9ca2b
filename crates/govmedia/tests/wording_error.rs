//! A serious wording error, from the command line against `govmedia up` (R3.2.3, R7.2,
//! R8.1.2, R9): a notice naming the bureau's superior authority misspelt goes out through
//! the full review; later the security officer adds the misspelt name to the lexicon as
//! a critical name, and published content is screened again: the wording error reaches
//! the audit log and the account's inspection readiness shows the veto item. The officer
//! reports an incident and contains it (the publication retracted through content with
//! the officer's own rights), the office issues a rectification from the incident, the
//! editor's correction goes through the full review and out, the office verifies the
//! fix, and the incident is closed after being reported upward. The period's readiness
//! report (CSV, SVG) shows the veto. The violation detector
//! proposes the error for a person to decide. The officer also runs a security check whose
//! failed item opens a hidden danger the editor fixes and the officer verifies (R7.2.2).

mod common;

use std::path::Path;

use common::{FIRST, Person};
use govmedia_proto::audit::v1 as apb;
use govmedia_proto::common::v1 as cpb;
use govmedia_testkit::with_token;

const ADMIN: &str = "Quiet#Forest2027!";
const STAFF: &str = "River#Stones2027?";
const MISSPELT: &str = "国家锐务总局";

fn text(value: &serde_json::Value, key: &str) -> String {
    value[key].as_str().unwrap_or_else(|| panic!("no {key} in {value}")).to_owned()
}

fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..150 {
        if check() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    panic!("{what} did not happen in 30 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_misspelt_critical_name_is_found_contained_rectified_and_closed() {
    let data = tempfile::tempdir().expect("data");
    let home = tempfile::tempdir().expect("config");
    let running = common::start(data.path(), None).await;
    let root = home.path().to_path_buf();
    let gateway = running.gateway.clone();
    tokio::task::spawn_blocking(move || story(&root, &gateway)).await.expect("story");
    running.stop().await;
}

struct Office {
    department: String,
    account: String,
    ids: std::collections::HashMap<&'static str, String>,
}

fn setup(root: &Path, gateway: &str) -> Office {
    let admin = Person::new(root, "admin", gateway);
    admin.first_sign_in("admin", FIRST, ADMIN);
    let department = text(&admin.json(&["departments", "create", "--name", "办公室", "--code", "OFFICE"])[0], "id");
    let mut ids = std::collections::HashMap::new();
    for (username, role) in [
        ("editor", "editor"),
        ("reviewer", "department_reviewer"),
        ("reviewer2", "department_reviewer"),
        ("leader", "supervising_leader"),
        ("principal", "principal_leader"),
        ("publisher", "publisher"),
        ("auditor", "auditor"),
        ("officer", "security_officer"),
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
        if !matches!(role, "auditor" | "principal_leader" | "security_officer") {
            grant.extend(["--department", &department]);
        }
        admin.ok(&grant);
        Person::new(root, username, gateway).first_sign_in(username, &text(&created, "one_time_password"), STAFF);
        ids.insert(username, id);
    }
    let account = admin.json(&[
        "accounts",
        "create",
        "--platform",
        "weibo",
        "--handle",
        "office_weibo",
        "--display-name",
        "市局办公室",
        "--department",
        &department,
        "--responsible",
        &ids["editor"],
    ]);
    Office { department, account: text(&account, "id"), ids }
}

/// A draft from `body` through the full review and proofreading, scheduled now; the
/// publication's id once it is out.
fn publish(root: &Path, gateway: &str, office: &Office, title: &str, body: &str, corrects: Option<&str>) -> String {
    let person = |name: &str| Person::new(root, name, gateway);
    let file = root.join(format!("{title}.md"));
    std::fs::write(&file, format!("# {title}\n\n{body}\n")).expect("file");
    let mut create = vec![
        "drafts",
        "create",
        "--file",
        file.to_str().expect("utf-8"),
        "--department",
        &office.department,
        "--account",
        &office.account,
    ];
    if let Some(p) = corrects {
        create.extend(["--corrects", p]);
    }
    let id = text(&person("editor").json(&create), "id");
    person("editor").ok(&["drafts", "submit", &id]);
    for who in ["reviewer", "leader", "principal"] {
        person(who).ok(&["drafts", "approve", &id, "--comment", "符合要求"]);
    }
    for who in ["editor", "reviewer", "reviewer2"] {
        person(who).ok(&["drafts", "proofread", &id, "--note", "已校对"]);
    }
    let publication = text(&person("publisher").json(&["schedule", &id, "--account", &office.account]), "id");
    eventually("the publication going out", || {
        person("publisher").json(&["publications", "show", &publication])["state"] == "published"
    });
    publication
}

fn story(root: &Path, gateway: &str) {
    let office = setup(root, gateway);
    let person = |name: &str| Person::new(root, name, gateway);
    let (editor, auditor, officer, leader) = (person("editor"), person("auditor"), person("officer"), person("leader"));
    let (department, account) = (office.department.clone(), office.account.clone());

    // Out through the full review: the lexicon does not know the misspelling yet.
    let first = publish(
        root,
        gateway,
        &office,
        "关于个人所得税汇算的提示",
        &format!("根据{MISSPELT}公告，2026年度汇算自3月1日开始。"),
        None,
    );

    // The officer adds the misspelt name as a critical name (over gRPC: there is no
    // lexicon command yet) and has published content screened again at once.
    let session: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(officer.config.join("session.json")).expect("session"))
            .expect("json");
    let token = text(&session, "access_token");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let channel =
            tonic::transport::Endpoint::from_shared(gateway.to_owned()).expect("url").connect().await.expect("gw");
        apb::screening_service_client::ScreeningServiceClient::new(channel)
            .upsert_lexicon_entries(with_token(
                apb::UpsertLexiconEntriesRequest {
                    request_id: uuid::Uuid::now_v7().to_string(),
                    entries: vec![apb::LexiconEntry {
                        term: MISSPELT.into(),
                        category: cpb::ScreeningCategory::CriticalName as i32,
                        severity: cpb::ScreeningSeverity::Block as i32,
                        suggestion: "国家税务总局".into(),
                        rule_id: "R3.2.3".into(),
                        source: "2026年第四季度检查发现".into(),
                        ..Default::default()
                    }],
                },
                &token,
            ))
            .await
            .expect("lexicon entry");
    });
    let rescreened = officer.json(&["publications", "rescreen"]);
    assert_eq!(rescreened["found"], "1", "{rescreened}");
    let again = officer.json(&["publications", "rescreen"]);
    assert_eq!(again["found"], "0", "a term is recorded once: {again}");
    eventually("the wording error reaching the log", || {
        auditor
            .json(&["audit", "query", "--action", "publication.wording_error_found"])
            .as_array()
            .is_some_and(|found| found.len() == 1 && found[0]["resource"]["id"] == first.as_str())
    });

    // The account's readiness today: the veto item.
    auditor.ok(&["compliance", "assess"]);
    let readiness = leader.json(&["compliance", "show", &account]);
    assert_eq!(readiness["level"], "veto", "{readiness}");
    assert_eq!(readiness["serious_wording_errors"], "1", "{readiness}");
    assert!(text(&readiness, "items").contains("serious_wording_error"), "{readiness}");
    // The period's report, as CSV for a spreadsheet and as a chart.
    let today = (chrono::Utc::now() + chrono::Duration::hours(8)).date_naive().to_string();
    let (csv, chart) = (root.join("readiness.csv"), root.join("readiness.svg"));
    for (format, path) in [("csv", &csv), ("svg", &chart)] {
        let path = path.to_str().expect("utf-8");
        auditor.ok(&["compliance", "report", "--from", &today, "--to", &today, "--format", format, "--output", path]);
    }
    let csv = std::fs::read_to_string(&csv).expect("csv");
    assert_eq!(csv.lines().count(), 2, "{csv}");
    assert!(csv.contains(",veto,") && csv.contains("serious_wording_error"), "{csv}");
    let chart = std::fs::read_to_string(&chart).expect("svg");
    assert!(chart.starts_with("<svg") && chart.contains("office_weibo") && chart.contains("<circle"), "{chart}");

    // An incident: reported, contained by retracting through content as the officer.
    let incident = officer.json(&[
        "security",
        "incidents",
        "report",
        "--kind",
        "serious-wording-error",
        "--severity",
        "serious",
        "--title",
        "上级机关名称错误",
        "--description",
        "已发布内容将国家税务总局误写",
        "--account",
        &account,
        "--publication",
        &first,
    ]);
    let incident = text(&incident, "id");
    let contained =
        officer.json(&["security", "incidents", "contain", &incident, "--retract", "--note", "撤回原稿，准备更正"]);
    assert_eq!(contained["state"], "contained", "{contained}");
    assert!(text(&contained, "steps").contains("retracted"), "{contained}");
    assert_eq!(person("publisher").json(&["publications", "show", &first])["state"], "retracted");

    // A rectification from the incident; the correction goes through the full review.
    let order = auditor.json(&[
        "rectifications",
        "issue",
        "--source",
        "incident",
        "--source-id",
        &incident,
        "--department",
        &department,
        "--responsible",
        &office.ids["editor"],
        "--account",
        &account,
        "--title",
        "更正上级机关名称",
        "--requirement",
        "发布更正稿并说明原因",
        "--rule",
        "R3.2.3",
        "--working-days",
        "3",
    ]);
    let order = text(&order, "id");
    let correction = publish(root, gateway, &office, "更正说明", "前文中“国家税务总局”误写，特此更正。", Some(&first));
    let submitted = editor.json(&[
        "rectifications",
        "submit",
        &order,
        "--description",
        &format!("更正稿已发布（{correction}），原稿已撤回"),
    ]);
    assert_eq!(submitted["state"], "submitted", "{submitted}");
    let verified = auditor.json(&["rectifications", "verify", &order, "--note", "更正稿核实无误"]);
    assert_eq!(verified["state"], "verified", "{verified}");

    // The incident closes only after it is reported upward.
    officer.ok(&["security", "incidents", "investigate", &incident, "--findings", "词库未收录该误写；三审未发现"]);
    let early = officer.run(&["security", "incidents", "close", &incident, "--root-cause", "x", "--action", "y"], "");
    assert!(!early.status.success(), "a serious incident is reported upward first");
    assert!(String::from_utf8_lossy(&early.stderr).contains("R7.2.2"), "{}", String::from_utf8_lossy(&early.stderr));
    officer.ok(&["security", "incidents", "report-upward", &incident, "--to", "局领导", "--note", "专报第12期"]);
    let closed = officer.json(&[
        "security",
        "incidents",
        "close",
        &incident,
        "--root-cause",
        "关键名称误写未入词库",
        "--action",
        "名称误写入词库",
        "--action",
        "校对要点增加上级机关名称",
    ]);
    assert_eq!(closed["state"], "closed", "{closed}");

    // The detector proposes the error as a violation for a person to decide.
    let detected = auditor.json(&["violations", "detect"]);
    assert_ne!(detected["proposed"], "0", "{detected}");
    let proposed = auditor.json(&["violations", "list", "--state", "proposed"]);
    assert!(
        proposed.as_array().is_some_and(|v| v.iter().any(|v| v.to_string().contains("serious_wording_error"))),
        "{proposed}"
    );

    // A security check of the account: a failed item opens a hidden danger the editor
    // fixes and the officer verifies (R7.2.2).
    let checklist = officer.json(&[
        "security",
        "checklists",
        "create",
        "--name",
        "账号安全检查",
        "--item",
        "ACC-2FA=已开启平台两步验证",
        "--item",
        "ACC-DEVICES=仅办公设备登录",
    ]);
    let check =
        officer.json(&["security", "checks", "start", "--checklist", &text(&checklist, "id"), "--account", &account]);
    let check = text(&check, "id");
    officer.ok(&["security", "checks", "record", &check, "ACC-2FA", "--result", "pass", "--evidence", "设置页截图"]);
    officer.ok(&[
        "security",
        "checks",
        "record",
        &check,
        "ACC-DEVICES",
        "--result",
        "fail",
        "--evidence",
        "登录设备列表有一台未知手机",
        "--danger",
        "未知设备保持登录",
        "--owner",
        &office.ids["editor"],
        "--severity",
        "major",
        "--working-days",
        "2",
    ]);
    let completed = officer.json(&["security", "checks", "complete", &check, "--conclusion", "发现一项重大隐患"]);
    assert_eq!(completed["failed"], "1", "{completed}");
    let findings = editor.json(&["security", "findings", "list", "--department", &department]);
    let danger = text(&findings[0], "id");
    editor.ok(&["security", "findings", "submit-fix", &danger, "--evidence", "已下线该设备并修改密码"]);
    let own = editor.run(&["security", "findings", "verify", &danger, "--accept"], "");
    assert!(!own.status.success(), "the owner does not verify their own fix");
    let closed = officer.json(&["security", "findings", "verify", &danger, "--accept", "--note", "设备列表已核实"]);
    assert_eq!(closed["state"], "closed", "{closed}");
}
