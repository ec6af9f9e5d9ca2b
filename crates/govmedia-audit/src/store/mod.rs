//! The audit service's SQL: events, the chain head and checkpoints; the lexicon;
//! compliance assessments. One SQL text serves
//! both backends (see `govmedia_kit::db::Dialect`).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use govmedia_domain::Error;
use govmedia_kit::db::{Database, Dialect, Tx, db_error};
use govmedia_kit::sql;
use govmedia_kit::{on_db, on_tx};

use crate::domain::chain::ChainedEvent;

pub mod compliance;
pub mod inspections;
pub mod lexicon;
pub mod public_feedback;
pub mod rectifications;
pub mod security_checks;
pub mod security_controls;
pub mod security_incidents;
pub mod violations;

#[derive(sqlx::FromRow)]
struct EventRow {
    sequence: i64,
    id: String,
    occur_time: DateTime<Utc>,
    record_time: DateTime<Utc>,
    action: String,
    actor_kind: String,
    actor_id: String,
    actor_name: String,
    client_address: String,
    producer: String,
    resource_type: String,
    resource_id: String,
    department_id: String,
    platform_account_id: String,
    outcome: String,
    rule_id: String,
    reason: String,
    attributes: String,
    trace_id: String,
    request_id: String,
    appended_by: String,
    previous_hash: Vec<u8>,
    hash: Vec<u8>,
}

fn hash32(column: &str, v: &[u8]) -> Result<[u8; 32], Error> {
    <[u8; 32]>::try_from(v).map_err(|_| Error::internal(format!("stored {column} is not 32 bytes")))
}

impl TryFrom<EventRow> for ChainedEvent {
    type Error = Error;

    fn try_from(r: EventRow) -> Result<Self, Error> {
        let attributes: BTreeMap<String, String> = serde_json::from_str(&r.attributes)
            .map_err(|e| Error::internal(format!("stored attributes of {}: {e}", r.sequence)))?;
        Ok(ChainedEvent {
            sequence: r.sequence,
            id: r.id,
            occur_time: r.occur_time,
            record_time: r.record_time,
            action: r.action,
            actor_kind: r.actor_kind,
            actor_id: r.actor_id,
            actor_name: r.actor_name,
            client_address: r.client_address,
            producer: r.producer,
            resource_type: r.resource_type,
            resource_id: r.resource_id,
            department_id: r.department_id,
            platform_account_id: r.platform_account_id,
            outcome: r.outcome,
            rule_id: r.rule_id,
            reason: r.reason,
            attributes,
            trace_id: r.trace_id,
            request_id: r.request_id,
            appended_by: r.appended_by,
            previous_hash: hash32("previous_hash", &r.previous_hash)?,
            hash: hash32("hash", &r.hash)?,
        })
    }
}

/// Reads and locks the chain head: (last sequence, its hash).
pub async fn lock_head(tx: &mut Tx) -> Result<(i64, [u8; 32]), Error> {
    let (sequence, hash): (i64, Vec<u8>) = on_tx!(tx, |conn, dialect| {
        let sql = match dialect {
            Dialect::Postgres => "SELECT sequence, hash FROM audit_chain_head WHERE id = 1 FOR UPDATE",
            Dialect::Sqlite => "SELECT sequence, hash FROM audit_chain_head WHERE id = 1",
        };
        sqlx::query_as(sql).fetch_one(conn).await
    })
    .map_err(db_error)?;
    Ok((sequence, hash32("audit_chain_head.hash", &hash)?))
}

/// Moves the chain head.
pub async fn set_head(tx: &mut Tx, sequence: i64, hash: &[u8; 32]) -> Result<(), Error> {
    sql!(tx, execute, "UPDATE audit_chain_head SET sequence = $1, hash = $2 WHERE id = 1", sequence, hash.as_slice())
        .map_err(db_error)?;
    Ok(())
}

/// The sequences of the given event ids already in the log.
pub async fn existing_ids(tx: &mut Tx, ids: &[String]) -> Result<BTreeMap<String, i64>, Error> {
    let mut out = BTreeMap::new();
    for chunk in ids.chunks(500) {
        let placeholders: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
        let text = format!("SELECT id, sequence FROM audit_events WHERE id IN ({})", placeholders.join(", "));
        let rows: Vec<(String, i64)> = on_tx!(tx, |conn, dialect| {
            let sql = dialect.sql(&text);
            let mut query = sqlx::query_as(&sql);
            for id in chunk {
                query = query.bind(id);
            }
            query.fetch_all(conn).await
        })
        .map_err(db_error)?;
        out.extend(rows);
    }
    Ok(out)
}

/// Appends one chained event.
pub async fn insert_event(tx: &mut Tx, e: &ChainedEvent) -> Result<(), Error> {
    let attributes = serde_json::to_string(&e.attributes).map_err(Error::internal)?;
    sql!(
        tx,
        execute,
        "INSERT INTO audit_events (sequence, id, occur_time, record_time, action, actor_kind, actor_id, actor_name, \
         client_address, producer, resource_type, resource_id, department_id, platform_account_id, outcome, \
         rule_id, reason, attributes, trace_id, request_id, previous_hash, hash, appended_by) VALUES ($1, $2, $3, \
         $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23)",
        e.sequence,
        &e.id,
        e.occur_time,
        e.record_time,
        &e.action,
        &e.actor_kind,
        &e.actor_id,
        &e.actor_name,
        &e.client_address,
        &e.producer,
        &e.resource_type,
        &e.resource_id,
        &e.department_id,
        &e.platform_account_id,
        &e.outcome,
        &e.rule_id,
        &e.reason,
        &attributes,
        &e.trace_id,
        &e.request_id,
        e.previous_hash.as_slice(),
        e.hash.as_slice(),
        &e.appended_by
    )
    .map_err(db_error)?;
    Ok(())
}

/// A stored checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// Last sequence covered.
    pub sequence: i64,
    /// Its hash.
    pub hash: Vec<u8>,
    /// When made.
    pub created_at: DateTime<Utc>,
    /// Signing key id.
    pub key_id: String,
    /// Signature.
    pub signature: Vec<u8>,
    /// Public key.
    pub public_key: Vec<u8>,
}

#[derive(sqlx::FromRow)]
struct CheckpointRow {
    sequence: i64,
    hash: Vec<u8>,
    created_at: DateTime<Utc>,
    key_id: String,
    signature: Vec<u8>,
    public_key: Vec<u8>,
}

impl From<CheckpointRow> for Checkpoint {
    fn from(r: CheckpointRow) -> Self {
        Checkpoint {
            sequence: r.sequence,
            hash: r.hash,
            created_at: r.created_at,
            key_id: r.key_id,
            signature: r.signature,
            public_key: r.public_key,
        }
    }
}

/// Stores a checkpoint.
pub async fn insert_checkpoint(tx: &mut Tx, c: &Checkpoint) -> Result<(), Error> {
    sql!(
        tx,
        execute,
        "INSERT INTO audit_checkpoints (sequence, hash, created_at, key_id, signature, public_key) VALUES ($1, $2, \
         $3, $4, $5, $6)",
        c.sequence,
        &c.hash,
        c.created_at,
        &c.key_id,
        &c.signature,
        &c.public_key
    )
    .map_err(db_error)?;
    Ok(())
}

/// The chain head's sequence, unlocked (for verification).
pub async fn head_sequence(db: &Database) -> Result<i64, Error> {
    on_db!(db, |pool, _dialect| sqlx::query_scalar("SELECT sequence FROM audit_chain_head WHERE id = 1")
        .fetch_one(pool)
        .await)
    .map_err(db_error)
}

/// The stored checkpoint at `sequence`.
pub async fn checkpoint_at(db: &Database, sequence: i64) -> Result<Option<Checkpoint>, Error> {
    let row: Option<CheckpointRow> = on_db!(db, |pool, dialect| {
        sqlx::query_as(&dialect.sql("SELECT * FROM audit_checkpoints WHERE sequence = $1"))
            .bind(sequence)
            .fetch_optional(pool)
            .await
    })
    .map_err(db_error)?;
    Ok(row.map(Checkpoint::from))
}

/// The newest checkpoint.
pub async fn latest_checkpoint(db: &Database) -> Result<Option<Checkpoint>, Error> {
    let row: Option<CheckpointRow> = on_db!(db, |pool, _dialect| {
        sqlx::query_as("SELECT * FROM audit_checkpoints ORDER BY sequence DESC LIMIT 1").fetch_optional(pool).await
    })
    .map_err(db_error)?;
    Ok(row.map(Checkpoint::from))
}

/// Checkpoints with sequence in [from, to].
pub async fn checkpoints_between(db: &Database, from: i64, to: i64) -> Result<Vec<Checkpoint>, Error> {
    let rows: Vec<CheckpointRow> = on_db!(db, |pool, dialect| {
        sqlx::query_as(
            &dialect.sql("SELECT * FROM audit_checkpoints WHERE sequence >= $1 AND sequence <= $2 ORDER BY sequence"),
        )
        .bind(from)
        .bind(to)
        .fetch_all(pool)
        .await
    })
    .map_err(db_error)?;
    Ok(rows.into_iter().map(Checkpoint::from).collect())
}

/// The last sequence in the log.
pub async fn last_sequence(db: &Database) -> Result<i64, Error> {
    on_db!(db, |pool, _dialect| sqlx::query_scalar("SELECT COALESCE(MAX(sequence), 0) FROM audit_events")
        .fetch_one(pool)
        .await)
    .map_err(db_error)
}

/// The hash of the event at `sequence`.
pub async fn hash_at(db: &Database, sequence: i64) -> Result<Option<[u8; 32]>, Error> {
    let hash: Option<Vec<u8>> = on_db!(db, |pool, dialect| {
        sqlx::query_scalar(&dialect.sql("SELECT hash FROM audit_events WHERE sequence = $1"))
            .bind(sequence)
            .fetch_optional(pool)
            .await
    })
    .map_err(db_error)?;
    hash.map(|h| hash32("hash", &h)).transpose()
}

/// One event by id.
pub async fn get_event(db: &Database, id: &str) -> Result<Option<ChainedEvent>, Error> {
    let row: Option<EventRow> = on_db!(db, |pool, dialect| {
        sqlx::query_as(&dialect.sql("SELECT * FROM audit_events WHERE id = $1")).bind(id).fetch_optional(pool).await
    })
    .map_err(db_error)?;
    row.map(ChainedEvent::try_from).transpose()
}

/// Filters of [`query_events`].
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    /// Actor id.
    pub actor_id: Option<String>,
    /// Exact actions.
    pub actions: Vec<String>,
    /// Action prefixes (`draft.` for `draft.*`).
    pub action_prefixes: Vec<String>,
    /// Resource type.
    pub resource_type: Option<String>,
    /// Resource id.
    pub resource_id: Option<String>,
    /// occur_time >= from.
    pub from: Option<DateTime<Utc>>,
    /// occur_time < to.
    pub to: Option<DateTime<Utc>>,
    /// sequence >= start.
    pub start_sequence: i64,
    /// sequence <= end (0: no bound).
    pub end_sequence: i64,
}

/// A value bound to a filter placeholder.
enum Bind {
    Text(String),
    Time(DateTime<Utc>),
    Int(i64),
}

/// The WHERE clause of a filter, placeholders numbered from $1, with their values.
fn filter_sql(f: &EventFilter, after: i64) -> (String, Vec<Bind>) {
    let mut parts = vec!["sequence > $1".to_owned()];
    let mut binds = vec![Bind::Int(after)];
    fn push(parts: &mut Vec<String>, binds: &mut Vec<Bind>, sql: &str, value: Bind) {
        binds.push(value);
        parts.push(sql.replace('?', &format!("${}", binds.len())));
    }
    if let Some(actor) = &f.actor_id {
        push(&mut parts, &mut binds, "actor_id = ?", Bind::Text(actor.clone()));
    }
    if let Some(t) = &f.resource_type {
        push(&mut parts, &mut binds, "resource_type = ?", Bind::Text(t.clone()));
    }
    if let Some(r) = &f.resource_id {
        push(&mut parts, &mut binds, "resource_id = ?", Bind::Text(r.clone()));
    }
    let mut alternatives = Vec::new();
    for action in &f.actions {
        binds.push(Bind::Text(action.clone()));
        alternatives.push(format!("action = ${}", binds.len()));
    }
    for prefix in &f.action_prefixes {
        binds.push(Bind::Text(prefix.clone()));
        alternatives.push(format!("substr(action, 1, {}) = ${}", prefix.chars().count(), binds.len()));
    }
    if !alternatives.is_empty() {
        parts.push(format!("({})", alternatives.join(" OR ")));
    }
    if let Some(from) = f.from {
        push(&mut parts, &mut binds, "occur_time >= ?", Bind::Time(from));
    }
    if let Some(to) = f.to {
        push(&mut parts, &mut binds, "occur_time < ?", Bind::Time(to));
    }
    if f.start_sequence > 0 {
        push(&mut parts, &mut binds, "sequence >= ?", Bind::Int(f.start_sequence));
    }
    if f.end_sequence > 0 {
        push(&mut parts, &mut binds, "sequence <= ?", Bind::Int(f.end_sequence));
    }
    (parts.join(" AND "), binds)
}

macro_rules! bind_all {
    ($query:expr, $binds:expr) => {{
        let mut query = $query;
        for value in $binds {
            query = match value {
                Bind::Text(v) => query.bind(v.clone()),
                Bind::Time(v) => query.bind(*v),
                Bind::Int(v) => query.bind(*v),
            };
        }
        query
    }};
}

/// Events matching `f` with sequence > `after`, in sequence order.
pub async fn query_events(db: &Database, f: &EventFilter, after: i64, limit: u32) -> Result<Vec<ChainedEvent>, Error> {
    let (clause, binds) = filter_sql(f, after);
    let text = format!("SELECT * FROM audit_events WHERE {clause} ORDER BY sequence LIMIT {limit}");
    let rows: Vec<EventRow> = on_db!(db, |pool, dialect| {
        let sql = dialect.sql(&text);
        bind_all!(sqlx::query_as(&sql), &binds).fetch_all(pool).await
    })
    .map_err(db_error)?;
    rows.into_iter().map(ChainedEvent::try_from).collect()
}

/// How many events match `f` (for export progress).
pub async fn count_events(db: &Database, f: &EventFilter) -> Result<u64, Error> {
    let (clause, binds) = filter_sql(f, 0);
    let text = format!("SELECT COUNT(*) FROM audit_events WHERE {clause}");
    let n: i64 = on_db!(db, |pool, dialect| {
        let sql = dialect.sql(&text);
        bind_all!(sqlx::query_scalar(&sql), &binds).fetch_one(pool).await
    })
    .map_err(db_error)?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// Events with sequence in (after, to], in order.
pub async fn events_after(db: &Database, after: i64, to: i64, limit: u32) -> Result<Vec<StoredEvent>, Error> {
    use sqlx::{FromRow, Row};
    let sql = "SELECT * FROM audit_events WHERE sequence > $1 AND sequence <= $2 ORDER BY sequence LIMIT $3";
    on_db!(db, |pool, dialect| {
        let rows = sqlx::query(&dialect.sql(sql))
            .bind(after)
            .bind(to)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await
            .map_err(db_error)?;
        // Each row on its own: one whose columns no longer decode is that event's break,
        // not a failure of the whole verification.
        Ok(rows
            .iter()
            .map(|row| {
                let event = EventRow::from_row(row)
                    .map_err(|e| e.to_string())
                    .and_then(|r| ChainedEvent::try_from(r).map_err(|e| e.to_string()));
                match event {
                    Ok(event) => StoredEvent::Event(Box::new(event)),
                    Err(why) => StoredEvent::Unreadable { sequence: row.try_get("sequence").unwrap_or(-1), why },
                }
            })
            .collect())
    })
}

/// A stored row of the log, as the verification reads it.
#[derive(Debug, Clone)]
pub enum StoredEvent {
    /// The row is an event.
    Event(Box<ChainedEvent>),
    /// The row's columns no longer make an event (a time that is not a time, attributes
    /// that are not JSON, a hash of the wrong length): it was altered.
    Unreadable {
        /// Its sequence.
        sequence: i64,
        /// What does not decode.
        why: String,
    },
}
