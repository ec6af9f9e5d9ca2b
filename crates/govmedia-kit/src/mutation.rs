//! The unit of work of a mutating RPC: one transaction holding the change, its audit
//! records (outbox) and its idempotent answer, committed together or not at all.
//!
//! ```ignore
//! let mut m = match Mutation::begin(&db, &principal, METHOD, request_id, &request, now).await? {
//!     Begin::Replayed(answer) => return Ok(answer),
//!     Begin::Fresh(m) => m,
//! };
//! store::insert_department(m.tx(), &department).await?;
//! m.audit(AuditRecord::new(AuditAction::DepartmentCreated, ...));
//! let answer = CreateDepartmentResponse { department: Some(...) };
//! m.commit(&answer, waker).await?;
//! ```

use std::sync::Arc;

use chrono::{DateTime, Utc};
use govmedia_domain::Error;
use govmedia_domain::audit::AuditRecord;
use govmedia_domain::ids::{PrincipalId, RequestId};
use prost::Message;
use tokio::sync::Notify;

use crate::db::{Database, Tx};
use crate::idempotency::{self, IdempotencyKey};
use crate::outbox;

/// A mutation's transaction, open.
#[derive(Debug)]
pub struct Mutation {
    tx: Tx,
    key: Option<IdempotencyKey>,
    records: Vec<AuditRecord>,
    now: DateTime<Utc>,
}

/// How a mutation begins: either its answer is already stored (a retry), or the work
/// is to be done.
#[derive(Debug)]
pub enum Begin<R> {
    /// The request was carried out before; this is its answer.
    Replayed(R),
    /// A fresh transaction for the work.
    Fresh(Mutation),
}

impl Mutation {
    /// Opens the transaction and looks up `request_id` for `principal` and `method`.
    pub async fn begin<Req: Message, R: Message + Default>(
        db: &Database,
        principal: PrincipalId,
        method: &'static str,
        request_id: RequestId,
        request: &Req,
        now: DateTime<Utc>,
    ) -> Result<Begin<R>, Error> {
        let key = IdempotencyKey::new(principal, method, request_id, request);
        let mut tx = db.begin().await?;
        if let Some(answer) = idempotency::lookup::<R>(&mut tx, &key).await? {
            return Ok(Begin::Replayed(answer));
        }
        Ok(Begin::Fresh(Self { tx, key: Some(key), records: Vec::new(), now }))
    }

    /// Opens a transaction for a mutation that is idempotent by nature (no request_id).
    pub async fn begin_without_key(db: &Database, now: DateTime<Utc>) -> Result<Self, Error> {
        Ok(Self { tx: db.begin().await?, key: None, records: Vec::new(), now })
    }

    /// The transaction, for the stores.
    pub fn tx(&mut self) -> &mut Tx {
        &mut self.tx
    }

    /// The time this mutation acts at.
    pub fn now(&self) -> DateTime<Utc> {
        self.now
    }

    /// Adds an audit record, written with the change.
    pub fn audit(&mut self, record: AuditRecord) {
        self.records.push(record);
    }

    /// Writes the audit records and the answer, commits, and wakes the outbox relay.
    pub async fn commit<R: Message>(mut self, answer: &R, relay: Option<&Arc<Notify>>) -> Result<(), Error> {
        outbox::enqueue(&mut self.tx, &self.records).await?;
        if let Some(key) = &self.key {
            idempotency::remember(&mut self.tx, key, answer, self.now).await?;
        }
        self.tx.commit().await?;
        if let Some(relay) = relay {
            relay.notify_one();
        }
        Ok(())
    }
}
