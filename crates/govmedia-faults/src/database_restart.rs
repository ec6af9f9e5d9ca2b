//! Database restart: PostgreSQL goes away under load and comes back; every service must
//! answer again within 5 s of it without being restarted itself, and no write that was
//! acknowledged may be missing afterwards (R1.3.5 for the audit records of them).
//!
//! The scenario runs its own PostgreSQL cluster (a shared server must not be restarted):
//! `synchronous_commit` on, as production runs, so an acknowledged commit survives a
//! crash of the server. The compose deployment runs on it as processes (`deployment`),
//! the office of the audit-completeness scenario is set up, and callers make audited
//! changes through the gateway (departments, drafts, comment ingests; an error is tried
//! again with the same request id) while the server is restarted every few seconds —
//! by default `immediate`, the harshest stop: a crash, with recovery at the next start.
//!
//! After each restart a probe asks each service straight (not through the gateway) for
//! something only its database can answer, until it does: that time is the figure.
//! At the end every acknowledged change must be in its service's table and, once the
//! outboxes drain, in the audit log exactly once.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use govmedia_proto::audit::v1 as apb;
use govmedia_proto::content::v1 as cpb;
use govmedia_proto::identity::v1 as ipb;
use govmedia_proto::interaction::v1 as xpb;
use govmedia_testkit::postgres::LocalCluster;
use tonic::transport::Channel;

use crate::ScenarioError;
use crate::audit_completeness::{KINDS, Office, drain, load, recorded, set_up};
use crate::deployment::{COMPONENTS, DATABASE_COMPONENTS, Deployment};
use crate::office::{Cli, authorized};
use crate::report::Report;

/// How big a run is.
#[derive(Debug, Clone)]
pub struct Options {
    /// Audited changes to make at least (more while restarts are still to come).
    pub changes: u32,
    /// Callers making them at once.
    pub callers: u32,
    /// Restarts of the server.
    pub restarts: u32,
    /// Load between restarts.
    pub every: Duration,
    /// `pg_ctl stop` mode: `immediate` (a crash) or `fast` (a clean shutdown).
    pub mode: String,
}

impl Default for Options {
    /// The full run: 3,000 changes or more, 5 immediate restarts 4 s apart.
    fn default() -> Self {
        Self { changes: 3000, callers: 8, restarts: 5, every: Duration::from_secs(4), mode: "immediate".into() }
    }
}

/// The most a service may take to answer again.
const ANSWERS_WITHIN: Duration = Duration::from_secs(5);

/// Runs the scenario with `govmedia` (the binary) on a PostgreSQL cluster of its own, in
/// `work`.
pub async fn run(govmedia: &Path, work: &Path, options: &Options) -> Result<Report, ScenarioError> {
    let cluster = Arc::new(
        LocalCluster::start(&["-c", "synchronous_commit=on"])
            .map_err(|e| ScenarioError::Setup(format!("a PostgreSQL cluster of the scenario's own: {e}")))?,
    );
    let database_url = cluster.url();
    let mut deployment = Deployment::prepare(govmedia, &database_url, work, "").await?;
    for name in COMPONENTS {
        deployment.start(name, Duration::from_secs(60)).await?;
    }
    let office = Arc::new(set_up(govmedia, &deployment, work).await?);
    let admin = Cli::new(govmedia, &deployment, work, "admin");
    let (auditor_id, auditor, _) = admin.add_person("auditor", "局办公室", &office.department, &[])?;
    admin.grant(&auditor_id, "auditor", None)?;
    let probes = Probes::connect(&deployment, &office, auditor.access_token()?)?;

    let enough = Arc::new(AtomicBool::new(false));
    let callers = tokio::spawn(load(Arc::clone(&office), options.callers, options.changes, Arc::clone(&enough)));
    let started = Instant::now();
    let mut recoveries: Vec<[Duration; 4]> = Vec::new();
    let mut down = Vec::new();
    for _ in 0..options.restarts {
        tokio::time::sleep(options.every).await;
        let (restart_cluster, mode) = (Arc::clone(&cluster), options.mode.clone());
        let stopped = Instant::now();
        tokio::task::spawn_blocking(move || restart_cluster.restart(&mode))
            .await
            .map_err(|e| ScenarioError::setup("restarting PostgreSQL", e))?
            .map_err(|e| ScenarioError::Setup(format!("restarting PostgreSQL: {e}\n{}", cluster.log())))?;
        down.push(stopped.elapsed());
        recoveries.push(probes.until_each_answers(Duration::from_secs(60)).await);
    }
    enough.store(true, Ordering::Relaxed);
    let (acknowledged, retries) = callers.await.map_err(|e| ScenarioError::setup("the callers", e))??;
    let working = started.elapsed();
    let drained_in = drain(&database_url, Duration::from_secs(120)).await?;

    let mut report = Report::new(
        "database-restart",
        format!(
            "cargo run --release -p govmedia-faults -- database-restart --changes {} --callers {} --restarts {} --every {}ms --mode {}",
            options.changes,
            options.callers,
            options.restarts,
            options.every.as_millis(),
            options.mode
        ),
    );
    report.note(
        "changes acknowledged",
        format!(
            "{} in {working:.1?} from {} callers ({retries} tries answered with an error first)",
            acknowledged.len(),
            options.callers
        ),
    );
    report.note(
        "PostgreSQL restarted",
        format!(
            "{} times ({}), down {} each (stop to accepting connections)",
            options.restarts,
            options.mode,
            down.iter().map(|d| format!("{d:.1?}")).collect::<Vec<_>>().join(", ")
        ),
    );
    for (i, service) in DATABASE_COMPONENTS.iter().enumerate() {
        let worst = recoveries.iter().map(|r| r[i]).max().unwrap_or_default();
        let all = recoveries.iter().map(|r| format!("{:.2?}", r[i])).collect::<Vec<_>>().join(", ");
        report.require(
            &format!("{service} answers from its database again after"),
            format!("at most {worst:.2?} ({all})"),
            &format!("≤ {ANSWERS_WITHIN:?}"),
            worst <= ANSWERS_WITHIN,
        );
    }
    let restarted: Vec<String> =
        COMPONENTS.iter().filter(|c| deployment.starts(c) != 1).map(|c| (*c).to_owned()).collect();
    report.require("services restarted by hand", restarted.len(), "0", restarted.is_empty());
    report.note("outboxes drained after the last restart in", format!("{drained_in:.1?}"));

    let missing = missing_rows(&database_url, &acknowledged).await?;
    report.require("acknowledged changes missing afterwards", missing.len(), "0", missing.is_empty());
    report.failures.extend(missing.iter().take(10).map(|m| format!("missing: {m}")));
    let audited = recorded(&database_url, &acknowledged).await?;
    let unaudited = audited.values().filter(|n| **n != 1).count();
    report.require("acknowledged changes without exactly one audit record", unaudited, "0", unaudited == 0);
    deployment.stop_all();
    drop(deployment);
    Ok(report)
}

/// A read each service can answer only from its database.
struct Probes {
    identity: (Channel, String),
    audit: (Channel, String),
    content: (Channel, String, String),
    interaction: (Channel, String, String),
}

fn channel(deployment: &Deployment, name: &str) -> Result<Channel, ScenarioError> {
    Ok(Channel::from_shared(deployment.endpoint(name))
        .map_err(|e| ScenarioError::setup("an address", e))?
        .connect_timeout(Duration::from_secs(1))
        .timeout(Duration::from_secs(2))
        .connect_lazy())
}

impl Probes {
    fn connect(deployment: &Deployment, office: &Office, auditor: String) -> Result<Self, ScenarioError> {
        Ok(Self {
            identity: (channel(deployment, "identity")?, office.admin.clone()),
            audit: (channel(deployment, "audit")?, auditor),
            content: (channel(deployment, "content")?, office.editor.clone(), office.department.clone()),
            interaction: (channel(deployment, "interaction")?, office.integration.clone(), office.account.clone()),
        })
    }

    /// Whether service `i` (in [`DATABASE_COMPONENTS`] order) answers from its database.
    async fn answers(&self, i: usize) -> bool {
        match i {
            0 => ipb::directory_service_client::DirectoryServiceClient::new(self.identity.0.clone())
                .list_departments(authorized(
                    ipb::ListDepartmentsRequest { page_size: 1, ..Default::default() },
                    &self.identity.1,
                ))
                .await
                .is_ok(),
            1 => apb::audit_log_service_client::AuditLogServiceClient::new(self.audit.0.clone())
                .query_events(authorized(apb::QueryEventsRequest { page_size: 1, ..Default::default() }, &self.audit.1))
                .await
                .is_ok(),
            2 => cpb::draft_service_client::DraftServiceClient::new(self.content.0.clone())
                .list_drafts(authorized(
                    cpb::ListDraftsRequest {
                        page_size: 1,
                        department_id: self.content.2.clone(),
                        ..Default::default()
                    },
                    &self.content.1,
                ))
                .await
                .is_ok(),
            // A write: the integration's own comment ingest, with a fresh comment.
            _ => xpb::comment_service_client::CommentServiceClient::new(self.interaction.0.clone())
                .ingest_comments(authorized(
                    xpb::IngestCommentsRequest {
                        platform_account_id: self.interaction.2.clone(),
                        comments: vec![xpb::IncomingComment {
                            platform_comment_id: format!("probe-{}", uuid::Uuid::now_v7()),
                            platform_post_id: "post-1".into(),
                            author_platform_id: "probe".into(),
                            author_name: "探测".into(),
                            text: "恢复了吗？".into(),
                            ..Default::default()
                        }],
                    },
                    &self.interaction.1,
                ))
                .await
                .is_ok(),
        }
    }

    /// How long each service took, from now, to answer (all asked at once, every 50 ms).
    async fn until_each_answers(&self, patience: Duration) -> [Duration; 4] {
        let since = Instant::now();
        let until = |i: usize| async move {
            while since.elapsed() < patience {
                if self.answers(i).await {
                    return since.elapsed();
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            patience
        };
        let (a, b, c, d) = tokio::join!(until(0), until(1), until(2), until(3));
        [a, b, c, d]
    }
}

/// The acknowledged changes whose row is not in their service's table.
async fn missing_rows(database_url: &str, acknowledged: &[(usize, String)]) -> Result<Vec<String>, ScenarioError> {
    let admin = sqlx::PgPool::connect(database_url).await.map_err(|e| ScenarioError::setup("connecting", e))?;
    let mut missing = Vec::new();
    for (kind, table) in
        [(0, "govmedia_identity.departments"), (1, "govmedia_content.drafts"), (2, "govmedia_interaction.comments")]
    {
        let ids: Vec<String> = sqlx::query_scalar(&format!("SELECT id FROM {table}"))
            .fetch_all(&admin)
            .await
            .map_err(|e| ScenarioError::setup("reading the tables", e))?;
        let present: BTreeSet<String> = ids.into_iter().collect();
        missing.extend(
            acknowledged
                .iter()
                .filter(|(k, id)| *k == kind && !present.contains(id))
                .map(|(_, id)| format!("{} {id}", KINDS[kind].1)),
        );
    }
    admin.close().await;
    Ok(missing)
}
