//! Audit completeness (R1.3.5, R9.2): no audit record is lost or doubled while the audit
//! service keeps dying.
//!
//! The compose deployment runs as processes on PostgreSQL (`deployment`). An office is set
//! up through the gateway with the command line — a department, an editor, a platform
//! account, a platform integration — and then audited changes are made through the
//! gateway from several callers at once, across the three producing services: identity
//! creates departments, content creates drafts, interaction ingests comments. Meanwhile
//! the audit service is killed (SIGKILL: nothing flushed, no goodbye) and started again
//! every second or few, down about half the time. A change whose answer is an error is
//! tried again with the same request id (as a client should), so a change that committed
//! but whose answer was lost is not made twice.
//!
//! At the end the audit service stays up, the outboxes drain, and every acknowledged
//! change is looked for in the audit log: it must be there exactly once, nothing else of
//! the run may be there, and the chain must verify from the first event.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use govmedia_proto::content::v1 as cpb;
use govmedia_proto::identity::v1 as ipb;
use govmedia_proto::interaction::v1 as xpb;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::Mutex;
use tonic::transport::Channel;

use crate::ScenarioError;
use crate::deployment::{COMPONENTS, Deployment};
use crate::office::{
    ADMIN_PASSWORD, Cli, DEBUG_LOGS, STAFF_PASSWORD, authorized, gateway, register_integration, retryable,
};
use crate::report::Report;

/// How big a run is.
#[derive(Debug, Clone)]
pub struct Options {
    /// Audited changes to make.
    pub changes: u32,
    /// Callers making them at once.
    pub callers: u32,
    /// The audit service is up for a random time up to this, then killed.
    pub up_at_most: Duration,
    /// And down for a random time up to this, then started again.
    pub down_at_most: Duration,
    /// The random seed of the kill schedule.
    pub seed: u64,
}

impl Default for Options {
    /// The full run: 10,000 changes, audit up and down for up to 3 s each.
    fn default() -> Self {
        Self {
            changes: 10_000,
            callers: 8,
            up_at_most: Duration::from_secs(3),
            down_at_most: Duration::from_secs(3),
            seed: rand::random(),
        }
    }
}

/// The three kinds of audited change, in turn.
pub(crate) const KINDS: [(&str, &str); 3] = [
    ("identity: create a department", "department.created"),
    ("content: create a draft", "draft.created"),
    ("interaction: ingest a comment", "comment.ingested"),
];

/// What the callers need: tokens and the office's ids.
pub(crate) struct Office {
    /// Every password, one-time password, secret and token the setup used.
    pub(crate) secrets: Vec<String>,
    pub(crate) gateway: Channel,
    pub(crate) admin: String,
    pub(crate) editor: String,
    pub(crate) integration: String,
    pub(crate) department: String,
    pub(crate) account: String,
}

/// Runs the scenario with `govmedia` (the binary) on the PostgreSQL database at
/// `database_url`, in `work`.
pub async fn run(govmedia: &Path, database_url: &str, work: &Path, options: &Options) -> Result<Report, ScenarioError> {
    let mut deployment = Deployment::prepare(govmedia, database_url, work, "").await?;
    // Logs as talkative as an operator chasing a fault would make them: the secrets scan
    // at the end reads them.
    deployment.set_everywhere("GOVMEDIA_LOG", DEBUG_LOGS);
    for name in COMPONENTS {
        deployment.start(name, Duration::from_secs(60)).await?;
    }
    let office = set_up(govmedia, &deployment, work).await?;
    let deployment = Arc::new(Mutex::new(deployment));

    // The audit service dies and comes back while the callers work.
    let done = Arc::new(AtomicBool::new(false));
    let chaos = tokio::spawn(kill_and_restart(Arc::clone(&deployment), Arc::clone(&done), options.clone()));

    let started = Instant::now();
    let office = Arc::new(office);
    let (acknowledged, retries) =
        load(Arc::clone(&office), options.callers, options.changes, Arc::new(AtomicBool::new(true))).await?;
    let working = started.elapsed();
    done.store(true, Ordering::Relaxed);
    let (kills, down, chaos_ran) = chaos.await.map_err(|e| ScenarioError::setup("the kill schedule", e))??;

    // The audit service stays up now: everything waiting must arrive.
    let drained_in = drain(database_url, Duration::from_secs(120)).await?;
    let mut report = Report::new(
        "audit-completeness",
        format!(
            "cargo run --release -p govmedia-faults -- audit-completeness --changes {} --callers {} --up-at-most {}ms --down-at-most {}ms --seed {}",
            options.changes,
            options.callers,
            options.up_at_most.as_millis(),
            options.down_at_most.as_millis(),
            options.seed
        ),
    );
    let count = acknowledged.len();
    report.note(
        "changes acknowledged",
        format!("{count} in {working:.1?} ({retries} tries answered with an error first)"),
    );
    for (i, (kind, _)) in KINDS.iter().enumerate() {
        report.note(&format!("  {kind}"), acknowledged.iter().filter(|(k, _)| *k == i).count());
    }
    report.note(
        "audit service killed (SIGKILL) and restarted",
        format!(
            "{kills} times, down {:.0} % of the time (until healthy again after each start)",
            100.0 * down.as_secs_f64() / chaos_ran.as_secs_f64().max(0.001)
        ),
    );
    report.note("outboxes drained after the last restart in", format!("{drained_in:.1?}"));

    let recorded = recorded(database_url, &acknowledged).await?;
    let missing: Vec<&(usize, String)> =
        acknowledged.iter().filter(|c| recorded.get(&c.1).copied() == Some(0)).collect();
    let doubled: Vec<&(usize, String)> =
        acknowledged.iter().filter(|c| recorded.get(&c.1).copied() > Some(1)).collect();
    let delivered: u64 = recorded.values().sum();
    report.require(
        "audit records of the acknowledged changes",
        delivered,
        &format!("{count}"),
        delivered == count as u64,
    );
    report.require("changes without their record", missing.len(), "0", missing.is_empty());
    report.require("changes recorded more than once", doubled.len(), "0", doubled.is_empty());
    for (kind, resource) in missing.iter().chain(doubled.iter()).take(10) {
        report.failures.push(format!(
            "{} {resource}: {} records",
            KINDS[*kind].1,
            recorded.get(resource).copied().unwrap_or(0)
        ));
    }
    // Nothing the run used was written to any log, at debug level, kills included.
    let deployment_now = deployment.lock().await;
    let mut used = office.secrets.clone();
    used.push(deployment_now.first_password()?);
    used.extend(crate::secrets::in_files(&deployment_now.secrets()));
    used.extend(crate::secrets::in_files(&work.join("people")));
    let (finds, lines) = crate::secrets::in_logs(&deployment_now, &used, &deployment_now.first_password()?);
    drop(deployment_now);
    report.require(
        "secrets found in the logs",
        format!("{} (of {} looked for, over {lines} lines at debug level)", finds.len(), used.len()),
        "0",
        finds.is_empty(),
    );
    report.failures.extend(finds.into_iter().take(10));
    let chain = verify_chain(&*deployment.lock().await, database_url).await?;
    let intact = chain == "intact";
    report.require("the chain verifies from the first event", chain, "intact", intact);
    let mut deployment = Arc::try_unwrap(deployment)
        .map_err(|_| ScenarioError::Setup("the deployment is still shared".into()))?
        .into_inner();
    deployment.remove(database_url).await?;
    Ok(report)
}

/// The office, set up through the gateway as its administrator would.
pub(crate) async fn set_up(govmedia: &Path, deployment: &Deployment, work: &Path) -> Result<Office, ScenarioError> {
    let admin = Cli::administrator(govmedia, deployment, work)?;
    let department = admin.json(&["departments", "create", "--name", "故障演练处", "--code", "FAULT"])?[0]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let (editor_id, editor, one_time) = admin.add_person("editor", "编辑", &department, &["editor"])?;
    let account = admin.create_account("fault_weibo", "故障演练", &department, &editor_id)?;

    let gateway = gateway(deployment).await?;
    let admin_token = admin.access_token()?;
    let (principal_id, client_secret) = register_integration(&gateway, &admin_token, "fault-connector").await?;
    let client_secret_kept = client_secret.clone();
    admin.grant(&principal_id, "platform_integration", None)?;
    let integration = ipb::authentication_service_client::AuthenticationServiceClient::new(gateway.clone())
        .exchange_client_credentials(ipb::ExchangeClientCredentialsRequest {
            client_id: "fault-connector".into(),
            client_secret: client_secret.clone(),
        })
        .await
        .map_err(|e| ScenarioError::setup("the integration's token", e))?
        .into_inner()
        .tokens
        .map(|t| t.access_token)
        .unwrap_or_default();
    let editor_token = editor.access_token()?;
    let secrets = vec![
        ADMIN_PASSWORD.to_owned(),
        STAFF_PASSWORD.to_owned(),
        one_time,
        client_secret_kept,
        admin_token.clone(),
        editor_token.clone(),
        integration.clone(),
    ];
    Ok(Office { secrets, gateway, admin: admin_token, editor: editor_token, integration, department, account })
}

/// Makes changes from `callers` callers at once: at least `total`, and on until
/// `enough` is set. Every acknowledged change (its kind, its resource) and how many tries
/// were answered with an error first.
pub(crate) async fn load(
    office: Arc<Office>,
    callers: u32,
    total: u32,
    enough: Arc<AtomicBool>,
) -> Result<(Vec<(usize, String)>, u64), ScenarioError> {
    let next = Arc::new(AtomicU32::new(0));
    let mut tasks = Vec::new();
    for _ in 0..callers.max(1) {
        let (next, office, enough) = (Arc::clone(&next), Arc::clone(&office), Arc::clone(&enough));
        tasks.push(tokio::spawn(async move {
            let mut made: Vec<(usize, String)> = Vec::new();
            let mut retries = 0_u64;
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= total && enough.load(Ordering::Relaxed) {
                    return Ok::<_, ScenarioError>((made, retries));
                }
                let (resource, tried) = make_change(&office, n).await?;
                retries += tried;
                made.push((n as usize % KINDS.len(), resource));
            }
        }));
    }
    let mut acknowledged = Vec::new();
    let mut retries = 0;
    for task in tasks {
        let (made, tried) = task.await.map_err(|e| ScenarioError::setup("a caller", e))??;
        acknowledged.extend(made);
        retries += tried;
    }
    Ok((acknowledged, retries))
}

/// Makes change `n` (its kind by `n`), trying again after an error, with the same
/// request id, until it is acknowledged: the resource it made, and how many tries failed.
pub(crate) async fn make_change(office: &Office, n: u32) -> Result<(String, u64), ScenarioError> {
    let request_id = crate::office::request_id();
    let mut failed = 0_u64;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let answer = match n as usize % KINDS.len() {
            0 => ipb::directory_service_client::DirectoryServiceClient::new(office.gateway.clone())
                .create_department(authorized(
                    ipb::CreateDepartmentRequest {
                        request_id: request_id.clone(),
                        department: Some(ipb::Department {
                            name: format!("演练科{n}"),
                            code: format!("F{n}"),
                            ..Default::default()
                        }),
                    },
                    &office.admin,
                ))
                .await
                .map(|r| r.into_inner().department.map(|d| d.id).unwrap_or_default()),
            1 => cpb::draft_service_client::DraftServiceClient::new(office.gateway.clone())
                .create_draft(authorized(
                    cpb::CreateDraftRequest {
                        request_id: request_id.clone(),
                        department_id: office.department.clone(),
                        target_platform_account_ids: vec![office.account.clone()],
                        content: Some(cpb::DraftContent {
                            title: format!("防汛工作提示（第{n}期）"),
                            body: "请市民关注天气预报，雨天减少外出，注意出行安全。".into(),
                            ..Default::default()
                        }),
                        ..Default::default()
                    },
                    &office.editor,
                ))
                .await
                .map(|r| r.into_inner().draft.map(|d| d.id).unwrap_or_default()),
            _ => xpb::comment_service_client::CommentServiceClient::new(office.gateway.clone())
                .ingest_comments(authorized(
                    xpb::IngestCommentsRequest {
                        platform_account_id: office.account.clone(),
                        comments: vec![xpb::IncomingComment {
                            platform_comment_id: format!("fault-{n}"),
                            platform_post_id: "post-1".into(),
                            author_platform_id: format!("fan-{}", n % 50),
                            author_name: "市民".into(),
                            text: format!("请问第{n}号公告什么时候更新？"),
                            ..Default::default()
                        }],
                    },
                    &office.integration,
                ))
                .await
                .map(|r| r.into_inner().results.first().map(|c| c.comment_id.clone()).unwrap_or_default()),
        };
        match answer {
            Ok(resource) if !resource.is_empty() => return Ok((resource, failed)),
            Ok(_) => return Err(ScenarioError::Setup(format!("change {n} was answered without its resource"))),
            Err(status) if retryable(status.code()) && Instant::now() < deadline => {
                failed += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(status) => return Err(ScenarioError::Setup(format!("change {n} was refused: {status:?}"))),
        }
    }
}

/// Kills the audit service and starts it again until `done`: how often, how long it was
/// down in all, and how long the schedule ran.
async fn kill_and_restart(
    deployment: Arc<Mutex<Deployment>>,
    done: Arc<AtomicBool>,
    options: Options,
) -> Result<(u32, Duration, Duration), ScenarioError> {
    let began = Instant::now();
    let mut rng = StdRng::seed_from_u64(options.seed);
    let (mut kills, mut down) = (0_u32, Duration::ZERO);
    let pause = |rng: &mut StdRng, most: Duration| {
        Duration::from_millis(rng.random_range(200..=u64::try_from(most.as_millis()).unwrap_or(1000).max(201)))
    };
    while !done.load(Ordering::Relaxed) {
        tokio::time::sleep(pause(&mut rng, options.up_at_most)).await;
        if done.load(Ordering::Relaxed) {
            break;
        }
        let went = Instant::now();
        deployment.lock().await.kill("audit");
        kills += 1;
        tokio::time::sleep(pause(&mut rng, options.down_at_most)).await;
        deployment.lock().await.start("audit", Duration::from_secs(60)).await?;
        down += went.elapsed();
    }
    Ok((kills, down, began.elapsed()))
}

/// Waits until no producing service's outbox holds a record: how long that took.
pub(crate) async fn drain(database_url: &str, patience: Duration) -> Result<Duration, ScenarioError> {
    let admin = sqlx::PgPool::connect(database_url).await.map_err(|e| ScenarioError::setup("connecting", e))?;
    let started = Instant::now();
    loop {
        let mut waiting = 0_i64;
        for service in ["identity", "content", "interaction"] {
            let n: i64 = sqlx::query_scalar(&format!(
                "SELECT (SELECT count(*) FROM govmedia_{service}.govmedia_outbox) + (SELECT count(*) FROM govmedia_{service}.govmedia_outbox_dead_letters)"
            ))
            .fetch_one(&admin)
            .await
            .map_err(|e| ScenarioError::setup("reading the outboxes", e))?;
            waiting += n;
        }
        if waiting == 0 {
            admin.close().await;
            return Ok(started.elapsed());
        }
        if started.elapsed() > patience {
            return Err(ScenarioError::Setup(format!("{waiting} records still wait after {patience:?}")));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// How many audit events each acknowledged change's resource has, under its action.
pub(crate) async fn recorded(
    database_url: &str,
    acknowledged: &[(usize, String)],
) -> Result<BTreeMap<String, u64>, ScenarioError> {
    let admin = sqlx::PgPool::connect(database_url).await.map_err(|e| ScenarioError::setup("connecting", e))?;
    let actions: Vec<&str> = KINDS.iter().map(|(_, action)| *action).collect();
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT resource_id, count(*) FROM govmedia_audit.audit_events WHERE action = ANY($1) GROUP BY resource_id",
    )
    .bind(&actions)
    .fetch_all(&admin)
    .await
    .map_err(|e| ScenarioError::setup("reading the audit log", e))?;
    admin.close().await;
    let found: BTreeMap<String, i64> = rows.into_iter().collect();
    Ok(acknowledged
        .iter()
        .map(|(_, resource)| (resource.clone(), found.get(resource).copied().unwrap_or(0).unsigned_abs()))
        .collect())
}

/// Verifies the whole chain with the deployment's checkpoint key: `intact`, or the break.
async fn verify_chain(deployment: &Deployment, database_url: &str) -> Result<String, ScenarioError> {
    let key_text = std::fs::read_to_string(deployment.secrets().join("audit-checkpoint-key"))
        .map_err(|e| ScenarioError::setup("reading the checkpoint key", e))?;
    let key = govmedia_audit::parse_checkpoint_key(key_text.trim()).map_err(ScenarioError::Setup)?;
    let mut url = url::Url::parse(database_url).map_err(|e| ScenarioError::setup("the database URL", e))?;
    url.query_pairs_mut().append_pair("options", "-c search_path=govmedia_audit");
    let url: govmedia_kit::config::DatabaseUrl =
        url.as_str().parse().map_err(|e| ScenarioError::setup("the audit schema's URL", e))?;
    let db = govmedia_kit::db::Database::connect(&url, 2).await.map_err(|e| ScenarioError::setup("connecting", e))?;
    let verified = govmedia_audit::verification::verify(&db, 1, 0, &key.verifying_key().to_bytes(), None)
        .await
        .map_err(|e| ScenarioError::setup("verifying", e))?;
    db.close().await;
    Ok(match verified.broken {
        None => "intact".to_owned(),
        Some((at, kind, detail)) => format!("broken at {at} ({kind:?}): {detail}"),
    })
}
