//! The gRPC edge of interaction: one module per service of `govmedia.interaction.v1`.
//! A handler takes the verified principal, parses the request (all field violations at
//! once), checks the permission on the account, runs the rule from `domain`, calls the
//! store inside one [`Mutation`](govmedia_kit::mutation::Mutation) with its audit
//! records, and converts the answer.

pub mod audience;
pub mod comment;
pub mod conversation;
pub mod moderation;

use chrono::{DateTime, Utc};
use govmedia_domain::Error;
use govmedia_domain::audit::{AuditAction, AuditRecord, AuditResourceRef};
use govmedia_domain::validate::Validator;
use govmedia_kit::auth::Principal;
use govmedia_kit::wire::EvidenceRecord;
use govmedia_proto::common::v1 as cpb;

use crate::AccountFacts;
use crate::domain::comment::Channel;

/// Opens a mutation for `$method` ("Service/Method") of `govmedia.interaction.v1`, or
/// answers a retried request with its stored answer.
macro_rules! begin {
    ($self:ident, $caller:ident, $method:literal, $request_id:expr, $request:expr) => {
        match govmedia_kit::mutation::Mutation::begin(
            $self.core.db(),
            $caller.id,
            concat!("/govmedia.interaction.v1.", $method),
            $request_id,
            $request,
            $self.core.now(),
        )
        .await?
        {
            govmedia_kit::mutation::Begin::Replayed(answer) => return Ok(tonic::Response::new(answer)),
            govmedia_kit::mutation::Begin::Fresh(m) => m,
        }
    };
}
pub(crate) use begin;

/// A wire duration.
pub(crate) fn duration(d: chrono::Duration) -> prost_types::Duration {
    prost_types::Duration { seconds: d.num_seconds(), nanos: d.subsec_nanos() }
}

/// An audit record of an interaction change on an account's resource.
pub(crate) fn record(
    action: AuditAction,
    caller: &Principal,
    (kind, id): (&'static str, impl std::fmt::Display),
    account: &AccountFacts,
    now: DateTime<Utc>,
    rule: &str,
    request_id: Option<String>,
) -> AuditRecord {
    let mut resource = AuditResourceRef::new(kind, id);
    resource.department = account.department;
    resource.platform_account = Some(account.id);
    AuditRecord::new(action, caller.actor(), resource, crate::PRODUCER, now)
        .rule(rule)
        .request(govmedia_kit::telemetry::current_trace_id(), request_id)
}

/// Evidence of a manual action on the platform, checked: the channel it implies and
/// its stored form.
pub(crate) fn evidence(v: &mut Validator, field: &str, e: Option<&cpb::Evidence>) -> (Channel, String) {
    match e {
        None => (Channel::Recorded, String::new()),
        Some(e) => (Channel::Manual, EvidenceRecord::from_wire(v, field, e).to_stored()),
    }
}

/// Stored evidence back on the wire.
pub(crate) fn evidence_to(stored: &str) -> Option<cpb::Evidence> {
    EvidenceRecord::from_stored(stored).map(|e| e.to_wire())
}

/// The internal error for a value the validator has already vouched for.
pub(crate) fn validated() -> Error {
    Error::internal("validated")
}
