//! Containment of a security incident through the services that own what is contained:
//! content retracts the publication, identity freezes the account. The calls carry the
//! caller's own access token, so those services check the caller's permissions and
//! record the caller as the actor: the audit service gains no power of its own to take
//! anything down (decision 0033). Each call is keyed by a request id derived from the
//! incident call's, so a retry repeats nothing.

use govmedia_domain::Error;
use govmedia_domain::ids::PlatformAccountId;
use govmedia_kit::client::CallCredentials;
use govmedia_kit::config::Secret;
use govmedia_kit::telemetry::client_call;
use govmedia_proto::content::v1 as cpb;
use govmedia_proto::content::v1::publication_service_client::PublicationServiceClient;
use govmedia_proto::identity::v1 as ipb;
use govmedia_proto::identity::v1::platform_account_service_client::PlatformAccountServiceClient;
use tonic::transport::Channel;

const PUBLICATIONS: &str = "govmedia.content.v1.PublicationService";
const ACCOUNTS: &str = "govmedia.identity.v1.PlatformAccountService";

/// The owners of what an incident contains.
#[derive(Debug, Clone)]
pub struct Containment {
    identity: Channel,
    content: Option<Channel>,
}

/// The request id of a downstream call made for the incident call `request_id`.
fn derived(request_id: &str, step: &str) -> String {
    uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, format!("{request_id}/{step}").as_bytes()).to_string()
}

/// What the caller is told when a service refuses or fails: its refusal as the caller's
/// own (a missing permission is the caller's), its failure as unavailable.
fn refused(dependency: &'static str, permission: &str, s: tonic::Status) -> Error {
    match s.code() {
        tonic::Code::PermissionDenied => Error::PermissionDenied {
            permission: permission.to_owned(),
            explanation: format!("the {dependency} refused: {}", s.message()),
            resource: None,
        },
        tonic::Code::FailedPrecondition | tonic::Code::InvalidArgument | tonic::Code::NotFound => {
            Error::rule(crate::domain::security_incident::RULE, dependency, s.message().to_owned())
        }
        tonic::Code::Unauthenticated => Error::Unauthenticated(format!("the {dependency}: {}", s.message())),
        _ => Error::Unavailable { dependency, source: Box::new(s) },
    }
}

impl Containment {
    /// Calls identity at `identity` and content at `content` (none: retraction is
    /// refused, naming the missing setting).
    pub fn new(identity: Channel, content: Option<Channel>) -> Self {
        Self { identity, content }
    }

    async fn request<T>(token: &Secret, body: T) -> Result<tonic::Request<T>, Error> {
        let mut request = tonic::Request::new(body);
        CallCredentials::Token(token.clone())
            .authorize(&mut request)
            .await
            .map_err(|s| Error::Unauthenticated(s.message().to_owned()))?;
        Ok(request)
    }

    /// Retracts `publication` as the caller: what was done, for the incident's record.
    pub async fn retract(
        &self,
        token: &Secret,
        publication: &str,
        reason: &str,
        request_id: &str,
    ) -> Result<String, Error> {
        let content = self.content.clone().ok_or_else(|| {
            Error::rule(
                crate::domain::security_incident::RULE,
                "the audit service",
                "has no content service to retract through (GOVMEDIA_CONTENT_ENDPOINT is not set)",
            )
        })?;
        let mut client = PublicationServiceClient::new(content);
        let body = cpb::RetractPublicationRequest {
            request_id: derived(request_id, "retract"),
            publication_id: publication.to_owned(),
            reason: reason.to_owned(),
            ..Default::default()
        };
        let retracted = client_call(PUBLICATIONS, "RetractPublication", Self::request(token, body).await?, |r| {
            client.retract_publication(r)
        })
        .await;
        match retracted {
            Ok(_) => Ok(format!("publication {publication} retracted")),
            Err(s) if s.code() == tonic::Code::FailedPrecondition => {
                // Already retracted (by hand, or by an earlier attempt): say so.
                let request =
                    Self::request(token, cpb::GetPublicationRequest { publication_id: publication.to_owned() }).await?;
                let got = client_call(PUBLICATIONS, "GetPublication", request, |r| client.get_publication(r))
                    .await
                    .map_err(|s| refused("content service", "publication.read", s))?;
                let state = got.into_inner().publication.map(|p| p.state).unwrap_or_default();
                if state == cpb::PublicationState::Retracted as i32 {
                    Ok(format!("publication {publication} was retracted already"))
                } else {
                    Err(refused("content service", "publication.retract", s))
                }
            }
            Err(s) => Err(refused("content service", "publication.retract", s)),
        }
    }

    /// Freezes `account` as the caller: what was done, for the incident's record.
    pub async fn freeze(
        &self,
        token: &Secret,
        account: PlatformAccountId,
        reason: &str,
        request_id: &str,
    ) -> Result<String, Error> {
        let mut client = PlatformAccountServiceClient::new(self.identity.clone());
        let body = ipb::FreezePlatformAccountRequest {
            request_id: derived(request_id, "freeze"),
            platform_account_id: account.to_string(),
            reason: reason.to_owned(),
            etag: String::new(),
        };
        let frozen = client_call(ACCOUNTS, "FreezePlatformAccount", Self::request(token, body).await?, |r| {
            client.freeze_platform_account(r)
        })
        .await;
        match frozen {
            Ok(_) => Ok(format!("platform account {account} frozen")),
            Err(s) if s.code() == tonic::Code::FailedPrecondition => {
                let request =
                    Self::request(token, ipb::GetPlatformAccountRequest { platform_account_id: account.to_string() })
                        .await?;
                let got = client_call(ACCOUNTS, "GetPlatformAccount", request, |r| client.get_platform_account(r))
                    .await
                    .map_err(|s| refused("identity service", "account.read", s))?;
                let state = got.into_inner().platform_account.map(|a| a.state).unwrap_or_default();
                if state == ipb::PlatformAccountState::Frozen as i32 {
                    Ok(format!("platform account {account} was frozen already"))
                } else {
                    Err(refused("identity service", "account.incident.manage", s))
                }
            }
            Err(s) => Err(refused("identity service", "account.incident.manage", s)),
        }
    }
}
