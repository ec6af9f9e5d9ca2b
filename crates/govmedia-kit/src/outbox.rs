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
use govmedia_domain::audit::{ActorKind, AuditRecord, Outcome};
use govmedia_proto::audit::v1 as pb;
use govmedia_proto::audit::v1::audit_log_service_client::AuditLogServiceClient;
use govmedia_proto::common::v1 as common;
use sqlx::QueryBuilder;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

use crate::client::CallCredentials;
use crate::db::{Database, Tx, db_error};

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

/// Why a batch could not be delivered.
#[derive(Debug, thiserror::Error)]
#[error("audit delivery failed: {0}")]
pub struct SinkError(pub String);

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
        self.credentials.authorize(&mut request).await.map_err(|s| SinkError(s.message().to_owned()))?;
        crate::telemetry::inject_context(request.metadata_mut());
        let response = self
            .client
            .clone()
            .append_events(request)
            .await
            .map_err(|s| SinkError(format!("{:?}: {}", s.code(), s.message())))?
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

/// Ships the outbox to an [`AuditSink`].
#[derive(Debug)]
pub struct Relay<S> {
    db: Database,
    sink: S,
    batch_size: u32,
    idle_poll: Duration,
    wake: Arc<Notify>,
}

impl<S: AuditSink> Relay<S> {
    /// A relay for `db`'s outbox.
    pub fn new(db: Database, sink: S) -> Self {
        Self {
            db,
            sink,
            batch_size: DEFAULT_BATCH_SIZE,
            idle_poll: Duration::from_secs(1),
            wake: Arc::new(Notify::new()),
        }
    }

    /// Sets the batch size.
    pub fn with_batch_size(mut self, batch_size: u32) -> Self {
        self.batch_size = batch_size.max(1);
        self
    }

    /// Sets how often an idle relay looks for records nobody woke it for.
    pub fn with_idle_poll(mut self, idle_poll: Duration) -> Self {
        self.idle_poll = idle_poll;
        self
    }

    /// Uses `wake` (shared with the service's handlers) as the wake-up signal.
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
        let sql = "SELECT COUNT(*) FROM govmedia_outbox";
        match &self.db {
            Database::Postgres(pool) => sqlx::query_scalar(sql).fetch_one(pool).await.map_err(db_error),
            Database::Sqlite(pool) => sqlx::query_scalar(sql).fetch_one(pool).await.map_err(db_error),
        }
    }

    /// Delivers one batch; returns how many records it shipped (0 when empty).
    pub async fn deliver_batch(&self) -> Result<usize, Error> {
        let limit = i64::from(self.batch_size);
        match &self.db {
            Database::Postgres(pool) => {
                let mut tx = pool.begin().await.map_err(db_error)?;
                let rows: Vec<(i64, String)> = sqlx::query_as(
                    "SELECT seq, payload::text FROM govmedia_outbox ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED",
                )
                .bind(limit)
                .fetch_all(&mut *tx)
                .await
                .map_err(db_error)?;
                if rows.is_empty() {
                    return Ok(0);
                }
                let (seqs, records) = decode(rows)?;
                match self.sink.append(records).await {
                    Ok(_) => {
                        sqlx::query("DELETE FROM govmedia_outbox WHERE seq = ANY($1)")
                            .bind(&seqs)
                            .execute(&mut *tx)
                            .await
                            .map_err(db_error)?;
                        tx.commit().await.map_err(db_error)?;
                        Ok(seqs.len())
                    }
                    Err(e) => {
                        sqlx::query(
                            "UPDATE govmedia_outbox SET attempts = attempts + 1, last_error = $2 WHERE seq = ANY($1)",
                        )
                        .bind(&seqs)
                        .bind(e.to_string())
                        .execute(&mut *tx)
                        .await
                        .map_err(db_error)?;
                        tx.commit().await.map_err(db_error)?;
                        Err(Error::Unavailable { dependency: "audit service", source: Box::new(e) })
                    }
                }
            }
            Database::Sqlite(pool) => {
                let rows: Vec<(i64, String)> =
                    sqlx::query_as("SELECT seq, payload FROM govmedia_outbox ORDER BY seq LIMIT ?1")
                        .bind(limit)
                        .fetch_all(pool)
                        .await
                        .map_err(db_error)?;
                if rows.is_empty() {
                    return Ok(0);
                }
                let (seqs, records) = decode(rows)?;
                let outcome = self.sink.append(records).await;
                let mut query = match &outcome {
                    Ok(_) => QueryBuilder::new("DELETE FROM govmedia_outbox WHERE seq IN ("),
                    Err(e) => {
                        let mut q =
                            QueryBuilder::new("UPDATE govmedia_outbox SET attempts = attempts + 1, last_error = ");
                        q.push_bind(e.to_string());
                        q.push(" WHERE seq IN (");
                        q
                    }
                };
                let mut list = query.separated(", ");
                for seq in &seqs {
                    list.push_bind(*seq);
                }
                query.push(")");
                query.build().execute(pool).await.map_err(db_error)?;
                match outcome {
                    Ok(_) => Ok(seqs.len()),
                    Err(e) => Err(Error::Unavailable { dependency: "audit service", source: Box::new(e) }),
                }
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
        loop {
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

fn decode(rows: Vec<(i64, String)>) -> Result<(Vec<i64>, Vec<AuditRecord>), Error> {
    let mut seqs = Vec::with_capacity(rows.len());
    let mut records = Vec::with_capacity(rows.len());
    for (seq, payload) in rows {
        let record: AuditRecord = serde_json::from_str(&payload)
            .map_err(|e| Error::internal(format!("outbox record {seq} cannot be decoded: {e}")))?;
        seqs.push(seq);
        records.push(record);
    }
    Ok((seqs, records))
}
