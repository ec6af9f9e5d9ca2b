//! The permission-check client every service authorizes its RPCs with: it asks the
//! identity service's `CheckPermission` (the one authority, R2.2.1) and caches each
//! answer for a short time, so a burst of calls by one person costs one round trip.
//!
//! The cache is why a revoked role can still work for up to the TTL (default 5 s) on
//! services other than identity; identity itself decides from its database every time.
//!
//! A caller's question carries the session of its access token: identity answers "no"
//! for a session that has ended, and the checker turns that into UNAUTHENTICATED, so a
//! signed-out token stops working on every service as soon as no cached answer is left
//! for it (the same TTL bound as a revoked role; identity refuses it at once).
//!
//! A change asks for its permission *before* its transaction begins and receives an
//! [`Authorized`]: a value only this module makes. Locking a row for a change
//! ([`crate::db::lock_row`]) takes one, so code that was not authorised cannot lock,
//! and no transaction is ever held open while identity is asked.

use std::sync::Arc;
use std::time::Duration;

use govmedia_domain::Error;
use govmedia_domain::ids::{DepartmentId, PlatformAccountId, PrincipalId, SessionId};
use govmedia_domain::permission::Permission;
use govmedia_domain::scope::Resource;
use govmedia_proto::identity::v1::access_service_client::AccessServiceClient;
use govmedia_proto::identity::v1::{CheckPermissionRequest, DenialReason, PermissionCheck};
use moka::sync::Cache;
use tonic::transport::Channel;

use crate::auth::Principal;
use crate::client::CallCredentials;

/// How long an answer is reused by default.
pub const DEFAULT_TTL: Duration = Duration::from_secs(5);
/// Most answers kept.
const MAX_ENTRIES: u64 = 100_000;

type Key = (PrincipalId, Option<SessionId>, Permission, Option<uuid::Uuid>, Option<uuid::Uuid>);

/// Whom a permission question is about: the caller of a request, in the session of its
/// token (made from its [`Principal`]), or someone else by id (an assignee, a reviewer
/// to be) with no session to check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subject {
    principal: PrincipalId,
    session: Option<SessionId>,
}

impl Subject {
    /// Someone other than the caller, asked about by id.
    pub fn other(principal: PrincipalId) -> Self {
        Self { principal, session: None }
    }
}

impl From<&Principal> for Subject {
    fn from(p: &Principal) -> Self {
        Self { principal: p.id, session: p.session_id }
    }
}

/// An answer of the authority.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// Granted.
    pub allowed: bool,
    /// Which role and scope granted it, or why not.
    pub explanation: String,
}

/// Proof that the authority allowed a principal a permission on a scope. For a caller,
/// only [`PermissionChecker`] makes one; [`Authorized::service`] is the one grant with
/// no caller, for the service's own background work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorized {
    principal: PrincipalId,
    permission: Option<Permission>,
    basis: Basis,
}

/// What the grant was checked on.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Basis {
    /// The service itself, acting by its own rules with no caller.
    Service(&'static str),
    /// One resource (a department, an account in its department, or global).
    Resource(Resource),
    /// Every one of these accounts of the department.
    Accounts { department: DepartmentId, accounts: Vec<PlatformAccountId> },
}

impl Authorized {
    /// The service itself acting by its own rules, with nobody calling: the scheduler
    /// sending what was approved, a background job. It covers every row; what it does
    /// is audited with the system as the actor. Handlers never use it: they act for a
    /// caller and ask for the caller's authorisation.
    pub fn service(component: &'static str) -> Self {
        Self {
            principal: PrincipalId::from_uuid(uuid::Uuid::nil()),
            permission: None,
            basis: Basis::Service(component),
        }
    }

    /// Who was authorised.
    pub fn principal(&self) -> PrincipalId {
        self.principal
    }

    /// What for (none when the service acts by itself).
    pub fn permission(&self) -> Option<Permission> {
        self.permission
    }

    /// `Ok` when the grant covers a row owned by `department` and targeting `accounts`
    /// as it was found once locked; ABORTED otherwise (the row moved out of the scope
    /// that was checked between the check and the lock: read it again and retry).
    pub fn ensure_covers(&self, department: Option<DepartmentId>, accounts: &[PlatformAccountId]) -> Result<(), Error> {
        let covered = match &self.basis {
            Basis::Service(_) => true,
            // A bureau-wide grant covers a row wherever it is.
            Basis::Resource(r) => {
                *r == Resource::GLOBAL
                    || (r.department == department && r.platform_account.is_none_or(|a| accounts.contains(&a)))
            }
            Basis::Accounts { department: d, accounts: granted } => {
                Some(*d) == department && accounts.iter().all(|a| granted.contains(a))
            }
        };
        if covered { Ok(()) } else { Err(moved()) }
    }

    /// `Ok` when the grant covers a row aimed at `account` (a publication, a comment, a
    /// feedback item); ABORTED otherwise.
    pub fn ensure_covers_account(&self, account: PlatformAccountId) -> Result<(), Error> {
        let covered = match &self.basis {
            Basis::Service(_) => true,
            Basis::Resource(r) => r.platform_account == Some(account) || *r == Resource::GLOBAL,
            Basis::Accounts { accounts, .. } => accounts.contains(&account),
        };
        if covered { Ok(()) } else { Err(moved()) }
    }
}

fn moved() -> Error {
    Error::Conflict("the resource changed since the permission was checked; read it again and retry".into())
}

/// Asks identity whether principals may act, with a short cache.
#[derive(Debug, Clone)]
pub struct PermissionChecker {
    client: AccessServiceClient<Channel>,
    credentials: CallCredentials,
    cache: Option<Cache<Key, Arc<Answer>>>,
}

impl PermissionChecker {
    /// A checker calling identity on `channel` as `credentials` (a service principal
    /// holding `permission.check`), caching answers for `ttl` (zero: no cache).
    pub fn new(channel: Channel, credentials: CallCredentials, ttl: Duration) -> Self {
        let cache = (!ttl.is_zero()).then(|| Cache::builder().max_capacity(MAX_ENTRIES).time_to_live(ttl).build());
        Self { client: AccessServiceClient::new(channel), credentials, cache }
    }

    /// The authority's answer for `principal`, `permission` and `resource`.
    pub async fn check(
        &self,
        subject: impl Into<Subject>,
        permission: Permission,
        resource: &Resource,
    ) -> Result<Arc<Answer>, Error> {
        let Subject { principal, session } = subject.into();
        let key = (
            principal,
            session,
            permission,
            resource.department.map(|d| d.as_uuid()),
            resource.platform_account.map(|a| a.as_uuid()),
        );
        if let Some(answer) = self.cache.as_ref().and_then(|c| c.get(&key)) {
            return Ok(answer);
        }
        let mut request = tonic::Request::new(CheckPermissionRequest {
            check: Some(PermissionCheck {
                principal_id: principal.to_string(),
                session_id: session.map(|s| s.to_string()).unwrap_or_default(),
                permission: permission.as_str().to_owned(),
                resource: Some(govmedia_proto::identity::v1::Resource {
                    department_id: resource.department.map(|d| d.to_string()).unwrap_or_default(),
                    platform_account_id: resource.platform_account.map(|a| a.to_string()).unwrap_or_default(),
                }),
            }),
        });
        let unavailable = |s: tonic::Status| Error::Unavailable { dependency: "identity service", source: Box::new(s) };
        self.credentials.authorize(&mut request).await.map_err(unavailable)?;
        let mut client = self.client.clone();
        let decision =
            crate::telemetry::client_call("govmedia.identity.v1.AccessService", "CheckPermission", request, |r| {
                client.check_permission(r)
            })
            .await
            .map_err(unavailable)?
            .into_inner()
            .decision
            .ok_or_else(|| Error::internal("identity answered a permission check without a decision"))?;
        if decision.denial_reason() == DenialReason::SessionEnded {
            // Not cached: the caller signs in again and comes back with another session.
            return Err(Error::Unauthenticated("the session has ended; sign in again".to_owned()));
        }
        let answer = Arc::new(Answer { allowed: decision.allowed, explanation: decision.explanation });
        if let Some(cache) = &self.cache {
            cache.insert(key, Arc::clone(&answer));
        }
        Ok(answer)
    }

    /// The authorisation of `principal` for `permission` on `resource`; PERMISSION_DENIED
    /// naming the permission and why otherwise.
    pub async fn authorize(
        &self,
        subject: impl Into<Subject>,
        permission: Permission,
        resource: &Resource,
    ) -> Result<Authorized, Error> {
        let subject = subject.into();
        self.require(subject, permission, resource).await?;
        Ok(Authorized { principal: subject.principal, permission: Some(permission), basis: Basis::Resource(*resource) })
    }

    /// The authorisation of `principal` for `permission` on something owned by
    /// `department` and aimed at `accounts`: granted by the department, or by every one
    /// of the accounts (a binding scoped to accounts reaches only what targets nothing
    /// else, R2.2.1, R3.2.2). PERMISSION_DENIED with the department's answer otherwise.
    pub async fn authorize_department_or_accounts(
        &self,
        subject: impl Into<Subject>,
        permission: Permission,
        department: DepartmentId,
        accounts: &[PlatformAccountId],
    ) -> Result<Authorized, Error> {
        let subject = subject.into();
        let principal = subject.principal;
        let by_department = self.check(subject, permission, &Resource::department(department)).await?;
        if by_department.allowed {
            let basis = Basis::Resource(Resource::department(department));
            return Ok(Authorized { principal, permission: Some(permission), basis });
        }
        if !accounts.is_empty() {
            let mut all = true;
            for account in accounts {
                if !self
                    .check(subject, permission, &Resource::platform_account(*account, Some(department)))
                    .await?
                    .allowed
                {
                    all = false;
                    break;
                }
            }
            if all {
                let basis = Basis::Accounts { department, accounts: accounts.to_vec() };
                return Ok(Authorized { principal, permission: Some(permission), basis });
            }
        }
        Err(Error::denied(permission, by_department.explanation.clone()).on_resource(&Resource::department(department)))
    }

    /// `Ok` when allowed; PERMISSION_DENIED naming the permission and why otherwise.
    pub async fn require(
        &self,
        subject: impl Into<Subject>,
        permission: Permission,
        resource: &Resource,
    ) -> Result<(), Error> {
        let answer = self.check(subject, permission, resource).await?;
        if answer.allowed {
            Ok(())
        } else {
            Err(Error::denied(permission, answer.explanation.clone()).on_resource(resource))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(basis: Basis) -> Authorized {
        Authorized { principal: PrincipalId::from_uuid(uuid::Uuid::now_v7()), permission: None, basis }
    }

    #[test]
    fn a_grant_covers_only_the_scope_it_was_checked_on_r2_2_1() {
        let (d1, d2) = (DepartmentId::new(), DepartmentId::new());
        let (a1, a2) = (PlatformAccountId::new(), PlatformAccountId::new());
        let by_department = grant(Basis::Resource(Resource::department(d1)));
        assert!(by_department.ensure_covers(Some(d1), &[a1, a2]).is_ok());
        assert!(by_department.ensure_covers(Some(d2), &[a1]).is_err(), "moved to another department");
        assert!(by_department.ensure_covers_account(a1).is_err(), "a department grant names no account");

        let by_accounts = grant(Basis::Accounts { department: d1, accounts: vec![a1] });
        assert!(by_accounts.ensure_covers(Some(d1), &[a1]).is_ok());
        assert!(by_accounts.ensure_covers(Some(d1), &[a1, a2]).is_err(), "a target was added");
        assert!(by_accounts.ensure_covers_account(a2).is_err());

        let on_account = grant(Basis::Resource(Resource::platform_account(a1, Some(d1))));
        assert!(on_account.ensure_covers_account(a1).is_ok());
        assert!(on_account.ensure_covers_account(a2).is_err());
        assert!(matches!(on_account.ensure_covers_account(a2), Err(Error::Conflict(_))), "ABORTED, to retry");

        let bureau = grant(Basis::Resource(Resource::GLOBAL));
        assert!(bureau.ensure_covers(Some(d2), &[a2]).is_ok(), "a bureau-wide grant covers every department");

        let service = Authorized::service("scheduler");
        assert!(service.ensure_covers(Some(d2), &[a2]).is_ok() && service.ensure_covers_account(a2).is_ok());
    }
}
