//! Exactly-once publishing (R3.3.1, R3.2.1): two content processes share one PostgreSQL
//! database and its due publications; one of them is killed with SIGKILL in the middle
//! of the run. Every approved publication must reach the platform exactly once, and
//! nothing unapproved may reach it at all.
//!
//! The platform is a webhook receiver in this program that behaves as
//! docs/connectors.md asks of one: it checks each delivery's signature, creates a post
//! for the first delivery of an `Idempotency-Key` and answers a later delivery of the same
//! key with that same post. Each replica posts to its own path, so the receiver knows who
//! sent what. A key delivered twice is explained only if the killed replica delivered it
//! before the kill and the survivor after (the dead replica's claim ran out and was taken
//! over: the one repeat the design allows); any other repeat is a double publication.
//!
//! The office is set up through the gateway while content's scheduler sleeps (an hour's
//! poll); then content is restarted as two replicas polling fast, and the receiver
//! watches. At the end the database, the receiver and the audit log must agree: every
//! approved publication published, each with the post the receiver created for it,
//! each `publication.published` once in the audit log; the unapproved ones expired.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use bytes::Bytes;
use govmedia_kit::config::Secret;
use govmedia_proto::content::v1 as cpb;
use tonic::transport::Channel;

use crate::ScenarioError;
use crate::deployment::{COMPONENTS, Deployment};
use crate::office::{Cli, authorized, patiently, request_id};
use crate::report::Report;

/// How big a run is.
#[derive(Debug, Clone)]
pub struct Options {
    /// Approved publications due at once.
    pub publications: u32,
    /// Accounts they go to (each draft targets every account).
    pub accounts: u32,
    /// The share of the publications delivered before one replica is killed.
    pub kill_after: f64,
    /// The receiver takes up to this long to answer (a platform is not instant).
    pub receiver_latency: Duration,
    /// How long a replica's claim holds (`GOVMEDIA_CONTENT_SCHEDULER_LEASE`).
    pub lease: Duration,
}

impl Default for Options {
    /// The full run: 1,000 publications on 10 accounts, a replica killed at 30 %.
    fn default() -> Self {
        Self {
            publications: 1000,
            accounts: 10,
            kill_after: 0.3,
            receiver_latency: Duration::from_millis(20),
            lease: Duration::from_secs(10),
        }
    }
}

/// The replica killed in the middle, and the one left.
const KILLED: &str = "content";
const SURVIVOR: &str = "content-2";

/// One delivery at the receiver.
#[derive(Debug, Clone)]
struct Delivery {
    replica: String,
    at: Instant,
}

/// What the receiver saw.
#[derive(Debug, Default)]
struct Seen {
    /// Per idempotency key: its deliveries, and the post made for the first.
    keys: BTreeMap<String, (Vec<Delivery>, String)>,
    /// Deliveries whose signature did not verify (refused, not counted above).
    bad_signatures: u64,
}

struct Receiver {
    secret: Secret,
    latency_ms: u64,
    seen: Mutex<Seen>,
}

impl Receiver {
    fn deliveries(&self) -> usize {
        self.seen.lock().map(|s| s.keys.values().map(|(d, _)| d.len()).sum()).unwrap_or_default()
    }
}

/// Whether `header` signs `body` with `secret` (docs/connectors.md: `t=<secs>,v1=<hex>`).
fn signed(secret: &Secret, header: &str, body: &[u8]) -> bool {
    let timestamp = header.split(',').find_map(|p| p.strip_prefix("t=")).and_then(|t| t.parse::<i64>().ok());
    timestamp.is_some_and(|t| govmedia_content::connector::webhook::sign(secret, t, body) == header)
}

async fn hook(
    State(r): State<Arc<Receiver>>,
    UrlPath(replica): UrlPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let at = Instant::now();
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    if !signed(&r.secret, &header("govmedia-signature"), &body) {
        if let Ok(mut seen) = r.seen.lock() {
            seen.bad_signatures += 1;
        }
        return (StatusCode::UNAUTHORIZED, "bad signature".into());
    }
    let key = header("idempotency-key");
    let post = {
        let Ok(mut seen) = r.seen.lock() else { return (StatusCode::INTERNAL_SERVER_ERROR, String::new()) };
        let next = seen.keys.len() + 1;
        let (deliveries, post) = seen.keys.entry(key).or_insert_with(|| (Vec::new(), format!("post-{next}")));
        deliveries.push(Delivery { replica, at });
        post.clone()
    };
    // The post exists from here on; the answer takes a while, and a sender killed
    // meanwhile never learns of it.
    if r.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(rand::random_range(0..=r.latency_ms))).await;
    }
    (StatusCode::OK, format!(r#"{{"platform_post_id":"{post}","url":"https://weibo.example/{post}"}}"#))
}

/// Starts the receiver on loopback: it and its base address.
async fn receiver(secret: Secret, latency: Duration) -> Result<(Arc<Receiver>, String), ScenarioError> {
    let receiver = Arc::new(Receiver {
        secret,
        latency_ms: u64::try_from(latency.as_millis()).unwrap_or(0),
        seen: Mutex::new(Seen::default()),
    });
    let app = Router::new().route("/hook/{replica}", post(hook)).with_state(Arc::clone(&receiver));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| ScenarioError::setup("binding the receiver", e))?;
    let address = listener.local_addr().map_err(|e| ScenarioError::setup("binding the receiver", e))?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((receiver, format!("http://{address}/hook")))
}

/// The office's people as callers over gRPC.
struct Desk {
    gateway: Channel,
    department: String,
    accounts: Vec<String>,
    editor: String,
    editor2: String,
    reviewer: String,
    leader: String,
    principal: String,
    publisher: String,
}

/// Runs the scenario with `govmedia` (the binary) on the PostgreSQL database at
/// `database_url`, in `work`.
pub async fn run(govmedia: &Path, database_url: &str, work: &Path, options: &Options) -> Result<Report, ScenarioError> {
    let accounts = options.accounts.clamp(1, 50);
    let drafts = options.publications.max(1).div_ceil(accounts);
    let total = drafts * accounts;
    let secret = Secret::new(uuid::Uuid::new_v4().simple().to_string());
    let (receiver, hook_url) = receiver(secret.clone(), options.receiver_latency).await?;

    let mut deployment = Deployment::prepare(govmedia, database_url, work, "").await?;
    deployment.set("content", "GOVMEDIA_CONTENT_CONNECTOR", "webhook");
    deployment.set("content", "GOVMEDIA_CONTENT_WEBHOOK_SECRET", secret.expose());
    deployment.set("content", "GOVMEDIA_CONTENT_SCHEDULER_LEASE", &format!("{}ms", options.lease.as_millis()));
    // Asleep while the office is set up: everything becomes due together afterwards.
    deployment.set("content", "GOVMEDIA_CONTENT_SCHEDULER_POLL", "1h");
    deployment.set("content", "GOVMEDIA_CONTENT_WEBHOOK_URL", &format!("{hook_url}/{KILLED}"));
    for name in COMPONENTS {
        deployment.start(name, Duration::from_secs(60)).await?;
    }
    let desk = set_up(govmedia, &deployment, work, accounts).await?;
    let setting_up = Instant::now();
    let mut approved = Vec::new();
    for n in 0..drafts {
        approved.push(publishable_draft(&desk, n).await?);
    }
    let unapproved = unapproved_draft(&desk).await?;
    let set_up_in = setting_up.elapsed();
    let early = receiver.deliveries();

    // Two replicas polling fast, started together.
    deployment.stop(KILLED);
    deployment.set(KILLED, "GOVMEDIA_CONTENT_SCHEDULER_POLL", "200ms");
    deployment.add_replica(SURVIVOR, KILLED)?;
    deployment.set(SURVIVOR, "GOVMEDIA_CONTENT_WEBHOOK_URL", &format!("{hook_url}/{SURVIVOR}"));
    let started = Instant::now();
    deployment.launch(KILLED)?;
    deployment.launch(SURVIVOR)?;
    let threshold = ((f64::from(total) * options.kill_after) as usize).clamp(1, total as usize);
    let killed_at = loop {
        if receiver.deliveries() >= threshold {
            let at = Instant::now();
            deployment.kill(KILLED);
            break at;
        }
        if started.elapsed() > Duration::from_secs(300) {
            return Err(ScenarioError::Setup(format!(
                "only {} deliveries in 5 minutes:\n{}",
                receiver.deliveries(),
                deployment.log(KILLED)
            )));
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    let delivered_at_kill = receiver.deliveries();
    deployment.wait_healthy(SURVIVOR, Duration::from_secs(60)).await?;
    settle(database_url, Duration::from_secs(300)).await?;
    let (finished_in, after_kill) = (started.elapsed(), killed_at.elapsed());
    crate::audit_completeness::drain(database_url, Duration::from_secs(120)).await?;

    let mut report = Report::new(
        "exactly-once-publishing",
        format!(
            "cargo run --release -p govmedia-faults -- exactly-once-publishing --publications {} --accounts {} --kill-after {} --receiver-latency {}ms --lease {}ms",
            options.publications,
            options.accounts,
            options.kill_after,
            options.receiver_latency.as_millis(),
            options.lease.as_millis()
        ),
    );
    report.note(
        "approved publications due at once",
        format!("{total} ({drafts} drafts × {accounts} accounts, set up through the gateway in {set_up_in:.1?})"),
    );
    report.note(
        "replicas",
        format!("2 content processes on one database; {KILLED} SIGKILLed after {delivered_at_kill} deliveries"),
    );
    report.note(
        "all settled in",
        format!(
            "{finished_in:.1?} from the replicas' start ({after_kill:.1?} after the kill; claims hold {:?})",
            options.lease
        ),
    );
    report.require("delivered before the scheduler started", early, "0", early == 0);

    let rows = publications(database_url).await?;
    let posts_by_key = {
        let seen = receiver.seen.lock().map_err(|_| ScenarioError::Setup("the receiver's lock".into()))?;
        report.require("deliveries with a bad signature", seen.bad_signatures, "0", seen.bad_signatures == 0);
        seen.keys.clone()
    };
    let published: Vec<&(String, String, String, String)> =
        rows.iter().filter(|(_, draft, _, _)| approved.contains(draft)).collect();
    let published_ok = published.iter().filter(|(_, _, state, _)| state == "published").count();
    report.require(
        "approved publications published",
        format!("{published_ok} of {}", published.len()),
        &format!("{total} of {total}"),
        published_ok == total as usize && published.len() == total as usize,
    );
    // Posts: one per publication, the one the database recorded.
    let mut without_post = Vec::new();
    let mut other_post = Vec::new();
    for (id, _, _, post) in &published {
        match posts_by_key.get(&format!("{id}:publish")) {
            None => without_post.push(id.clone()),
            Some((_, made)) if made != post => other_post.push(format!("{id}: stored {post}, made {made}")),
            Some(_) => {}
        }
    }
    let posts = posts_by_key.keys().filter(|k| k.ends_with(":publish")).count();
    report.require("posts created at the receiver", posts, &format!("{total}"), posts == total as usize);
    report.require("publications that never reached it", without_post.len(), "0", without_post.is_empty());
    report.require(
        "publications whose stored post differs from the receiver's",
        other_post.len(),
        "0",
        other_post.is_empty(),
    );
    report.failures.extend(without_post.iter().take(5).map(|id| format!("{id} never reached the receiver")));
    report.failures.extend(other_post.into_iter().take(5));

    let (mut taken_over, mut doubled) = (0_usize, Vec::new());
    let mut by_replica: BTreeMap<String, usize> = BTreeMap::new();
    for (key, (deliveries, _)) in &posts_by_key {
        for d in deliveries {
            *by_replica.entry(d.replica.clone()).or_default() += 1;
        }
        if deliveries.len() < 2 {
            continue;
        }
        let first = &deliveries[0];
        let explained = first.replica == KILLED
            && first.at <= killed_at
            && deliveries[1..].iter().all(|d| d.replica == SURVIVOR && d.at > killed_at);
        if explained {
            taken_over += 1;
        } else {
            doubled.push(format!(
                "{key} delivered {} times: {}",
                deliveries.len(),
                deliveries.iter().map(|d| d.replica.as_str()).collect::<Vec<_>>().join(", ")
            ));
        }
    }
    report.note(
        "deliveries by replica",
        by_replica.iter().map(|(r, n)| format!("{r} {n}")).collect::<Vec<_>>().join(", "),
    );
    report.note(
        "taken over after the kill and delivered again",
        format!(
            "{taken_over} (the killed replica's claims in flight; answered with the first post by Idempotency-Key)"
        ),
    );
    report.require("delivered twice otherwise", doubled.len(), "0", doubled.is_empty());
    report.failures.extend(doubled.into_iter().take(5));

    let unapproved_rows: Vec<_> = rows.iter().filter(|(_, draft, _, _)| *draft == unapproved).collect();
    let reached = unapproved_rows.iter().filter(|(id, ..)| posts_by_key.contains_key(&format!("{id}:publish"))).count();
    let expired = unapproved_rows.iter().filter(|(_, _, state, _)| state == "expired").count();
    report.require(
        "unapproved publications that reached the receiver",
        format!("{reached} of {}", unapproved_rows.len()),
        "0",
        reached == 0,
    );
    report.require(
        "unapproved publications expired (R3.2.1)",
        format!("{expired} of {}", unapproved_rows.len()),
        &format!("{accounts} of {accounts}"),
        expired == accounts as usize && unapproved_rows.len() == accounts as usize,
    );

    let audited = published_events(database_url).await?;
    let once = published.iter().filter(|(id, ..)| audited.get(id.as_str()) == Some(&1)).count();
    report.require(
        "publications with exactly one publication.published audit record",
        format!("{once} of {}", published.len()),
        &format!("{total} of {total}"),
        once == total as usize,
    );
    deployment.remove(database_url).await?;
    Ok(report)
}

/// The office: a department, its accounts, an editor, a second editor (a proofreader),
/// the three review stages' people and a publisher.
async fn set_up(govmedia: &Path, deployment: &Deployment, work: &Path, accounts: u32) -> Result<Desk, ScenarioError> {
    let admin = Cli::administrator(govmedia, deployment, work)?;
    let department = admin.json(&["departments", "create", "--name", "发布演练处", "--code", "PUBLISH"])?[0]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let token = |who: (String, Cli, String)| who.1.access_token();
    let editor = admin.add_person("editor", "编辑甲", &department, &["editor"])?;
    let editor_id = editor.0.clone();
    let mut ids = Vec::new();
    for i in 0..accounts {
        ids.push(admin.create_account(
            &format!("publish_drill_{i}"),
            &format!("发布演练{i}"),
            &department,
            &editor_id,
        )?);
    }
    Ok(Desk {
        gateway: crate::office::gateway(deployment).await?,
        accounts: ids,
        editor: token(editor)?,
        editor2: token(admin.add_person("editor2", "编辑乙", &department, &["editor"])?)?,
        reviewer: token(admin.add_person("reviewer", "初审", &department, &["department_reviewer"])?)?,
        leader: token(admin.add_person("leader", "分管领导", &department, &["supervising_leader"])?)?,
        principal: {
            let principal = admin.add_person("principal", "主要领导", &department, &[])?;
            admin.grant(&principal.0, "principal_leader", None)?;
            token(principal)?
        },
        publisher: token(admin.add_person("publisher", "运营", &department, &["publisher"])?)?,
        department,
    })
}

fn drafts(desk: &Desk) -> cpb::draft_service_client::DraftServiceClient<Channel> {
    cpb::draft_service_client::DraftServiceClient::new(desk.gateway.clone())
}

/// A submitted draft `n` targeting every account: the draft.
async fn submitted_draft(desk: &Desk, n: u32) -> Result<cpb::Draft, ScenarioError> {
    let create = cpb::CreateDraftRequest {
        request_id: request_id(),
        department_id: desk.department.clone(),
        target_platform_account_ids: desk.accounts.clone(),
        content: Some(cpb::DraftContent {
            title: format!("今日发布（第{n}期）"),
            body: format!("第{n}期：市局提示市民关注天气变化，合理安排出行。"),
            ..Default::default()
        }),
        ..Default::default()
    };
    let draft = patiently("creating a draft", || {
        let (mut c, r) = (drafts(desk), authorized(create.clone(), &desk.editor));
        async move { c.create_draft(r).await }
    })
    .await?
    .draft
    .unwrap_or_default();
    let submit =
        cpb::SubmitDraftRequest { request_id: request_id(), draft_id: draft.id.clone(), etag: draft.etag.clone() };
    Ok(patiently("submitting a draft", || {
        let (mut c, r) = (drafts(desk), authorized(submit.clone(), &desk.editor));
        async move { c.submit_draft(r).await }
    })
    .await?
    .draft
    .unwrap_or_default())
}

async fn approve(desk: &Desk, draft: &cpb::Draft, stage: cpb::ReviewStage, token: &str) -> Result<(), ScenarioError> {
    let met = cpb::CriterionResult::Met as i32;
    let approval = cpb::ApproveDraftRequest {
        request_id: request_id(),
        draft_id: draft.id.clone(),
        version: draft.current_version,
        stage: stage as i32,
        criteria: Some(cpb::ReviewCriteria {
            legality: met,
            truthfulness: met,
            objectivity: met,
            accuracy: met,
            standardisation: met,
        }),
        comment: "符合要求".into(),
    };
    patiently("approving a draft", || {
        let (mut c, r) = (drafts(desk), authorized(approval.clone(), token));
        async move { c.approve_draft(r).await }
    })
    .await?;
    Ok(())
}

/// Schedules `draft` on every account, due at once.
async fn schedule_everywhere(desk: &Desk, draft: &cpb::Draft) -> Result<(), ScenarioError> {
    let publications = cpb::publication_service_client::PublicationServiceClient::new(desk.gateway.clone());
    for account in &desk.accounts {
        let schedule = cpb::SchedulePublicationRequest {
            request_id: request_id(),
            draft_id: draft.id.clone(),
            platform_account_id: account.clone(),
            scheduled_time: None,
        };
        patiently("scheduling a publication", || {
            let (mut c, r) = (publications.clone(), authorized(schedule.clone(), &desk.publisher));
            async move { c.schedule_publication(r).await }
        })
        .await?;
    }
    Ok(())
}

/// Draft `n`, approved at all three stages, proofread three times and scheduled on every
/// account: its id.
async fn publishable_draft(desk: &Desk, n: u32) -> Result<String, ScenarioError> {
    let draft = submitted_draft(desk, n).await?;
    approve(desk, &draft, cpb::ReviewStage::Department, &desk.reviewer).await?;
    approve(desk, &draft, cpb::ReviewStage::SupervisingLeader, &desk.leader).await?;
    approve(desk, &draft, cpb::ReviewStage::PrincipalLeader, &desk.principal).await?;
    for token in [&desk.editor, &desk.editor2, &desk.reviewer] {
        let sign_off = cpb::SignOffProofreadingRequest {
            request_id: request_id(),
            draft_id: draft.id.clone(),
            version: draft.current_version,
            note: String::new(),
        };
        patiently("signing off proofreading", || {
            let (mut c, r) = (drafts(desk), authorized(sign_off.clone(), token));
            async move { c.sign_off_proofreading(r).await }
        })
        .await?;
    }
    schedule_everywhere(desk, &draft).await?;
    Ok(draft.id)
}

/// A draft approved by the department only, scheduled on every account: its id. Its
/// time comes before its approval does (R3.2.1).
async fn unapproved_draft(desk: &Desk) -> Result<String, ScenarioError> {
    let draft = submitted_draft(desk, 9999).await?;
    approve(desk, &draft, cpb::ReviewStage::Department, &desk.reviewer).await?;
    schedule_everywhere(desk, &draft).await?;
    Ok(draft.id)
}

/// Waits until no publication is scheduled or being published.
async fn settle(database_url: &str, patience: Duration) -> Result<(), ScenarioError> {
    let admin = sqlx::PgPool::connect(database_url).await.map_err(|e| ScenarioError::setup("connecting", e))?;
    let started = Instant::now();
    loop {
        let open: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM govmedia_content.publications WHERE state IN ('scheduled', 'publishing')",
        )
        .fetch_one(&admin)
        .await
        .map_err(|e| ScenarioError::setup("reading the publications", e))?;
        if open == 0 {
            admin.close().await;
            return Ok(());
        }
        if started.elapsed() > patience {
            return Err(ScenarioError::Setup(format!("{open} publications still open after {patience:?}")));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every publication: id, draft, state, stored post id.
async fn publications(database_url: &str) -> Result<Vec<(String, String, String, String)>, ScenarioError> {
    let admin = sqlx::PgPool::connect(database_url).await.map_err(|e| ScenarioError::setup("connecting", e))?;
    let rows = sqlx::query_as("SELECT id, draft_id, state, platform_post_id FROM govmedia_content.publications")
        .fetch_all(&admin)
        .await
        .map_err(|e| ScenarioError::setup("reading the publications", e))?;
    admin.close().await;
    Ok(rows)
}

/// How many `publication.published` audit events each publication has.
async fn published_events(database_url: &str) -> Result<BTreeMap<String, u64>, ScenarioError> {
    let admin = sqlx::PgPool::connect(database_url).await.map_err(|e| ScenarioError::setup("connecting", e))?;
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT resource_id, count(*) FROM govmedia_audit.audit_events WHERE action = 'publication.published' GROUP BY resource_id",
    )
    .fetch_all(&admin)
    .await
    .map_err(|e| ScenarioError::setup("reading the audit log", e))?;
    admin.close().await;
    Ok(rows.into_iter().map(|(id, n)| (id, n.unsigned_abs())).collect())
}
