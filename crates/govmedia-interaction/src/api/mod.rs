//! The gRPC edge of interaction: one module per service of `govmedia.interaction.v1`.
//! A handler takes the verified principal, parses the request (all field violations at
//! once), asks for the permission on the account before anything is locked
//! ([`authorize_on_account`]), and runs the change in the core's
//! [`UnitOfWork`](govmedia_kit::mutation::UnitOfWork): it locks the row with the grant,
//! applies the rule from `domain`, saves, and adds its audit records.

pub mod audience;
pub mod comment;
pub mod conversation;
pub mod escalation;
pub mod moderation;

use chrono::{DateTime, Utc};
use govmedia_domain::Error;
use govmedia_domain::audit::{AuditAction, AuditRecord, AuditResourceRef};
use govmedia_domain::validate::Validator;
use govmedia_kit::access::{Authorized, Subject};
use govmedia_kit::auth::Principal;
use govmedia_kit::wire::EvidenceRecord;
use govmedia_proto::common::v1 as cpb;

use crate::AccountFacts;
use crate::domain::comment::Channel;

/// The full gRPC path of a method ("Service/Method") of `govmedia.interaction.v1`: the
/// idempotency key's method.
macro_rules! method {
    ($path:literal) => {
        concat!("/govmedia.interaction.v1.", $path)
    };
}
pub(crate) use method;

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

/// The account's facts and `caller`'s authorisation for `permission` on it, asked before
/// any transaction begins; locking a row of the account for the change needs the grant.
pub(crate) async fn authorize_on_account(
    core: &crate::Core,
    caller: &Principal,
    permission: govmedia_domain::permission::Permission,
    account: govmedia_domain::ids::PlatformAccountId,
) -> Result<(AccountFacts, Authorized), Error> {
    let facts = core.account(account).await?;
    let grant = core.permissions().authorize(caller, permission, &facts.resource()).await?;
    Ok((facts, grant))
}

/// As [`authorize_on_account`], for saying something from the account: its facts are
/// fetched fresh and a frozen or closed account refuses (R2.3.3), told only to a caller
/// who holds the permission.
pub(crate) async fn authorize_to_speak(
    core: &crate::Core,
    caller: &Principal,
    permission: govmedia_domain::permission::Permission,
    account: govmedia_domain::ids::PlatformAccountId,
) -> Result<(AccountFacts, Authorized), Error> {
    let facts = core.account_now(account).await?;
    let grant = core.permissions().authorize(caller, permission, &facts.resource()).await?;
    facts.may_speak()?;
    Ok((facts, grant))
}

/// The account's facts once `caller` holds `permission` on it.
pub(crate) async fn require_on_account(
    core: &crate::Core,
    caller: &Principal,
    permission: govmedia_domain::permission::Permission,
    account: govmedia_domain::ids::PlatformAccountId,
) -> Result<AccountFacts, Error> {
    let facts = core.account(account).await?;
    core.permissions().require(caller, permission, &facts.resource()).await?;
    Ok(facts)
}

/// Work is assigned only to someone who may do it on that account (R2.2.2).
pub(crate) async fn check_assignee(
    core: &crate::Core,
    assignee: govmedia_domain::ids::UserId,
    permission: govmedia_domain::permission::Permission,
    facts: &AccountFacts,
) -> Result<(), Error> {
    let answer = core.permissions().check(Subject::other(assignee.into()), permission, &facts.resource()).await?;
    if answer.allowed {
        return Ok(());
    }
    Err(Error::rule(
        "R2.2.2",
        format!("user/{assignee}"),
        format!("lacks {permission} on platform_account/{}: {}", facts.id, answer.explanation),
    ))
}

/// Screens a staff reply (to a comment or in a conversation) before it is stored: a
/// block finding refuses it, and the refusal is audited against `resource` (R4.1.2).
/// The review findings otherwise.
pub(crate) async fn screen_reply(
    core: &crate::Core,
    caller: &Principal,
    facts: &AccountFacts,
    resource: (&'static str, String),
    context: cpb::ScreeningContext,
    text: &str,
    request_id: String,
) -> Result<Vec<cpb::ScreeningFinding>, Error> {
    let screened = core.screener().screen(context, vec![("text".to_owned(), text.to_owned())]).await?;
    let blocking = screened.blocking();
    if !blocking.is_empty() {
        let detail: Vec<String> = blocking.iter().map(|f| format!("\"{}\"", f.excerpt)).collect();
        let refused =
            record(AuditAction::ReplyRefused, caller, resource, facts, core.now(), "R4.1.2", Some(request_id))
                .outcome(govmedia_domain::audit::Outcome::Denied)
                .attr("findings", detail.join("; "));
        core.work()
            .run_unkeyed(async |m| {
                m.audit(refused);
                Ok(())
            })
            .await?;
        return Err(govmedia_kit::screening::refusal(&blocking));
    }
    Ok(screened.findings)
}
