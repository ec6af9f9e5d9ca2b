//! The unit of work: one shape for every change a service makes.
//!
//! Each service core holds one [`UnitOfWork`] (its database, its clock and the wake-up
//! of its outbox relay). A handler validates its request into a typed command, asks for
//! its authorisation (before anything is locked: [`crate::access`]), then hands the
//! change to [`UnitOfWork::run`] and says only what changes:
//!
//! ```ignore
//! let grant = core.permissions().authorize(caller.id, Permission::PlanWrite, &resource).await?;
//! core.work().run(Call::new(&caller, METHOD, command.request_id, &request), async |m| {
//!     let mut plan = store::lock(m.tx(), command.plan, &grant).await?;
//!     let action = plan.cancel(m.now())?;            // the domain transition
//!     store::save(m.tx(), &plan).await?;            // zero rows updated: ABORTED
//!     m.audit(record(action, &caller, &plan));
//!     Ok(to_proto(&plan))
//! })
//! .await
//! ```
//!
//! `run` does everything else, in one place: the idempotency replay (a retried request
//! gets its first answer), the transaction, the audit records into the outbox, the stored
//! answer, the commit, and the relay's wake-up. The change, its audit records and its
//! answer commit together or not at all; an error anywhere rolls all of it back.
//!
//! Nothing in `run` calls another service: a closure that needs identity's answer gets
//! it before `run` begins, so no transaction (on SQLite, the database's one write lock)
//! is held across a network call.
//!
//! A change that must keep the audit record of a refusal (a failed login counted, a
//! reused refresh token ending its session) commits and answers the refusal: its
//! closure returns `Ok(Err(refusal))`, and the handler passes the inner error on. An
//! `Err` from the closure rolls everything back.
//!
//! Handlers never begin or commit: a `Mutation` is made only here. (The audit log's own
//! writer, which chains events rather than changing a resource, has its transaction.)

use std::sync::Arc;

use chrono::{DateTime, Utc};
use govmedia_domain::Error;
use govmedia_domain::audit::AuditRecord;
use govmedia_domain::clock::Clock;
use govmedia_domain::ids::{PrincipalId, RequestId};
use prost::Message;
use tokio::sync::Notify;

use crate::auth::Principal;
use crate::db::{Database, Tx};
use crate::idempotency::{self, IdempotencyKey};
use crate::outbox;

/// A change in progress: its transaction, the time it acts at, and the audit records it
/// has made so far.
#[derive(Debug)]
pub struct Mutation {
    tx: Tx,
    records: Vec<AuditRecord>,
    now: DateTime<Utc>,
    request_id: Option<RequestId>,
}

impl Mutation {
    /// The transaction, for the stores.
    pub fn tx(&mut self) -> &mut Tx {
        &mut self.tx
    }

    /// The time this change acts at (one instant for all it writes).
    pub fn now(&self) -> DateTime<Utc> {
        self.now
    }

    /// Adds an audit record, written with the change. A record that names no request is
    /// stamped with this change's: the trace it ran under and the caller's `request_id`,
    /// so an inspector can follow any record back to the call that made it.
    pub fn audit(&mut self, mut record: AuditRecord) {
        if record.trace_id.is_none() {
            record.trace_id = crate::telemetry::current_trace_id();
        }
        if record.span_id.is_none() && record.trace_id == crate::telemetry::current_trace_id() {
            record.span_id = crate::telemetry::current_span_id();
        }
        if record.request_id.is_none() {
            record.request_id = self.request_id.map(|id| id.to_string());
        }
        self.records.push(record);
    }

    /// Writes the audit records (and the answer, when keyed: `None` withholds it) and
    /// commits.
    async fn commit<R: Message>(mut self, key: Option<(&IdempotencyKey, Option<&R>)>) -> Result<(), Error> {
        outbox::enqueue(&mut self.tx, &self.records).await?;
        if let Some((key, answer)) = key {
            idempotency::remember(&mut self.tx, key, answer, self.now).await?;
        }
        self.tx.commit().await
    }
}

/// The call a keyed change answers: who sent it, to which method, under which
/// `request_id`, and the request itself (fingerprinted, so reusing a `request_id` for a
/// different request is refused).
#[derive(Debug, Clone, Copy)]
pub struct Call<'a, Req> {
    principal: PrincipalId,
    method: &'static str,
    request_id: RequestId,
    request: &'a Req,
    answer_holds_secret: bool,
}

impl<'a, Req: Message> Call<'a, Req> {
    /// The call of `caller` to `method` (the full gRPC path).
    pub fn new(caller: &Principal, method: &'static str, request_id: RequestId, request: &'a Req) -> Self {
        Self { principal: caller.id, method, request_id, request, answer_holds_secret: false }
    }

    /// The answer carries a secret shown once (a one-time password, a client secret): it
    /// is not kept for replay, and a retry is refused naming R2.3.2.
    pub fn answer_holds_secret(self) -> Self {
        Self { answer_holds_secret: true, ..self }
    }

    /// The call made by a principal known only by id (a service acting for itself).
    pub fn by(principal: PrincipalId, method: &'static str, request_id: RequestId, request: &'a Req) -> Self {
        Self { principal, method, request_id, request, answer_holds_secret: false }
    }
}

/// What a service core holds once to make changes: the database, the clock, and the
/// outbox relay's wake-up.
#[derive(Debug, Clone)]
pub struct UnitOfWork {
    db: Database,
    clock: Arc<dyn Clock>,
    relay: Arc<Notify>,
}

impl UnitOfWork {
    /// Changes on `db`, timed by `clock`, with a fresh relay wake-up (give it to the
    /// service's outbox relay: [`crate::outbox::Relay::with_waker`]).
    pub fn new(db: Database, clock: Arc<dyn Clock>) -> Self {
        Self { db, clock, relay: Arc::new(Notify::new()) }
    }

    /// The database (for reads, which need no unit of work).
    pub fn db(&self) -> &Database {
        &self.db
    }

    /// The clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Now, by the clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// The outbox relay's wake-up, notified after every commit.
    pub fn relay_waker(&self) -> Arc<Notify> {
        Arc::clone(&self.relay)
    }

    /// Runs a change answering `call`: if the same request was carried out before, its
    /// stored answer is returned and `change` does not run; otherwise `change` runs in a
    /// fresh transaction and its answer is stored with it, so a retry gets the same one.
    pub async fn run<Req, R, F>(&self, call: Call<'_, Req>, change: F) -> Result<R, Error>
    where
        Req: Message,
        R: Message + Default,
        F: AsyncFnOnce(&mut Mutation) -> Result<R, Error>,
    {
        let key = IdempotencyKey::new(call.principal, call.method, call.request_id, call.request);
        let mut m = self.begin().await?;
        m.request_id = Some(call.request_id);
        if let Some(answer) = idempotency::lookup::<R>(&mut m.tx, &key).await? {
            return Ok(answer);
        }
        let answer = change(&mut m).await?;
        let kept = (!call.answer_holds_secret).then_some(&answer);
        m.commit(Some((&key, kept))).await?;
        self.relay.notify_one();
        Ok(answer)
    }

    /// Runs a change that is idempotent by nature and has no `request_id` (a login, an
    /// ingest keyed by the platform's id, the scheduler's claim): the same transaction,
    /// audit records, commit and wake-up as [`UnitOfWork::run`], and no stored answer.
    pub async fn run_unkeyed<T, F>(&self, change: F) -> Result<T, Error>
    where
        F: AsyncFnOnce(&mut Mutation) -> Result<T, Error>,
    {
        let mut m = self.begin().await?;
        let value = change(&mut m).await?;
        if m.records.is_empty() {
            m.tx.commit().await?;
        } else {
            m.commit::<()>(None).await?;
            self.relay.notify_one();
        }
        Ok(value)
    }

    async fn begin(&self) -> Result<Mutation, Error> {
        Ok(Mutation { tx: self.db.begin().await?, records: Vec::new(), now: self.clock.now(), request_id: None })
    }
}
