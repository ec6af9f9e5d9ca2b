//! The audit outbox (R1.3.5, R9.2): every state change writes its audit record in the
//! same transaction as the change ([`enqueue`]); a [`Relay`] ships batches to the audit
//! service and deletes them once the service has them.
//!
//! Guarantees: nothing is lost while the audit service is down (records wait in the
//! table); nothing is doubled (the audit service appends idempotently by event id, so a
//! batch re-sent after a crash between "appended" and "deleted" appends nothing new).
//! On PostgreSQL several replicas may relay at once: each claims its batch with
//! `FOR UPDATE SKIP LOCKED`. On SQLite (one process) the relay holds no lock while it
//! waits for the network, so writers are never stalled by a slow audit service.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use govmedia_domain::Error;
use govmedia_domain::audit::{Actor, ActorKind, AuditAction, AuditRecord, AuditResourceRef, Outcome};
use govmedia_proto::audit::v1 as pb;
use govmedia_proto::audit::v1::audit_log_service_client::AuditLogServiceClient;
use govmedia_proto::common::v1 as common;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;
use tracing::Instrument;

use crate::client::CallCredentials;
use chrono::{DateTime, Utc};

use crate::db::{Database, Dialect, Tx, db_error};
use crate::{on_db, on_tx};

/// Most records shipped in one batch.
pub const DEFAULT_BATCH_SIZE: u32 = 500;

/// Writes audit records into the outbox, inside the caller's transaction.
pub async fn enqueue(tx: &mut Tx, records: &[AuditRecord]) -> Result<(), Error> {
    // One statement per chunk rather than per record: a batch ingest writes hundreds of
    // records, and on PostgreSQL each statement is a round trip. Rows keep their order.
    const ROWS_PER_STATEMENT: usize = 500;
    for chunk in records.chunks(ROWS_PER_STATEMENT) {
        let payloads =
            chunk.iter().map(|r| serde_json::to_string(r).map_err(Error::internal)).collect::<Result<Vec<_>, _>>()?;
        match tx {
            Tx::Postgres(tx) => {
                let values: Vec<String> =
                    (0..chunk.len()).map(|i| format!("(${}, ${}::jsonb)", 2 * i + 1, 2 * i + 2)).collect();
                let sql = format!("INSERT INTO govmedia_outbox (event_id, payload) VALUES {}", values.join(", "));
                let mut q = sqlx::query(&sql);
                for (record, payload) in chunk.iter().zip(payloads) {
                    q = q.bind(record.id.as_uuid()).bind(payload);
                }
                q.execute(&mut **tx).await.map_err(db_error)?;
            }
            Tx::Sqlite(tx) => {
                let values: Vec<String> =
                    (0..chunk.len()).map(|i| format!("(?{}, ?{})", 2 * i + 1, 2 * i + 2)).collect();
                let sql = format!("INSERT INTO govmedia_outbox (event_id, payload) VALUES {}", values.join(", "));
                let mut q = sqlx::query(&sql);
                for (record, payload) in chunk.iter().zip(payloads) {
                    q = q.bind(record.id.to_string()).bind(payload);
                }
                q.execute(&mut **tx).await.map_err(db_error)?;
            }
        }
    }
    Ok(())
}

/// What the audit service said about a batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AppendReceipt {
    /// Records appended now.
    pub appended: u32,
    /// Records the log already had.
    pub duplicates: u32,
}

/// Why a batch could not be delivered, with the gRPC code the audit service answered
/// (or UNAVAILABLE when it could not be reached).
#[derive(Debug, Clone, thiserror::Error)]
#[error("audit delivery failed ({code:?}): {message}")]
pub struct SinkError {
    /// The code.
    pub code: tonic::Code,
    /// What was said.
    pub message: String,
}

impl SinkError {
    /// A failure worth retrying as it is (the service down, overloaded, misconfigured).
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self { code: tonic::Code::Unavailable, message: message.into() }
    }

    /// The batch was refused as invalid: retrying the same records changes nothing.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self { code: tonic::Code::InvalidArgument, message: message.into() }
    }

    /// True when the audit service refused the records themselves, so the same records
    /// will be refused again: INVALID_ARGUMENT, FAILED_PRECONDITION, OUT_OF_RANGE. Every
    /// other code (outages, overload, a principal without permission) is about the
    /// service or the relay, and is retried with backoff for as long as it lasts.
    pub fn is_rejection(&self) -> bool {
        matches!(self.code, tonic::Code::InvalidArgument | tonic::Code::FailedPrecondition | tonic::Code::OutOfRange)
    }
}

impl From<tonic::Status> for SinkError {
    fn from(status: tonic::Status) -> Self {
        Self { code: status.code(), message: status.message().to_owned() }
    }
}

/// Where the relay ships records: the audit service, or a test double of it.
pub trait AuditSink: Send + Sync + 'static {
    /// Appends a batch, idempotently by event id, keeping its order.
    fn append(&self, records: Vec<AuditRecord>) -> impl Future<Output = Result<AppendReceipt, SinkError>> + Send;
}

/// The audit service over gRPC (`AuditLogService.AppendEvents`).
#[derive(Debug, Clone)]
pub struct GrpcAuditSink {
    client: AuditLogServiceClient<Channel>,
    credentials: CallCredentials,
}

impl GrpcAuditSink {
    /// A sink calling the audit service on `channel`, authenticating with `credentials`.
    pub fn new(channel: Channel, credentials: CallCredentials) -> Self {
        Self { client: AuditLogServiceClient::new(channel), credentials }
    }
}

impl AuditSink for GrpcAuditSink {
    async fn append(&self, records: Vec<AuditRecord>) -> Result<AppendReceipt, SinkError> {
        let events = records.into_iter().map(to_proto).collect();
        let mut request = tonic::Request::new(pb::AppendEventsRequest { events });
        self.credentials.authorize(&mut request).await.map_err(|s| SinkError::unavailable(s.message()))?;
        let mut client = self.client.clone();
        let response =
            crate::telemetry::client_call("govmedia.audit.v1.AuditLogService", "AppendEvents", request, |r| {
                client.append_events(r)
            })
            .await
            .map_err(SinkError::from)?
            .into_inner();
        Ok(AppendReceipt {
            appended: response.appended_count,
            duplicates: u32::try_from(response.duplicate_event_ids.len()).unwrap_or(u32::MAX),
        })
    }
}

/// The wire form of a record.
pub fn to_proto(record: AuditRecord) -> pb::AuditEvent {
    let timestamp = |t: chrono::DateTime<chrono::Utc>| prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: i32::try_from(t.timestamp_subsec_nanos()).unwrap_or(0),
    };
    pb::AuditEvent {
        id: record.id.to_string(),
        occur_time: Some(timestamp(record.occur_time)),
        action: record.action,
        actor: Some(common::PrincipalRef {
            kind: match record.actor.kind {
                ActorKind::User => common::PrincipalKind::User,
                ActorKind::Service => common::PrincipalKind::Service,
                ActorKind::System => common::PrincipalKind::System,
            } as i32,
            id: record.actor.id,
            display_name: record.actor.display_name,
        }),
        client_address: record.client_address.unwrap_or_default(),
        producer: record.producer,
        resource: Some(pb::AuditResource {
            r#type: record.resource.kind,
            id: record.resource.id,
            department_id: record.resource.department.map(|d| d.to_string()).unwrap_or_default(),
            platform_account_id: record.resource.platform_account.map(|a| a.to_string()).unwrap_or_default(),
        }),
        outcome: match record.outcome {
            Outcome::Success => pb::AuditOutcome::Success,
            Outcome::Failure => pb::AuditOutcome::Failure,
            Outcome::Denied => pb::AuditOutcome::Denied,
        } as i32,
        rule_id: record.rule_id.unwrap_or_default(),
        reason: record.reason.unwrap_or_default(),
        attributes: record.attributes.into_iter().collect(),
        trace_id: record.trace_id.unwrap_or_default(),
        request_id: record.request_id.unwrap_or_default(),
        ..Default::default()
    }
}

/// How often the audit service may refuse a record as invalid before it becomes a dead
/// letter. More than once, because a refusal can be passing: during a rolling upgrade an
/// older audit service may not know a new action yet.
pub const DEFAULT_MAX_REJECTIONS: u32 = 5;

/// A record waiting in the outbox, as claimed for delivery.
#[derive(Debug, sqlx::FromRow)]
struct Waiting {
    seq: i64,
    payload: String,
    rejections: i32,
}

/// What became of a claimed batch, written back in one transaction.
#[derive(Debug, Default)]
struct Settlement {
    /// Delivered: deleted.
    delivered: Vec<i64>,
    /// Not delivered for a passing reason: kept, the error noted.
    kept: Vec<i64>,
    /// Refused as invalid, below the limit: kept, the refusal counted.
    refused: Vec<i64>,
    /// Refused at the limit, or not decodable at all: moved to the dead letters.
    buried: Vec<(i64, String)>,
    /// The error to note on kept and refused records.
    error: Option<String>,
}

/// Ships the outbox to an [`AuditSink`].
#[derive(Debug)]
pub struct Relay<S> {
    db: Database,
    sink: S,
    name: &'static str,
    batch_size: u32,
    max_rejections: u32,
    idle_poll: Duration,
    wake: Arc<Notify>,
}

impl<S: AuditSink> Relay<S> {
    /// A relay for `db`'s outbox.
    pub fn new(db: Database, sink: S) -> Self {
        Self {
            db,
            sink,
            name: "outbox",
            batch_size: DEFAULT_BATCH_SIZE,
            max_rejections: DEFAULT_MAX_REJECTIONS,
            idle_poll: Duration::from_secs(1),
            wake: Arc::new(Notify::new()),
        }
    }

    /// Names the outbox on its metrics and spans (the producing service: `identity`, …):
    /// under `govmedia up` several relays share one process.
    pub fn named(mut self, name: &'static str) -> Self {
        self.name = name;
        self
    }

    /// Sets the batch size.
    pub fn with_batch_size(mut self, batch_size: u32) -> Self {
        self.batch_size = batch_size.max(1);
        self
    }

    /// Sets how often a record may be refused as invalid before it becomes a dead letter.
    pub fn with_max_rejections(mut self, max_rejections: u32) -> Self {
        self.max_rejections = max_rejections.max(1);
        self
    }

    /// Sets how often an idle relay looks for records nobody woke it for.
    pub fn with_idle_poll(mut self, idle_poll: Duration) -> Self {
        self.idle_poll = idle_poll;
        self
    }

    /// Uses `wake` (shared with the service's unit of work) as the wake-up signal.
    pub fn with_waker(mut self, wake: Arc<Notify>) -> Self {
        self.wake = wake;
        self
    }

    /// A handle services notify after committing, so records ship at once.
    pub fn waker(&self) -> Arc<Notify> {
        Arc::clone(&self.wake)
    }

    /// How many records wait (the outbox lag).
    pub async fn pending(&self) -> Result<i64, Error> {
        pending(&self.db).await
    }

    /// Delivers one batch; returns how many records left the outbox, delivered or
    /// buried (0 when it is empty).
    ///
    /// A batch the audit service refuses as invalid is shipped again one record at a
    /// time, so the records it can take are delivered and only the refused ones stay;
    /// a record refused `max_rejections` times becomes a dead letter (an ERROR log, the
    /// `govmedia.outbox.dead_letters` counter) and no longer holds up the rest. Passing
    /// failures keep every record and are reported as UNAVAILABLE, with the sink's code.
    pub async fn deliver_batch(&self) -> Result<usize, Error> {
        let (claim, rows) = self.claim().await?;
        if rows.is_empty() {
            if let Some(tx) = claim {
                tx.commit().await?;
            }
            return Ok(0);
        }
        let mut settlement = Settlement::default();
        let mut batch = Vec::with_capacity(rows.len());
        for row in rows {
            match serde_json::from_str::<AuditRecord>(&row.payload) {
                Ok(record) => batch.push((row, record)),
                // It will never decode: holding it would stall every record behind it.
                Err(e) => settlement.buried.push((row.seq, format!("the stored record does not decode: {e}"))),
            }
        }
        // The delivery's span links to the span of each change it carries (their traces
        // are the requests'), so a trace store leads from a request to its audit record.
        let span = tracing::info_span!(
            "outbox.deliver",
            otel.name = "outbox deliver",
            otel.kind = "producer",
            outbox.name = self.name,
            outbox.records = batch.len(),
        );
        {
            use opentelemetry::trace::TraceContextExt;
            use tracing_opentelemetry::OpenTelemetrySpanExt;
            let context = span.context();
            let ids = context.span().span_context().clone();
            if ids.is_valid() && self.name != "outbox" {
                crate::telemetry::components::claim(ids.span_id(), self.name);
            }
        }
        for (_, record) in &batch {
            if let (Some(trace_id), Some(span_id)) = (&record.trace_id, &record.span_id) {
                crate::telemetry::add_link(&span, trace_id, span_id);
            }
        }
        let failure = self.ship(batch, &mut settlement).instrument(span).await;
        let mut tx = match claim {
            Some(tx) => tx,
            None => self.db.begin().await?,
        };
        settle(&mut tx, &settlement).await?;
        tx.commit().await?;
        for (seq, why) in &settlement.buried {
            tracing::error!(outbox.seq = seq, error = %why, "audit record moved to the dead letters; re-drive it with `govmedia outbox redrive` once the cause is fixed");
        }
        if !settlement.buried.is_empty() {
            dead_letter_counter(self.name).add(settlement.buried.len() as u64, &[]);
        }
        let left = settlement.delivered.len() + settlement.buried.len();
        match failure {
            None => Ok(left),
            Some(e) if left == 0 => Err(Error::Unavailable { dependency: "audit service", source: Box::new(e) }),
            // Records left the outbox: report progress so the loop goes on at once; the
            // refused ones are retried with the next batches until they are buried.
            Some(e) => {
                tracing::warn!(error = %e, "audit records refused as invalid; the others went on");
                Ok(left)
            }
        }
    }

    /// Sends `batch`, then each record alone if the batch was refused as invalid.
    /// Returns the failure that kept records back, if any.
    async fn ship(&self, batch: Vec<(Waiting, AuditRecord)>, s: &mut Settlement) -> Option<SinkError> {
        if batch.is_empty() {
            return None;
        }
        let records = batch.iter().map(|(_, r)| r.clone()).collect();
        let error = match self.sink.append(records).await {
            Ok(_) => {
                s.delivered.extend(batch.iter().map(|(w, _)| w.seq));
                return None;
            }
            Err(e) if e.is_rejection() && batch.len() > 1 => e,
            Err(e) => {
                self.note(&batch, &e, s);
                return Some(e);
            }
        };
        tracing::warn!(error = %error, records = batch.len(), "the audit service refused a batch; sending its records one at a time");
        let mut last = None;
        for (i, (waiting, record)) in batch.iter().enumerate() {
            match self.sink.append(vec![record.clone()]).await {
                Ok(_) => s.delivered.push(waiting.seq),
                Err(e) if e.is_rejection() => {
                    self.note(std::slice::from_ref(&batch[i]), &e, s);
                    last = Some(e);
                }
                Err(e) => {
                    // The service went away part-way: keep the rest for the next try.
                    self.note(&batch[i..], &e, s);
                    return Some(e);
                }
            }
        }
        last
    }

    /// Records a failure against `records`.
    fn note(&self, records: &[(Waiting, AuditRecord)], error: &SinkError, s: &mut Settlement) {
        s.error = Some(error.to_string());
        for (w, record) in records {
            if !error.is_rejection() {
                s.kept.push(w.seq);
            } else if u32::try_from(w.rejections + 1).unwrap_or(u32::MAX) >= self.max_rejections {
                s.buried.push((
                    w.seq,
                    format!("{} ({} refused {} times): {error}", record.id, record.action, w.rejections + 1),
                ));
            } else {
                s.refused.push(w.seq);
            }
        }
    }

    /// Claims the oldest records: on PostgreSQL inside a transaction that holds them
    /// (`FOR UPDATE SKIP LOCKED`, so replicas take disjoint batches); on SQLite (one
    /// process) without any lock, so writers never wait for the network.
    async fn claim(&self) -> Result<(Option<Tx>, Vec<Waiting>), Error> {
        let limit = i64::from(self.batch_size);
        match &self.db {
            Database::Postgres(pool) => {
                let mut tx = pool.begin().await.map_err(db_error)?;
                let rows = sqlx::query_as(
                    "SELECT seq, payload::text AS payload, rejections FROM govmedia_outbox \
                     ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED",
                )
                .bind(limit)
                .fetch_all(&mut *tx)
                .await
                .map_err(db_error)?;
                Ok((Some(Tx::Postgres(tx)), rows))
            }
            Database::Sqlite(pool) => {
                let rows = sqlx::query_as("SELECT seq, payload, rejections FROM govmedia_outbox ORDER BY seq LIMIT ?1")
                    .bind(limit)
                    .fetch_all(pool)
                    .await
                    .map_err(db_error)?;
                Ok((None, rows))
            }
        }
    }

    /// Ships until `shutdown` is cancelled: batches back to back while records wait,
    /// exponential backoff with jitter while the audit service fails, and a short poll
    /// (or a wake-up) while idle. Ships what is left once more on shutdown.
    pub async fn run(self, shutdown: CancellationToken) {
        let new_backoff = || {
            ExponentialBuilder::default()
                .with_min_delay(Duration::from_millis(100))
                .with_max_delay(Duration::from_secs(30))
                .with_jitter()
                .without_max_times()
                .build()
        };
        let mut backoff = new_backoff();
        let gauges = OutboxGauges::register(self.name);
        let mut measured: Option<std::time::Instant> = None;
        loop {
            if measured.is_none_or(|at| at.elapsed() >= MEASURE_EVERY) {
                measured = Some(std::time::Instant::now());
                match measure(&self.db).await {
                    Ok(figures) => gauges.set(figures),
                    Err(e) => tracing::debug!(error = %e, "measuring the outbox failed"),
                }
            }
            let wait = match self.deliver_batch().await {
                Ok(n) if n > 0 => {
                    backoff = new_backoff();
                    tracing::debug!(outbox.delivered = n, "audit records delivered");
                    continue;
                }
                Ok(_) => {
                    backoff = new_backoff();
                    self.idle_poll
                }
                Err(e) => {
                    let delay = backoff.next().unwrap_or(Duration::from_secs(30));
                    tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "audit delivery failed; will retry");
                    delay
                }
            };
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
        match self.deliver_batch().await {
            Ok(n) if n > 0 => tracing::info!(outbox.delivered = n, "audit records delivered at shutdown"),
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "audit records left in the outbox at shutdown; they ship at next start")
            }
        }
    }
}

/// How often the relay measures its outbox for the gauges.
const MEASURE_EVERY: Duration = Duration::from_secs(5);

/// An outbox's state, as its gauges show it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct OutboxFigures {
    backlog: i64,
    oldest_age_seconds: f64,
    dead_letters: i64,
    pool_used: u32,
    pool_idle: u32,
}

async fn measure(db: &Database) -> Result<OutboxFigures, Error> {
    let (backlog, oldest): (i64, Option<f64>) = match db {
        Database::Postgres(pool) => {
            sqlx::query_as("SELECT COUNT(*), EXTRACT(EPOCH FROM now() - MIN(created_at))::float8 FROM govmedia_outbox")
                .fetch_one(pool)
                .await
        }
        Database::Sqlite(pool) => {
            sqlx::query_as(
                "SELECT COUNT(*), (julianday('now') - julianday(MIN(created_at))) * 86400.0 FROM govmedia_outbox",
            )
            .fetch_one(pool)
            .await
        }
    }
    .map_err(db_error)?;
    let dead_letters: i64 =
        on_db!(db, |pool, _dialect| sqlx::query_scalar("SELECT COUNT(*) FROM govmedia_outbox_dead_letters")
            .fetch_one(pool)
            .await)
        .map_err(db_error)?;
    let (pool_used, pool_idle) = db.pool_connections();
    Ok(OutboxFigures {
        backlog,
        oldest_age_seconds: oldest.unwrap_or(0.0).max(0.0),
        dead_letters,
        pool_used,
        pool_idle,
    })
}

/// The gauges of every relay in the process (several under `govmedia up`), each
/// labelled `outbox=<name>`: records waiting, the age of the oldest, dead letters kept.
/// An outbox gauge: its name, unit, description, and the figure it shows.
type Gauge = (&'static str, &'static str, &'static str, fn(&OutboxFigures) -> f64);

/// A relay's gauges in the process-wide list, by outbox name. They outlive the relay: the
/// last figures are still exported by the final collection at shutdown.
type Registered = (&'static str, Arc<OutboxGauges>);

struct OutboxGauges {
    figures: std::sync::Mutex<OutboxFigures>,
}

impl OutboxGauges {
    fn register(name: &'static str) -> Arc<Self> {
        static ALL: std::sync::Mutex<Vec<Registered>> = std::sync::Mutex::new(Vec::new());
        // Which meters carry the gauges: the process's (`None`, every relay's figures) or,
        // under `govmedia up`, each component's own (its relay's figures only).
        static ON: std::sync::Mutex<Vec<Option<&'static str>>> = std::sync::Mutex::new(Vec::new());
        let lock =
            |m: &'static std::sync::Mutex<Vec<Registered>>| m.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let gauges = Arc::new(OutboxGauges { figures: std::sync::Mutex::new(OutboxFigures::default()) });
        {
            // A relay of the same name started again (a restarted core) takes its place.
            let mut relays = lock(&ALL);
            relays.retain(|(registered, _)| *registered != name);
            relays.push((name, Arc::clone(&gauges)));
        }
        let owner = crate::telemetry::components::routed(name);
        {
            let mut on = ON.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if on.contains(&owner) {
                return gauges;
            }
            on.push(owner);
        }
        let relays = move || -> Vec<Registered> {
            lock(&ALL).iter().filter(|(n, _)| owner.is_none_or(|o| o == *n)).cloned().collect()
        };
        let observe = move |pick: fn(&OutboxFigures) -> f64| {
            move |observer: &dyn opentelemetry::metrics::AsyncInstrument<f64>| {
                for (name, gauges) in relays() {
                    let figures = *gauges.figures.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                    observer.observe(pick(&figures), &[opentelemetry::KeyValue::new("outbox", name)]);
                }
            }
        };
        let meter = crate::telemetry::meter(owner);
        let gauges_made: [Gauge; 3] = [
            ("govmedia.outbox.backlog", "{record}", "Audit records waiting in the outbox for delivery", |f| {
                f.backlog as f64
            }),
            (
                "govmedia.outbox.oldest_age",
                "s",
                "Age of the oldest audit record waiting in the outbox (0 when empty)",
                |f| f.oldest_age_seconds,
            ),
            (
                "govmedia.outbox.dead_letters.kept",
                "{record}",
                "Audit records in the outbox's dead letters, waiting to be re-driven",
                |f| f.dead_letters as f64,
            ),
        ];
        for (name, unit, description, pick) in gauges_made {
            let _ = meter
                .f64_observable_gauge(name)
                .with_unit(unit)
                .with_description(description)
                .with_callback(observe(pick))
                .build();
        }
        // The pool's connections, measured with the outbox (each service has one pool
        // and one relay, which knows the service's name).
        let _ = meter
            .i64_observable_gauge("govmedia.db.pool.connections")
            .with_unit("{connection}")
            .with_description("Connections of the service's database pool, by state (used, idle)")
            .with_callback(move |observer| {
                for (name, gauges) in relays() {
                    let figures = *gauges.figures.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                    for (state, n) in [("used", figures.pool_used), ("idle", figures.pool_idle)] {
                        observer.observe(
                            i64::from(n),
                            &[opentelemetry::KeyValue::new("pool", name), opentelemetry::KeyValue::new("state", state)],
                        );
                    }
                }
            })
            .build();
        gauges
    }

    fn set(&self, figures: OutboxFigures) {
        *self.figures.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = figures;
    }
}

fn dead_letter_counter(outbox: &'static str) -> opentelemetry::metrics::Counter<u64> {
    crate::telemetry::meter(crate::telemetry::components::routed(outbox))
        .u64_counter("govmedia.outbox.dead_letters")
        .with_description("Audit records moved to the outbox's dead letters after the audit service refused them")
        .with_unit("{record}")
        .build()
}

/// `$first, $first+1, …` for `n` values.
fn placeholders(first: usize, n: usize) -> String {
    (first..first + n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

/// Writes what became of a batch.
async fn settle(tx: &mut Tx, s: &Settlement) -> Result<(), Error> {
    let error = s.error.clone().unwrap_or_default();
    on_tx!(tx, |conn, dialect| async {
        if !s.delivered.is_empty() {
            let sql = format!("DELETE FROM govmedia_outbox WHERE seq IN ({})", placeholders(1, s.delivered.len()));
            let sql = dialect.sql(&sql);
            let mut q = sqlx::query(&sql).persistent(false);
            for seq in &s.delivered {
                q = q.bind(*seq);
            }
            q.execute(&mut *conn).await?;
        }
        for (seqs, counted) in [(&s.kept, false), (&s.refused, true)] {
            if seqs.is_empty() {
                continue;
            }
            let sql = format!(
                "UPDATE govmedia_outbox SET attempts = attempts + 1, rejections = rejections + {}, last_error = $1 \
                 WHERE seq IN ({})",
                i32::from(counted),
                placeholders(2, seqs.len())
            );
            let sql = dialect.sql(&sql);
            let mut q = sqlx::query(&sql).persistent(false).bind(&error);
            for seq in seqs {
                q = q.bind(*seq);
            }
            q.execute(&mut *conn).await?;
        }
        for (seq, why) in &s.buried {
            sqlx::query(&dialect.sql(
                "INSERT INTO govmedia_outbox_dead_letters (event_id, outbox_seq, payload, created_at, attempts, last_error) \
                 SELECT event_id, seq, CAST(payload AS TEXT), created_at, attempts + 1, $2 FROM govmedia_outbox WHERE seq = $1",
            ))
            .bind(*seq)
            .bind(why)
            .execute(&mut *conn)
            .await?;
            sqlx::query(&dialect.sql("DELETE FROM govmedia_outbox WHERE seq = $1")).bind(*seq).execute(&mut *conn).await?;
        }
        Ok::<(), sqlx::Error>(())
    }
    .await)
    .map_err(db_error)
}

/// How many records wait in `db`'s outbox.
pub async fn pending(db: &Database) -> Result<i64, Error> {
    on_db!(db, |pool, _dialect| sqlx::query_scalar("SELECT COUNT(*) FROM govmedia_outbox").fetch_one(pool).await)
        .map_err(db_error)
}

/// An audit record the audit service refused until the relay gave up on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// The record's event id.
    pub event_id: String,
    /// Its place in the outbox it left.
    pub outbox_seq: i64,
    /// Its action, when the record decodes.
    pub action: Option<String>,
    /// How often delivery was tried.
    pub attempts: i64,
    /// The audit service's last refusal.
    pub last_error: String,
    /// When it was written with its change.
    pub created_at: DateTime<Utc>,
    /// When it became a dead letter.
    pub buried_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct DeadLetterRow {
    event_id: String,
    outbox_seq: i64,
    payload: String,
    attempts: i64,
    last_error: String,
    created_at: DateTime<Utc>,
    buried_at: DateTime<Utc>,
}

/// The dead letters of `db`'s outbox, oldest first.
pub async fn dead_letters(db: &Database) -> Result<Vec<DeadLetter>, Error> {
    let rows: Vec<DeadLetterRow> = on_db!(db, |pool, _dialect| {
        sqlx::query_as(
            "SELECT CAST(event_id AS TEXT) AS event_id, CAST(outbox_seq AS BIGINT) AS outbox_seq, payload, \
             CAST(attempts AS BIGINT) AS attempts, last_error, created_at, buried_at \
             FROM govmedia_outbox_dead_letters ORDER BY outbox_seq",
        )
        .fetch_all(pool)
        .await
    })
    .map_err(db_error)?;
    Ok(rows
        .into_iter()
        .map(|r| DeadLetter {
            action: serde_json::from_str::<AuditRecord>(&r.payload).ok().map(|a| a.action),
            event_id: r.event_id,
            outbox_seq: r.outbox_seq,
            attempts: r.attempts,
            last_error: r.last_error,
            created_at: r.created_at,
            buried_at: r.buried_at,
        })
        .collect())
}

/// Moves dead letters back into the outbox, at its end, with their counts reset: the
/// ones named by `event_ids`, or all of them when it is empty. Returns how many moved;
/// the relay ships them with the next batch. The audit service appends by event id, so
/// a record re-driven twice is still appended once. The re-drive is itself audited, in
/// the same transaction, as `outbox.redriven` by `operator` for `producer` (the service).
pub async fn redrive(db: &Database, event_ids: &[String], producer: &str, operator: &str) -> Result<u64, Error> {
    let mut tx = db.begin().await?;
    let moved = on_tx!(&mut tx, |conn, dialect| async {
        let (filter, ids): (String, &[String]) = if event_ids.is_empty() {
            (String::new(), &[])
        } else {
            let column = match dialect {
                Dialect::Postgres => "CAST(event_id AS TEXT)",
                Dialect::Sqlite => "event_id",
            };
            (format!(" WHERE {column} IN ({})", placeholders(1, event_ids.len())), event_ids)
        };
        let payload = match dialect {
            Dialect::Postgres => "CAST(payload AS JSONB)",
            Dialect::Sqlite => "payload",
        };
        let insert = format!(
            "INSERT INTO govmedia_outbox (event_id, payload, created_at) \
             SELECT event_id, {payload}, created_at FROM govmedia_outbox_dead_letters{filter} ORDER BY outbox_seq"
        );
        let delete = format!("DELETE FROM govmedia_outbox_dead_letters{filter}");
        let (insert, delete) = (dialect.sql(&insert), dialect.sql(&delete));
        let mut q = sqlx::query(&insert).persistent(false);
        for id in ids {
            q = q.bind(id);
        }
        let moved = q.execute(&mut *conn).await?.rows_affected();
        let mut q = sqlx::query(&delete).persistent(false);
        for id in ids {
            q = q.bind(id);
        }
        q.execute(&mut *conn).await?;
        Ok::<u64, sqlx::Error>(moved)
    }
    .await)
    .map_err(db_error)?;
    if moved > 0 {
        let which = if event_ids.is_empty() { "all".to_owned() } else { event_ids.join(",") };
        let record = AuditRecord::new(
            AuditAction::OutboxRedriven,
            Actor::system(operator),
            AuditResourceRef::new("audit_outbox", producer),
            producer,
            Utc::now(),
        )
        .rule("R9.2")
        .attr("event_ids", which)
        .attr("count", moved);
        enqueue(&mut tx, &[record]).await?;
    }
    tx.commit().await?;
    Ok(moved)
}
