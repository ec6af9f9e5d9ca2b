//! Refused attempts on sensitive things are audited (R9.2): a refused credential reveal,
//! audit read, role grant or look at another department's drafts leaves a
//! `permission.denied` record naming the caller, the method, the permission and the
//! resource. Recorded per caller at most [`PER_MINUTE`] a minute, so a flood of refusals
//! cannot fill the log; the next record says how many were left out.
//!
//! The auth layer hands each authenticated request a [`Watch`] (the caller, the method
//! and the service's [`RefusalAudit`]); the `#[handlers]` macro looks at the handler's
//! answer through it. A refusal is recorded in a transaction of its own: the refused
//! change itself rolled back.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use govmedia_domain::Error;
use govmedia_domain::audit::{AuditAction, AuditRecord, AuditResourceRef, Outcome};
use govmedia_domain::ids::PrincipalId;
use govmedia_domain::permission::Permission;

use crate::auth::Principal;
use crate::mutation::UnitOfWork;

/// Refusals recorded per caller and minute; the rest are counted.
pub const PER_MINUTE: u32 = 10;

/// Where a service's refusals are recorded.
pub struct RefusalAudit {
    work: UnitOfWork,
    producer: &'static str,
    limiter: DefaultKeyedRateLimiter<PrincipalId>,
    left_out: moka::sync::Cache<PrincipalId, Arc<AtomicU64>>,
}

impl std::fmt::Debug for RefusalAudit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefusalAudit").field("producer", &self.producer).finish_non_exhaustive()
    }
}

impl RefusalAudit {
    /// Records through `work` as `producer`.
    pub fn new(work: UnitOfWork, producer: &'static str) -> Arc<Self> {
        let per_minute = NonZeroU32::new(PER_MINUTE).unwrap_or(NonZeroU32::MIN);
        Arc::new(Self {
            work,
            producer,
            limiter: RateLimiter::keyed(Quota::per_minute(per_minute)),
            left_out: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_idle(Duration::from_secs(3600))
                .build(),
        })
    }

    /// Records that `caller` was refused `error` (a PERMISSION_DENIED of a sensitive
    /// permission; anything else is ignored) calling `method`. Never fails the call: a
    /// record that cannot be written is logged.
    pub async fn refused(&self, caller: &Principal, method: &str, error: &Error) {
        let Error::PermissionDenied { permission, resource, .. } = error else { return };
        if !permission.parse::<Permission>().is_ok_and(Permission::is_sensitive) {
            return;
        }
        let counter = self.left_out.get_with(caller.id, || Arc::new(AtomicU64::new(0)));
        if self.limiter.check_key(&caller.id).is_err() {
            counter.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let left_out = counter.swap(0, Ordering::Relaxed);
        let (kind, id) = match resource.as_deref().and_then(|r| r.split_once('/')) {
            Some((kind, id)) => (kind.to_owned(), id.to_owned()),
            None => (resource.clone().unwrap_or_else(|| "bureau".to_owned()), String::new()),
        };
        let mut record = AuditRecord::new(
            AuditAction::PermissionDenied,
            caller.actor(),
            AuditResourceRef::new(&kind, id),
            self.producer,
            self.work.now(),
        )
        .outcome(Outcome::Denied)
        .rule("R2.2.2")
        .attr("method", method)
        .attr("permission", permission);
        if left_out > 0 {
            record = record.attr("refusals_left_out", left_out);
        }
        let written = self
            .work
            .run_unkeyed(async |m| {
                m.audit(record);
                Ok(())
            })
            .await;
        if let Err(e) = written {
            tracing::warn!(error = %e, method, "a refused attempt could not be audited");
        }
    }
}

/// Who called which method, and where its refusals go: put on each authenticated request
/// by the auth layer of a service that audits refusals.
#[derive(Debug, Clone)]
pub struct Watch {
    audit: Arc<RefusalAudit>,
    method: String,
}

impl Watch {
    /// For `method`, recording to `audit`.
    pub fn new(audit: Arc<RefusalAudit>, method: String) -> Self {
        Self { audit, method }
    }

    /// The watch and the caller of `request`, when its service audits refusals.
    pub fn of<T>(request: &tonic::Request<T>) -> Option<(Watch, Principal)> {
        let watch = request.extensions().get::<Watch>()?.clone();
        let caller = request.extensions().get::<Principal>()?.clone();
        Some((watch, caller))
    }
}

/// `result`, after recording it if it is a refusal worth recording.
pub async fn watched<T>(watch: Option<(Watch, Principal)>, result: Result<T, Error>) -> Result<T, Error> {
    if let (Some((watch, caller)), Err(error @ Error::PermissionDenied { .. })) = (watch, &result) {
        watch.audit.refused(&caller, &watch.method, error).await;
    }
    result
}
