//! The group-commit writer of the audit log. Appends from every caller go through one
//! task, which takes everything waiting (up to a batch limit), chains it in one
//! transaction under the chain-head lock, commits once, and answers each caller. Order
//! is arrival order; the chain is gap-free; one transaction serves many requests, so
//! appends stay fast under concurrency. Checkpoints are signed every N events, or every
//! T seconds when anything new arrived.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use ed25519_dalek::SigningKey;
use govmedia_domain::Error;
use govmedia_domain::clock::Clock;
use govmedia_kit::db::Database;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::domain::chain::{self, ChainedEvent};
use crate::store::{self, Checkpoint};

/// Most events chained in one transaction.
const MAX_GROUP: usize = 5000;

/// An event to append, before it has a place in the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    /// The event without sequence, record time and hashes (those fields are ignored).
    pub event: ChainedEvent,
}

/// The answer to one append request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    /// How many were appended now.
    pub appended: u32,
    /// Ids already in the log.
    pub duplicates: Vec<String>,
    /// Sequence of the request's last event.
    pub last_sequence: i64,
}

struct Job {
    events: Vec<ChainedEvent>,
    reply: oneshot::Sender<Result<Appended, Error>>,
}

enum Command {
    Append(Job),
    Checkpoint,
}

/// When checkpoints are made, and with which key.
#[derive(Clone)]
pub struct CheckpointPolicy {
    /// Sign after this many events since the last checkpoint.
    pub every_events: i64,
    /// Or after this long, if anything arrived.
    pub every: Duration,
    /// The signing key's id.
    pub key_id: String,
    /// The signing key.
    pub key: SigningKey,
}

impl std::fmt::Debug for CheckpointPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckpointPolicy")
            .field("every_events", &self.every_events)
            .field("every", &self.every)
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

/// A handle to the writer task.
#[derive(Debug, Clone)]
pub struct Appender {
    tx: mpsc::Sender<Command>,
}

impl Appender {
    /// Starts the writer on `db`; it stops when `stop` is cancelled and the queue drains.
    pub fn start(db: Database, clock: Arc<dyn Clock>, policy: CheckpointPolicy, stop: CancellationToken) -> Self {
        Self::spawn(db, clock, policy, stop).0
    }

    /// [`Appender::start`], with the writer's task: it ends once the queue has drained
    /// after `stop`, so awaiting it before closing the database loses no append.
    pub fn spawn(
        db: Database,
        clock: Arc<dyn Clock>,
        policy: CheckpointPolicy,
        stop: CancellationToken,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(1024);
        let task = tokio::spawn(run(db, clock, policy, rx, stop));
        (Self { tx }, task)
    }

    /// Appends events (idempotent by id), in order.
    pub async fn append(&self, events: Vec<ChainedEvent>) -> Result<Appended, Error> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Command::Append(Job { events, reply }))
            .await
            .map_err(|_| Error::Unavailable { dependency: "audit writer", source: "the writer has stopped".into() })?;
        answer.await.map_err(|_| Error::internal("the audit writer dropped a request"))?
    }

    /// Signs a checkpoint now if anything arrived since the last one.
    pub async fn checkpoint(&self) -> Result<(), Error> {
        self.tx
            .send(Command::Checkpoint)
            .await
            .map_err(|_| Error::Unavailable { dependency: "audit writer", source: "the writer has stopped".into() })
    }
}

async fn run(
    db: Database,
    clock: Arc<dyn Clock>,
    policy: CheckpointPolicy,
    mut rx: mpsc::Receiver<Command>,
    stop: CancellationToken,
) {
    let mut last_checkpoint = match store::latest_checkpoint(&db).await {
        Ok(c) => c.map_or(0, |c| c.sequence),
        Err(e) => {
            tracing::error!(error = %e, "cannot read the latest checkpoint; starting from none");
            0
        }
    };
    // The first timed checkpoint is one interval after start, not at once.
    let mut timer = tokio::time::interval_at(tokio::time::Instant::now() + policy.every, policy.every);
    timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let first = tokio::select! {
            command = rx.recv() => match command {
                Some(c) => c,
                None => return,
            },
            _ = timer.tick() => Command::Checkpoint,
            () = stop.cancelled() => {
                rx.close();
                match rx.recv().await {
                    Some(c) => c,
                    None => return,
                }
            }
        };
        let mut jobs = Vec::new();
        let mut force_checkpoint = false;
        let mut count = 0;
        let mut take = |command: Command, jobs: &mut Vec<Job>, count: &mut usize| match command {
            Command::Append(job) => {
                *count += job.events.len();
                jobs.push(job);
            }
            Command::Checkpoint => force_checkpoint = true,
        };
        take(first, &mut jobs, &mut count);
        while count < MAX_GROUP {
            match rx.try_recv() {
                Ok(command) => take(command, &mut jobs, &mut count),
                Err(_) => break,
            }
        }
        let now = clock.now();
        match commit_group(&db, &jobs, now, &policy, &mut last_checkpoint, force_checkpoint).await {
            Ok(answers) => {
                for (job, answer) in jobs.into_iter().zip(answers) {
                    let _ = job.reply.send(Ok(answer));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, events = count, "an audit append group failed; nothing of it was written");
                for job in jobs {
                    let _ = job.reply.send(Err(Error::Unavailable {
                        dependency: "audit log",
                        source: "the append failed; retry".into(),
                    }));
                }
            }
        }
    }
}

/// Counts events as they enter the log, once each, after their commit: by action,
/// outcome and producer. Every state change of the suite is an audit event, so this one
/// counter is what the business panels (reviews decided, replies sent, logins failed and
/// locked, violations found) are drawn from. The action set is closed (the catalogue), so
/// the series stay few. Also the log's last sequence number.
fn count_appended(events: &[&ChainedEvent], sequence: i64) {
    use opentelemetry::KeyValue;
    use opentelemetry::metrics::{Counter, Gauge};
    static EVENTS: std::sync::OnceLock<(Counter<u64>, Gauge<i64>)> = std::sync::OnceLock::new();
    let (counter, last) = EVENTS.get_or_init(|| {
        let meter = govmedia_kit::telemetry::meter(Some("audit"));
        (
            meter
                .u64_counter("govmedia.audit.events")
                .with_unit("{event}")
                .with_description("Audit events appended to the log, by action, outcome and producer")
                .build(),
            meter
                .i64_gauge("govmedia.audit.log.sequence")
                .with_unit("{event}")
                .with_description("Sequence number of the newest event in the audit log")
                .build(),
        )
    });
    for event in events {
        counter.add(
            1,
            &[
                KeyValue::new("action", event.action.clone()),
                KeyValue::new("outcome", event.outcome.clone()),
                KeyValue::new("producer", event.producer.clone()),
            ],
        );
    }
    last.record(sequence, &[]);
}

/// Chains and commits one group; returns one answer per job.
async fn commit_group(
    db: &Database,
    jobs: &[Job],
    now: DateTime<Utc>,
    policy: &CheckpointPolicy,
    last_checkpoint: &mut i64,
    force_checkpoint: bool,
) -> Result<Vec<Appended>, Error> {
    let mut tx = db.begin().await?;
    let (mut sequence, mut hash) = store::lock_head(&mut tx).await?;
    let ids: Vec<String> = jobs.iter().flat_map(|j| j.events.iter().map(|e| e.id.clone())).collect();
    let mut known: BTreeMap<String, i64> = store::existing_ids(&mut tx, &ids).await?;
    let mut answers = Vec::with_capacity(jobs.len());
    let mut appended: Vec<&ChainedEvent> = Vec::new();
    for job in jobs {
        let mut answer = Appended { appended: 0, duplicates: Vec::new(), last_sequence: sequence };
        let mut seen_in_job = HashSet::new();
        for event in &job.events {
            if let Some(existing) = known.get(&event.id) {
                answer.duplicates.push(event.id.clone());
                answer.last_sequence = *existing;
                continue;
            }
            if !seen_in_job.insert(event.id.clone()) {
                continue;
            }
            let mut chained = event.clone();
            sequence += 1;
            chained.sequence = sequence;
            chained.record_time = now;
            chained.previous_hash = hash;
            chained.hash = chain::link(&hash, &chained);
            store::insert_event(&mut tx, &chained).await?;
            hash = chained.hash;
            known.insert(chained.id.clone(), sequence);
            appended.push(event);
            answer.appended += 1;
            answer.last_sequence = sequence;
        }
        answers.push(answer);
    }
    store::set_head(&mut tx, sequence, &hash).await?;
    let due = sequence - *last_checkpoint >= policy.every_events || (force_checkpoint && sequence > *last_checkpoint);
    if due && sequence > 0 {
        let signature = chain::sign_checkpoint(&policy.key, sequence, &hash, now);
        store::insert_checkpoint(
            &mut tx,
            &Checkpoint {
                sequence,
                hash: hash.to_vec(),
                created_at: now,
                key_id: policy.key_id.clone(),
                signature: signature.to_vec(),
                public_key: policy.key.verifying_key().to_bytes().to_vec(),
            },
        )
        .await?;
    }
    tx.commit().await?;
    if due && sequence > 0 {
        *last_checkpoint = sequence;
    }
    count_appended(&appended, sequence);
    Ok(answers)
}
