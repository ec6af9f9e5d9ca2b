//! The permission-check client every service authorizes its RPCs with: it asks the
//! identity service's `CheckPermission` (the one authority, R2.2.1) and caches each
//! answer for a short time, so a burst of calls by one person costs one round trip.
//!
//! The cache is why a revoked role can still work for up to the TTL (default 5 s) on
//! services other than identity; identity itself decides from its database every time.

use std::sync::Arc;
use std::time::Duration;

use govmedia_domain::Error;
use govmedia_domain::ids::PrincipalId;
use govmedia_domain::permission::Permission;
use govmedia_domain::scope::Resource;
use govmedia_proto::identity::v1::access_service_client::AccessServiceClient;
use govmedia_proto::identity::v1::{CheckPermissionRequest, PermissionCheck};
use moka::sync::Cache;
use tonic::transport::Channel;

use crate::client::CallCredentials;

/// How long an answer is reused by default.
pub const DEFAULT_TTL: Duration = Duration::from_secs(5);
/// Most answers kept.
const MAX_ENTRIES: u64 = 100_000;

type Key = (PrincipalId, Permission, Option<uuid::Uuid>, Option<uuid::Uuid>);

/// An answer of the authority.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// Granted.
    pub allowed: bool,
    /// Which role and scope granted it, or why not.
    pub explanation: String,
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
        principal: PrincipalId,
        permission: Permission,
        resource: &Resource,
    ) -> Result<Arc<Answer>, Error> {
        let key = (
            principal,
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
                permission: permission.as_str().to_owned(),
                resource: Some(govmedia_proto::identity::v1::Resource {
                    department_id: resource.department.map(|d| d.to_string()).unwrap_or_default(),
                    platform_account_id: resource.platform_account.map(|a| a.to_string()).unwrap_or_default(),
                }),
            }),
        });
        let unavailable = |s: tonic::Status| Error::Unavailable { dependency: "identity service", source: Box::new(s) };
        self.credentials.authorize(&mut request).await.map_err(unavailable)?;
        crate::telemetry::inject_context(request.metadata_mut());
        let decision = self
            .client
            .clone()
            .check_permission(request)
            .await
            .map_err(unavailable)?
            .into_inner()
            .decision
            .ok_or_else(|| Error::internal("identity answered a permission check without a decision"))?;
        let answer = Arc::new(Answer { allowed: decision.allowed, explanation: decision.explanation });
        if let Some(cache) = &self.cache {
            cache.insert(key, Arc::clone(&answer));
        }
        Ok(answer)
    }

    /// `Ok` when allowed; PERMISSION_DENIED naming the permission and why otherwise.
    pub async fn require(
        &self,
        principal: PrincipalId,
        permission: Permission,
        resource: &Resource,
    ) -> Result<(), Error> {
        let answer = self.check(principal, permission, resource).await?;
        if answer.allowed { Ok(()) } else { Err(Error::denied(permission, answer.explanation.clone())) }
    }
}
